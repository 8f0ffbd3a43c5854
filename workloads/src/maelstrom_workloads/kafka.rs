//! Maelstrom's `kafka` workload (jepsen-io/maelstrom, src/maelstrom/workload/kafka.clj):
//! append-only logs, one per key, that clients send messages to and poll from.
//!
//! Each worker is a producer and a consumer. Half its operations send a unique integer
//! ([`crate::unique_value`]) to one of `--keys` logs (`{"f":"send","key":"k1","value":m}`);
//! about a third poll one to [`MAX_KEYS_PER_POLL`] logs from the worker's own positions
//! (`{"f":"poll","value":{"k1":3}}`), which advance past the highest offset each poll returns
//! ([`Generator::observe`]); one in ten commits the worker's positions (the highest offset it
//! has read of each log it has read, `{"f":"commit_offsets","value":{"k1":2}}`), and the rest
//! list the committed offsets of every log (`{"f":"list_committed_offsets","value":["k0",..]}`).
//! A worker starts every log at offset 0 and keeps its positions across the indeterminate
//! outcomes that give it a fresh process id, so it reads each log in order from the start:
//! what it skips, the `kafka` checker sees.
//!
//! Determinism: three draws per operation, whatever it is, so the kind and key(s) of each
//! operation follow from the seed alone; the positions a poll asks from and a commit commits
//! depend on what earlier polls returned (before a worker has read anything its commits are
//! empty maps).

use crate::client::Completion;
use crate::registry::Workload;
use crate::rng::SplitMix64;
use crate::{unique_value, Generator, Op};
use history::EventType;
use serde_json::{json, Map, Value};

/// Percent of operations that are sends, polls and commits; the rest list committed offsets.
pub const SEND_PERCENT: u64 = 50;
pub const POLL_PERCENT: u64 = 35;
pub const COMMIT_PERCENT: u64 = 10;
/// Logs one poll reads, at most.
pub const MAX_KEYS_PER_POLL: u64 = 3;

const PURPOSE_KAFKA: u64 = 10;

pub static WORKLOAD: Workload = Workload {
    name: "kafka",
    about: "Maelstrom's kafka workload (for Maelstrom nodes, --system maelstrom:PATH): sends of unique messages \
            to --keys logs, polls from each worker's own positions, commits of those positions \
            and lists of committed offsets; checked as Maelstrom's kafka checker does (offsets, \
            skips, lost writes) and that committed offsets never go back",
    generator: |run, worker| Box::new(KafkaGen::new(run.seed, worker, run.keys)),
    key_names: KafkaGen::key_names,
    final_reads: false,
    fixed_keys: false,
    checkers: &["kafka"],
    maelstrom_promises: &["kafka"],
};

/// The generator of one worker.
#[derive(Clone, Debug)]
pub struct KafkaGen {
    rng: SplitMix64,
    worker: u64,
    sent: u64,
    /// Per log: the next offset this worker polls from.
    positions: Vec<i64>,
}

impl KafkaGen {
    /// Worker `worker`'s generator over logs "k0".."k{keys-1}" (at least one).
    pub fn new(seed: u64, worker: u64, keys: usize) -> Self {
        KafkaGen {
            rng: SplitMix64::for_stream(seed, worker, PURPOSE_KAFKA),
            worker,
            sent: 0,
            positions: vec![0; keys.max(1)],
        }
    }

    /// The names of the logs of a run with `keys` keys.
    pub fn key_names(keys: usize) -> Vec<String> {
        (0..keys.max(1)).map(|k| format!("k{k}")).collect()
    }

    /// The next offset this worker polls `key` from.
    pub fn position(&self, key: usize) -> Option<i64> {
        self.positions.get(key).copied()
    }

    fn keyless(f: &str, value: Value) -> Op {
        Op {
            f: f.to_owned(),
            key: None,
            value,
            local: false,
            context: None,
        }
    }
}

fn key_index(name: &str) -> Option<usize> {
    name.strip_prefix('k')?.parse().ok()
}

impl Generator for KafkaGen {
    fn next_op(&mut self) -> Op {
        // Three draws per operation, whatever it is (see the trait's documentation).
        let keys = self.positions.len();
        let kind = self.rng.below(100);
        let key = self.rng.below(keys as u64) as usize;
        let pick = self.rng.next_u64();
        if kind < SEND_PERCENT {
            let msg = unique_value(self.worker, self.sent);
            self.sent += 1;
            return Op {
                f: "send".to_owned(),
                key: Some(format!("k{key}")),
                value: json!(msg),
                local: false,
                context: None,
            };
        }
        if kind < SEND_PERCENT + POLL_PERCENT {
            let count = 1 + pick % MAX_KEYS_PER_POLL.min(keys as u64);
            let from: Map<String, Value> = (0..count as usize)
                .map(|i| (key + i) % keys)
                .map(|k| (format!("k{k}"), json!(self.positions[k])))
                .collect();
            return KafkaGen::keyless("poll", Value::Object(from));
        }
        let read: Map<String, Value> = self
            .positions
            .iter()
            .enumerate()
            .filter(|(_, &p)| p > 0)
            .map(|(k, &p)| (format!("k{k}"), json!(p - 1)))
            .collect();
        if kind < SEND_PERCENT + POLL_PERCENT + COMMIT_PERCENT {
            // Before it has read anything a worker commits an empty map: the kind of each
            // operation must not depend on what polls returned.
            return KafkaGen::keyless("commit_offsets", Value::Object(read));
        }
        KafkaGen::keyless("list_committed_offsets", json!(KafkaGen::key_names(keys)))
    }

