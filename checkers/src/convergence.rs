//! The convergence checker: after the faults heal and the clients stop, every replica of a key
//! holds the same value, and only a value the writes produced (eventual consistency, as
//! DeCandia et al. define it for Dynamo, SOSP 2007: "all updates reach all replicas
//! eventually").
//!
//! It judges the final reads marked `local` (shared/DESIGN.md section 3: each node's own
//! replica, without coordination), the last `ok` one per node and key:
//!
//! - **diverged**: two nodes' values differ. A register's sibling list compares as a sorted
//!   multiset (the order a node lists its siblings in is its own business), a set's elements
//!   as a set, a counter as its integer (null: 0).
//! - **not-produced**: a value no write could have produced: a register value (or sibling) no
//!   `write` or `cas` was invoked with, a set element no `add` attempted, a counter outside
//!   the sums of the increments that did not fail (`[0, sum]` for positive increments).
//!
//! A key that was written to but has no local final read is `Unknown`, with the reason. The
//! kind of a key is inferred from the operations on it: `add` makes a set, `incr` a counter,
//! `write` or `cas` a register; a key only ever read is compared as it reads. The checker
//! judges the history of any workload ([`Checker::every_workload`]): when the system promises
//! `convergent`, it runs beside the workload's own checkers.

use crate::registry::Checker;
use crate::result::{natural_key, widen, Anomaly, CheckerResult, Judgement};
use crate::{CheckError, Options};
use history::{EventType, History, Op, Paired};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

/// What a key holds, inferred from the operations on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Register,
    Set,
    Counter,
    /// Only ever read: compared as it reads, nothing to say what it may hold.
    Unknown,
}

impl KeyKind {
    /// The kind of a key whose operations are `ops`.
    pub fn infer<'a>(ops: impl IntoIterator<Item = &'a Op>) -> KeyKind {
        let mut kind = KeyKind::Unknown;
        for op in ops {
            match op.f.as_str() {
                "add" => return KeyKind::Set,
                "incr" => return KeyKind::Counter,
                "write" | "cas" => kind = KeyKind::Register,
                _ => {}
            }
        }
        kind
    }
}

/// A register read's versions: a scalar is one version, null none, a sibling list each of its
/// non-null elements.
pub fn versions(value: &Value, siblings: bool) -> Vec<Value> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) if siblings => items.iter().filter(|v| !v.is_null()).cloned().collect(),
        v => vec![v.clone()],
    }
}

/// The value a register write or cas puts: a write's argument, a cas's new value.
pub fn written(op: &Op) -> Option<&Value> {
    match op.f.as_str() {
        "write" => Some(&op.input),
        "cas" => op.input.get(1),
        _ => None,
    }
}

/// One node's last local final read of a key.
#[derive(Clone, Debug, Serialize)]
pub struct NodeValue {
    pub node: String,
    /// History index of the read's invocation.
    pub read: u64,
    pub value: Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub siblings: bool,
}

/// One key's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ConvergenceKey {
    pub key: String,
    pub kind: KeyKind,
    pub verdict: Judgement,
    pub nodes: Vec<NodeValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The registry's convergence checker.
pub struct Convergence;

impl Checker for Convergence {
    fn name(&self) -> &'static str {
        "convergence"
    }

    fn property(&self) -> &'static str {
        "convergent"
    }

    fn about(&self) -> &'static str {
        "every node's own replica of a key reads the same after recovery, and only what writes \
         produced (local final reads, any workload)"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        _opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        Ok(check(history, paired))
    }

    fn every_workload(&self) -> bool {
        true
    }
}

