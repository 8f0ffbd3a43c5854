//! The counter checker: Jepsen's `counter` checker (jepsen.checker/counter, Kingsbury) over
//! histories of `incr` and `read` operations, key by key.
//!
//! Positions are positions in the history, so "before" is the order the harness observed. For
//! an `ok` read R of a key:
//!
//! - an increment **surely** took effect before R when it completed `ok` before R was invoked;
//! - an increment **may** have taken effect before R when it was invoked before R completed
//!   and did not `fail` (an `info` or unfinished increment may take effect at any time after
//!   its invocation, or never).
//!
//! R's value must lie between the sum of the sure increments plus the negative parts of the
//! others that may have happened, and the sum of the sure ones plus their positive parts. With
//! increments of positive amounts, as the workload makes, that is: at least what was surely
//! added, at most what may have been. A **final read** (invoked after every increment of its
//! key completed) sees the sum of the acknowledged increments at least, and at most that plus
//! the indeterminate ones. A value outside its bounds is an anomaly: `lower-than-acknowledged`
//! (an acknowledged increment was lost, or not yet visible to a read that began after it
//! completed) or `higher-than-attempted` (an increment counted twice, or one that failed).
//! An absent counter reads as null, which counts as 0.
//!
//! **Eventual mode** (`Options::eventual`, chosen when the system promises `no-lost-updates`
//! but not linearizability): a read during the run may come from a stale replica, so only a
//! final read below the acknowledged sum is `lower-than-acknowledged` (the others are counted
//! as `stale`); `higher-than-attempted` is a violation for every read. The final reads of a key
//! that has local final reads (one per node, after recovery) are those alone.

use crate::registry::Checker;
use crate::result::{natural_key, secs, widen, Anomaly, CheckerResult, Judgement};
use crate::{CheckError, Options};
use history::{EventType, History, Paired};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;

/// Out-of-bounds reads described per key (the rest are counted).
pub const MAX_ANOMALIES_PER_KEY: usize = 20;
/// Sure increments named per anomaly (the latest before the read).
pub const MAX_INCREMENTS_LISTED: usize = 5;

/// One key's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterKey {
    pub key: Option<String>,
    pub verdict: Judgement,
    /// Increments by outcome.
    pub incr_ok: usize,
    pub incr_fail: usize,
    pub incr_info: usize,
    /// Sum of the acknowledged increments, and of every increment that did not fail.
    pub acknowledged_sum: i64,
    pub attempted_sum: i64,
    pub reads: usize,
    pub final_reads: usize,
    /// The values the final reads returned, in history order (up to 20).
    pub final_values: Vec<i64>,
    pub out_of_bounds: usize,
    /// Eventual mode: reads during the run below what was surely added (allowed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stale: usize,
    /// Reads whose value was not an integer (or null): ignored, and named here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The registry's counter checker.
pub struct CounterChecker;

impl Checker for CounterChecker {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn property(&self) -> &'static str {
        "linearizable"
    }

    fn about(&self) -> &'static str {
        "increments and reads of counters: every read lies between what was surely added and \
         what may have been"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        Ok(check_mode(history, paired, opts.eventual))
    }

    fn promised_by(&self, promises: &[String], opts: &mut Options) -> bool {
        crate::registry::promised_in_full_or_eventual(promises, opts)
    }
}

/// One increment: its amount and where it starts and (if it completed ok) ends.
struct Incr {
    amount: i64,
    invoke: usize,
    /// Completion position of an `ok` increment.
    ok_at: Option<usize>,
}

/// Checks every key's `incr` and `read` operations (other operations are ignored), in full.
pub fn check(history: &History, paired: &Paired) -> CheckerResult {
    check_mode(history, paired, false)
}

