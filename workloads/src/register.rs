//! Independent compare-and-set registers (Jepsen's `cas-register` workload over independent
//! keys): 40% reads, 40% writes, 20% cas. Every written value is unique across the run
//! ([`crate::unique_value`]), which lets the checker take its polynomial path for registers
//! with unique writes (Gibbons & Korach, 1997).

use crate::client::Completion;
use crate::registry::Workload;
use crate::rng::SplitMix64;
use crate::{unique_value, Generator, Op};
use history::EventType;
use serde_json::{json, Value};
use std::collections::VecDeque;

/// Values remembered per key as candidates for a cas's expected value.
const RECENT_PER_KEY: usize = 4;

const PURPOSE_REGISTER: u64 = 1;

pub static WORKLOAD: Workload = Workload {
    name: "register",
    about: "compare-and-set registers over --keys keys, unique written values, 40% reads, 40% \
            writes, 20% cas; checked for linearizability per key",
    generator: |run, worker| Box::new(RegisterGen::new(run.seed, worker, run.keys)),
    key_names: RegisterGen::key_names,
    final_reads: false,
    fixed_keys: true,
    checkers: &["linearizability", "siblings"],
    maelstrom_promises: &[],
};

/// The generator of one worker.
#[derive(Clone, Debug)]
pub struct RegisterGen {
    rng: SplitMix64,
    worker: u64,
    keys: usize,
    written: u64,
    /// Per key, values this worker recently wrote or read there (newest last).
    recent: Vec<VecDeque<Value>>,
    /// Whether a cas on a key it knows nothing of expects it absent (null), or a value nobody
    /// writes.
    cas_from_absent: bool,
}

/// What a cas expects of a key the worker knows nothing of when it may not expect absence: a
/// value no worker writes ([`unique_value`] starts at 1), so the cas fails.
pub const NEVER_WRITTEN: u64 = 0;

impl RegisterGen {
    /// Worker `worker`'s generator over keys "k0".."k{keys-1}" (at least one key).
    pub fn new(seed: u64, worker: u64, keys: usize) -> Self {
        RegisterGen::with_cas_from_absent(seed, worker, keys, true)
    }

    /// [`RegisterGen::new`], whose cas on a key the worker knows nothing of expects it absent
    /// (`[null, x]`) only when `cas_from_absent`; otherwise it expects [`NEVER_WRITTEN`].
    /// Maelstrom's lin-kv has no absent value to compare: a cas on a missing key fails
    /// (key-does-not-exist), where the register model would have it succeed.
    pub fn with_cas_from_absent(
        seed: u64,
        worker: u64,
        keys: usize,
        cas_from_absent: bool,
    ) -> Self {
        let keys = keys.max(1);
        RegisterGen {
            rng: SplitMix64::for_stream(seed, worker, PURPOSE_REGISTER),
            worker,
            keys,
            written: 0,
            recent: vec![VecDeque::new(); keys],
            cas_from_absent,
        }
    }

    /// The names of the register keys of a run with `keys` keys.
    pub fn key_names(keys: usize) -> Vec<String> {
        (0..keys.max(1)).map(|k| format!("k{k}")).collect()
    }

    fn fresh(&mut self) -> u64 {
        let v = unique_value(self.worker, self.written);
        self.written += 1;
        v
    }

    fn remember(&mut self, key: usize, v: Value) {
        let recent = &mut self.recent[key];
        if recent.contains(&v) {
            return;
        }
        if recent.len() == RECENT_PER_KEY {
            recent.pop_front();
        }
        recent.push_back(v);
    }
}

fn key_index(op: &Op) -> Option<usize> {
    op.key.as_deref()?.strip_prefix('k')?.parse().ok()
}

impl Generator for RegisterGen {
    fn next_op(&mut self) -> Op {
        // Three draws per operation, whatever it is, so that kinds and keys depend on the seed
        // alone (see the trait's documentation).
        let kind = self.rng.below(100);
        let key = self.rng.below(self.keys as u64) as usize;
        let pick = self.rng.next_u64();
        let name = format!("k{key}");
        if kind < 40 {
            Op::read(name)
        } else if kind < 80 {
            let v = self.fresh();
            self.remember(key, json!(v));
            Op {
                f: "write".to_owned(),
                key: Some(name),
                value: json!(v),
                local: false,
                context: None,
            }
        } else {
            let recent = &self.recent[key];
            // Nothing known yet: an absent register reads as null, so [null, x] can succeed.
            let from = if recent.is_empty() && self.cas_from_absent {
                Value::Null
            } else if recent.is_empty() {
                json!(NEVER_WRITTEN)
            } else {
                recent[(pick % recent.len() as u64) as usize].clone()
            };
            let to = self.fresh();
            Op {
                f: "cas".to_owned(),
                key: Some(name),
                value: json!([from, to]),
                local: false,
                context: None,
            }
        }
    }

    fn observe(&mut self, op: &Op, c: &Completion) {
        let Some(key) = key_index(op).filter(|&k| k < self.keys) else {
            return;
        };
        match (op.f.as_str(), c.kind) {
            ("read", EventType::Ok) if !c.value.is_null() => self.remember(key, c.value.clone()),
            ("cas", EventType::Ok) => {
                if let Some(to) = op.value.get(1) {
                    self.remember(key, to.clone());
                }
            }
            _ => {}
        }
    }
}
