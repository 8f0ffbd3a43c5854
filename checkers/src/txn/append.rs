//! List-append: every write appends a unique element to a key's list, and every read returns
//! the whole list, so the order of each key's versions is known exactly (Elle, section 4.1).
//!
//! Per key, the longest list read is the version order; every other read must be a prefix of
//! it (`incompatible-order` otherwise). From the order:
//!
//! - **ww**: the appender of each element precedes the appender of the next;
//! - **wr**: the appender of the last element a read saw precedes the reader;
//! - **rw**: a reader precedes the appender of the element after the last one it saw.
//!
//! A committed append that no read saw (the tail of a key's life) still came after every
//! element that was read, and after every read of its key that did not see it (appends are
//! never undone): those ww and rw edges are added too, which Elle leaves out, so a write skew
//! over elements nobody read back is still a cycle. A transaction's reads are checked against
//! its own appends (`internal`), and the first read of a key, less the transaction's own
//! appends before it, is what it saw of the others ("external").
//!
//! Anomalies that are not cycles: `G1a` (a read saw an element of a failed transaction),
//! `G1b` (a read ended in the middle of another transaction's appends to the key),
//! `dirty-update` (a committed append on top of a failed one), `duplicate-elements`,
//! `internal`, `future-read` (a read saw an element its own transaction appends later),
//! `incompatible-order`, `lost-update` (two committed transactions read the same version of a
//! key and both appended to it) and `garbage-read` (an element nobody appended).

use super::explain::{anomaly, name};
use super::{Dep, Inferred, Rel, Txns};
use crate::result::Anomaly;
use crate::CheckError;
use hashbrown::{HashMap, HashSet};
use history::txn::{MopKind, MopValue};
use std::borrow::Cow;

/// `Dep::source` of the edges to an append nobody read.
pub const UNOBSERVED: u8 = 1;

/// Anomalies of one kind described in full (the rest are counted in the notes).
pub const MAX_PER_KIND: usize = 8;

/// Who appended an element.
#[derive(Clone, Copy, Debug)]
struct Writer {
    txn: u32,
    /// Its transaction's last append to this key.
    last: bool,
    /// Some read saw it.
    observed: bool,
    /// The element its transaction appended to this key just before it.
    prev: Option<i64>,
}

/// One read of a key by an ok transaction.
#[derive(Clone, Copy, Debug)]
struct Read {
    txn: u32,
    mop: u32,
    /// How much of the list came from others: all of it, less the transaction's own appends
    /// before the read; `None` for reads after the first one of the key in the transaction.
    external: Option<u32>,
    /// The first read of the key in its transaction came before its first append to it.
    before_write: bool,
    /// It is a prefix of the key's version order (set by `order_of`).
    prefix: bool,
    /// How much of the list is a version of the key: all of it, or (for the weak levels,
    /// [`infer_external`]) what came from others.
    len: u32,
}

/// Collects anomalies, keeping `MAX_PER_KIND` of each kind.
#[derive(Default)]
pub(crate) struct Found {
    pub anomalies: Vec<Anomaly>,
    pub counts: HashMap<String, usize>,
}

impl Found {
    pub fn push(&mut self, a: Anomaly) {
        let n = self.counts.entry(a.kind.clone()).or_default();
        *n += 1;
        if *n <= MAX_PER_KIND {
            self.anomalies.push(a);
        }
    }

    pub fn notes(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, &n)| n > MAX_PER_KIND)
            .map(|(k, n)| format!("{n} {k} anomalies ({MAX_PER_KIND} shown)"))
            .collect();
        v.sort();
        v
    }
}

