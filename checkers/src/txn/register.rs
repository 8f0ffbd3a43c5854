//! rw-register: transactions read and write registers, every written value unique per key,
//! so a read names the one transaction whose write it saw. Unlike list-append, a read shows
//! only the latest version, so the order of versions is inferred in part (Elle, section 4.2),
//! from what is certain under the model and the options:
//!
//! - the initial state (nil) comes before every written value (always);
//! - a transaction that read x=a and then wrote x=b: a before b (`wfr-keys`, on by default);
//! - each key sequentially consistent: along each process, the version a transaction left or
//!   saw comes before the one the process's next transaction on that key saw or wrote
//!   (`sequential-keys`, off by default);
//! - each key linearizable: the same along real time, from transactions that completed to
//!   transactions invoked later (`linearizable-keys`, off by default).
//!
//! Every version order edge a → b gives ww (the writer of a before the writer of b) and rw
//! (every reader of a before the writer of b); every read gives wr from its writer. A cycle in
//! a key's version order is `cyclic-versions`, and that key then adds no ww or rw edges.
//! Anomalies that are not cycles: `G1a` (a read of a failed transaction's write), `G1b` (of a
//! value its writer overwrote within the same transaction), `internal`, `lost-update` and
//! `garbage-read` (a value nobody wrote, never silently accepted).

use super::append::{Found, MAX_PER_KIND};
use super::explain::{anomaly, name};
use super::{Dep, Inferred, Rel, TxnOptions, Txns};
use crate::CheckError;
use hashbrown::{HashMap, HashSet};
use history::txn::{MopKind, MopValue};

/// How a version order edge was learnt (`Dep::source`).
pub const INITIAL: u8 = 1;
pub const WFR: u8 = 2;
pub const PROCESS: u8 = 3;
pub const REALTIME: u8 = 4;

/// The phrase for a version order source.
pub fn source_name(source: u8) -> &'static str {
    match source {
        INITIAL => "every write follows the initial state",
        WFR => "a transaction read the one before writing the other",
        PROCESS => "in process order, as the key is sequentially consistent",
        REALTIME => "in real-time order, as the key is linearizable",
        _ => "inferred",
    }
}

/// Who wrote a value.
#[derive(Clone, Copy, Debug)]
struct Writer {
    txn: u32,
    /// Its transaction's last write to the key (others are intermediate).
    last: bool,
}

/// What one transaction did with one key: the value it saw first (when it read before
/// writing) and the value it left (its last write).
#[derive(Clone, Copy, Debug, Default)]
struct Touch {
    read: Option<Option<i64>>,
    wrote: Option<i64>,
}

impl Touch {
    /// The version it began from, for order inference.
    fn first(&self) -> Option<Option<i64>> {
        self.read.or(self.wrote.map(Some))
    }
    /// The version it ended with.
    fn last(&self) -> Option<Option<i64>> {
        self.wrote.map(Some).or(self.read)
    }
}

