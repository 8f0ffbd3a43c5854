//! The unique-ids checker: Maelstrom's `unique-ids` workload (jepsen-io/maelstrom,
//! doc/workloads.md; Jepsen's `checker/unique-ids`, Kingsbury): every `generate` that completed
//! `ok` must have returned an id no other `ok` generate returned, whatever node answered and
//! whatever faults were going on. An id is any JSON value; two ids are the same when their JSON
//! is (`1` and `"1"` differ).
//!
//! Anomalies:
//!
//! - **duplicate-id**: two or more `ok` generates returned the same id; the anomaly names every
//!   one of them (up to [`MAX_OPS_LISTED`]), in the order they completed.
//! - **missing-id**: an `ok` generate returned null: no id at all.
//!
//! A generate that completed `info` (or never completed) may have made an id that nobody saw;
//! such ids cannot be checked, so these operations are only counted, as are `fail` ones.

use crate::registry::Checker;
use crate::result::{brief, line, secs, widen, Anomaly, CheckerResult, Judgement};
use crate::{CheckError, Options};
use history::{EventType, History, Paired};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Instant;

/// Anomalies described (the rest are counted).
pub const MAX_ANOMALIES: usize = 20;
/// Operations named per duplicated id.
pub const MAX_OPS_LISTED: usize = 10;

/// The figures of a check, its `detail`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueIdsDetail {
    /// Generates invoked, and how they completed (unfinished ones count as info).
    pub attempted: usize,
    pub acknowledged: usize,
    pub failed: usize,
    pub indeterminate: usize,
    /// Distinct ids returned by ok generates.
    pub distinct: usize,
    /// Ids returned by more than one ok generate.
    pub duplicated: usize,
    /// Ok generates that returned null.
    pub missing: usize,
    /// The duplicated ids with how many times each was returned (up to [`MAX_ANOMALIES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<(Value, usize)>,
}

/// The registry's unique-ids checker.
pub struct UniqueIds;

impl Checker for UniqueIds {
    fn name(&self) -> &'static str {
        "unique-ids"
    }

    fn property(&self) -> &'static str {
        "unique-ids"
    }

    fn about(&self) -> &'static str {
        "Maelstrom's unique-ids: every acknowledged generate returned an id no other one did"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        _opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        Ok(check(history, paired))
    }
}

/// Checks every `generate` operation (others are ignored).
pub fn check(history: &History, paired: &Paired) -> CheckerResult {
    let started = Instant::now();
    let mut d = UniqueIdsDetail::default();
    // Each id's ok generates, by the JSON text of the id.
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    let mut missing = Vec::new();
    for (i, op) in paired.ops.iter().enumerate() {
        if op.f != "generate" {
            continue;
        }
        d.attempted += 1;
        match op.kind {
            EventType::Ok if op.complete.is_some() => {
                d.acknowledged += 1;
                if op.output.is_null() {
                    missing.push(i);
                } else {
                    by_id.entry(op.output.to_string()).or_default().push(i);
                }
            }
            EventType::Fail => d.failed += 1,
            _ => d.indeterminate += 1,
        }
    }
    d.distinct = by_id.len();
    d.missing = missing.len();
    let mut dups: Vec<Vec<usize>> = by_id.into_values().filter(|v| v.len() > 1).collect();
    d.duplicated = dups.len();
    // In the order the second of each was acknowledged: the moment the duplicate appeared.
    let complete = |i: usize| paired.ops[i].complete.unwrap_or(usize::MAX);
    for ops in &mut dups {
        ops.sort_by_key(|&i| complete(i));
    }
    dups.sort_by_key(|ops| complete(ops[1]));
    let mut anomalies = Vec::new();
    for ops in dups.iter().take(MAX_ANOMALIES) {
        d.duplicates
            .push((paired.ops[ops[0]].output.clone(), ops.len()));
        anomalies.push(duplicate(history, paired, ops));
    }
    for &i in missing
        .iter()
        .take(MAX_ANOMALIES.saturating_sub(anomalies.len()))
    {
        anomalies.push(missing_id(history, paired, i));
    }

    let mut summary = Vec::new();
    if d.duplicated > 0 {
        summary.push(format!(
            "{} ids were each returned by more than one acknowledged generate (of {} \
             acknowledged)",
            d.duplicated, d.acknowledged
        ));
        summary.extend(anomalies.iter().take(3).map(|a| a.title.clone()));
    }
    if d.missing > 0 {
        summary.push(format!(
            "{} acknowledged generates returned no id (null)",
            d.missing
        ));
    }
    if d.indeterminate > 0 {
        summary.push(format!(
            "{} generates ended indeterminate (info): whatever ids they made were never seen, \
             so they cannot be checked",
            d.indeterminate
        ));
    }
    let verdict = if !anomalies.is_empty() {
        Judgement::Invalid
    } else if d.acknowledged == 0 {
        summary.push("no acknowledged generate to check".into());
        Judgement::Unknown
    } else {
        summary.insert(
            0,
            format!(
                "all {} acknowledged generates returned distinct ids",
                d.acknowledged
            ),
        );
        Judgement::Valid
    };
    CheckerResult {
        checker: "unique-ids".into(),
        verdict,
        promised: true,
        summary,
        anomalies,
        elapsed_us: started.elapsed().as_micros() as u64,
        detail: serde_json::to_value(&d).unwrap_or_default(),
    }
}