/// A list for a sentence: `[1 2 3]`, or `[1 2 … 40 41] (37 elements)` when long.
pub fn show_list(l: &[i64]) -> String {
    let j = |s: &[i64]| {
        s.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if l.len() <= 8 {
        format!("[{}]", j(l))
    } else {
        format!(
            "[{} … {}] ({} elements)",
            j(&l[..3]),
            j(&l[l.len() - 3..]),
            l.len()
        )
    }
}

fn list(v: &MopValue) -> &[i64] {
    match v {
        MopValue::List(l) => l,
        _ => &[],
    }
}

/// The dependencies and non-cycle anomalies of a list-append history.
pub fn infer(txns: &Txns) -> Result<Inferred, CheckError> {
    infer_with(txns, false)
}

/// [`infer`] for the weak levels ([`super::saturate`]): a transaction's own appends are not
/// part of the version it read. Under Elle's models a read that ends with the reader's own
/// appends is a version too (they landed right after what it saw); under read committed,
/// read atomic or causal, appends land in commit order, and others' may come in between: T1
/// appends 7 to y and reads [7] while T2, which T1 did not see, appended 1 and T3 reads [1]
/// is no incompatible order there. So only the first read of each key in a transaction is
/// kept, less the reader's own appends before it.
pub fn infer_external(txns: &Txns) -> Result<Inferred, CheckError> {
    infer_with(txns, true)
}

fn infer_with(txns: &Txns, external: bool) -> Result<Inferred, CheckError> {
    let nkeys = txns.keys.len();
    let mut writers: HashMap<(u32, i64), Writer> = HashMap::new();
    let mut appends: Vec<Vec<(u32, i64)>> = vec![Vec::new(); nkeys];
    let mut reads: Vec<Vec<Read>> = vec![Vec::new(); nkeys];
    let mut found = Found::default();
    for (t, tx) in txns.txns.iter().enumerate() {
        let t = t as u32;
        let mut last_of_key: Vec<u32> = Vec::new();
        for (i, m) in tx.mops.iter().enumerate().rev() {
            match (m.f, &m.value) {
                (MopKind::Append, MopValue::Int(e)) => {
                    let last = !last_of_key.contains(&m.key);
                    last_of_key.push(m.key);
                    let prev = tx.mops[..i]
                        .iter()
                        .rev()
                        .find(|n| n.key == m.key && n.f == MopKind::Append)
                        .and_then(|n| n.value.int());
                    let w = Writer {
                        txn: t,
                        last,
                        observed: false,
                        prev,
                    };
                    if let Some(prev) = writers.insert((m.key, *e), w) {
                        return Err(txns.error(
                            t as usize,
                            format!(
                                "{e} is appended to {} twice (also by the transaction invoked on \
                                 line {}); list-append needs every element of a key to be unique",
                                txns.key(m.key),
                                txns.txns[prev.txn as usize].line
                            ),
                        ));
                    }
                    appends[m.key as usize].push((t, *e));
                }
                (MopKind::Read, MopValue::Nil | MopValue::List(_)) => {}
                (f, v) => {
                    return Err(txns.error(
                        t as usize,
                        format!(
                            "micro-op {i} is {}({}, {v}): list-append transactions only append \
                             integers and read lists (use --checker rw-register for registers)",
                            f.name(),
                            txns.key(m.key)
                        ),
                    ))
                }
            }
        }
        if tx.ok() {
            own_reads(txns, t, &mut reads, &mut found);
        }
    }
    for a in &mut appends {
        a.reverse();
    }
    if external {
        for (k, r) in reads.iter_mut().enumerate() {
            r.retain(|x| x.external.is_some());
            for x in r.iter_mut() {
                x.len = x.external.unwrap_or(0);
                // An element both in what it saw of others and among its own appends: the
                // version alone does not show the repeat.
                let whole = list(&txns.txns[x.txn as usize].mops[x.mop as usize].value);
                let seen = &whole[..x.len as usize];
                if let (None, Some(e)) = (repeated(seen), repeated(whole)) {
                    let key = txns.key(k as u32);
                    found.push(anomaly(
                        txns,
                        "duplicate-elements",
                        Some(k as u32),
                        format!("duplicate elements: {e} appears twice in {key}"),
                        vec![format!(
                            "{} read {key} = {}, in which {e} appears twice; it was appended \
                             once, by {} itself.",
                            name(txns, x.txn),
                            show_list(whole),
                            name(txns, x.txn)
                        )],
                        &[x.txn],
                    ));
                }
            }
        }
    }
    // Version orders, and what the reads alone show.
    let mut orders: Vec<Option<Cow<[i64]>>> = Vec::with_capacity(nkeys);
    for (k, r) in reads.iter_mut().enumerate() {
        orders.push(order_of(txns, k as u32, r, &mut writers, &mut found));
    }
    // A transaction is committed when it completed ok, or when another read what it wrote.
    let mut seen_txn = vec![false; txns.txns.len()];
    for w in writers.values() {
        if w.observed {
            seen_txn[w.txn as usize] = true;
        }
    }
    let committed = |t: u32| txns.txns[t as usize].ok() || seen_txn[t as usize];
    let mut deps = Vec::new();
    for k in 0..nkeys {
        let key = k as u32;
        if let Some(order) = &orders[k] {
            edges(txns, key, order, &reads[k], &writers, &mut deps);
            let unseen: Vec<(u32, i64)> = appends[k]
                .iter()
                .copied()
                .filter(|&(t, e)| committed(t) && !writers[&(key, e)].observed)
                .collect();
            unobserved(txns, key, order, &reads[k], &unseen, &writers, &mut deps);
        }
        lost_updates(txns, key, &reads[k], &mut found);
    }
    let mut notes = found.notes();
    notes.insert(
        0,
        format!(
            "{} appends, {} reads of {} keys",
            writers.len(),
            reads.iter().map(Vec::len).sum::<usize>(),
            nkeys
        ),
    );
    Ok(Inferred {
        deps,
        anomalies: found.anomalies,
        notes,
    })
}

fn dep(from: u32, to: u32, rel: Rel, key: u32, a: Option<i64>, b: Option<i64>, source: u8) -> Dep {
    Dep::new(from, to, rel, key, a, b, source)
}

/// Checks an ok transaction's reads against its own appends, and records them.
fn own_reads(txns: &Txns, t: u32, reads: &mut [Vec<Read>], found: &mut Found) {
    let tx = &txns.txns[t as usize];
    // key -> (what the list must be now, if known; own appends before the first read)
    let mut state: Vec<(u32, Option<Vec<i64>>, Vec<i64>)> = Vec::new();
    for (i, m) in tx.mops.iter().enumerate() {
        let s = match state.iter().position(|s| s.0 == m.key) {
            Some(p) => p,
            None => {
                state.push((m.key, None, Vec::new()));
                state.len() - 1
            }
        };
        match (m.f, &m.value) {
            (MopKind::Append, MopValue::Int(e)) => match &mut state[s].1 {
                Some(now) => now.push(*e),
                None => state[s].2.push(*e),
            },
            (MopKind::Read, v) => {
                let l = list(v);
                let k = txns.key(m.key);
                let later: Vec<i64> = tx.mops[i + 1..]
                    .iter()
                    .filter(|n| n.key == m.key && n.f == MopKind::Append)
                    .filter_map(|n| n.value.int())
                    .filter(|e| l.contains(e))
                    .collect();
                if let Some(&e) = later.first() {
                    found.push(anomaly(
                        txns,
                        "future-read",
                        Some(m.key),
                        format!(
                            "future read: {} read {e} in {k} before appending it",
                            name(txns, t)
                        ),
                        vec![format!(
                            "{} read {k} = {}, which holds {e}, but {} only appends {e} to {k} \
                             later in the same transaction.",
                            name(txns, t),
                            show_list(l),
                            name(txns, t)
                        )],
                        &[t],
                    ));
                }
                let (first, before_write) = (state[s].1.is_none(), state[s].2.is_empty());
                let mut external = None;
                match &state[s].1 {
                    Some(expected) if expected.as_slice() != l => found.push(anomaly(
                        txns,
                        "internal",
                        Some(m.key),
                        format!(
                            "internal: {} read {k} inconsistently with itself",
                            name(txns, t)
                        ),
                        vec![format!(
                            "{} read {k} = {}, but from its own earlier reads and appends it \
                             should have been {}.",
                            name(txns, t),
                            show_list(l),
                            show_list(expected)
                        )],
                        &[t],
                    )),
                    Some(_) => {}
                    None => {
                        let own = &state[s].2;
                        if l.ends_with(own) {
                            external = Some((l.len() - own.len()) as u32);
                        } else {
                            found.push(anomaly(
                                txns,
                                "internal",
                                Some(m.key),
                                format!(
                                    "internal: {} did not read its own appends to {k}",
                                    name(txns, t)
                                ),
                                vec![format!(
                                    "{} appended {} to {k} and then read {k} = {}, which does not \
                                     end with them.",
                                    name(txns, t),
                                    show_list(own),
                                    show_list(l)
                                )],
                                &[t],
                            ));
                        }
                    }
                }
                // What the list must be at the next read of the key, if there is one.
                let again = tx.mops[i + 1..]
                    .iter()
                    .any(|n| n.key == m.key && n.f == MopKind::Read);
                state[s].1 = Some(if again { l.to_vec() } else { Vec::new() });
                reads[m.key as usize].push(Read {
                    txn: t,
                    mop: i as u32,
                    external: if first { external } else { None },
                    before_write: first && before_write,
                    prefix: true,
                    len: l.len() as u32,
                });
            }
            _ => {}
        }
    }
}

/// The version order of key `k`: its longest read (each element once), or `None` when no
/// transaction read it. Marks the elements read as observed, the reads that are not a prefix
/// of the order, and reports what the reads alone show. A read that disagrees with the order
/// (`incompatible-order`) or repeats an element (`duplicate-elements`) is reported, and the
/// order is still used for the others, as Elle does.
fn order_of<'a>(
    txns: &'a Txns,
    k: u32,
    reads: &mut [Read],
    writers: &mut HashMap<(u32, i64), Writer>,
    found: &mut Found,
) -> Option<Cow<'a, [i64]>> {
    let value =
        |r: &Read| &list(&txns.txns[r.txn as usize].mops[r.mop as usize].value)[..r.len as usize];
    let key = txns.key(k);
    let longest = *reads.iter().max_by_key(|r| value(r).len())?;
    let full = value(&longest);
    let order: Cow<'a, [i64]> = if repeated(full).is_none() {
        Cow::Borrowed(full)
    } else {
        let mut once = HashSet::new();
        Cow::Owned(full.iter().copied().filter(|e| once.insert(*e)).collect())
    };
    // Everything a prefix of the longest read holds, the longest holds too: its elements are
    // checked once, and each other read's only when it is not such a prefix.
    for r in reads.iter_mut() {
        let l = value(r);
        let is_longest = r.txn == longest.txn && r.mop == longest.mop;
        if (is_longest || !full.starts_with(l)) && !elements(txns, k, r, l, writers, found) {
            r.prefix = false;
        }
        if r.prefix && !order.starts_with(l) {
            r.prefix = false;
            found.push(anomaly(
                txns,
                "incompatible-order",
                Some(k),
                format!("incompatible order of {key}"),
                vec![format!(
                    "{} read {key} = {} and {} read {key} = {}: neither is a prefix of the \
                     other, so they cannot be two moments of one list.",
                    name(txns, r.txn),
                    show_list(l),
                    name(txns, longest.txn),
                    show_list(full)
                )],
                &[r.txn, longest.txn],
            ));
        }
    }
    // A committed append on top of a failed one.
    if let Some(i) = order.iter().position(|e| {
        writers
            .get(&(k, *e))
            .is_some_and(|w| txns.txns[w.txn as usize].failed())
    }) {
        let failed = writers[&(k, order[i])].txn;
        if let Some(&later) = order[i + 1..].iter().find(|e| {
            writers
                .get(&(k, **e))
                .is_some_and(|w| !txns.txns[w.txn as usize].failed())
        }) {
            let on_top = writers[&(k, later)].txn;
            found.push(anomaly(
                txns,
                "dirty-update",
                Some(k),
                format!("dirty update of {key}"),
                vec![format!(
                    "{key} holds {} from {}, which failed, followed by {later} from {}, which \
                     did not: a committed append was made on top of an aborted one.",
                    order[i],
                    name(txns, failed),
                    name(txns, on_top)
                )],
                &[failed, on_top],
            ));
        }
    }
    // Intermediate reads: a read that ends in the middle of another's appends.
    for r in reads {
        let Some(len) = r.external else { continue };
        let l = value(r);
        let Some(&last) = l[..len as usize].last() else {
            continue;
        };
        if let Some(w) = writers.get(&(k, last)) {
            if w.txn != r.txn && !w.last && !txns.txns[w.txn as usize].failed() {
                found.push(anomaly(
                    txns,
                    "G1b",
                    Some(k),
                    format!(
                        "intermediate read: {} saw {} half done",
                        name(txns, r.txn),
                        name(txns, w.txn)
                    ),
                    vec![format!(
                        "{} read {key} ending at {last}, which {} appended, but {} appended more \
                         to {key} after {last} in the same transaction: {} saw it half done.",
                        name(txns, r.txn),
                        name(txns, w.txn),
                        name(txns, w.txn),
                        name(txns, r.txn)
                    )],
                    &[r.txn, w.txn],
                ));
            }
        }
    }
    Some(order)
}