/// [`check`], in the eventual mode when `eventual` (see the module documentation).
pub fn check_mode(history: &History, paired: &Paired, eventual: bool) -> CheckerResult {
    let started = Instant::now();
    let mut by_key: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, op) in paired.ops.iter().enumerate() {
        if op.f == "incr" || op.f == "read" {
            by_key.entry(op.key.as_deref()).or_default().push(i);
        }
    }
    let mut keys = Vec::new();
    let mut anomalies = Vec::new();
    let mut summary = vec![if eventual {
        "eventual mode (no-lost-updates): a final read below the acknowledged increments, or \
         any read above the attempted ones, is a violation; a stale read during the run is not"
    } else {
        "linearizable mode: every read lies between what was surely added and what may have been"
    }
    .to_owned()];
    let mut groups: Vec<(Option<&str>, Vec<usize>)> = by_key.into_iter().collect();
    groups.sort_by_cached_key(|(k, _)| natural_key(&k.map(str::to_owned)));
    for (key, ids) in groups {
        let (k, found) = check_key(history, paired, key, &ids, eventual);
        if let Some(reason) = &k.reason {
            summary.push(format!("key {}: unknown: {reason}", key.unwrap_or("-")));
        }
        if k.out_of_bounds > 0 {
            summary.push(format!(
                "key {}: {} of {} reads out of bounds",
                key.unwrap_or("-"),
                k.out_of_bounds,
                k.reads
            ));
            summary.extend(
                found
                    .iter()
                    .take(3)
                    .filter_map(|a| a.sentences.first().cloned()),
            );
        }
        if k.stale > 0 {
            summary.push(format!(
                "key {}: {} reads during the run were below what was surely added: stale \
                 replicas, allowed in eventual mode",
                key.unwrap_or("-"),
                k.stale
            ));
        }
        anomalies.extend(found);
        keys.push(k);
    }
    let verdict = if keys.is_empty() {
        summary.push("no incr or read operation to check".into());
        Judgement::Unknown
    } else {
        Judgement::worst(keys.iter().map(|k| k.verdict))
    };
    CheckerResult {
        checker: "counter".into(),
        verdict,
        promised: true,
        summary,
        anomalies,
        elapsed_us: started.elapsed().as_micros() as u64,
        detail: serde_json::json!({ "keys": keys }),
    }
}

fn check_key(
    history: &History,
    paired: &Paired,
    key: Option<&str>,
    ids: &[usize],
    eventual: bool,
) -> (CounterKey, Vec<Anomaly>) {
    let mut k = CounterKey {
        key: key.map(str::to_owned),
        ..CounterKey::default()
    };
    let mut incrs: Vec<Incr> = Vec::new();
    let mut reads: Vec<usize> = Vec::new();
    let mut last_incr_end = 0usize;
    for &id in ids {
        let op = &paired.ops[id];
        if op.f == "incr" {
            let Some(amount) = op.input.as_i64() else {
                k.notes.push(format!(
                    "the incr at line {} has a value that is not an integer; ignored",
                    line(history, op.invoke)
                ));
                continue;
            };
            match op.kind {
                EventType::Fail => {
                    k.incr_fail += 1;
                    continue;
                }
                EventType::Ok => k.incr_ok += 1,
                _ => k.incr_info += 1,
            }
            // An increment that never completes bounds nothing after it.
            last_incr_end = last_incr_end.max(op.complete.unwrap_or(usize::MAX));
            incrs.push(Incr {
                amount,
                invoke: op.invoke,
                ok_at: op.complete.filter(|_| op.kind == EventType::Ok),
            });
        } else if op.kind == EventType::Ok && op.complete.is_some() {
            reads.push(id);
        }
    }
    k.acknowledged_sum = incrs
        .iter()
        .filter(|i| i.ok_at.is_some())
        .map(|i| i.amount)
        .sum();
    k.attempted_sum = incrs.iter().map(|i| i.amount).sum();
    let bounds = Bounds::new(&incrs);
    let local = |id: usize| history.events[paired.ops[id].invoke].local;
    let only_local = eventual && reads.iter().any(|&id| local(id));
    let mut found = Vec::new();
    for id in reads {
        let op = &paired.ops[id];
        let complete = op.complete.expect("reads kept above completed");
        let value = match &op.output {
            Value::Null => 0,
            v => match v.as_i64() {
                Some(n) => n,
                None => {
                    if k.notes.len() < 3 {
                        k.notes.push(format!(
                            "the read at line {} returned {}, not an integer; ignored",
                            line(history, complete),
                            v
                        ));
                    }
                    continue;
                }
            },
        };
        k.reads += 1;
        let is_final = op.invoke > last_incr_end && (local(id) || !only_local);
        if is_final {
            k.final_reads += 1;
            if k.final_values.len() < 20 {
                k.final_values.push(value);
            }
        }
        let (lo, hi) = bounds.at(op.invoke, complete);
        if value >= lo && value <= hi {
            continue;
        }
        if eventual && value < lo && !is_final {
            k.stale += 1;
            continue;
        }
        k.out_of_bounds += 1;
        if found.len() < MAX_ANOMALIES_PER_KEY {
            found.push(out_of_bounds(
                history,
                paired,
                key,
                id,
                value,
                (lo, hi),
                is_final,
                &incrs,
            ));
        }
    }
    if k.out_of_bounds > 0 {
        k.verdict = Judgement::Invalid;
    } else if k.final_reads == 0 && !incrs.is_empty() {
        k.verdict = Judgement::Unknown;
        k.reason =
            Some("no final read: no ok read began after the last increment completed".into());
    }
    (k, found)
}

/// Prefix sums that give any read's bounds in O(log n).
struct Bounds {
    /// Completion positions of ok increments, sorted, with the running sum of their amounts.
    sure_at: Vec<usize>,
    sure_sum: Vec<i64>,
    sure_pos: Vec<i64>,
    sure_neg: Vec<i64>,
    /// Invocation positions of increments that did not fail, sorted, with running sums of
    /// their positive and negative parts.
    may_at: Vec<usize>,
    may_pos: Vec<i64>,
    may_neg: Vec<i64>,
}