/// Checks the local final reads of every key.
pub fn check(history: &History, paired: &Paired) -> CheckerResult {
    let started = Instant::now();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &paired.ops {
        if let Some(k) = op.key.as_deref() {
            by_key.entry(k).or_default().push(op);
        }
    }
    let mut groups: Vec<(&str, Vec<&Op>)> = by_key.into_iter().collect();
    groups.sort_by_cached_key(|(k, _)| natural_key(&Some((*k).to_owned())));
    let mut keys = Vec::new();
    let mut anomalies = Vec::new();
    let mut summary = Vec::new();
    for (key, ops) in groups {
        let (k, found) = check_key(history, key, &ops);
        match (&k.reason, found.is_empty()) {
            (Some(reason), _) => summary.push(format!("key {key}: unknown: {reason}")),
            (None, false) => summary.extend(found.iter().map(|a| a.title.clone())),
            (None, true) => {}
        }
        anomalies.extend(found);
        if k.verdict != Judgement::Valid || !k.nodes.is_empty() {
            keys.push(k);
        }
    }
    let verdict = if keys.is_empty() {
        summary.push("no local final read and no write: nothing to compare".into());
        Judgement::Unknown
    } else {
        Judgement::worst(keys.iter().map(|k| k.verdict))
    };
    if verdict == Judgement::Valid {
        summary.push(format!(
            "{} key{}: every node's replica read the same, and only what writes produced",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        ));
    }
    CheckerResult {
        checker: "convergence".into(),
        verdict,
        promised: true,
        summary,
        anomalies,
        elapsed_us: started.elapsed().as_micros() as u64,
        detail: serde_json::json!({ "keys": keys }),
    }
}

/// A read's value in a form that compares as the key's kind says, and as people read it.
struct Canon {
    /// Sorted JSON texts: a register's versions (a multiset), a set's elements (deduplicated),
    /// a counter's integer.
    items: Vec<String>,
    shown: String,
}

fn canon(kind: KeyKind, value: &Value, siblings: bool) -> Canon {
    let texts = |vs: &[Value]| {
        let mut t: Vec<String> = vs.iter().map(Value::to_string).collect();
        t.sort_unstable();
        t
    };
    match kind {
        KeyKind::Register | KeyKind::Unknown => {
            let vs = versions(value, siblings);
            let items = texts(&vs);
            let shown = if siblings {
                format!("siblings [{}]", items.join(", "))
            } else {
                value.to_string()
            };
            Canon { items, shown }
        }
        KeyKind::Set => {
            let elems: &[Value] = match value {
                Value::Array(a) => a,
                _ => std::slice::from_ref(value),
            };
            let mut items = texts(elems);
            items.retain(|t| t != "null");
            items.dedup();
            let shown = format!("{{{}}}", items.join(", "));
            Canon { items, shown }
        }
        KeyKind::Counter => {
            let text = match value {
                Value::Null => "0".to_owned(),
                v => v.to_string(),
            };
            Canon {
                items: vec![text.clone()],
                shown: text,
            }
        }
    }
}

fn check_key(history: &History, key: &str, ops: &[&Op]) -> (ConvergenceKey, Vec<Anomaly>) {
    let kind = KeyKind::infer(ops.iter().copied());
    let wrote = ops
        .iter()
        .any(|o| matches!(o.f.as_str(), "write" | "cas" | "add" | "incr"));
    // The last ok local read per node, by completion.
    let mut last: BTreeMap<String, &Op> = BTreeMap::new();
    for &op in ops {
        let Some(c) = op.complete else { continue };
        if op.f != "read" || op.kind != EventType::Ok || !history.events[op.invoke].local {
            continue;
        }
        let node = op.node.clone().unwrap_or_else(|| "-".to_owned());
        if last.get(&node).is_none_or(|o| o.complete < Some(c)) {
            last.insert(node, op);
        }
    }
    let mut k = ConvergenceKey {
        key: key.to_owned(),
        kind,
        verdict: Judgement::Valid,
        nodes: Vec::new(),
        reason: None,
    };
    if last.is_empty() {
        if wrote {
            k.verdict = Judgement::Unknown;
            k.reason = Some(
                "no local final read: no node answered a read of its own replica of this key"
                    .into(),
            );
        }
        return (k, Vec::new());
    }
    let mut reads: Vec<(String, &Op, bool, Canon)> = Vec::new();
    for (node, op) in last {
        let siblings = op.complete.is_some_and(|c| history.events[c].siblings);
        let c = canon(kind, &op.output, siblings);
        k.nodes.push(NodeValue {
            node: node.clone(),
            read: history.events[op.invoke].index,
            value: op.output.clone(),
            siblings,
        });
        reads.push((node, op, siblings, c));
    }
    let mut found = Vec::new();
    if reads.windows(2).any(|w| w[0].3.items != w[1].3.items) {
        let mut a = anomaly(history, "diverged", key, reads.iter().map(|r| r.1));
        a.title = format!(
            "Key {key}: the nodes' own replicas still differ after recovery ({} nodes read)",
            reads.len()
        );
        a.sentences.push(format!(
            "After every fault healed and the clients stopped, each node's own replica of {key} \
             was read, and they do not agree:"
        ));
        for (node, op, _, c) in &reads {
            a.sentences.push(format!(
                "  - {node} (read {}): {}",
                history.events[op.invoke].index, c.shown
            ));
        }
        a.sentences.push(
            "A convergent store brings every replica to the same value once updates stop.".into(),
        );
        found.push(a);
    }
    let produced = Produced::of(kind, ops);
    for (node, op, _, c) in &reads {
        let Some(why) = produced.refuses(kind, &op.output, c) else {
            continue;
        };
        let mut a = anomaly(history, "not-produced", key, std::iter::once(*op));
        let at = history.events[op.invoke].index;
        a.title = format!("Key {key}: {node}'s replica holds what no write produced");
        a.sentences.push(format!(
            "The local final read {at} of {key} at {node} returned {}, but {why}.",
            c.shown
        ));
        found.push(a);
    }
    if !found.is_empty() {
        k.verdict = Judgement::Invalid;
    }
    (k, found)
}