/// Checks the elements of one read `l` of key `k` by `r`: repeated, never appended, appended
/// by a failed transaction, or tearing one transaction's appends apart; marks them observed.
/// False when the read cannot be a version (a repeat or a tear).
fn elements(
    txns: &Txns,
    k: u32,
    r: &Read,
    l: &[i64],
    writers: &mut HashMap<(u32, i64), Writer>,
    found: &mut Found,
) -> bool {
    let key = txns.key(k);
    let mut clean = true;
    if let Some(e) = repeated(l) {
        clean = false;
        let n = l.iter().filter(|&&x| x == e).count();
        found.push(anomaly(
            txns,
            "duplicate-elements",
            Some(k),
            format!("duplicate elements: {e} appears {n} times in {key}"),
            vec![format!(
                "{} read {key} = {}, in which {e} appears {n} times; it was appended once.",
                name(txns, r.txn),
                show_list(l)
            )],
            &[r.txn],
        ));
    }
    for &e in l {
        match writers.get_mut(&(k, e)) {
            None => found.push(anomaly(
                txns,
                "garbage-read",
                Some(k),
                format!("garbage read: {e} in {key} was never appended"),
                vec![format!(
                    "{} read {key} = {}, which holds {e}, but no transaction appended {e} to \
                     {key}.",
                    name(txns, r.txn),
                    show_list(l)
                )],
                &[r.txn],
            )),
            Some(w) => {
                w.observed = true;
                if txns.txns[w.txn as usize].failed() {
                    found.push(anomaly(
                        txns,
                        "G1a",
                        Some(k),
                        format!(
                            "aborted read: {} saw {e} in {key} from a failed transaction",
                            name(txns, r.txn)
                        ),
                        vec![format!(
                            "{} read {key} = {}, which holds {e}, appended by {}, which \
                             failed: it never happened, so nobody may see it.",
                            name(txns, r.txn),
                            show_list(l),
                            name(txns, w.txn)
                        )],
                        &[r.txn, w.txn],
                    ));
                }
            }
        }
    }
    // A transaction's appends to a key land together and in order: no version holds one
    // of them without the one before it right ahead of it.
    let torn = l.iter().enumerate().find_map(|(i, e)| {
        let p = writers.get(&(k, *e))?.prev?;
        (i == 0 || l[i - 1] != p).then_some((*e, p))
    });
    if let Some((e, p)) = torn.filter(|_| r.prefix) {
        clean = false;
        let w = writers[&(k, e)].txn;
        found.push(anomaly(
            txns,
            "incompatible-order",
            Some(k),
            format!("impossible version of {key}"),
            vec![format!(
                "{} read {key} = {}, but {} appended {p} to {key} right before {e}: no \
                 version of {key} holds {e} without {p} just ahead of it.",
                name(txns, r.txn),
                show_list(l),
                name(txns, w)
            )],
            &[r.txn, w],
        ));
    }
    clean
}

