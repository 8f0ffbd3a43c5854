//! A brute-force oracle for the transactional checkers, for tests: is there a serial order of
//! the transactions that explains every read (serializability, Papadimitriou 1979), and, when
//! asked, one that also respects real time (strict serializability)?
//!
//! Jepsen's semantics (shared/DESIGN.md section 2): every `ok` transaction is in the order,
//! no `fail` transaction is, and each `info` transaction (or invocation without completion) is
//! in it wholly or not at all; its reads are unknown, so they are not checked. An `ok`
//! transaction's reads must equal the state at its place in the order, its own earlier writes
//! included. Under real time, an `ok` transaction that completed before another was invoked
//! comes first; an `info` one never precedes anything by real time, since it may take effect
//! at any time after its invocation.
//!
//! The search places transactions one at a time and checks each one's reads as it is placed,
//! so a wrong prefix is abandoned at once. The only reduction is a table of dead ends keyed by
//! (transactions placed, state reached): what can still follow depends on nothing else. Still
//! exponential: [`MAX_TXNS`] bounds it.

use history::txn::{self, MopKind, MopValue, Txn};
use history::{EventType, History, Paired};
use std::collections::HashSet;

/// Which data model the keys follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Every key is a list: `append` pushes an element, `r` returns the whole list (`null` and
    /// `[]` both mean the empty list).
    ListAppend,
    /// Every key is a register: `w` sets it, `r` returns its value (`null`: never written).
    RwRegister,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        }
    }

    /// The micro-op that writes a key in this model.
    pub fn write_kind(self) -> MopKind {
        match self {
            Workload::ListAppend => MopKind::Append,
            Workload::RwRegister => MopKind::Write,
        }
    }
}

/// The most transactions (`ok` and `info`; `fail` ones do not count) the oracle takes on.
pub const MAX_TXNS: usize = 12;

/// A serial order that explains `history`, as indices into [`history::txn::txns`]'s list, or
/// `None` if there is none. With `strict`, the order also respects real time. An error means
/// the history is not one the oracle can judge: malformed txns, micro-ops outside `kind`, or
/// more than [`MAX_TXNS`] transactions.
pub fn serializable(
    history: &History,
    paired: &Paired,
    kind: Workload,
    strict: bool,
) -> Result<Option<Vec<usize>>, String> {
    let txns = txn::txns(history, paired).map_err(|e| e.to_string())?;
    serializable_txns(&txns, kind, strict)
}

/// [`serializable`] over transactions already read.
pub fn serializable_txns(
    txns: &[Txn],
    kind: Workload,
    strict: bool,
) -> Result<Option<Vec<usize>>, String> {
    let prepared = prepare(txns, kind)?;
    let candidates: Vec<usize> = (0..txns.len())
        .filter(|&i| txns[i].kind != EventType::Fail)
        .collect();
    if candidates.len() > MAX_TXNS {
        return Err(format!(
            "the oracle tries every order, so it takes at most {MAX_TXNS} transactions that \
             are not `fail`; this history has {}",
            candidates.len()
        ));
    }
    // Bit b of a mask stands for candidates[b].
    let required = candidates
        .iter()
        .enumerate()
        .filter(|(_, &t)| txns[t].kind == EventType::Ok)
        .fold(0u32, |m, (b, _)| m | 1 << b);
    let preds = candidates
        .iter()
        .map(|&t| {
            candidates
                .iter()
                .enumerate()
                .filter(|(_, &u)| strict && precedes(&txns[u], &txns[t]))
                .fold(0u32, |m, (b, _)| m | 1 << b)
        })
        .collect();
    let mut search = Search {
        txns: &prepared,
        candidates,
        required,
        preds,
        state: vec![Vec::new(); prepared.keys],
        order: Vec::new(),
        dead: HashSet::new(),
    };
    Ok(search.go(0).then_some(search.order))
}

/// Why `order` (indices into `txns`) does not explain the transactions, or `Ok` if it does:
/// the same rules as [`serializable`], checked for one given order. For tests to confirm an
/// order the oracle (or a checker) proposes.
pub fn explains(txns: &[Txn], order: &[usize], kind: Workload, strict: bool) -> Result<(), String> {
    let prepared = prepare(txns, kind)?;
    let mut position = vec![None; txns.len()];
    for (at, &t) in order.iter().enumerate() {
        let slot = position
            .get_mut(t)
            .ok_or_else(|| format!("T{t} is not a transaction of the history"))?;
        if slot.replace(at).is_some() {
            return Err(format!("T{t} is in the order twice"));
        }
        if txns[t].kind == EventType::Fail {
            return Err(format!("T{t} failed, so it cannot be in the order"));
        }
    }
    for (t, txn) in txns.iter().enumerate() {
        if txn.kind == EventType::Ok && position[t].is_none() {
            return Err(format!("T{t} completed ok, so it must be in the order"));
        }
    }
    if strict {
        for (a, pa) in position.iter().enumerate() {
            for (b, pb) in position.iter().enumerate() {
                if let (Some(pa), Some(pb)) = (pa, pb) {
                    if pb < pa && precedes(&txns[a], &txns[b]) {
                        return Err(format!(
                            "T{a} completed before T{b} was invoked, but comes after it"
                        ));
                    }
                }
            }
        }
    }
    let mut state = vec![Vec::new(); prepared.keys];
    for &t in order {
        if let Err(m) = apply(&prepared[t], &mut state) {
            let mop = &txns[t].mops[m];
            let key = prepared[t].mops[m].key;
            return Err(format!(
                "T{t}'s {mop} does not match the state {} of its place in the order",
                show(&state[key])
            ));
        }
    }
    Ok(())
}

