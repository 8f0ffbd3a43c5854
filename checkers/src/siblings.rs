//! The siblings checker: registers whose store keeps concurrent versions (siblings) and hands
//! out causal contexts, as Dynamo does with vector clocks (DeCandia et al., SOSP 2007,
//! section 4.4: "the client must perform the reconciliation ... a write carries the context of
//! the read it follows and supersedes what that read saw").
//!
//! Contexts are opaque (shared/DESIGN.md section 3), so what one means is learnt from the
//! history, per key. An `ok` completion that returns context c **covers**: for a read, the
//! versions it returned; for a write, its own value plus everything the context it was sent
//! with covered (so coverage is transitive). A write invoked with context c **supersedes**
//! every version c covers. Completions are taken in history order, so a context is known
//! before a later operation sends it back. Anomalies, per key:
//!
//! - **never-written**: a read returned a version no write (or cas) was invoked with before
//!   the read completed.
//! - **superseded-sibling**: one read returned both v and w as siblings, though w's write
//!   superseded v: the store kept a version its own context said was overwritten.
//! - **resurrected**: a final local read (after recovery) returned v although an acknowledged
//!   write had superseded v: that write must have won.
//!
//! A linearizable store's register histories pass trivially: no context, no siblings, and
//! every read returns null or a value written before it completed. A key is a register when
//! it is written or cas'd, or only read; keys of sets and counters are left alone.

use crate::convergence::{anomaly, versions, written, KeyKind};
use crate::registry::Checker;
use crate::result::{natural_key, secs, Anomaly, CheckerResult, Judgement};
use crate::{CheckError, Options};
use history::{EventType, History, Op, Paired};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Anomalies described per key and kind (the rest are counted).
pub const MAX_ANOMALIES_PER_KIND: usize = 20;
/// The most (context, version) pairs of coverage learnt per key. Coverage is transitive, so a
/// session that writes one key many times in a row makes it grow with the square of its
/// writes; past this bound the key is `Unknown` rather than the checker's memory unbounded.
pub const MAX_COVERAGE_PER_KEY: usize = 4_000_000;

/// The registry's siblings checker.
pub struct Siblings;

impl Checker for Siblings {
    fn name(&self) -> &'static str {
        "siblings"
    }

    fn property(&self) -> &'static str {
        "convergent"
    }

    fn about(&self) -> &'static str {
        "registers with siblings and contexts: no version returned that was never written, \
         none beside a write that superseded it, none back after such a write was acknowledged"
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

/// One key's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SiblingsKey {
    pub key: String,
    pub verdict: Judgement,
    pub reads: usize,
    /// Reads that returned more than one version.
    pub sibling_reads: usize,
    pub writes: usize,
    /// Writes invoked with a context.
    pub writes_with_context: usize,
    pub never_written: usize,
    pub superseded_sibling: usize,
    pub resurrected: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a version came to be covered by a context.
#[derive(Clone, Copy, Debug)]
enum How {
    /// A read returned it.
    Read,
    /// The write of this very version.
    OwnWrite,
    /// A write sent a context that covered it.
    Via,
}

/// The operation (history index of its invocation) that made a context cover a version.
#[derive(Clone, Copy, Debug)]
struct Source {
    op: u64,
    how: How,
}

/// Versions as JSON text (written values are unique, so the text names the write).
type Version = String;