/// The dependencies and non-cycle anomalies of an rw-register history.
pub fn infer(txns: &Txns, opts: &TxnOptions) -> Result<Inferred, CheckError> {
    let nkeys = txns.keys.len();
    let mut writers: HashMap<(u32, i64), Writer> = HashMap::new();
    // Per key: the external reads (txn, value) of ok transactions, and every transaction's
    // touch of it.
    let mut reads: Vec<Vec<(u32, Option<i64>)>> = vec![Vec::new(); nkeys];
    let mut touches: Vec<Vec<(u32, Touch)>> = vec![Vec::new(); nkeys];
    let mut found = Found::default();
    for (t, tx) in txns.txns.iter().enumerate() {
        let t = t as u32;
        let mut mine: Vec<(u32, Touch)> = Vec::new();
        let mut wrote_keys: Vec<u32> = Vec::new();
        for (i, m) in tx.mops.iter().enumerate().rev() {
            match (m.f, &m.value) {
                (MopKind::Write, MopValue::Int(v)) => {
                    let last = !wrote_keys.contains(&m.key);
                    wrote_keys.push(m.key);
                    if let Some(prev) = writers.insert((m.key, *v), Writer { txn: t, last }) {
                        return Err(CheckError {
                            file: txns.file.clone(),
                            line: tx.line,
                            field: "value".into(),
                            message: format!(
                                "{v} is written to {} twice (also by the transaction invoked on \
                                 line {}); rw-register needs every written value of a key to be \
                                 unique",
                                txns.key(m.key),
                                txns.txns[prev.txn as usize].line
                            ),
                        });
                    }
                }
                (MopKind::Read, MopValue::Nil | MopValue::Int(_)) => {}
                (f, v) => {
                    return Err(CheckError {
                        file: txns.file.clone(),
                        line: tx.line,
                        field: "value".into(),
                        message: format!(
                            "micro-op {i} is {}({}, {v}): rw-register transactions only write \
                             integers and read single values (use --checker list-append for \
                             lists)",
                            f.name(),
                            txns.key(m.key)
                        ),
                    })
                }
            }
        }
        // Forward: internal consistency and what the transaction saw and left of each key.
        let mut now: Vec<(u32, Option<i64>)> = Vec::new();
        for m in &tx.mops {
            let v = match &m.value {
                MopValue::Int(x) => Some(*x),
                _ => None,
            };
            let touch = match mine.iter().position(|x| x.0 == m.key) {
                Some(p) => &mut mine[p].1,
                None => {
                    mine.push((m.key, Touch::default()));
                    &mut mine.last_mut().expect("just pushed").1
                }
            };
            let known = now.iter().position(|x| x.0 == m.key);
            if m.f == MopKind::Write {
                touch.wrote = v;
                match known {
                    Some(p) => now[p].1 = v,
                    None => now.push((m.key, v)),
                }
                continue;
            }
            if !tx.ok() {
                continue;
            }
            match known {
                Some(p) if now[p].1 != v => {
                    let k = txns.key(m.key);
                    let show = |x: Option<i64>| x.map_or("nil".to_string(), |x| x.to_string());
                    found.push(anomaly(
                        txns,
                        "internal",
                        Some(m.key),
                        format!(
                            "internal: {} read {k} inconsistently with itself",
                            name(txns, t)
                        ),
                        vec![format!(
                            "{} read {k}={}, but from its own earlier reads and writes it should \
                             have been {}.",
                            name(txns, t),
                            show(v),
                            show(now[p].1)
                        )],
                        &[t],
                    ));
                }
                Some(_) => {}
                None => {
                    now.push((m.key, v));
                    if touch.wrote.is_none() {
                        touch.read = Some(v);
                        reads[m.key as usize].push((t, v));
                    }
                }
            }
        }
        for (k, touch) in mine {
            touches[k as usize].push((t, touch));
        }
    }
    let mut deps = Vec::new();
    let mut cyclic = 0;
    for k in 0..nkeys {
        let key = k as u32;
        check_reads(txns, key, &reads[k], &writers, &mut found);
        let versions = version_order(txns, key, &touches[k], &writers, opts);
        if let Some(cycle) = cyclic_versions(&versions) {
            cyclic += 1;
            let k = txns.key(key);
            let show: Vec<String> = cycle
                .iter()
                .map(|v| v.map_or("nil".to_string(), |x| x.to_string()))
                .collect();
            let ts: Vec<u32> = cycle
                .iter()
                .filter_map(|v| v.and_then(|x| writers.get(&(key, x))).map(|w| w.txn))
                .collect();
            found.push(anomaly(
                txns,
                "cyclic-versions",
                Some(key),
                format!("cyclic versions of {k}"),
                vec![format!(
                    "the versions of {k} would each have to come before the next, around a \
                     circle: {} → {}.",
                    show.join(" → "),
                    show[0]
                )],
                &ts,
            ));
            continue;
        }
        edges(key, &versions, &reads[k], &writers, &mut deps);
        lost_updates(txns, key, &touches[k], &mut found);
    }
    let mut notes = found.notes();
    if cyclic > 0 {
        notes.push(format!("{cyclic} keys have cyclic version orders"));
    }
    let _ = MAX_PER_KIND;
    Ok(Inferred {
        deps,
        anomalies: found.anomalies,
        notes,
    })
}