impl Bounds {
    fn new(incrs: &[Incr]) -> Bounds {
        let mut sure: Vec<(usize, i64)> = incrs
            .iter()
            .filter_map(|i| i.ok_at.map(|c| (c, i.amount)))
            .collect();
        sure.sort_unstable();
        let mut may: Vec<(usize, i64)> = incrs.iter().map(|i| (i.invoke, i.amount)).collect();
        may.sort_unstable();
        let running = |v: &[(usize, i64)], f: fn(i64) -> i64| {
            let mut acc = 0i64;
            std::iter::once(0)
                .chain(v.iter().map(|&(_, a)| {
                    acc = acc.saturating_add(f(a));
                    acc
                }))
                .collect::<Vec<i64>>()
        };
        Bounds {
            sure_at: sure.iter().map(|s| s.0).collect(),
            sure_sum: running(&sure, |a| a),
            sure_pos: running(&sure, |a| a.max(0)),
            sure_neg: running(&sure, |a| a.min(0)),
            may_at: may.iter().map(|m| m.0).collect(),
            may_pos: running(&may, |a| a.max(0)),
            may_neg: running(&may, |a| a.min(0)),
        }
    }

    /// The least and greatest value a read invoked at `invoke` and completed at `complete`
    /// may return.
    fn at(&self, invoke: usize, complete: usize) -> (i64, i64) {
        let s = self.sure_at.partition_point(|&c| c < invoke);
        let m = self.may_at.partition_point(|&i| i < complete);
        let sure = self.sure_sum[s];
        (
            sure + (self.may_neg[m] - self.sure_neg[s]),
            sure + (self.may_pos[m] - self.sure_pos[s]),
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn out_of_bounds(
    history: &History,
    paired: &Paired,
    key: Option<&str>,
    read: usize,
    value: i64,
    (lo, hi): (i64, i64),
    is_final: bool,
    incrs: &[Incr],
) -> Anomaly {
    let op = &paired.ops[read];
    let complete = op.complete.expect("only completed reads are checked");
    let (inv, comp) = (&history.events[op.invoke], &history.events[complete]);
    let key_name = key.unwrap_or("-");
    let which = if is_final { "final read" } else { "read" };
    let from = op
        .node
        .as_deref()
        .map(|n| format!(" from {n}"))
        .unwrap_or_default();
    let mut span_ns = None;
    widen(&mut span_ns, inv.time, comp.time);
    let mut ops = vec![inv.index];
    let mut sentences = vec![format!(
        "The {which} of {key_name}{from} by process {} (invoked at {}, completed at {}, lines \
         {}–{}) returned {value}, but it must lie between {lo} and {hi}.",
        op.process,
        secs(inv.time),
        secs(comp.time),
        line(history, op.invoke),
        line(history, complete),
    )];
    let (kind, title) = if value < lo {
        // The sure increments, latest first: the ones the read should have seen.
        let mut sure: Vec<&Incr> = incrs
            .iter()
            .filter(|i| i.ok_at.is_some_and(|c| c < op.invoke))
            .collect();
        sure.sort_by_key(|i| std::cmp::Reverse(i.ok_at));
        sentences.push(format!(
            "{} acknowledged increments, adding up to at least {lo}, completed before the read \
             began; the latest:",
            sure.len()
        ));
        for i in sure.iter().take(MAX_INCREMENTS_LISTED) {
            let e = &history.events[i.invoke];
            let done = &history.events[i.ok_at.expect("sure increments completed ok")];
            ops.push(e.index);
            widen(&mut span_ns, e.time, done.time);
            sentences.push(format!(
                "  - incr {} by process {} (line {}), ok at {}",
                i.amount,
                e.process,
                line(history, i.invoke),
                secs(done.time)
            ));
        }
        sentences.push(format!(
            "So at least {} of acknowledged increments are missing from what the read saw.",
            lo - value
        ));
        (
            "lower-than-acknowledged",
            format!("Key {key_name}: a {which} of {value}, below the {lo} surely added before it"),
        )
    } else {
        sentences.push(format!(
            "Every increment that may have taken effect before the read completed adds up to \
             at most {hi}: the counter counted {} more than any client could have added.",
            value - hi
        ));
        (
            "higher-than-attempted",
            format!(
                "Key {key_name}: a {which} of {value}, above the {hi} that may have been added"
            ),
        )
    };
    Anomaly {
        kind: kind.into(),
        key: key.map(str::to_owned),
        title,
        sentences,
        ops,
        cycle: Vec::new(),
        span_ns,
    }
}

fn line(history: &History, pos: usize) -> usize {
    history.lines.get(pos).copied().unwrap_or(pos + 1)
}