/// Checks every register key.
pub fn check(history: &History, paired: &Paired) -> CheckerResult {
    let started = Instant::now();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &paired.ops {
        if let Some(k) = op.key.as_deref() {
            by_key.entry(k).or_default().push(op);
        }
    }
    let mut groups: Vec<(&str, Vec<&Op>)> = by_key
        .into_iter()
        .filter(|(_, ops)| {
            matches!(
                KeyKind::infer(ops.iter().copied()),
                KeyKind::Register | KeyKind::Unknown
            )
        })
        .collect();
    groups.sort_by_cached_key(|(k, _)| natural_key(&Some((*k).to_owned())));
    let mut keys = Vec::new();
    let mut anomalies = Vec::new();
    let mut summary = Vec::new();
    for (key, ops) in groups {
        let (k, found) = check_key(history, key, &ops);
        if let Some(reason) = &k.reason {
            summary.push(format!("key {key}: unknown: {reason}"));
        }
        summary.extend(found.iter().take(3).map(|a| a.title.clone()));
        anomalies.extend(found);
        keys.push(k);
    }
    let verdict = if keys.is_empty() {
        summary.push("no register operation to check".into());
        Judgement::Unknown
    } else {
        Judgement::worst(keys.iter().map(|k| k.verdict))
    };
    let sum = |f: fn(&SiblingsKey) -> usize| keys.iter().map(f).sum::<usize>();
    summary.insert(
        0,
        format!(
            "{} register key{}: {} reads ({} with siblings), {} writes ({} with a context)",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" },
            sum(|k| k.reads),
            sum(|k| k.sibling_reads),
            sum(|k| k.writes),
            sum(|k| k.writes_with_context)
        ),
    );
    CheckerResult {
        checker: "siblings".into(),
        verdict,
        promised: true,
        summary,
        anomalies,
        elapsed_us: started.elapsed().as_micros() as u64,
        detail: serde_json::json!({ "keys": keys }),
    }
}