/// G1a, G1b and garbage reads of key `k`.
fn check_reads(
    txns: &Txns,
    k: u32,
    reads: &[(u32, Option<i64>)],
    writers: &HashMap<(u32, i64), Writer>,
    found: &mut Found,
) {
    let key = txns.key(k);
    for &(r, v) in reads {
        let Some(v) = v else { continue };
        match writers.get(&(k, v)) {
            None => found.push(anomaly(
                txns,
                "garbage-read",
                Some(k),
                format!("garbage read: {key}={v} was never written"),
                vec![format!(
                    "{} read {key}={v}, but no transaction wrote {v} to {key}.",
                    name(txns, r)
                )],
                &[r],
            )),
            Some(w) if txns.txns[w.txn as usize].failed() => found.push(anomaly(
                txns,
                "G1a",
                Some(k),
                format!(
                    "aborted read: {} saw {key}={v} from a failed transaction",
                    name(txns, r)
                ),
                vec![format!(
                    "{} read {key}={v}, which {} wrote, but {} failed: it never happened, so \
                     nobody may see it.",
                    name(txns, r),
                    name(txns, w.txn),
                    name(txns, w.txn)
                )],
                &[r, w.txn],
            )),
            Some(w) if !w.last && w.txn != r => found.push(anomaly(
                txns,
                "G1b",
                Some(k),
                format!(
                    "intermediate read: {} saw {} half done",
                    name(txns, r),
                    name(txns, w.txn)
                ),
                vec![format!(
                    "{} read {key}={v}, which {} wrote and then overwrote in the same \
                     transaction: {} saw it half done.",
                    name(txns, r),
                    name(txns, w.txn),
                    name(txns, r)
                )],
                &[r, w.txn],
            )),
            Some(_) => {}
        }
    }
}

/// A key's version order edges (a before b), each with how it was learnt.
type Versions = Vec<(Option<i64>, Option<i64>, u8)>;

fn version_order(
    txns: &Txns,
    k: u32,
    touches: &[(u32, Touch)],
    writers: &HashMap<(u32, i64), Writer>,
    opts: &TxnOptions,
) -> Versions {
    let mut out: Versions = Vec::new();
    let mut seen: HashSet<(Option<i64>, Option<i64>)> = HashSet::new();
    let mut add = |a: Option<i64>, b: Option<i64>, source: u8, out: &mut Versions| {
        if a != b && b.is_some() && seen.insert((a, b)) {
            out.push((a, b, source));
        }
    };
    // Not versions: failed and intermediate writes (a value nobody wrote is reported as a
    // garbage read, and still ordered as what its reader saw).
    let live = |v: Option<i64>| {
        v.is_none_or(|x| {
            writers
                .get(&(k, x))
                .is_none_or(|w| w.last && !txns.txns[w.txn as usize].failed())
        })
    };
    for &(t, touch) in touches {
        if txns.txns[t as usize].failed() {
            continue;
        }
        if let Some(w) = touch.wrote {
            add(None, Some(w), INITIAL, &mut out);
            if opts.wfr_keys {
                if let Some(r) = touch.read {
                    if live(r) {
                        add(r, Some(w), WFR, &mut out);
                    }
                }
            }
        }
    }
    let usable = |t: u32| {
        let tx = &txns.txns[t as usize];
        tx.ok()
    };
    if opts.sequential_keys {
        let mut last: HashMap<u64, Option<i64>> = HashMap::new();
        for &(t, touch) in touches {
            if !usable(t) {
                continue;
            }
            let p = txns.txns[t as usize].process;
            if let (Some(prev), Some(first)) = (last.get(&p).copied(), touch.first()) {
                if live(prev) && live(first) {
                    add(prev, first, PROCESS, &mut out);
                }
            }
            if let Some(l) = touch.last() {
                last.insert(p, l);
            }
        }
    }
    if opts.linearizable_keys {
        // Sweep invocations and completions in time order, keeping the frontier: the
        // completed transactions no later completed one is known to follow.
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (i, &(t, _)) in touches.iter().enumerate() {
            let tx = &txns.txns[t as usize];
            if !usable(t) {
                continue;
            }
            events.push((tx.invoke_ns, true, i));
            if let Some(c) = tx.complete_ns {
                events.push((c, false, i));
            }
        }
        // Completions before invocations at the same instant are not "before" them.
        events.sort_by_key(|&(time, invoke, _)| (time, invoke));
        let mut frontier: Vec<usize> = Vec::new();
        let mut before: HashMap<usize, Vec<usize>> = HashMap::new();
        for (_, invoke, i) in events {
            if invoke {
                before.insert(i, frontier.clone());
                for &p in &frontier {
                    let (a, b) = (touches[p].1.last(), touches[i].1.first());
                    if let (Some(a), Some(b)) = (a, b) {
                        if live(a) && live(b) {
                            add(a, b, REALTIME, &mut out);
                        }
                    }
                }
            } else {
                let preds = before.remove(&i).unwrap_or_default();
                frontier.retain(|p| !preds.contains(p));
                frontier.push(i);
            }
        }
    }
    out
}

