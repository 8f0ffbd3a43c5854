//! The counter checker: Jepsen's `counter` checker (jepsen.checker/counter, Kingsbury) over
//! histories of `incr` and `read` operations, key by key, generalised to increments of either
//! sign (a PN-counter's decrements are increments of negative amounts, as Maelstrom's
//! `pn-counter` workload makes them).
//!
//! Positions are positions in the history, so "before" is the order the harness observed. For
//! an `ok` read R of a key:
//!
//! - an increment **surely** took effect before R when it completed `ok` before R was invoked;
//! - an increment **may** have taken effect before R when it was invoked before R completed
//!   and did not `fail` (an `info` or unfinished increment may take effect at any time after
//!   its invocation, or never; an `ok` one concurrent with R may or may not be seen by it).
//!
//! R's value must lie between `lo`, the sum of the sure increments plus every negative one
//! that may have taken effect, and `hi`, the sum of the sure ones plus every positive one that
//! may have. With increments of positive amounts only, as the `counter` workload makes, that is:
//! at least what was surely added, at most what may have been. A **final read** (invoked after
//! every increment of its key completed) sees the sum of the acknowledged increments plus some
//! of the indeterminate ones. An absent counter reads as null, which counts as 0.
//!
//! Whatever R saw, it is the sum of some of the increments that may have taken effect, so it
//! lies between the sum of all their negative amounts and the sum of all their positive ones
//! (the **attempted** bounds, which contain `lo..=hi`). A value outside `lo..=hi` is an
//! anomaly of one of four kinds:
//!
//! - `lower-than-acknowledged`: below `lo` but within the attempted bounds: an acknowledged
//!   increment was lost, or is not yet visible to a read that began after it completed (or a
//!   decrement was counted twice);
//! - `higher-than-acknowledged`: above `hi` but within the attempted bounds, which only
//!   acknowledged decrements make possible: one of them was lost or is not yet visible;
//! - `higher-than-attempted`: above every sum of increments that may have taken effect: an
//!   increment counted twice, or one that failed;
//! - `lower-than-attempted`: below every such sum (a decrement counted twice, or one that
//!   failed).
//!
//! **Eventual mode** (`Options::eventual`, chosen when the system promises `no-lost-updates`
//! but not linearizability): a read during the run may come from a stale replica, which holds
//! some of the increments that may have taken effect but perhaps not the sure ones; so such a
//! read is judged against the attempted bounds only (a value inside them but outside
//! `lo..=hi` is counted as `stale`), and a final read against `lo..=hi`. The final reads of a
//! key that has local final reads (one per node, after recovery) are those alone.

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
    /// Eventual mode: reads during the run outside what surely took effect before them, but
    /// within what may have (stale replicas: allowed).
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
        "eventual mode (no-lost-updates): a final read that misses an acknowledged increment, \
         or any read that no combination of the attempted increments adds up to, is a \
         violation; a stale read during the run is not"
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
                "key {}: {} reads during the run missed increments surely done before them: \
                 stale replicas, allowed in eventual mode",
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
        let b = bounds.at(op.invoke, complete);
        if value >= b.lo && value <= b.hi {
            continue;
        }
        let attempted = value >= b.attempted_lo && value <= b.attempted_hi;
        if eventual && attempted && !is_final {
            k.stale += 1;
            continue;
        }
        k.out_of_bounds += 1;
        if found.len() < MAX_ANOMALIES_PER_KEY {
            found.push(out_of_bounds(
                history, paired, key, id, value, b, is_final, &incrs,
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

    /// The bounds of a read invoked at `invoke` and completed at `complete`.
    fn at(&self, invoke: usize, complete: usize) -> ReadBounds {
        let s = self.sure_at.partition_point(|&c| c < invoke);
        let m = self.may_at.partition_point(|&i| i < complete);
        let sure = self.sure_sum[s];
        ReadBounds {
            lo: sure + (self.may_neg[m] - self.sure_neg[s]),
            hi: sure + (self.may_pos[m] - self.sure_pos[s]),
            attempted_lo: self.may_neg[m],
            attempted_hi: self.may_pos[m],
            sure,
        }
    }
}

/// What one read may return (see the module documentation).
#[derive(Clone, Copy, Debug)]
struct ReadBounds {
    /// The least and greatest value given what surely took effect before the read.
    lo: i64,
    hi: i64,
    /// The least and greatest sum of any of the increments that may have taken effect.
    attempted_lo: i64,
    attempted_hi: i64,
    /// The sum of the increments that surely took effect before the read.
    sure: i64,
}

#[allow(clippy::too_many_arguments)]
fn out_of_bounds(
    history: &History,
    paired: &Paired,
    key: Option<&str>,
    read: usize,
    value: i64,
    b: ReadBounds,
    is_final: bool,
    incrs: &[Incr],
) -> Anomaly {
    let ReadBounds { lo, hi, .. } = b;
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
    // The sure increments of one sign, latest first: the ones the read should have seen.
    let mut list_sure = |positive: bool, sentences: &mut Vec<String>| {
        let mut sure: Vec<&Incr> = incrs
            .iter()
            .filter(|i| i.ok_at.is_some_and(|c| c < op.invoke) && (i.amount > 0) == positive)
            .collect();
        sure.sort_by_key(|i| std::cmp::Reverse(i.ok_at));
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
        (sure.len(), sure.iter().map(|i| i.amount).sum::<i64>())
    };
    let (kind, title) = if value > b.attempted_hi {
        sentences.push(format!(
            "Every increment that may have taken effect before the read completed adds up to \
             at most {}: the counter counted {} more than any client could have added.",
            b.attempted_hi,
            value - b.attempted_hi
        ));
        (
            "higher-than-attempted",
            format!(
                "Key {key_name}: a {which} of {value}, above the {} that may have been added",
                b.attempted_hi
            ),
        )
    } else if value < b.attempted_lo {
        sentences.push(format!(
            "Every decrement that may have taken effect before the read completed adds up to \
             {}: the counter went {} lower than any client could have taken it.",
            b.attempted_lo,
            b.attempted_lo - value
        ));
        (
            "lower-than-attempted",
            format!(
                "Key {key_name}: a {which} of {value}, below the {} that may have been taken \
                 away",
                b.attempted_lo
            ),
        )
    } else if value < lo {
        let at = sentences.len();
        let (n, _) = list_sure(true, &mut sentences);
        let intro = if lo == b.sure {
            format!(
                "{n} acknowledged increments, adding up to at least {lo}, completed before the \
                 read began; the latest:"
            )
        } else {
            format!(
                "{n} acknowledged increments completed before the read began (with the \
                 acknowledged decrements, they add up to {}), and the decrements that may have \
                 taken effect before it completed take {} away at most; the latest increments:",
                b.sure,
                b.sure - lo
            )
        };
        sentences.insert(at, intro);
        let twice = if b.attempted_lo < 0 {
            ", or a decrement took effect more than once"
        } else {
            ""
        };
        sentences.push(format!(
            "So at least {} of acknowledged increments are missing from what the read saw{twice}.",
            lo - value
        ));
        (
            "lower-than-acknowledged",
            format!("Key {key_name}: a {which} of {value}, below the {lo} surely added before it"),
        )
    } else {
        // Above `hi` yet within what was attempted: only sure decrements bring `hi` below the
        // attempted bound.
        let at = sentences.len();
        let (n, sum) = list_sure(false, &mut sentences);
        sentences.insert(
            at,
            format!(
                "{n} acknowledged decrements, adding up to {sum}, completed before the read \
                 began, so it must be at most {hi}; the latest:"
            ),
        );
        sentences.push(format!(
            "So at least {} of acknowledged decrements are missing from what the read saw.",
            value - hi
        ));
        (
            "higher-than-acknowledged",
            format!(
                "Key {key_name}: a {which} of {value}, above the {hi} left after the decrements \
                 acknowledged before it"
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