fn check_key(history: &History, key: &str, ops: &[&Op]) -> (SiblingsKey, Vec<Anomaly>) {
    let ev = |pos: usize| &history.events[pos];
    let idx = |op: &Op| ev(op.invoke).index;
    let mut k = SiblingsKey {
        key: key.to_owned(),
        ..SiblingsKey::default()
    };
    // Each version's writes, and the first invocation of one.
    let mut writes_of: HashMap<Version, Vec<&Op>> = HashMap::new();
    let mut first_write: HashMap<Version, usize> = HashMap::new();
    for &op in ops {
        if let Some(v) = written(op) {
            k.writes += 1;
            if ev(op.invoke).context.is_some() {
                k.writes_with_context += 1;
            }
            let v = v.to_string();
            let first = first_write.entry(v.clone()).or_insert(op.invoke);
            *first = (*first).min(op.invoke);
            writes_of.entry(v).or_default().push(op);
        }
    }
    // What each context covers, learnt from the ok completions in history order.
    let mut done: Vec<&Op> = ops
        .iter()
        .copied()
        .filter(|o| o.kind == EventType::Ok && o.complete.is_some())
        .collect();
    done.sort_by_key(|o| o.complete);
    let mut covered: HashMap<&str, HashMap<Version, Source>> = HashMap::new();
    // Ok reads with their versions.
    let mut reads: Vec<(&Op, Vec<Version>)> = Vec::new();
    let mut learnt = 0usize;
    for &op in &done {
        if learnt > MAX_COVERAGE_PER_KEY {
            k.verdict = Judgement::Unknown;
            k.reason = Some(format!(
                "the contexts of {key} cover more than {MAX_COVERAGE_PER_KEY} (context, version) \
                 pairs: not checked"
            ));
            return (k, Vec::new());
        }
        let end = ev(op.complete.expect("kept above"));
        let ctx = end.context.as_deref();
        if op.f == "read" {
            let vs: Vec<Version> = versions(&op.output, end.siblings)
                .iter()
                .map(Value::to_string)
                .collect();
            if let Some(c) = ctx {
                let cover = covered.entry(c).or_default();
                learnt += vs.len();
                for v in &vs {
                    cover.entry(v.clone()).or_insert(Source {
                        op: idx(op),
                        how: How::Read,
                    });
                }
            }
            reads.push((op, vs));
        } else if let (Some(v), Some(c)) = (written(op), ctx) {
            let mut add: Vec<(Version, Source)> = vec![(
                v.to_string(),
                Source {
                    op: idx(op),
                    how: How::OwnWrite,
                },
            )];
            if let Some(sent) = ev(op.invoke).context.as_deref() {
                if let Some(prior) = covered.get(sent) {
                    add.extend(prior.keys().map(|p| {
                        (
                            p.clone(),
                            Source {
                                op: idx(op),
                                how: How::Via,
                            },
                        )
                    }));
                }
            }
            let cover = covered.entry(c).or_default();
            learnt += add.len();
            for (v, s) in add {
                cover.entry(v).or_insert(s);
            }
        }
    }
    // What a write supersedes: what the context it was sent with covers.
    let supersedes = |w: &Op| -> Option<&HashMap<Version, Source>> {
        covered.get(ev(w.invoke).context.as_deref()?)
    };
    let mut found: Vec<Anomaly> = Vec::new();
    let mut listed = [0usize; 3];
    let mut push = |found: &mut Vec<Anomaly>, slot: usize, a: Anomaly| {
        listed[slot] += 1;
        if listed[slot] <= MAX_ANOMALIES_PER_KIND {
            found.push(a);
        }
    };
    let node = |op: &Op| op.node.clone().unwrap_or_else(|| "an unnamed node".into());
    for (r, vs) in &reads {
        k.reads += 1;
        if vs.len() > 1 {
            k.sibling_reads += 1;
        }
        let complete = r.complete.expect("ok reads completed");
        for v in vs {
            if first_write.get(v).is_some_and(|&w| w < complete) {
                continue;
            }
            k.never_written += 1;
            let later = first_write.get(v).map(|&w| ev(w).index);
            let mut a = anomaly(history, "never-written", key, [*r]);
            a.title = format!(
                "Key {key}: read {} returned {v}, which was never written",
                idx(r)
            );
            let mut s = format!(
                "Read {} at {} returned {v}, but no write of {v} to {key} was invoked before \
                 the read completed",
                idx(r),
                node(r)
            );
            if let Some(w) = later {
                s.push_str(&format!(" (the first, op {w}, was invoked after it)"));
                a.ops.push(w);
            }
            s.push('.');
            a.sentences.push(s);
            push(&mut found, 0, a);
        }
        for w in vs {
            let Some(ws) = writes_of.get(w) else { continue };
            let live: Vec<&Op> = ws
                .iter()
                .copied()
                .filter(|o| o.kind != EventType::Fail)
                .collect();
            for v in vs.iter().filter(|v| *v != w) {
                let sources: Option<Vec<(&Op, Source)>> = live
                    .iter()
                    .map(|o| supersedes(o).and_then(|s| s.get(v)).map(|s| (*o, *s)))
                    .collect();
                // Every write of w that may have happened superseded v (values are unique, so
                // there is normally one).
                let Some(&(writer, src)) = sources.as_ref().and_then(|s| s.first()) else {
                    continue;
                };
                k.superseded_sibling += 1;
                let mut a = anomaly(history, "superseded-sibling", key, [*r, writer]);
                a.ops.push(src.op);
                a.title = format!(
                    "Key {key}: read {} returned {v} beside {w}, which superseded it",
                    idx(r)
                );
                a.sentences.push(format!(
                    "Read {} at {} returned {v} and {w} as siblings, but the write of {w} (op \
                     {}) was made with the context of {}: {w} supersedes {v}.",
                    idx(r),
                    node(r),
                    idx(writer),
                    seen(src, v)
                ));
                a.sentences.push(
                    "A store that keeps siblings drops a version once a write made with a \
                     context that saw it arrives."
                        .into(),
                );
                push(&mut found, 1, a);
            }
        }
    }
    // Resurrected: a final local read returns a version an acknowledged write superseded.
    let acked: Vec<&Op> = done
        .iter()
        .copied()
        .filter(|o| written(o).is_some() && ev(o.invoke).context.is_some())
        .collect();
    for (r, vs) in reads.iter().filter(|(r, _)| ev(r.invoke).local) {
        for v in vs {
            let winner = acked.iter().find_map(|w| {
                let before = w.complete.is_some_and(|c| c < r.invoke);
                let src = supersedes(w)?.get(v)?;
                before.then_some((*w, *src))
            });
            let Some((w, src)) = winner else { continue };
            k.resurrected += 1;
            let wv = written(w).map(Value::to_string).unwrap_or_default();
            let done_at = ev(w.complete.expect("acknowledged")).time;
            let mut a = anomaly(history, "resurrected", key, [*r, w]);
            a.ops.push(src.op);
            a.title = format!(
                "Key {key}: {v} came back at {} after the write of {wv} superseded it",
                node(r)
            );
            a.sentences.push(format!(
                "The final local read {} at {} returned {v}, but the write of {wv} (op {}), \
                 acknowledged at {}, was made with the context of {}: {wv} supersedes {v}, \
                 so {v} must not come back once that write has won.",
                idx(r),
                node(r),
                idx(w),
                secs(done_at),
                seen(src, v)
            ));
            push(&mut found, 2, a);
        }
    }
    for (slot, kind) in ["never-written", "superseded-sibling", "resurrected"]
        .iter()
        .enumerate()
    {
        if listed[slot] > MAX_ANOMALIES_PER_KIND {
            if let Some(last) = found.iter_mut().rev().find(|a| a.kind == *kind) {
                last.sentences.push(format!(
                    "... and {} more {kind} anomalies on {key}",
                    listed[slot] - MAX_ANOMALIES_PER_KIND
                ));
            }
        }
    }
    if !found.is_empty() {
        k.verdict = Judgement::Invalid;
    }
    (k, found)
}