/// An element that appears more than once in `l`, if any (reads are short: a key retires
/// after a few appends, so pairs are compared directly below a few dozen elements).
fn repeated(l: &[i64]) -> Option<i64> {
    if l.len() <= 48 {
        return (1..l.len()).find_map(|i| l[..i].contains(&l[i]).then_some(l[i]));
    }
    let mut seen = HashSet::with_capacity(l.len());
    l.iter().copied().find(|e| !seen.insert(*e))
}

/// The ww, wr and rw edges of key `k` from its version order.
fn edges(
    txns: &Txns,
    k: u32,
    order: &[i64],
    reads: &[Read],
    writers: &HashMap<(u32, i64), Writer>,
    deps: &mut Vec<Dep>,
) {
    let writer = |e: i64| writers.get(&(k, e)).map(|w| w.txn);
    let mut prev: Option<(i64, u32)> = None;
    for &e in order {
        let w = writer(e);
        if let (Some((a, wa)), Some(wb)) = (prev, w) {
            if wa != wb {
                deps.push(dep(wa, wb, Rel::Ww, k, Some(a), Some(e), 0));
            }
        }
        prev = w.map(|w| (e, w));
    }
    for r in reads {
        let Some(len) = r.external else { continue };
        let l = list(&txns.txns[r.txn as usize].mops[r.mop as usize].value);
        let seen = &l[..len as usize];
        let last = seen.last().copied();
        if let Some(w) = last.and_then(writer) {
            deps.push(dep(w, r.txn, Rel::Wr, k, last, None, 0));
        }
        if !r.prefix {
            continue;
        }
        if let Some(&next) = order.get(seen.len()) {
            // When the same transaction appended both, the read saw it half done: that is
            // G1b, reported as such, not a cycle.
            if let Some(w) = writer(next).filter(|&w| last.and_then(writer) != Some(w)) {
                deps.push(dep(r.txn, w, Rel::Rw, k, last, Some(next), 0));
            }
        }
    }
}