/// A cycle among a key's version order edges, if there is one.
fn cyclic_versions(versions: &Versions) -> Option<Vec<Option<i64>>> {
    if versions
        .iter()
        .all(|&(a, _, s)| a.is_none() && s == INITIAL)
    {
        return None;
    }
    let mut g: petgraph::graphmap::DiGraphMap<(bool, i64), ()> =
        petgraph::graphmap::DiGraphMap::new();
    let node = |v: Option<i64>| (v.is_some(), v.unwrap_or(0));
    for &(a, b, _) in versions {
        g.add_edge(node(a), node(b), ());
    }
    let comp = petgraph::algo::tarjan_scc(&g)
        .into_iter()
        .find(|c| c.len() > 1)?;
    Some(
        comp.into_iter()
            .map(|(some, x)| some.then_some(x))
            .collect(),
    )
}

/// ww, wr and rw edges of key `k` from its version order.
fn edges(
    k: u32,
    versions: &Versions,
    reads: &[(u32, Option<i64>)],
    writers: &HashMap<(u32, i64), Writer>,
    deps: &mut Vec<Dep>,
) {
    let writer = |v: Option<i64>| v.and_then(|x| writers.get(&(k, x))).map(|w| w.txn);
    let mut readers: HashMap<Option<i64>, Vec<u32>> = HashMap::new();
    for &(r, v) in reads {
        readers.entry(v).or_default().push(r);
        // A read of an intermediate write is G1b, not a dependency on the transaction.
        let last = v.and_then(|x| writers.get(&(k, x))).is_some_and(|w| w.last);
        if let Some(w) = writer(v).filter(|_| last) {
            deps.push(Dep::new(w, r, Rel::Wr, k, v, None, 0));
        }
    }
    for &(a, b, source) in versions {
        let Some(wb) = writer(b) else { continue };
        if let Some(wa) = writer(a) {
            deps.push(Dep::new(wa, wb, Rel::Ww, k, a, b, source));
        }
        for &r in readers.get(&a).map(Vec::as_slice).unwrap_or(&[]) {
            deps.push(Dep::new(r, wb, Rel::Rw, k, a, b, source));
        }
    }
}

/// Committed transactions that read the same version of `k` and then wrote it.
fn lost_updates(txns: &Txns, k: u32, touches: &[(u32, Touch)], found: &mut Found) {
    let mut groups: HashMap<Option<i64>, Vec<u32>> = HashMap::new();
    for &(t, touch) in touches {
        if let (Some(r), Some(_)) = (touch.read, touch.wrote) {
            if txns.txns[t as usize].ok() {
                groups.entry(r).or_default().push(t);
            }
        }
    }
    let key = txns.key(k);
    let mut groups: Vec<_> = groups.into_iter().filter(|(_, v)| v.len() > 1).collect();
    groups.sort();
    for (v, ts) in groups {
        let names: Vec<String> = ts.iter().map(|&t| name(txns, t)).collect();
        found.push(anomaly(
            txns,
            "lost-update",
            Some(k),
            format!("lost update of {key}: {}", names.join(", ")),
            vec![format!(
                "{} all read {key}={} and then each wrote it: whichever came later did not see \
                 the other's update.",
                names.join(", "),
                v.map_or("nil".to_string(), |x| x.to_string())
            )],
            &ts,
        ));
    }
}