/// "read 600, which had seen 17": how a context came to cover `v`.
fn seen(src: Source, v: &str) -> String {
    match src.how {
        How::Read => format!("read {}, which had seen {v}", src.op),
        How::OwnWrite => format!("write {}, which had written {v}", src.op),
        How::Via => format!("write {}, whose own context covered {v}", src.op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Builder, Ev};
    use serde_json::json;

    fn run(b: &Builder) -> CheckerResult {
        let h = b.history();
        let p = history::pair(&h).expect("pairs");
        check(&h, &p)
    }

    fn kinds(r: &CheckerResult) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn a_linearizable_register_history_passes() {
        let mut b = Builder::new();
        b.op(1, "read", "k", json!(null), Ev::ok_value(json!(null)));
        b.op(1, "write", "k", json!(1), Ev::ok());
        b.op(2, "read", "k", json!(null), Ev::ok_value(json!(1)));
        b.op(2, "cas", "k", json!([1, 2]), Ev::ok());
        b.op(3, "cas", "k", json!([1, 3]), Ev::fail());
        b.op(3, "read", "k", json!(null), Ev::ok_value(json!(2)));
        b.op(4, "write", "k", json!(4), Ev::info());
        b.op(5, "read", "k", json!(null), Ev::ok_value(json!(4)));
        b.op(5, "read", "other", json!(null), Ev::ok_value(json!(null)));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.anomalies);
    }

    /// Linearizable by construction (with cas, info and reads of absent keys): the register
    /// workload on raft feeds this checker as information, and it must pass.
    #[test]
    fn synthetic_linearizable_histories_pass() {
        for seed in 0..8 {
            let mut cfg = crate::lin::synth::SynthConfig::new(6, 3_000, 4, seed);
            cfg.info_rate = 0.05;
            let h = crate::lin::synth::generate(&cfg);
            let p = history::pair(&h).expect("pairs");
            let r = check(&h, &p);
            assert_eq!(
                r.verdict,
                Judgement::Valid,
                "reproduce with SEED={seed}: {:?}",
                r.anomalies.first()
            );
        }
    }

    #[test]
    fn siblings_with_contexts_that_respect_each_other_pass() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok().ctx_out("a"));
        b.op(2, "write", "k", json!(2), Ev::ok().ctx_out("b"));
        b.op(
            1,
            "read",
            "k",
            json!(null),
            Ev::ok_value(json!([1, 2])).siblings().ctx_out("c"),
        );
        b.op(1, "write", "k", json!(3), Ev::ok().ctx_in("c").ctx_out("d"));
        b.local_read("n1", "k", json!(3), false);
        b.local_read("n2", "k", json!([3]), true);
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.anomalies);
    }

    #[test]
    fn a_value_read_before_any_write_of_it_was_never_written() {
        let mut b = Builder::new();
        let read = b.op(1, "read", "k", json!(null), Ev::ok_value(json!(7)));
        let write = b.op(2, "write", "k", json!(7), Ev::ok());
        let r = run(&b);
        assert_eq!(kinds(&r), ["never-written"]);
        assert_eq!(r.anomalies[0].ops, [read, write]);
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok());
        b.op(
            1,
            "read",
            "k",
            json!(null),
            Ev::ok_value(json!([1, 9])).siblings(),
        );
        assert_eq!(kinds(&run(&b)), ["never-written"]);
    }

    #[test]
    fn a_sibling_beside_the_write_that_superseded_it() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(17), Ev::ok().ctx_out("a"));
        let seen = b.op(
            2,
            "read",
            "k",
            json!(null),
            Ev::ok_value(json!(17)).ctx_out("b"),
        );
        let w = b.op(
            2,
            "write",
            "k",
            json!(23),
            Ev::ok().ctx_in("b").ctx_out("c"),
        );
        let read = b.op(
            3,
            "read",
            "k",
            json!(null),
            Ev::ok_value(json!([17, 23])).siblings(),
        );
        let r = run(&b);
        assert_eq!(kinds(&r), ["superseded-sibling"]);
        let a = &r.anomalies[0];
        assert_eq!(a.ops, [read, w, seen]);
        assert_eq!(
            a.sentences[0],
            format!(
                "Read {read} at n1 returned 17 and 23 as siblings, but the write of 23 (op {w}) \
                 was made with the context of read {seen}, which had seen 17: 23 supersedes 17."
            )
        );
    }

    #[test]
    fn superseding_is_transitive_through_the_contexts_of_writes() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok().ctx_out("a"));
        b.op(1, "write", "k", json!(2), Ev::ok().ctx_in("a").ctx_out("b"));
        b.op(1, "write", "k", json!(3), Ev::ok().ctx_in("b").ctx_out("c"));
        b.op(
            2,
            "read",
            "k",
            json!(null),
            Ev::ok_value(json!([3, 1])).siblings(),
        );
        let r = run(&b);
        assert_eq!(kinds(&r), ["superseded-sibling"]);
        assert!(r.anomalies[0].sentences[0].contains("whose own context covered 1"));
    }

    #[test]
    fn a_superseded_version_back_in_a_final_read_is_resurrected() {
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok().ctx_out("a"));
        b.op(
            2,
            "read",
            "k",
            json!(null),
            Ev::ok_value(json!(1)).ctx_out("b"),
        );
        let w = b.op(2, "write", "k", json!(2), Ev::ok().ctx_in("b").ctx_out("c"));
        b.local_read("n1", "k", json!(2), false);
        let back = b.local_read("n2", "k", json!(1), false);
        let r = run(&b);
        assert_eq!(kinds(&r), ["resurrected"]);
        assert_eq!(r.anomalies[0].ops[..2], [back, w]);
        assert!(r.anomalies[0].sentences[0].contains("at n2 returned 1"));
        // The same write unacknowledged need not have won.
        let mut b = Builder::new();
        b.op(1, "write", "k", json!(1), Ev::ok().ctx_out("a"));
        b.op(
            2,
            "read",
            "k",
            json!(null),
            Ev::ok_value(json!(1)).ctx_out("b"),
        );
        b.op(2, "write", "k", json!(2), Ev::info().ctx_in("b"));
        b.local_read("n2", "k", json!(1), false);
        assert_eq!(run(&b).verdict, Judgement::Valid);
    }

    #[test]
    fn sets_and_counters_are_not_registers() {
        let mut b = Builder::new();
        b.op(1, "add", "s", json!(1), Ev::ok());
        b.op(1, "read", "s", json!(null), Ev::ok_value(json!([1, 5])));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Unknown);
    }
}