/// What the writes of a key could have produced.
struct Produced {
    /// JSON texts of the values written (register) or attempted (set).
    values: HashSet<String>,
    /// Counter: the sums of the negative and positive parts of the increments that did not
    /// fail.
    low: i64,
    high: i64,
}

impl Produced {
    fn of(kind: KeyKind, ops: &[&Op]) -> Produced {
        let mut p = Produced {
            values: HashSet::new(),
            low: 0,
            high: 0,
        };
        for op in ops {
            match (kind, op.f.as_str()) {
                (KeyKind::Register, _) => {
                    if let Some(v) = written(op) {
                        p.values.insert(v.to_string());
                    }
                }
                (KeyKind::Set, "add") => {
                    p.values.insert(op.input.to_string());
                }
                (KeyKind::Counter, "incr") if op.kind != EventType::Fail => {
                    let n = op.input.as_i64().unwrap_or(0);
                    p.low = p.low.saturating_add(n.min(0));
                    p.high = p.high.saturating_add(n.max(0));
                }
                _ => {}
            }
        }
        p
    }

    /// Why `value` could not have been produced, if it could not.
    fn refuses(&self, kind: KeyKind, value: &Value, c: &Canon) -> Option<String> {
        let missing: Vec<&String> = c
            .items
            .iter()
            .filter(|t| !self.values.contains(*t))
            .collect();
        let list = |m: &[&String]| m.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        match kind {
            KeyKind::Unknown => None,
            KeyKind::Register if !missing.is_empty() => Some(format!(
                "no write of this key was invoked with {}",
                list(&missing)
            )),
            KeyKind::Set if !missing.is_empty() => Some(format!(
                "no add of this key attempted {} {}",
                if missing.len() == 1 {
                    "element"
                } else {
                    "elements"
                },
                list(&missing)
            )),
            KeyKind::Counter => {
                let n = match value {
                    Value::Null => 0,
                    v => match v.as_i64() {
                        Some(n) => n,
                        None => return Some("that is not an integer".into()),
                    },
                };
                (n < self.low || n > self.high).then(|| {
                    format!(
                        "the increments that did not fail add up to between {} and {}",
                        self.low, self.high
                    )
                })
            }
            _ => None,
        }
    }
}