/// Whether `a` must come before `b` in real time: `a` completed `ok` before `b` was invoked.
fn precedes(a: &Txn, b: &Txn) -> bool {
    a.kind == EventType::Ok && a.complete.is_some_and(|c| c < b.invoke)
}

/// A micro-op with its key numbered and its value in the oracle's one shape: every key's state
/// is a list, a register being a list of at most one element.
struct PreparedMop {
    key: usize,
    op: Step,
}

enum Step {
    /// A read whose result must be the state; `None` when unchecked (not an `ok` txn).
    Read(Option<Vec<i64>>),
    /// A read whose result no state can equal (a list read from a register, or the reverse).
    Impossible,
    Append(i64),
    Set(i64),
}

struct Prepared {
    mops: Vec<PreparedMop>,
}

struct PreparedTxns {
    txns: Vec<Prepared>,
    keys: usize,
}

impl std::ops::Index<usize> for PreparedTxns {
    type Output = Prepared;
    fn index(&self, i: usize) -> &Prepared {
        &self.txns[i]
    }
}

fn prepare(txns: &[Txn], kind: Workload) -> Result<PreparedTxns, String> {
    let mut keys: Vec<&str> = Vec::new();
    let mut out = Vec::with_capacity(txns.len());
    for (t, txn) in txns.iter().enumerate() {
        let checked = txn.kind == EventType::Ok;
        let mut mops = Vec::with_capacity(txn.mops.len());
        for (m, mop) in txn.mops.iter().enumerate() {
            let key = match keys.iter().position(|k| *k == mop.key) {
                Some(k) => k,
                None => {
                    keys.push(&mop.key);
                    keys.len() - 1
                }
            };
            let op = match (kind, mop.f, &mop.value) {
                (_, MopKind::Read, _) if !checked => Step::Read(None),
                (_, MopKind::Read, MopValue::Nil) => Step::Read(Some(Vec::new())),
                (Workload::ListAppend, MopKind::Read, MopValue::List(l)) => {
                    Step::Read(Some(l.clone()))
                }
                (Workload::RwRegister, MopKind::Read, MopValue::Int(v)) => {
                    Step::Read(Some(vec![*v]))
                }
                (_, MopKind::Read, _) => Step::Impossible,
                (Workload::ListAppend, MopKind::Append, MopValue::Int(v)) => Step::Append(*v),
                (Workload::RwRegister, MopKind::Write, MopValue::Int(v)) => Step::Set(*v),
                _ => {
                    return Err(format!(
                        "T{t} micro-op {m} ({mop}) is not a {} micro-op",
                        kind.name()
                    ))
                }
            };
            mops.push(PreparedMop { key, op });
        }
        out.push(Prepared { mops });
    }
    Ok(PreparedTxns {
        txns: out,
        keys: keys.len(),
    })
}

/// Runs a transaction on `state`; on a read that does not match, the position of that
/// micro-op (and `state` is left part-way).
fn apply(txn: &Prepared, state: &mut [Vec<i64>]) -> Result<(), usize> {
    for (m, mop) in txn.mops.iter().enumerate() {
        let s = &mut state[mop.key];
        match &mop.op {
            Step::Read(None) => {}
            Step::Read(Some(want)) => {
                if want != s {
                    return Err(m);
                }
            }
            Step::Impossible => return Err(m),
            Step::Append(v) => s.push(*v),
            Step::Set(v) => {
                s.clear();
                s.push(*v);
            }
        }
    }
    Ok(())
}

fn show(list: &[i64]) -> String {
    MopValue::List(list.to_vec()).to_string()
}

struct Search<'a> {
    txns: &'a PreparedTxns,
    /// The transactions that may be placed (not `fail`), by bit position.
    candidates: Vec<usize>,
    /// Bits of the `ok` candidates: the order is complete once they are all placed.
    required: u32,
    /// For each candidate, the bits of the candidates that must come before it in real time.
    preds: Vec<u32>,
    state: Vec<Vec<i64>>,
    order: Vec<usize>,
    /// (placed, state) pairs from which no completion exists.
    dead: HashSet<(u32, Vec<Vec<i64>>)>,
}