/// "process 3 via n1 (invoked at 1.20 s, ok at 1.31 s, lines 7–9)".
fn describe(history: &History, paired: &Paired, i: usize, span: &mut Option<[u64; 2]>) -> String {
    let op = &paired.ops[i];
    let inv = &history.events[op.invoke];
    let via = op.node.as_deref().unwrap_or("an unnamed node");
    match op.complete {
        Some(c) => {
            let done = &history.events[c];
            widen(span, inv.time, done.time);
            format!(
                "process {} via {via} (invoked at {}, {} at {}, lines {}–{})",
                op.process,
                secs(inv.time),
                op.kind,
                secs(done.time),
                line(history, op.invoke),
                line(history, c)
            )
        }
        None => {
            widen(span, inv.time, inv.time);
            format!(
                "process {} via {via} (invoked at {}, line {}, never completed)",
                op.process,
                secs(inv.time),
                line(history, op.invoke)
            )
        }
    }
}

fn duplicate(history: &History, paired: &Paired, ops: &[usize]) -> Anomaly {
    let id = &paired.ops[ops[0]].output;
    let mut span_ns = None;
    let mut sentences = vec![format!(
        "{} acknowledged generates returned the id {}:",
        ops.len(),
        brief(id)
    )];
    for &i in ops.iter().take(MAX_OPS_LISTED) {
        sentences.push(format!(
            "  - the generate by {}",
            describe(history, paired, i, &mut span_ns)
        ));
    }
    if ops.len() > MAX_OPS_LISTED {
        sentences.push(format!("  - and {} more", ops.len() - MAX_OPS_LISTED));
    }
    sentences.push(
        "Each id must be unique across the cluster, whichever node made it: the later \
         generates handed out an id already given."
            .into(),
    );
    Anomaly {
        kind: "duplicate-id".into(),
        key: None,
        title: format!(
            "The id {} was returned by {} acknowledged generates",
            brief(id),
            ops.len()
        ),
        sentences,
        ops: ops
            .iter()
            .take(MAX_OPS_LISTED)
            .map(|&i| history.events[paired.ops[i].invoke].index)
            .collect(),
        cycle: Vec::new(),
        span_ns,
    }
}