    fn observe(&mut self, op: &Op, c: &Completion) {
        if op.f != "poll" || c.kind != EventType::Ok {
            return;
        }
        let Some(polled) = c.value.as_object() else {
            return;
        };
        for (name, pairs) in polled {
            let Some(k) = key_index(name).filter(|&k| k < self.positions.len()) else {
                continue;
            };
            let highest = pairs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.get(0).and_then(Value::as_i64))
                .max();
            if let Some(h) = highest {
                self.positions[k] = self.positions[k].max(h.saturating_add(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ok(value: Value) -> Completion {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
            refused: false,
            siblings: false,
            context: None,
        }
    }

    #[test]
    fn the_mix_sends_unique_messages_and_polls_commits_lists_without_keys() {
        let mut g = KafkaGen::new(7, 3, 4);
        let mut fs = std::collections::BTreeMap::<String, usize>::new();
        let mut msgs = HashSet::new();
        for _ in 0..4_000 {
            let op = g.next_op();
            *fs.entry(op.f.clone()).or_default() += 1;
            match op.f.as_str() {
                "send" => {
                    assert!(KafkaGen::key_names(4).contains(op.key.as_ref().expect("keyed")));
                    assert!(msgs.insert(op.value.as_u64().expect("an integer")));
                }
                "poll" => {
                    assert_eq!(op.key, None);
                    let from = op.value.as_object().expect("a map");
                    assert!((1..=3).contains(&from.len()), "{from:?}");
                    assert!(from.values().all(|v| v == &json!(0)), "nothing polled yet");
                }
                // Nothing was polled, so there is nothing to commit.
                "commit_offsets" => assert_eq!(op.value, json!({})),
                "list_committed_offsets" => assert_eq!(op.value, json!(["k0", "k1", "k2", "k3"])),
                other => panic!("unexpected {other}"),
            }
        }
        let share = |f: &str| fs.get(f).copied().unwrap_or(0) as f64 / 4_000.0;
        assert!((share("send") - 0.5).abs() < 0.03, "{fs:?}");
        assert!((share("poll") - 0.35).abs() < 0.03, "{fs:?}");
        assert!((share("commit_offsets") - 0.1).abs() < 0.02, "{fs:?}");
    }

    #[test]
    fn polls_advance_the_positions_that_later_polls_and_commits_use() {
        let mut g = KafkaGen::new(7, 0, 3);
        let poll = KafkaGen::keyless("poll", json!({"k1": 0, "k2": 0}));
        g.observe(&poll, &ok(json!({"k1": [[0, 5], [3, 9]], "k2": []})));
        // A failed or malformed answer changes nothing.
        g.observe(
            &poll,
            &Completion {
                kind: EventType::Info,
                ..ok(json!({"k2": [[9, 1]]}))
            },
        );
        g.observe(&poll, &ok(json!({"k2": "garbage", "k9": [[1, 1]]})));
        assert_eq!(
            (g.position(0), g.position(1), g.position(2)),
            (Some(0), Some(4), Some(0))
        );
        // Positions never go back.
        g.observe(&poll, &ok(json!({"k1": [[1, 5]]})));
        assert_eq!(g.position(1), Some(4));
        let mut commits = 0;
        for _ in 0..2_000 {
            let op = g.next_op();
            match op.f.as_str() {
                "poll" => {
                    if let Some(from) = op.value.get("k1") {
                        assert_eq!(from, &json!(4));
                    }
                }
                "commit_offsets" => {
                    commits += 1;
                    assert_eq!(op.value, json!({"k1": 3}), "the highest offset read");
                }
                _ => {}
            }
        }
        assert!(commits > 100, "{commits}");
    }

    #[test]
    fn kinds_and_keys_follow_from_the_seed_whatever_was_observed() {
        let mut a = KafkaGen::new(11, 2, 5);
        let mut b = KafkaGen::new(11, 2, 5);
        let keys = |o: &Op| match o.f.as_str() {
            "poll" => o
                .value
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>()),
            _ => o.key.clone().map(|k| vec![k]),
        };
        for n in 0..2_000 {
            let (x, y) = (a.next_op(), b.next_op());
            assert_eq!((&x.f, keys(&x)), (&y.f, keys(&y)));
            if x.f == "send" {
                assert_eq!(x.value, y.value);
            }
            if y.f == "poll" {
                // Only b hears back; its positions (and so its commits) differ, its draws do not.
                let k = y.value.as_object().and_then(|m| m.keys().next().cloned());
                if let Some(k) = k {
                    b.observe(&y, &ok(json!({ k: [[n, n]] })));
                }
            }
        }
    }
}