impl Search<'_> {
    fn go(&mut self, placed: u32) -> bool {
        // The `info` transactions not placed yet are simply left out.
        if placed & self.required == self.required {
            return true;
        }
        if self.dead.contains(&(placed, self.state.clone())) {
            return false;
        }
        for b in 0..self.candidates.len() {
            let bit = 1u32 << b;
            if placed & bit != 0 || self.preds[b] & !placed != 0 {
                continue;
            }
            let t = self.candidates[b];
            let saved = self.state.clone();
            if apply(&self.txns[t], &mut self.state).is_ok() {
                self.order.push(t);
                if self.go(placed | bit) {
                    return true;
                }
                self.order.pop();
            }
            self.state = saved;
        }
        self.dead.insert((placed, self.state.clone()));
        false
    }
}

/// The weak levels of Biswas and Enea ("On the complexity of checking transactional
/// consistency", OOPSLA 2019, section 3), by brute force, for rw-register with unique written
/// values (and list-append, [`weak_lists`]): a commit order (indices into `txns`) under which
/// `level` holds, or `None`.
///
/// Straight from the definitions, with nothing of the checker's ([`super::saturate`]): the
/// transactions are the `ok` ones and the `info` ones some read saw (an `info` transaction
/// nobody read from has no edge out, so is visible to nobody, and may be left out); session
/// order is each process's transactions in order, reads-from names the writer of each value
/// read. A read the history cannot explain at all (a value nobody wrote, a failed or
/// intermediate write, the reader's own later write, or one that disagrees with the
/// transaction's own earlier reads and writes) breaks every level. Otherwise every total
/// order of the transactions that extends session order and reads-from is tried, and the
/// level's axiom checked for each: for every read of x in t that reads from t1 (the initial
/// state precedes everything) and every other t2 that writes x and is visible to the read,
/// t2 comes before t1. Visible: read committed, t2 precedes t in session order or t read
/// from t2 before the read; read atomic, t2 precedes t in session order or t read from t2;
/// causal, t2 reaches t through session order and reads-from. Exponential: [`MAX_TXNS`].
pub fn weak_txns(
    txns: &[Txn],
    kind: Workload,
    level: super::saturate::Level,
) -> Result<Option<Vec<usize>>, String> {
    use super::saturate::Level;
    prepare(txns, kind)?;
    if kind == Workload::ListAppend {
        return weak_lists(txns, level);
    }
    let n = txns.len();
    const INIT: usize = usize::MAX;
    // (reader, micro-op, key, writer or INIT)
    let mut reads: Vec<(usize, usize, &str, usize)> = Vec::new();
    let writer_of = |key: &str, v: i64| {
        txns.iter().enumerate().find_map(|(w, tx)| {
            let last = tx
                .mops
                .iter()
                .rposition(|m| m.f == MopKind::Write && m.key == key)?;
            let at = tx.mops.iter().position(|m| {
                m.f == MopKind::Write && m.key == key && m.value == MopValue::Int(v)
            })?;
            Some((w, at == last))
        })
    };
    for (t, tx) in txns.iter().enumerate() {
        if tx.kind != EventType::Ok {
            continue;
        }
        let mut now: Vec<(&str, &MopValue)> = Vec::new();
        for (i, m) in tx.mops.iter().enumerate() {
            let known = now.iter().position(|(k, _)| *k == m.key);
            if m.f == MopKind::Write {
                match known {
                    Some(p) => now[p].1 = &m.value,
                    None => now.push((&m.key, &m.value)),
                }
                continue;
            }
            if let Some(p) = known {
                if now[p].1 != &m.value {
                    return Ok(None);
                }
                continue;
            }
            now.push((&m.key, &m.value));
            let from = match m.value {
                MopValue::Nil => INIT,
                MopValue::Int(v) => match writer_of(&m.key, v) {
                    Some((w, true)) if w != t && txns[w].kind != EventType::Fail => w,
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            };
            reads.push((t, i, &m.key, from));
        }
    }
    let included: Vec<bool> = (0..n)
        .map(|t| txns[t].kind == EventType::Ok || reads.iter().any(|r| r.3 == t))
        .collect();
    let members = members(&included)?;
    let so = |a: usize, b: usize| {
        a < b && included[a] && included[b] && txns[a].process == txns[b].process
    };
    let wr = |a: usize, b: usize| reads.iter().any(|r| r.3 == a && r.0 == b);
    // (so ∪ wr)+, by Warshall.
    let mut hb = vec![vec![false; n]; n];
    for a in 0..n {
        for b in 0..n {
            hb[a][b] = included[a] && included[b] && (so(a, b) || wr(a, b));
        }
    }
    for k in 0..n {
        for a in 0..n {
            for b in 0..n {
                if hb[a][k] && hb[k][b] {
                    hb[a][b] = true;
                }
            }
        }
    }
    let writes = |t: usize, key: &str| {
        txns[t]
            .mops
            .iter()
            .any(|m| m.f == MopKind::Write && m.key == key)
    };
    // Pairs (t2, t1): t2 must come before t1. A visible writer of a key read from the
    // initial state can come before nothing: no order.
    let mut before: Vec<(usize, usize)> = Vec::new();
    for &(t, mop, key, from) in &reads {
        for &t2 in &members {
            if t2 == t || t2 == from || !writes(t2, key) {
                continue;
            }
            let visible = match level {
                Level::ReadCommitted => {
                    so(t2, t) || reads.iter().any(|r| r.0 == t && r.1 < mop && r.3 == t2)
                }
                Level::ReadAtomic => so(t2, t) || wr(t2, t),
                Level::Causal => hb[t2][t],
            };
            if !visible {
                continue;
            }
            if from == INIT {
                return Ok(None);
            }
            before.push((t2, from));
        }
    }
    for a in 0..n {
        for b in 0..n {
            if included[a] && included[b] && (so(a, b) || wr(a, b)) {
                before.push((a, b));
            }
        }
    }
    // Every order, placing a transaction only once all that must precede it are placed; what
    // can follow depends only on the set placed, so dead ends are remembered by it.
    let bit = |t: usize| 1u32 << members.iter().position(|&m| m == t).unwrap_or(0);
    let needs: Vec<u32> = members
        .iter()
        .map(|&t| {
            before
                .iter()
                .filter(|&&(_, b)| b == t)
                .fold(0u32, |m, &(a, _)| m | bit(a))
        })
        .collect();
    fn place(needs: &[u32], placed: u32, order: &mut Vec<usize>, dead: &mut HashSet<u32>) -> bool {
        if order.len() == needs.len() {
            return true;
        }
        if dead.contains(&placed) {
            return false;
        }
        for (i, &need) in needs.iter().enumerate() {
            if placed & 1 << i != 0 || need & !placed != 0 {
                continue;
            }
            order.push(i);
            if place(needs, placed | 1 << i, order, dead) {
                return true;
            }
            order.pop();
        }
        dead.insert(placed);
        false
    }
    let mut order = Vec::new();
    let found = place(&needs, 0, &mut order, &mut HashSet::new());
    let order: Vec<usize> = order.into_iter().map(|i| members[i]).collect();
    debug_assert!(!found || weak_axiom_holds(&order, &before));
    Ok(found.then_some(order))
}

/// [`weak_txns`] for list-append, where a key's state is the list of its appends: each key's
/// versions form one chain (the appends in commit order), and a read of x that reads from t1
/// (the appender of the last element it saw of others) returns exactly the chain up to and
/// including t1's appends, then the reader's own. So besides the level's axiom, every
/// commit order tried must give each read the list it returned. An element nobody appended,
/// or a failed transaction's, or its own later one, or twice, breaks every level, as does a
/// read that disagrees with the transaction's own earlier reads and appends.
fn weak_lists(txns: &[Txn], level: super::saturate::Level) -> Result<Option<Vec<usize>>, String> {
    use super::saturate::Level;
    use std::collections::HashMap;
    const INIT: usize = usize::MAX;
    let n = txns.len();
    let mut keys: Vec<&str> = Vec::new();
    fn key_of<'a>(k: &'a str, keys: &mut Vec<&'a str>) -> usize {
        match keys.iter().position(|x| *x == k) {
            Some(i) => i,
            None => {
                keys.push(k);
                keys.len() - 1
            }
        }
    }
    let mut appender: HashMap<(usize, i64), usize> = HashMap::new();
    // Per transaction, its appends in order: (key, element).
    let mut appends: Vec<Vec<(usize, i64)>> = vec![Vec::new(); n];
    for (t, tx) in txns.iter().enumerate() {
        for m in &tx.mops {
            if let (MopKind::Append, MopValue::Int(e)) = (m.f, &m.value) {
                let k = key_of(&m.key, &mut keys);
                if appender.insert((k, *e), t).is_some() {
                    return Err(format!("{e} is appended to {} twice", m.key));
                }
                appends[t].push((k, *e));
            }
        }
    }
    struct Read {
        txn: usize,
        mop: usize,
        key: usize,
        from: usize,
        ext: Vec<i64>,
        srcs: Vec<usize>,
    }
    let mut reads: Vec<Read> = Vec::new();
    for (t, tx) in txns.iter().enumerate() {
        if tx.kind != EventType::Ok {
            continue;
        }
        // Per key: the list as it must be now (after a first read), or the own appends made
        // before the first read.
        let mut known: Vec<(usize, Option<Vec<i64>>, Vec<i64>)> = Vec::new();
        for (i, m) in tx.mops.iter().enumerate() {
            let k = key_of(&m.key, &mut keys);
            let s = match known.iter().position(|x| x.0 == k) {
                Some(s) => s,
                None => {
                    known.push((k, None, Vec::new()));
                    known.len() - 1
                }
            };
            let l: Vec<i64> = match (m.f, &m.value) {
                (MopKind::Append, MopValue::Int(e)) => {
                    match &mut known[s].1 {
                        Some(now) => now.push(*e),
                        None => known[s].2.push(*e),
                    }
                    continue;
                }
                (MopKind::Read, MopValue::Nil) => Vec::new(),
                (MopKind::Read, MopValue::List(l)) => l.clone(),
                _ => return Ok(None),
            };
            if let Some(now) = &known[s].1 {
                if *now != l {
                    return Ok(None);
                }
                continue;
            }
            let own = &known[s].2;
            if !l.ends_with(own) {
                return Ok(None);
            }
            let ext = l[..l.len() - own.len()].to_vec();
            let mut srcs = Vec::new();
            for (j, e) in ext.iter().enumerate() {
                if ext[..j].contains(e) {
                    return Ok(None);
                }
                match appender.get(&(k, *e)) {
                    Some(&a) if a != t && txns[a].kind != EventType::Fail => {
                        if !srcs.contains(&a) {
                            srcs.push(a);
                        }
                    }
                    _ => return Ok(None),
                }
            }
            let from = ext.last().map_or(INIT, |e| appender[&(k, *e)]);
            known[s].1 = Some(l);
            reads.push(Read {
                txn: t,
                mop: i,
                key: k,
                from,
                ext,
                srcs,
            });
        }
    }
    let included: Vec<bool> = (0..n)
        .map(|t| txns[t].kind == EventType::Ok || reads.iter().any(|r| r.srcs.contains(&t)))
        .collect();
    let members = members(&included)?;
    let so = |a: usize, b: usize| {
        a < b && included[a] && included[b] && txns[a].process == txns[b].process
    };
    let wr = |a: usize, b: usize| reads.iter().any(|r| r.txn == b && r.srcs.contains(&a));
    let mut hb = vec![vec![false; n]; n];
    for a in 0..n {
        for b in 0..n {
            hb[a][b] = included[a] && included[b] && (so(a, b) || wr(a, b));
        }
    }
    for k in 0..n {
        for a in 0..n {
            for b in 0..n {
                if hb[a][k] && hb[k][b] {
                    hb[a][b] = true;
                }
            }
        }
    }
    let mut before: Vec<(usize, usize)> = Vec::new();
    for r in &reads {
        for &t2 in &members {
            if t2 == r.txn || t2 == r.from || !appends[t2].iter().any(|a| a.0 == r.key) {
                continue;
            }
            let visible = match level {
                Level::ReadCommitted => {
                    so(t2, r.txn)
                        || reads
                            .iter()
                            .any(|q| q.txn == r.txn && q.mop < r.mop && q.srcs.contains(&t2))
                }
                Level::ReadAtomic => so(t2, r.txn) || wr(t2, r.txn),
                Level::Causal => hb[t2][r.txn],
            };
            if !visible {
                continue;
            }
            if r.from == INIT {
                return Ok(None);
            }
            before.push((t2, r.from));
        }
    }
    for &a in &members {
        for &b in &members {
            if so(a, b) || wr(a, b) {
                before.push((a, b));
            }
        }
    }
    let needs: Vec<u32> = members
        .iter()
        .map(|&t| {
            before
                .iter()
                .filter(|&&(_, b)| b == t)
                .fold(0u32, |m, &(a, _)| {
                    m | 1 << members.iter().position(|&x| x == a).unwrap_or(0)
                })
        })
        .collect();
    // The reads each member is the source of.
    let sourced: Vec<Vec<usize>> = members
        .iter()
        .map(|&t| (0..reads.len()).filter(|&r| reads[r].from == t).collect())
        .collect();
    struct Search<'a> {
        members: &'a [usize],
        needs: &'a [u32],
        appends: &'a [Vec<(usize, i64)>],
        sourced: &'a [Vec<usize>],
        ext: Vec<(usize, &'a [i64])>,
        chains: Vec<Vec<i64>>,
        order: Vec<usize>,
        dead: HashSet<(u32, Vec<Vec<i64>>)>,
    }
    impl Search<'_> {
        fn go(&mut self, placed: u32) -> bool {
            if self.order.len() == self.members.len() {
                return true;
            }
            if self.dead.contains(&(placed, self.chains.clone())) {
                return false;
            }
            for i in 0..self.members.len() {
                if placed & 1 << i != 0 || self.needs[i] & !placed != 0 {
                    continue;
                }
                let t = self.members[i];
                let saved = self.chains.clone();
                for &(k, e) in &self.appends[t] {
                    self.chains[k].push(e);
                }
                let fits = self.sourced[i]
                    .iter()
                    .all(|&r| self.chains[self.ext[r].0] == self.ext[r].1);
                if fits {
                    self.order.push(t);
                    if self.go(placed | 1 << i) {
                        return true;
                    }
                    self.order.pop();
                }
                self.chains = saved;
            }
            self.dead.insert((placed, self.chains.clone()));
            false
        }
    }
    let mut search = Search {
        members: &members,
        needs: &needs,
        appends: &appends,
        sourced: &sourced,
        ext: reads.iter().map(|r| (r.key, r.ext.as_slice())).collect(),
        chains: vec![Vec::new(); keys.len()],
        order: Vec::new(),
        dead: HashSet::new(),
    };
    Ok(search.go(0).then_some(search.order))
}