/// Edges to the committed appends of `k` that nobody read: after the last element read, and
/// after every read of `k`.
fn unobserved(
    txns: &Txns,
    k: u32,
    order: &[i64],
    reads: &[Read],
    unseen: &[(u32, i64)],
    writers: &HashMap<(u32, i64), Writer>,
    deps: &mut Vec<Dep>,
) {
    if unseen.is_empty() {
        return;
    }
    let last = order.last().copied();
    let last_writer = last.and_then(|e| writers.get(&(k, e)).map(|w| w.txn));
    for &(t, e) in unseen {
        if let Some(w) = last_writer {
            deps.push(dep(w, t, Rel::Ww, k, last, Some(e), UNOBSERVED));
        }
        for r in reads {
            let Some(len) = r.external else { continue };
            // A read that missed part of the order already reaches the append through its
            // anti-dependency on the next element and the appends after it (rw, then ww to
            // the last and on to this one): only reads of the whole order need their own edge.
            if r.prefix && last_writer.is_some() && (len as usize) < order.len() {
                continue;
            }
            let l = list(&txns.txns[r.txn as usize].mops[r.mop as usize].value);
            let seen_last = l[..len as usize].last().copied();
            // A read that ended at an earlier append of the same transaction saw it half
            // done (G1b), which is no anti-dependency.
            if seen_last
                .and_then(|x| writers.get(&(k, x)))
                .is_some_and(|w| w.txn == t)
            {
                continue;
            }
            deps.push(dep(r.txn, t, Rel::Rw, k, seen_last, Some(e), UNOBSERVED));
        }
    }
}

