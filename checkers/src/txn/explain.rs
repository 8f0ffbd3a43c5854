//! Witnesses a person can follow: one sentence per dependency of a cycle ("T12 < T40 because
//! T40 read T12's append of 3 to x"), and the shared anomaly shape (shared/DESIGN.md section
//! 7) for every anomaly the transactional checkers report. A transaction is named by the
//! history index of its invocation, `T<index>`, which is also what `ops` and `cycle` hold.

use super::{Dep, Kind, Rel, Txns};
use crate::result::{secs, widen, Anomaly, Edge};

/// `T<index>`.
pub fn name(txns: &Txns, t: u32) -> String {
    format!("T{}", txns.txns[t as usize].index)
}

/// A transaction in full, for a sentence: `T40 (process 3, ok: append(x,3) r(y)=[1 2])`.
pub fn describe(txns: &Txns, t: u32) -> String {
    let tx = &txns.txns[t as usize];
    let mops: Vec<String> = tx
        .mops
        .iter()
        .map(|m| {
            history::txn::Mop {
                f: m.f,
                key: txns.key(m.key).to_owned(),
                value: m.value.clone(),
            }
            .to_string()
        })
        .collect();
    format!(
        "T{} (process {}, {}: {})",
        tx.index,
        tx.process,
        tx.kind,
        mops.join(" ")
    )
}

/// An anomaly over transactions `ops` (in the order the sentences use them).
pub fn anomaly(
    txns: &Txns,
    kind: &str,
    key: Option<u32>,
    title: String,
    sentences: Vec<String>,
    ops: &[u32],
) -> Anomaly {
    let mut span = None;
    let mut seen = Vec::new();
    for &t in ops {
        let tx = &txns.txns[t as usize];
        widen(
            &mut span,
            tx.invoke_ns,
            tx.complete_ns.unwrap_or(tx.invoke_ns),
        );
        if !seen.contains(&tx.index) {
            seen.push(tx.index);
        }
    }
    Anomaly {
        kind: kind.to_owned(),
        key: key.map(|k| txns.key(k).to_owned()),
        title,
        sentences,
        ops: seen,
        cycle: Vec::new(),
        span_ns: span,
    }
}

/// Why `dep.from` must come before `dep.to`, as the end of a sentence.
pub fn because(txns: &Txns, kind: Kind, dep: &Dep) -> String {
    let (from, to) = (name(txns, dep.from), name(txns, dep.to));
    let k = txns.key(dep.key);
    let val = |v: Option<i64>| v.map_or("nil".to_string(), |x| x.to_string());
    match (kind, dep.rel) {
        (_, Rel::Process) => format!(
            "process {} ran {from} before {to}",
            txns.txns[dep.from as usize].process
        ),
        (_, Rel::Realtime) => {
            let a = &txns.txns[dep.from as usize];
            let b = &txns.txns[dep.to as usize];
            format!(
                "{from} completed (at {}) before {to} was invoked (at {})",
                secs(a.complete_ns.unwrap_or(0)),
                secs(b.invoke_ns)
            )
        }
        (Kind::ListAppend, Rel::Ww) if dep.source == super::append::UNOBSERVED => format!(
            "nobody read {to}'s append of {} to {k}, so it came after every element read, the \
             last of which, {}, {from} appended",
            val(dep.b()),
            val(dep.a())
        ),
        (Kind::ListAppend, Rel::Ww) => format!(
            "{to} appended {} to {k} right after {from}'s {}",
            val(dep.b()),
            val(dep.a())
        ),
        (Kind::ListAppend, Rel::Wr) => {
            format!("{to} read {from}'s append of {} to {k}", val(dep.a()))
        }
        (Kind::ListAppend, Rel::Rw) if dep.source == super::append::UNOBSERVED => format!(
            "{from} read {k} without {}, which {to} appended (and nobody read)",
            val(dep.b())
        ),
        (Kind::ListAppend, Rel::Rw) => match dep.a() {
            Some(last) => format!(
                "{from} read {k} up to {last} before {to} appended {}",
                val(dep.b())
            ),
            None => format!(
                "{from} read {k} empty before {to} appended {}",
                val(dep.b())
            ),
        },
        (Kind::RwRegister, Rel::Ww) => format!(
            "{to} wrote {k}={} after {from}'s {k}={} ({})",
            val(dep.b()),
            val(dep.a()),
            super::register::source_name(dep.source)
        ),
        (Kind::RwRegister, Rel::Wr) => {
            format!("{to} read {k}={}, which {from} wrote", val(dep.a()))
        }
        (Kind::RwRegister, Rel::Rw) => format!(
            "{from} read {k}={} before {to} wrote {k}={} ({})",
            val(dep.a()),
            val(dep.b()),
            super::register::source_name(dep.source)
        ),
    }
}

/// A cycle of class `class` as an anomaly: one sentence per edge, the transactions in cycle
/// order, and the edges.
pub fn cycle(txns: &Txns, kind: Kind, class: &str, steps: &[Dep], scc: usize) -> Anomaly {
    let ids: Vec<u32> = steps.iter().map(|d| d.from).collect();
    let names: Vec<String> = ids.iter().map(|&t| name(txns, t)).collect();
    let mut sentences = vec![format!(
        "{} transactions form a {class} cycle ({}), found among {scc} transactions that all \
         depend on each other:",
        ids.len(),
        meaning(class)
    )];
    let mut edges = Vec::new();
    for d in steps {
        let why = because(txns, kind, d);
        sentences.push(format!(
            "  - {} < {} ({}) because {why}",
            name(txns, d.from),
            name(txns, d.to),
            d.rel.name()
        ));
        edges.push(Edge {
            from: txns.txns[d.from as usize].index,
            to: txns.txns[d.to as usize].index,
            because: why,
        });
    }
    sentences.push(format!(
        "So each of {} would have to come before itself: no order of the transactions \
         explains what they read.",
        names.join(", ")
    ));
    for &t in &ids {
        sentences.push(format!("  - {}", describe(txns, t)));
    }
    let mut a = anomaly(
        txns,
        class,
        None,
        format!("{} → {}", names.join(" → "), names[0]),
        sentences,
        &ids,
    );
    a.cycle = edges;
    a
}

/// What a class of cycle means, in a phrase.
fn meaning(class: &str) -> String {
    let base = class
        .trim_end_matches("-realtime")
        .trim_end_matches("-process");
    let what = match base {
        "G0" => "a write cycle: writes that each overwrite the other",
        "G1c" => "circular information flow: each reads or overwrites what the next wrote",
        "G-single" => "one anti-dependency: a transaction missed a write it otherwise depends on",
        "G-nonadjacent" => "anti-dependencies, no two in a row",
        _ => "anti-dependencies in a row: each read something the other overwrote",
    };
    if class.ends_with("-realtime") {
        format!("{what}; with real-time order")
    } else if class.ends_with("-process") {
        format!("{what}; with each process's own order")
    } else {
        what.to_string()
    }
}