/// Whether `order` puts each pair's first before its second.
fn weak_axiom_holds(order: &[usize], before: &[(usize, usize)]) -> bool {
    let at = |t: usize| order.iter().position(|&x| x == t);
    before.iter().all(|&(a, b)| match (at(a), at(b)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    })
}

/// [`weak_txns`] over a history.
pub fn weak(
    history: &History,
    paired: &Paired,
    kind: Workload,
    level: super::saturate::Level,
) -> Result<Option<Vec<usize>>, String> {
    let txns = txn::txns(history, paired).map_err(|e| e.to_string())?;
    weak_txns(&txns, kind, level)
}

/// The transactions the order must place (`included`), at most [`MAX_TXNS`] of them.
fn members(included: &[bool]) -> Result<Vec<usize>, String> {
    let members: Vec<usize> = (0..included.len()).filter(|&t| included[t]).collect();
    if members.len() > MAX_TXNS {
        return Err(format!(
            "the oracle tries every order, so it takes at most {MAX_TXNS} transactions; this \
             history has {}",
            members.len()
        ));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::{Event, Process};
    use serde_json::{json, Value};

    /// A history from `(process, type, value)` lines, times following positions.
    fn history(events: &[(u64, &str, Value)]) -> History {
        let mut h = History::new("oracle-test.jsonl");
        for (i, (p, kind, value)) in events.iter().enumerate() {
            let kind: EventType = serde_json::from_value(json!(kind)).expect("a type name");
            let event = Event {
                index: i as u64,
                time: 1000 * (i as u64 + 1),
                process: Process::Client(*p),
                kind,
                f: "txn".into(),
                key: None,
                value: value.clone(),
                node: None,
                error: None,
                local: false,
                siblings: false,
                context: None,
            };
            h.push(event, i + 1);
        }
        h
    }

    fn judge(h: &History, kind: Workload, strict: bool) -> Option<Vec<usize>> {
        let paired = history::pair(h).expect("the test history pairs");
        let order = serializable(h, &paired, kind, strict).expect("the oracle judges it");
        if let Some(order) = &order {
            let txns = txn::txns(h, &paired).expect("txns");
            explains(&txns, order, kind, strict).expect("the order found explains the history");
        }
        order
    }

    use Workload::{ListAppend, RwRegister};

    #[test]
    fn write_skew_is_not_serializable() {
        // G2-item: each reads the key the other writes, and neither sees the other's write.
        let h = history(&[
            (0, "invoke", json!([["r", "x", null], ["w", "y", 1]])),
            (1, "invoke", json!([["r", "y", null], ["w", "x", 2]])),
            (0, "ok", json!([["r", "x", null], ["w", "y", 1]])),
            (1, "ok", json!([["r", "y", null], ["w", "x", 2]])),
        ]);
        assert_eq!(judge(&h, RwRegister, false), None);
        assert_eq!(judge(&h, RwRegister, true), None);
        let h = history(&[
            (0, "invoke", json!([["r", "x", null], ["append", "y", 1]])),
            (1, "invoke", json!([["r", "y", null], ["append", "x", 2]])),
            (0, "ok", json!([["r", "x", []], ["append", "y", 1]])),
            (1, "ok", json!([["r", "y", []], ["append", "x", 2]])),
            (2, "invoke", json!([["r", "x", null], ["r", "y", null]])),
            (2, "ok", json!([["r", "x", [2]], ["r", "y", [1]]])),
        ]);
        assert_eq!(judge(&h, ListAppend, false), None);
        // Without the second reader's blindness it is fine: T1 then T0.
        let h = history(&[
            (0, "invoke", json!([["r", "x", null], ["append", "y", 1]])),
            (1, "invoke", json!([["r", "y", null], ["append", "x", 2]])),
            (0, "ok", json!([["r", "x", [2]], ["append", "y", 1]])),
            (1, "ok", json!([["r", "y", []], ["append", "x", 2]])),
        ]);
        assert_eq!(judge(&h, ListAppend, true), Some(vec![1, 0]));
    }

    #[test]
    fn a_lost_update_is_not_serializable() {
        let h = history(&[
            (0, "invoke", json!([["r", "x", null], ["w", "x", 1]])),
            (1, "invoke", json!([["r", "x", null], ["w", "x", 2]])),
            (0, "ok", json!([["r", "x", null], ["w", "x", 1]])),
            (1, "ok", json!([["r", "x", null], ["w", "x", 2]])),
        ]);
        assert_eq!(judge(&h, RwRegister, false), None);
        let h = history(&[
            (0, "invoke", json!([["r", "x", null], ["append", "x", 1]])),
            (1, "invoke", json!([["r", "x", null], ["append", "x", 2]])),
            (0, "ok", json!([["r", "x", []], ["append", "x", 1]])),
            (1, "ok", json!([["r", "x", null], ["append", "x", 2]])),
        ]);
        assert_eq!(judge(&h, ListAppend, false), None);
    }

    #[test]
    fn an_aborted_read_is_not_serializable() {
        let h = history(&[
            (0, "invoke", json!([["append", "x", 1]])),
            (0, "fail", json!([["append", "x", 1]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", [1]]])),
        ]);
        assert_eq!(judge(&h, ListAppend, false), None);
        let h = history(&[
            (0, "invoke", json!([["w", "x", 1]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", 1]])),
            (0, "fail", json!([["w", "x", 1]])),
        ]);
        assert_eq!(judge(&h, RwRegister, false), None);
    }

    #[test]
    fn a_stale_read_is_serializable_but_not_strict() {
        let h = history(&[
            (0, "invoke", json!([["w", "x", 1]])),
            (0, "ok", json!([["w", "x", 1]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", null]])),
        ]);
        assert_eq!(judge(&h, RwRegister, false), Some(vec![1, 0]));
        assert_eq!(judge(&h, RwRegister, true), None);
        // Overlapping, the same reads are strict-serializable.
        let h = history(&[
            (0, "invoke", json!([["append", "x", 1]])),
            (1, "invoke", json!([["r", "x", null]])),
            (0, "ok", json!([["append", "x", 1]])),
            (1, "ok", json!([["r", "x", []]])),
        ]);
        assert_eq!(judge(&h, ListAppend, true), Some(vec![1, 0]));
    }

    #[test]
    fn an_info_txn_is_in_the_order_exactly_when_its_effect_is_needed() {
        let visible = history(&[
            (0, "invoke", json!([["append", "x", 1], ["append", "y", 2]])),
            (0, "info", json!([["append", "x", 1], ["append", "y", 2]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", [1]]])),
        ]);
        assert_eq!(judge(&visible, ListAppend, true), Some(vec![0, 1]));
        let invisible = history(&[
            (0, "invoke", json!([["append", "x", 1], ["append", "y", 2]])),
            (0, "info", json!([["append", "x", 1], ["append", "y", 2]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", []]])),
        ]);
        // Left out; and completing `info` first does not place it first in real time.
        assert_eq!(judge(&invisible, ListAppend, true), Some(vec![1]));
        // Wholly or not at all: one append seen, the other not.
        let partial = history(&[
            (0, "invoke", json!([["append", "x", 1], ["append", "y", 2]])),
            (0, "info", json!([["append", "x", 1], ["append", "y", 2]])),
            (1, "invoke", json!([["r", "x", null], ["r", "y", null]])),
            (1, "ok", json!([["r", "x", [1]], ["r", "y", []]])),
        ]);
        assert_eq!(judge(&partial, ListAppend, false), None);
        // Seen after its `info` completion, by a reader that began later: it took effect late.
        let late = history(&[
            (0, "invoke", json!([["w", "x", 1]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", null]])),
            (0, "info", json!([["w", "x", 1]])),
            (2, "invoke", json!([["r", "x", null]])),
            (2, "ok", json!([["r", "x", 1]])),
        ]);
        assert_eq!(judge(&late, RwRegister, true), Some(vec![1, 0, 2]));
        // An invocation that never completed counts as `info`; its reads are not checked.
        let unfinished = history(&[
            (0, "invoke", json!([["r", "y", null], ["w", "x", 5]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", 5]])),
        ]);
        assert_eq!(judge(&unfinished, RwRegister, true), Some(vec![0, 1]));
    }

    #[test]
    fn a_valid_interleaving_is_found_in_real_time_order() {
        // T0 ‖ T1, both before T2; T3 overlaps T2. Reads force T1 < T0 < T3 < T2 among keys.
        let h = history(&[
            (0, "invoke", json!([["r", "x", null], ["append", "x", 2]])),
            (1, "invoke", json!([["append", "x", 1], ["r", "x", null]])),
            (1, "ok", json!([["append", "x", 1], ["r", "x", [1]]])),
            (0, "ok", json!([["r", "x", [1]], ["append", "x", 2]])),
            (2, "invoke", json!([["r", "y", null], ["r", "x", null]])),
            (3, "invoke", json!([["append", "y", 3], ["r", "y", null]])),
            (3, "ok", json!([["append", "y", 3], ["r", "y", [3]]])),
            (2, "ok", json!([["r", "y", [3]], ["r", "x", [1, 2]]])),
        ]);
        assert_eq!(judge(&h, ListAppend, true), Some(vec![1, 0, 3, 2]));
    }

    #[test]
    fn reads_see_the_txns_own_earlier_writes() {
        let own = history(&[
            (0, "invoke", json!([["append", "x", 1], ["r", "x", null]])),
            (0, "ok", json!([["append", "x", 1], ["r", "x", [1]]])),
        ]);
        assert_eq!(judge(&own, ListAppend, true), Some(vec![0]));
        let blind = history(&[
            (0, "invoke", json!([["w", "x", 1], ["r", "x", null]])),
            (0, "ok", json!([["w", "x", 1], ["r", "x", null]])),
        ]);
        assert_eq!(judge(&blind, RwRegister, false), None);
    }

    #[test]
    fn shapes_that_no_state_has_are_never_explained() {
        let h = history(&[
            (0, "invoke", json!([["r", "x", null]])),
            (0, "ok", json!([["r", "x", 3]])),
        ]);
        assert_eq!(judge(&h, ListAppend, false), None);
        let h = history(&[
            (0, "invoke", json!([["r", "x", null]])),
            (0, "ok", json!([["r", "x", []]])),
        ]);
        assert_eq!(judge(&h, RwRegister, false), None);
    }

    #[test]
    fn refuses_what_it_cannot_judge() {
        let wrong_model = history(&[
            (0, "invoke", json!([["w", "x", 1]])),
            (0, "ok", json!([["w", "x", 1]])),
        ]);
        let paired = history::pair(&wrong_model).unwrap();
        let e = serializable(&wrong_model, &paired, ListAppend, false).unwrap_err();
        assert!(e.contains("w(x,1)) is not a list-append micro-op"), "{e}");

        let mut events = Vec::new();
        for p in 0..=MAX_TXNS as u64 {
            events.push((p, "invoke", json!([["append", "x", p]])));
        }
        let big = history(&events);
        let paired = history::pair(&big).unwrap();
        let e = serializable(&big, &paired, ListAppend, false).unwrap_err();
        assert!(e.contains("at most 12 transactions"), "{e}");
    }

    #[test]
    fn explains_names_what_is_wrong_with_an_order() {
        let h = history(&[
            (0, "invoke", json!([["w", "x", 1]])),
            (0, "ok", json!([["w", "x", 1]])),
            (1, "invoke", json!([["r", "x", null]])),
            (1, "ok", json!([["r", "x", 1]])),
            (2, "invoke", json!([["w", "x", 2]])),
            (2, "fail", json!([["w", "x", 2]])),
        ]);
        let t = txn::txns(&h, &history::pair(&h).unwrap()).unwrap();
        assert_eq!(explains(&t, &[0, 1], RwRegister, true), Ok(()));
        let cases: [(&[usize], &str); 4] = [
            (&[0], "T1 completed ok, so it must be in the order"),
            (&[0, 1, 2], "T2 failed"),
            (&[1, 0], "T0 completed before T1 was invoked"),
            (&[0, 0, 1], "T0 is in the order twice"),
        ];
        for (order, want) in cases {
            let e = explains(&t, order, RwRegister, true).unwrap_err();
            assert!(e.contains(want), "{order:?}: {e}");
        }
        let e = explains(&t, &[1, 0], RwRegister, false).unwrap_err();
        assert_eq!(
            e,
            "T1's r(x)=1 does not match the state [] of its place in the order"
        );
    }

    /// Every subset of the `info` txns, every order: what the search and its table of dead
    /// ends must agree with.
    fn enumerate(txns: &[Txn], kind: Workload, strict: bool) -> bool {
        fn orders(
            rest: &mut Vec<usize>,
            order: &mut Vec<usize>,
            found: &mut dyn FnMut(&[usize]) -> bool,
        ) -> bool {
            if rest.is_empty() {
                return found(order);
            }
            for i in 0..rest.len() {
                let t = rest.remove(i);
                order.push(t);
                let hit = orders(rest, order, found);
                order.pop();
                rest.insert(i, t);
                if hit {
                    return true;
                }
            }
            false
        }
        let info: Vec<usize> = (0..txns.len())
            .filter(|&t| txns[t].kind == EventType::Info)
            .collect();
        (0..1u32 << info.len()).any(|subset| {
            let mut rest: Vec<usize> = (0..txns.len())
                .filter(|&t| match info.iter().position(|&i| i == t) {
                    Some(b) => subset & 1 << b != 0,
                    None => txns[t].kind == EventType::Ok,
                })
                .collect();
            orders(&mut rest, &mut Vec::new(), &mut |o| {
                explains(txns, o, kind, strict).is_ok()
            })
        })
    }

    #[test]
    fn the_search_agrees_with_plain_enumeration() {
        use crate::txn::synth::{random_small_with, SmallConfig};
        let cfg = SmallConfig {
            txns: 2..=6,
            ..SmallConfig::default()
        };
        for kind in [ListAppend, RwRegister] {
            for seed in 0..300 {
                let h = random_small_with(seed, kind, &cfg).history;
                let paired = history::pair(&h).unwrap();
                let t = txn::txns(&h, &paired).unwrap();
                for strict in [false, true] {
                    let found = serializable_txns(&t, kind, strict).unwrap().is_some();
                    assert_eq!(
                        found,
                        enumerate(&t, kind, strict),
                        "{} strict={strict}; reproduce with SEED={seed}",
                        kind.name()
                    );
                }
            }
        }
    }

    #[test]
    fn eight_concurrent_blind_writers_are_judged_quickly() {
        // The worst case for pruning: nothing is read until the end, so every prefix lives.
        let mut events = Vec::new();
        for p in 0..8u64 {
            events.push((p, "invoke", json!([["append", "x", p], ["append", "y", p]])));
        }
        for p in 0..8u64 {
            events.push((p, "ok", json!([["append", "x", p], ["append", "y", p]])));
        }
        events.push((9, "invoke", json!([["r", "x", null], ["r", "y", null]])));
        events.push((
            9,
            "ok",
            json!([
                ["r", "x", [7, 6, 5, 4, 3, 2, 1, 0]],
                ["r", "y", [7, 6, 5, 4, 3, 2, 0, 1]]
            ]),
        ));
        let h = history(&events);
        let started = std::time::Instant::now();
        assert_eq!(judge(&h, ListAppend, true), None);
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }
}