fn missing_id(history: &History, paired: &Paired, i: usize) -> Anomaly {
    let mut span_ns = None;
    let who = describe(history, paired, i, &mut span_ns);
    Anomaly {
        kind: "missing-id".into(),
        key: None,
        title: "An acknowledged generate returned no id".into(),
        sentences: vec![format!(
            "The generate by {who} completed ok but returned null instead of an id."
        )],
        ops: vec![history.events[paired.ops[i].invoke].index],
        cycle: Vec::new(),
        span_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Builder, Ev};
    use serde_json::json;

    fn run(b: &Builder) -> CheckerResult {
        b.check_with("unique-ids")
    }

    fn generate(b: &mut Builder, p: u64, node: &str, ev: Ev) -> u64 {
        b.keyless(p, node, "generate", Value::Null, ev)
    }

    #[test]
    fn distinct_ids_of_any_json_type_pass() {
        let mut b = Builder::new();
        generate(&mut b, 0, "n1", Ev::ok_value(json!("n1-0")));
        generate(&mut b, 1, "n2", Ev::ok_value(json!("n2-0")));
        generate(&mut b, 2, "n3", Ev::ok_value(json!(1)));
        generate(&mut b, 3, "n3", Ev::ok_value(json!("1"))); // a string, not the number 1
        generate(&mut b, 4, "n1", Ev::ok_value(json!([1, 2])));
        generate(&mut b, 5, "n1", Ev::info());
        generate(&mut b, 6, "n1", Ev::fail());
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.anomalies);
        assert_eq!(r.detail["distinct"], json!(5));
        assert_eq!(r.detail["indeterminate"], json!(1));
        assert!(
            r.summary
                .iter()
                .any(|s| s.contains("1 generates ended indeterminate")),
            "{:?}",
            r.summary
        );
    }

    #[test]
    fn an_id_handed_out_twice_is_rejected_naming_both_generates() {
        let mut b = Builder::new();
        let first = generate(&mut b, 0, "n1", Ev::ok_value(json!(7)));
        generate(&mut b, 1, "n2", Ev::ok_value(json!(8)));
        let second = generate(&mut b, 2, "n2", Ev::ok_value(json!(7)));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        assert_eq!(r.anomalies.len(), 1);
        let a = &r.anomalies[0];
        assert_eq!(a.kind, "duplicate-id");
        assert_eq!(a.ops, vec![first, second]);
        assert_eq!(a.span_ns, Some([0, 5_000_000]));
        assert!(
            a.title.contains("The id 7 was returned by 2"),
            "{}",
            a.title
        );
        assert!(
            a.sentences[1].contains("process 0 via n1"),
            "{:?}",
            a.sentences
        );
        assert!(
            a.sentences[2].contains("process 2 via n2"),
            "{:?}",
            a.sentences
        );
        assert_eq!(r.detail["duplicates"], json!([[7, 2]]));
    }

    #[test]
    fn an_indeterminate_generate_is_never_a_duplicate_and_null_is_no_id() {
        let mut b = Builder::new();
        generate(&mut b, 0, "n1", Ev::ok_value(json!(7)));
        // An info generate's value is its invocation's (null): not an id it returned.
        generate(&mut b, 1, "n1", Ev::info());
        generate(&mut b, 2, "n1", Ev::info());
        assert_eq!(run(&b).verdict, Judgement::Valid);
        generate(&mut b, 3, "n2", Ev::ok_value(Value::Null));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        assert_eq!(r.anomalies[0].kind, "missing-id");
    }

    #[test]
    fn concurrent_generates_may_not_share_an_id_either() {
        let mut b = Builder::new();
        let a = b.invoke(0, "n1", "generate", None, Value::Null);
        let c = b.invoke(1, "n2", "generate", None, Value::Null);
        b.invoke(2, "n3", "generate", None, Value::Null); // never completes
        b.complete(c, Ev::ok_value(json!("x")));
        b.complete(a, Ev::ok_value(json!("x")));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        // In the order they were acknowledged.
        assert_eq!(r.anomalies[0].ops, vec![c, a]);
        assert_eq!(r.detail["indeterminate"], json!(1));
    }

    #[test]
    fn nothing_acknowledged_is_unknown() {
        let mut b = Builder::new();
        generate(&mut b, 0, "n1", Ev::info());
        assert_eq!(run(&b).verdict, Judgement::Unknown);
    }
}