/// Committed transactions that read the same version of `k` before appending to it.
fn lost_updates(txns: &Txns, k: u32, reads: &[Read], found: &mut Found) {
    let mut groups: HashMap<(usize, Option<i64>), Vec<u32>> = HashMap::new();
    for r in reads {
        if !r.before_write {
            continue;
        }
        let tx = &txns.txns[r.txn as usize];
        if !tx.mops.iter().any(|m| m.key == k && m.f == MopKind::Append) {
            continue;
        }
        let l = list(&tx.mops[r.mop as usize].value);
        groups
            .entry((l.len(), l.last().copied()))
            .or_default()
            .push(r.txn);
    }
    let key = txns.key(k);
    let mut groups: Vec<_> = groups.into_iter().filter(|(_, v)| v.len() > 1).collect();
    groups.sort();
    for ((_, last), ts) in groups {
        let names: Vec<String> = ts.iter().map(|&t| name(txns, t)).collect();
        let version = match last {
            Some(e) => format!("ending at {e}"),
            None => "empty".into(),
        };
        found.push(anomaly(
            txns,
            "lost-update",
            Some(k),
            format!("lost update of {key}: {}", names.join(", ")),
            vec![format!(
                "{} all read {key} at the same version ({version}) and then each appended to \
                 it: whichever came later did not see the other's update.",
                names.join(", ")
            )],
            &ts,
        ));
    }
}