/// An anomaly of `kind` on `key` over the operations `ops`, without title or sentences yet
/// (the siblings checker's too).
pub(crate) fn anomaly<'a>(
    history: &History,
    kind: &str,
    key: &str,
    ops: impl IntoIterator<Item = &'a Op>,
) -> Anomaly {
    let mut a = Anomaly {
        kind: kind.into(),
        key: Some(key.to_owned()),
        ..Anomaly::default()
    };
    for op in ops {
        let inv = &history.events[op.invoke];
        let end = op.complete.map_or(inv.time, |c| history.events[c].time);
        a.ops.push(inv.index);
        widen(&mut a.span_ns, inv.time, end);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Builder, Ev};
    use serde_json::json;

    fn run(b: Builder) -> CheckerResult {
        let h = b.history();
        let p = history::pair(&h).expect("pairs");
        check(&h, &p)
    }

    fn kinds(r: &CheckerResult) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn equal_replicas_of_written_values_pass() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok());
        b.op(2, "write", "k", json!(2), Ev::ok());
        b.local_read("n1", "k", json!([2, 1]), true);
        b.local_read("n2", "k", json!([1, 2]), true);
        b.op(3, "add", "s", json!(7), Ev::ok());
        b.local_read("n1", "s", json!([7]), false);
        b.local_read("n2", "s", json!([7, 7]), false);
        b.op(4, "incr", "c", json!(3), Ev::ok());
        b.op(5, "incr", "c", json!(2), Ev::info());
        b.local_read("n1", "c", json!(5), false);
        b.local_read("n2", "c", json!(5), false);
        let r = run(b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.summary);
    }

    #[test]
    fn the_last_local_read_per_node_counts() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok());
        b.op(2, "write", "k", json!(2), Ev::ok());
        b.local_read("n1", "k", json!(1), false);
        b.local_read("n1", "k", json!(2), false);
        b.local_read("n2", "k", json!(2), false);
        // An ordinary read is no replica's reading.
        b.op(9, "read", "k", json!(null), Ev::ok_value(json!(1)));
        assert_eq!(run(b).verdict, Judgement::Valid);
    }

    #[test]
    fn different_replicas_diverged() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok());
        b.op(2, "write", "k", json!(2), Ev::ok());
        b.local_read("n1", "k", json!(1), false);
        b.local_read("n2", "k", json!([1, 2]), true);
        let r = run(b);
        assert_eq!(r.verdict, Judgement::Invalid);
        assert_eq!(kinds(&r), ["diverged"]);
        let text = r.anomalies[0].sentences.join("\n");
        assert!(text.contains("n1") && text.contains("n2"), "{text}");
        assert!(text.contains("siblings [1, 2]"), "{text}");
        assert_eq!(r.anomalies[0].ops.len(), 2);
    }

    #[test]
    fn sets_and_counters_diverge_too() {
        let mut b = Builder::new();
        b.op(1, "add", "s", json!(1), Ev::ok());
        b.op(2, "add", "s", json!(2), Ev::ok());
        b.local_read("n1", "s", json!([2, 1]), false);
        b.local_read("n2", "s", json!([1]), false);
        let r = run(b);
        assert_eq!(kinds(&r), ["diverged"]);
        let mut b = Builder::new();
        b.op(1, "incr", "c", json!(1), Ev::ok());
        b.local_read("n1", "c", json!(1), false);
        b.local_read("n2", "c", json!(null), false);
        assert_eq!(kinds(&run(b)), ["diverged"]);
    }

    #[test]
    fn values_no_write_produced_are_not_produced() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok());
        b.local_read("n1", "k", json!([1, 99]), true);
        b.local_read("n2", "k", json!([99, 1]), true);
        let r = run(b);
        assert_eq!(kinds(&r), ["not-produced", "not-produced"]);
        assert!(r.anomalies[0].sentences[0].contains("99"));
        let mut b = Builder::new();
        b.op(1, "add", "s", json!(1), Ev::fail());
        b.local_read("n1", "s", json!([1, 5]), false);
        let r = run(b);
        assert_eq!(
            kinds(&r),
            ["not-produced"],
            "a failed add was attempted: 5 is not"
        );
        assert!(r.anomalies[0].sentences[0].contains("element 5"));
        let mut b = Builder::new();
        b.op(1, "incr", "c", json!(2), Ev::ok());
        b.op(2, "incr", "c", json!(3), Ev::fail());
        b.local_read("n1", "c", json!(5), false);
        b.local_read("n2", "c", json!(5), false);
        let r = run(b);
        assert_eq!(kinds(&r), ["not-produced", "not-produced"]);
        assert!(r.anomalies[0].sentences[0].contains("between 0 and 2"));
    }

    #[test]
    fn a_written_key_without_a_local_final_read_is_unknown() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok());
        b.op(2, "read", "k", json!(null), Ev::ok_value(json!(1)));
        let r = run(b);
        assert_eq!(r.verdict, Judgement::Unknown);
        assert!(
            r.summary[0].contains("no local final read"),
            "{:?}",
            r.summary
        );
    }
}
