//! Weak transactional consistency by saturation, the way AWDIT checks it (Møldrup,
//! Pavlogiannis et al., "AWDIT: An Optimal Weak Database Isolation Tester", PLDI 2025), for
//! the levels of Biswas and Enea ("On the complexity of checking transactional
//! consistency", OOPSLA 2019): read committed (`strong-session-read-committed`), read atomic
//! (`read-atomic`) and transactional causal consistency (`causal`). Session order (`so`, a
//! process's transactions in order) is part of every level.
//!
//! Each read of key x by transaction t reads from the one transaction t1 whose write it saw
//! (written values are unique), or from the initial state, which precedes every transaction.
//! A level holds when some total commit order contains `so` and reads-from (`wr`) and, for
//! every such read and every other transaction t2 that writes x and is *visible* to the read,
//! puts t2 before t1 (Biswas and Enea, section 3). Visibility, per level:
//!
//! - read committed: t2 →so t, or t2 →wr β for a read β of t before the read (in t's order);
//! - read atomic: t2 →(so ∪ wr) t;
//! - causal: t2 →(so ∪ wr)+ t.
//!
//! These edges ("saturation") depend on `so` and `wr` alone, not on the commit order sought,
//! so the level holds exactly when `so ∪ wr ∪ saturation` is acyclic (AWDIT, section 4). A
//! read of the initial state to which a writer of its key is visible is a violation at once.
//! Only the last visible writer of x in each session matters: an earlier one precedes it by
//! `so`. For causal, visibility is the transitive closure of `so ∪ wr`, never built: the
//! transactions are taken in a topological order of `so ∪ wr`, each with a vector clock over
//! the sessions (the last position of each session that happens before it), and the last
//! writer of x in a session at or before its clock entry is found by binary search among that
//! session's writes of x (AWDIT's per-session last writers). `so ∪ wr` itself must be acyclic
//! (`cyclic-so-wr` otherwise); then the work is O(reads × sessions × log n).
//!
//! Transactions: every `ok` one; an `info` one whose write another read (it committed, with
//! its writes; its reads are unknown and not checked); never a `fail` one (a read of its write
//! is `G1a`, reported by the inference, as are garbage, intermediate and internal reads).
//!
//! List-append: a key's versions are its appends in commit order, and a read of x returning L
//! reads from the appender t1 of L's last element, L less the reader's own appends being the
//! version t1 left (those own appends land at the reader's commit, so they are no part of the
//! version: [`super::append::infer_external`]). Every appender of an element of L is visible
//! to the transaction (`wr`). The version order the lists show (ww) is part of the commit
//! order. A visible appender whose element is missing from L is a violation at once; one whose
//! element is in L precedes t1 by ww already, so no saturation edge is needed.
//!
//! Both workloads agree exactly with the brute-force oracle that tries every commit order
//! ([`super::oracle::weak_txns`]; `tests/txn_weak.rs`).
//!
//! Each violation is an anomaly whose kind names the level broken (`causal-violation`,
//! `read-atomic-violation`, `read-committed-violation`, or `cyclic-so-wr`), with one sentence
//! per edge of the shortest cycle found in its strongly connected component.

use super::append::{show_list, MAX_PER_KIND};
use super::explain::{anomaly, because, describe, name};
use super::{Dep, Kind, Txns};
use crate::result::{Anomaly, Edge};
use hashbrown::HashMap;
use history::txn::{MopKind, MopValue};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::VecDeque;

/// A weak level, as Biswas and Enea define it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    ReadCommitted,
    ReadAtomic,
    Causal,
}

impl Level {
    /// The level a `--consistency-model` name stands for, if it is one of these.
    pub fn of(model: &str) -> Option<Level> {
        match model {
            "strong-session-read-committed" => Some(Level::ReadCommitted),
            "read-atomic" => Some(Level::ReadAtomic),
            "causal" => Some(Level::Causal),
            _ => None,
        }
    }

    /// The anomaly kind for a violation of this level.
    pub fn violation(self) -> &'static str {
        match self {
            Level::ReadCommitted => "read-committed-violation",
            Level::ReadAtomic => "read-atomic-violation",
            Level::Causal => "causal-violation",
        }
    }

    pub fn phrase(self) -> &'static str {
        match self {
            Level::ReadCommitted => "read committed",
            Level::ReadAtomic => "read atomic",
            Level::Causal => "causal consistency",
        }
    }
}

/// The initial state, as a writer.
const INIT: u32 = u32::MAX;
/// Not a transaction of the check (failed, or `info` and never read from).
const OUT: u32 = u32::MAX;

/// What saturation found.
#[derive(Debug, Default)]
pub struct Saturated {
    pub anomalies: Vec<Anomaly>,
    /// Transactions checked (ok, and info ones read from).
    pub txns: usize,
    /// Edges of `so ∪ wr ∪ ww ∪ saturation`.
    pub edges: usize,
    /// `so` and `wr` edges alone: none means nothing constrains anything.
    pub so_wr_edges: usize,
    pub largest_scc: usize,
    pub notes: Vec<String>,
}

/// One external read: the first read of a key in an ok transaction, before any write of its
/// own to it.
#[derive(Clone, Copy, Debug)]
struct Read {
    txn: u32,
    mop: u32,
    key: u32,
    /// The transaction it read from, or `INIT`.
    from: u32,
    /// The value read (register) or the last element of the list (list-append).
    value: Option<i64>,
    /// Its sources (`wr` predecessors) in `Sat::srcs`: `[start, end)`.
    srcs: (u32, u32),
}

/// Why a writer was visible to a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vis {
    /// An earlier transaction of the reader's session.
    So,
    /// The reader read it: `srcs` index.
    Wr(u32),
    /// It happens before the reader through `so ∪ wr`.
    Causal,
}

/// What an edge of the graph is.
#[derive(Clone, Copy, Debug)]
enum Why {
    So,
    /// `srcs` index: the source and the read (`read`).
    Wr {
        read: u32,
        src: u32,
    },
    /// Index into the ww dependencies.
    Ww(u32),
    /// Index into `sats`.
    Sat(u32),
}

#[derive(Clone, Copy, Debug)]
struct SEdge {
    from: u32,
    to: u32,
    why: Why,
}

/// A writer visible to a read: t2 must commit before the read's source.
#[derive(Clone, Copy, Debug)]
struct SatEdge {
    read: u32,
    t2: u32,
    vis: Vis,
}

/// (source transaction, element or value it wrote that the read saw)
type Src = (u32, i64);

struct Sat<'a> {
    txns: &'a Txns,
    kind: Kind,
    level: Level,
    reads: Vec<Read>,
    srcs: Vec<Src>,
    /// Per transaction: its session, or `OUT`, and its position in it.
    sess: Vec<u32>,
    pos: Vec<u32>,
    process: Vec<u64>,
    sessions: Vec<Vec<u32>>,
    /// Per transaction, its reads: `[start, end)` in `reads` (reads are in transaction order).
    reads_of: Vec<(u32, u32)>,
    edges: Vec<SEdge>,
    ww: Vec<Dep>,
    sats: Vec<SatEdge>,
    found: super::append::Found,
}

/// Checks `txns` for `level`; `ww` is the version order the inference found.
pub fn check(txns: &Txns, kind: Kind, level: Level, ww: Vec<Dep>) -> Saturated {
    let n = txns.txns.len();
    let mut s = Sat {
        txns,
        kind,
        level,
        reads: Vec::new(),
        srcs: Vec::new(),
        sess: vec![OUT; n],
        pos: vec![0; n],
        process: Vec::new(),
        sessions: Vec::new(),
        reads_of: vec![(0, 0); n],
        edges: Vec::new(),
        ww: Vec::new(),
        sats: Vec::new(),
        found: Default::default(),
    };
    s.collect_reads();
    s.sessions();
    let mut out = Saturated {
        txns: s.sessions.iter().map(Vec::len).sum(),
        ..Saturated::default()
    };
    s.so_wr_edges();
    out.so_wr_edges = s.edges.len();
    let topo = match s.topological() {
        Ok(order) => order,
        Err(stuck) => {
            s.so_wr_cycles(&stuck, &mut out);
            out.notes = s.found.notes();
            out.anomalies = s.found.anomalies;
            out.edges = out.so_wr_edges;
            return out;
        }
    };
    s.saturate(&topo);
    for d in ww {
        if d.from != d.to && s.sess[d.from as usize] != OUT && s.sess[d.to as usize] != OUT {
            let i = s.ww.len() as u32;
            s.ww.push(d);
            s.edges.push(SEdge {
                from: d.from,
                to: d.to,
                why: Why::Ww(i),
            });
        }
    }
    out.edges = s.edges.len();
    s.cycles(&mut out);
    out.notes = s.found.notes();
    out.notes.insert(
        0,
        format!(
            "checked by saturation (AWDIT) for {}: {} transactions in {} sessions, {} reads, \
             {} edges of session order and reads-from, {} saturation and {} version order \
             edges",
            level.phrase(),
            out.txns,
            s.sessions.len(),
            s.reads.len(),
            out.so_wr_edges,
            s.sats.len(),
            s.ww.len()
        ),
    );
    out.anomalies = s.found.anomalies;
    out
}

fn list(v: &MopValue) -> &[i64] {
    match v {
        MopValue::List(l) => l,
        _ => &[],
    }
}

impl Sat<'_> {
    fn val(&self, v: Option<i64>) -> String {
        v.map_or("nil".to_string(), |x| x.to_string())
    }

    /// The last value or element `t` wrote to `key`, if it wrote it.
    fn final_write(&self, t: u32, key: u32) -> Option<i64> {
        self.txns.txns[t as usize]
            .mops
            .iter()
            .rev()
            .find(|m| m.key == key && m.f != MopKind::Read)
            .and_then(|m| m.value.int())
    }

    /// The external reads of ok transactions, with what they read from. Reads the inference
    /// reports (garbage, aborted, intermediate, internal, future) are left out: they already
    /// break every level.
    fn collect_reads(&mut self) {
        let txns = self.txns;
        // (key, value) -> (writer, its last write of the key)
        let mut writers: HashMap<(u32, i64), (u32, bool)> = HashMap::new();
        for (t, tx) in txns.txns.iter().enumerate() {
            let mut seen: Vec<u32> = Vec::new();
            for m in tx.mops.iter().rev() {
                if m.f == MopKind::Read {
                    continue;
                }
                if let Some(v) = m.value.int() {
                    let last = !seen.contains(&m.key);
                    seen.push(m.key);
                    writers.entry((m.key, v)).or_insert((t as u32, last));
                }
            }
        }
        let usable = |t: u32, reader: u32, last: bool| {
            t != reader && last && !txns.txns[t as usize].failed()
        };
        for (t, tx) in txns.txns.iter().enumerate() {
            let t = t as u32;
            let start = self.reads.len() as u32;
            if tx.ok() {
                let mut touched: Vec<u32> = Vec::new();
                let mut own: Vec<(u32, Vec<i64>)> = Vec::new();
                for (i, m) in tx.mops.iter().enumerate() {
                    if m.f != MopKind::Read {
                        if let Some(v) = m.value.int() {
                            match own.iter_mut().find(|o| o.0 == m.key) {
                                Some(o) => o.1.push(v),
                                None => own.push((m.key, vec![v])),
                            }
                        }
                        continue;
                    }
                    let first = !touched.contains(&m.key);
                    touched.push(m.key);
                    let mine = own.iter().find(|o| o.0 == m.key).map(|o| o.1.as_slice());
                    if !first {
                        continue;
                    }
                    let src_start = self.srcs.len() as u32;
                    let (from, value) = match self.kind {
                        Kind::RwRegister => {
                            if mine.is_some() {
                                continue;
                            }
                            match m.value.int() {
                                None => (INIT, None),
                                Some(v) => match writers.get(&(m.key, v)) {
                                    Some(&(w, last)) if usable(w, t, last) => {
                                        self.srcs.push((w, v));
                                        (w, Some(v))
                                    }
                                    Some(&(w, _)) if w == t => {
                                        self.future(t, m.key, v);
                                        continue;
                                    }
                                    _ => continue,
                                },
                            }
                        }
                        Kind::ListAppend => {
                            let l = list(&m.value);
                            let mine = mine.unwrap_or(&[]);
                            if !l.ends_with(mine) {
                                continue;
                            }
                            let ext = &l[..l.len() - mine.len()];
                            let Some(&last) = ext.last() else {
                                self.reads.push(Read {
                                    txn: t,
                                    mop: i as u32,
                                    key: m.key,
                                    from: INIT,
                                    value: None,
                                    srcs: (src_start, src_start),
                                });
                                continue;
                            };
                            let Some(&(w, wlast)) = writers.get(&(m.key, last)) else {
                                continue;
                            };
                            if !usable(w, t, wlast) {
                                continue;
                            }
                            for &e in ext {
                                if let Some(&(a, _)) = writers.get(&(m.key, e)) {
                                    let dup =
                                        self.srcs[src_start as usize..].iter().any(|s| s.0 == a);
                                    if a != t && !txns.txns[a as usize].failed() && !dup {
                                        self.srcs.push((a, e));
                                    }
                                }
                            }
                            (w, Some(last))
                        }
                    };
                    self.reads.push(Read {
                        txn: t,
                        mop: i as u32,
                        key: m.key,
                        from,
                        value,
                        srcs: (src_start, self.srcs.len() as u32),
                    });
                }
            }
            self.reads_of[t as usize] = (start, self.reads.len() as u32);
        }
    }

    /// A register read of a value its own transaction writes only later.
    fn future(&mut self, t: u32, key: u32, v: i64) {
        let k = self.txns.key(key);
        let mut a = anomaly(
            self.txns,
            "future-read",
            Some(key),
            format!(
                "future read: {} read {k}={v} before writing it",
                name(self.txns, t)
            ),
            vec![format!(
                "{} read {k}={v}, which only it writes, and only later: it would have to \
                 read from itself.",
                name(self.txns, t)
            )],
            &[t],
        );
        a.cycle = vec![Edge {
            from: self.txns.txns[t as usize].index,
            to: self.txns.txns[t as usize].index,
            because: format!("{} read {k}={v}, which it writes later", name(self.txns, t)),
        }];
        self.found.push(a);
    }

    /// Sessions: the process of each transaction in the check, and its position there.
    fn sessions(&mut self) {
        let mut included: Vec<bool> = self.txns.txns.iter().map(|t| t.ok()).collect();
        for &(w, _) in &self.srcs {
            included[w as usize] = true;
        }
        let mut ids: HashMap<u64, u32> = HashMap::new();
        for (t, tx) in self.txns.txns.iter().enumerate() {
            if !included[t] {
                continue;
            }
            let s = *ids.entry(tx.process).or_insert_with(|| {
                self.sessions.push(Vec::new());
                self.process.push(tx.process);
                (self.sessions.len() - 1) as u32
            });
            self.sess[t] = s;
            self.pos[t] = self.sessions[s as usize].len() as u32;
            self.sessions[s as usize].push(t as u32);
        }
    }

    fn so_wr_edges(&mut self) {
        for s in &self.sessions {
            for w in s.windows(2) {
                self.edges.push(SEdge {
                    from: w[0],
                    to: w[1],
                    why: Why::So,
                });
            }
        }
        for (r, read) in self.reads.iter().enumerate() {
            for i in read.srcs.0..read.srcs.1 {
                self.edges.push(SEdge {
                    from: self.srcs[i as usize].0,
                    to: read.txn,
                    why: Why::Wr {
                        read: r as u32,
                        src: i,
                    },
                });
            }
        }
    }

    /// Out-edges per transaction over `edges[..upto]`, as (target, edge index).
    fn adjacency(&self, upto: usize) -> Vec<Vec<(u32, u32)>> {
        let mut out = vec![Vec::new(); self.txns.txns.len()];
        for (i, e) in self.edges[..upto].iter().enumerate() {
            out[e.from as usize].push((e.to, i as u32));
        }
        out
    }

    /// A topological order of `so ∪ wr` (Kahn), or the transactions left on cycles.
    fn topological(&self) -> Result<Vec<u32>, Vec<u32>> {
        let n = self.txns.txns.len();
        let mut indeg = vec![0u32; n];
        for e in &self.edges {
            indeg[e.to as usize] += 1;
        }
        let adj = self.adjacency(self.edges.len());
        let mut queue: VecDeque<u32> = (0..n as u32)
            .filter(|&t| self.sess[t as usize] != OUT && indeg[t as usize] == 0)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(t) = queue.pop_front() {
            order.push(t);
            for &(v, _) in &adj[t as usize] {
                indeg[v as usize] -= 1;
                if indeg[v as usize] == 0 {
                    queue.push_back(v);
                }
            }
        }
        let total: usize = self.sessions.iter().map(Vec::len).sum();
        if order.len() == total {
            Ok(order)
        } else {
            Err((0..n as u32)
                .filter(|&t| self.sess[t as usize] != OUT && indeg[t as usize] > 0)
                .collect())
        }
    }

    /// Reports a shortest cycle of `so ∪ wr` in each component among `stuck`.
    fn so_wr_cycles(&mut self, stuck: &[u32], out: &mut Saturated) {
        self.report_cycles("cyclic-so-wr", Some(stuck), out);
    }

    /// One shortest cycle of kind `kind` per strongly connected component (among `only`);
    /// past `MAX_PER_KIND`, components are counted, not searched.
    fn report_cycles(&mut self, kind: &'static str, only: Option<&[u32]>, out: &mut Saturated) {
        let upto = self.edges.len();
        let comps = self.components(upto, only);
        let mut comp_of = vec![u32::MAX; self.txns.txns.len()];
        for (c, comp) in comps.iter().enumerate() {
            for &t in comp {
                comp_of[t as usize] = c as u32;
            }
        }
        let adj = self.adjacency(upto);
        for (c, comp) in comps.iter().enumerate() {
            out.largest_scc = out.largest_scc.max(comp.len());
            if !self.room(kind) {
                self.count(kind);
                continue;
            }
            if let Some(cycle) = self.shortest_cycle(comp, c as u32, &comp_of, &adj) {
                let a = self.cycle_anomaly(kind, &cycle, comp.len());
                self.found.push(a);
            }
        }
    }

    /// Whether another anomaly of `kind` is still shown in full.
    fn room(&self, kind: &str) -> bool {
        self.found.counts.get(kind).copied().unwrap_or(0) < MAX_PER_KIND
    }

    /// Counts an anomaly of `kind` not shown.
    fn count(&mut self, kind: &str) {
        *self.found.counts.entry(kind.to_owned()).or_default() += 1;
    }

    /// Strongly connected components with a cycle, over `edges[..upto]`.
    fn components(&self, upto: usize, only: Option<&[u32]>) -> Vec<Vec<u32>> {
        let n = self.txns.txns.len();
        let mut keep = vec![only.is_none(); n];
        if let Some(only) = only {
            for &t in only {
                keep[t as usize] = true;
            }
        }
        let mut g: DiGraph<(), (), u32> = DiGraph::with_capacity(n, upto);
        for _ in 0..n {
            g.add_node(());
        }
        for e in &self.edges[..upto] {
            if keep[e.from as usize] && keep[e.to as usize] {
                g.add_edge(
                    NodeIndex::new(e.from as usize),
                    NodeIndex::new(e.to as usize),
                    (),
                );
            }
        }
        let mut comps: Vec<Vec<u32>> = petgraph::algo::tarjan_scc(&g)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut c: Vec<u32> = c.into_iter().map(|x| x.index() as u32).collect();
                c.sort_unstable();
                c
            })
            .collect();
        comps.sort_by_key(|c| (c.len(), c[0]));
        comps
    }

    /// The shortest cycle through a few starts of component `c` (breadth-first within it),
    /// as edge indices in order. Starts on saturation and version order edges first: a cycle
    /// needs one when `so ∪ wr` is acyclic. A large component gets fewer starts.
    fn shortest_cycle(
        &self,
        comp: &[u32],
        c: u32,
        comp_of: &[u32],
        adj: &[Vec<(u32, u32)>],
    ) -> Option<Vec<u32>> {
        let inside = |t: u32| comp_of[t as usize] == c;
        let mut starts: Vec<u32> = comp
            .iter()
            .copied()
            .filter(|&t| {
                adj[t as usize].iter().any(|&(v, e)| {
                    inside(v) && matches!(self.edges[e as usize].why, Why::Sat(_) | Why::Ww(_))
                })
            })
            .collect();
        starts.extend(comp.iter().copied());
        let tries = if comp.len() > 10_000 { 4 } else { 32 };
        let mut best: Option<Vec<u32>> = None;
        let mut tried: Vec<u32> = Vec::new();
        for &s in &starts {
            if tried.len() >= tries {
                break;
            }
            if tried.contains(&s) {
                continue;
            }
            tried.push(s);
            // The edge into each node reached.
            let mut parent: HashMap<u32, u32> = HashMap::new();
            let mut queue = VecDeque::from([s]);
            let mut closing = None;
            'bfs: while let Some(u) = queue.pop_front() {
                for &(v, e) in &adj[u as usize] {
                    if !inside(v) {
                        continue;
                    }
                    if v == s {
                        closing = Some(e);
                        break 'bfs;
                    }
                    if let hashbrown::hash_map::Entry::Vacant(x) = parent.entry(v) {
                        x.insert(e);
                        queue.push_back(v);
                    }
                }
            }
            let Some(last) = closing else { continue };
            let mut path = vec![last];
            let mut at = self.edges[last as usize].from;
            while at != s {
                let e = parent[&at];
                path.push(e);
                at = self.edges[e as usize].from;
            }
            path.reverse();
            if best.as_ref().is_none_or(|b| path.len() < b.len()) {
                best = Some(path);
            }
            if best.as_ref().is_some_and(|b| b.len() <= 2) {
                break;
            }
        }
        best
    }

    /// The saturation edges, and the violations found at once (a visible writer of a key
    /// whose initial state or list without its element was read).
    fn saturate(&mut self, topo: &[u32]) {
        // Writes per (session, key): positions in the session, increasing.
        let mut writes: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        let mut sessions_of: HashMap<u32, Vec<u32>> = HashMap::new();
        for (s, ts) in self.sessions.iter().enumerate() {
            for &t in ts {
                let mut keys: Vec<u32> = self.txns.txns[t as usize]
                    .mops
                    .iter()
                    .filter(|m| m.f != MopKind::Read)
                    .map(|m| m.key)
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                for k in keys {
                    let w = writes.entry((s as u32, k)).or_default();
                    if w.is_empty() {
                        sessions_of.entry(k).or_default().push(s as u32);
                    }
                    w.push(self.pos[t as usize]);
                }
            }
        }
        let last_before = |s: u32, k: u32, bound: u32| -> Option<u32> {
            let w = writes.get(&(s, k))?;
            let i = w.partition_point(|&p| p < bound);
            (i > 0).then(|| self.sessions[s as usize][w[i - 1] as usize])
        };
        let nsess = self.sessions.len();
        let clocks: Vec<u32> = if self.level == Level::Causal {
            self.clocks(topo)
        } else {
            Vec::new()
        };
        let mut direct: Vec<(u32, u32, Vis)> = Vec::new();
        for r in 0..self.reads.len() {
            let read = self.reads[r];
            let t = read.txn as usize;
            let mut cands: Vec<(u32, Vis)> = Vec::new();
            match self.level {
                Level::ReadCommitted | Level::ReadAtomic => {
                    if let Some(w) = last_before(self.sess[t], read.key, self.pos[t]) {
                        cands.push((w, Vis::So));
                    }
                    let (a, b) = self.reads_of[t];
                    for q in a..b {
                        let other = self.reads[q as usize];
                        if self.level == Level::ReadCommitted && other.mop >= read.mop {
                            continue;
                        }
                        for i in other.srcs.0..other.srcs.1 {
                            let w = self.srcs[i as usize].0;
                            if self.final_write(w, read.key).is_some() {
                                cands.push((w, Vis::Wr(i)));
                            }
                        }
                    }
                }
                Level::Causal => {
                    let row = &clocks[t * nsess..(t + 1) * nsess];
                    for &s in sessions_of.get(&read.key).map(Vec::as_slice).unwrap_or(&[]) {
                        if let Some(w) = last_before(s, read.key, row[s as usize]) {
                            cands.push((w, Vis::Causal));
                        }
                    }
                }
            }
            let mut done: Vec<u32> = Vec::new();
            for (t2, vis) in cands {
                if t2 == read.txn || t2 == read.from || done.contains(&t2) {
                    continue;
                }
                done.push(t2);
                match self.kind {
                    Kind::ListAppend => {
                        let l = list(&self.txns.txns[t].mops[read.mop as usize].value);
                        let e = self.final_write(t2, read.key);
                        if e.is_some_and(|e| !l.contains(&e)) {
                            direct.push((r as u32, t2, vis));
                        }
                    }
                    Kind::RwRegister if read.from == INIT => direct.push((r as u32, t2, vis)),
                    Kind::RwRegister => {
                        let i = self.sats.len() as u32;
                        self.sats.push(SatEdge {
                            read: r as u32,
                            t2,
                            vis,
                        });
                        self.edges.push(SEdge {
                            from: t2,
                            to: read.from,
                            why: Why::Sat(i),
                        });
                    }
                }
            }
        }
        let kind = self.level.violation();
        for (r, t2, vis) in direct {
            if self.room(kind) {
                let a = self.direct(r, t2, vis);
                self.found.push(a);
            } else {
                self.count(kind);
            }
        }
    }

    /// Vector clocks in topological order: per transaction (row of `sessions` entries), the
    /// position + 1 of the last transaction of each session that happens before it.
    fn clocks(&self, topo: &[u32]) -> Vec<u32> {
        let nsess = self.sessions.len();
        let n = self.txns.txns.len();
        let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
        for e in &self.edges {
            preds[e.to as usize].push(e.from);
        }
        let mut clock = vec![0u32; n * nsess];
        for &t in topo {
            let t = t as usize;
            for &p in &preds[t] {
                let p = p as usize;
                let (lo, hi) = if p < t {
                    let (a, b) = clock.split_at_mut(t * nsess);
                    (&a[p * nsess..(p + 1) * nsess], &mut b[..nsess])
                } else {
                    let (a, b) = clock.split_at_mut(p * nsess);
                    (&b[..nsess], &mut a[t * nsess..(t + 1) * nsess])
                };
                for (x, y) in hi.iter_mut().zip(lo) {
                    *x = (*x).max(*y);
                }
                let s = self.sess[p] as usize;
                hi[s] = hi[s].max(self.pos[p] + 1);
            }
        }
        clock
    }

    /// How `t2` reaches `t` by `so ∪ wr`: edge indices in order (for the causal level, a
    /// shortest path; otherwise the one step that made it visible).
    fn vis_path(&self, t2: u32, t: u32, vis: Vis) -> Vec<SEdge> {
        match vis {
            Vis::So => vec![SEdge {
                from: t2,
                to: t,
                why: Why::So,
            }],
            Vis::Wr(i) => {
                let read = (self.reads_of[t as usize].0..self.reads_of[t as usize].1)
                    .find(|&q| {
                        let r = self.reads[q as usize];
                        (r.srcs.0..r.srcs.1).contains(&i)
                    })
                    .unwrap_or(0);
                vec![SEdge {
                    from: t2,
                    to: t,
                    why: Why::Wr { read, src: i },
                }]
            }
            Vis::Causal => {
                // Breadth-first backwards from t over so ∪ wr.
                let mut into: HashMap<u32, Vec<usize>> = HashMap::new();
                for (i, e) in self.edges.iter().enumerate() {
                    if matches!(e.why, Why::So | Why::Wr { .. }) {
                        into.entry(e.to).or_default().push(i);
                    }
                }
                let mut next: HashMap<u32, usize> = HashMap::new();
                let mut queue = VecDeque::from([t]);
                while let Some(u) = queue.pop_front() {
                    if u == t2 {
                        break;
                    }
                    for &i in into.get(&u).map(Vec::as_slice).unwrap_or(&[]) {
                        let f = self.edges[i].from;
                        if f != t && !next.contains_key(&f) {
                            next.insert(f, i);
                            queue.push_back(f);
                        }
                    }
                }
                let mut path = Vec::new();
                let mut at = t2;
                while at != t {
                    let Some(&i) = next.get(&at) else { break };
                    path.push(self.edges[i]);
                    at = self.edges[i].to;
                }
                path
            }
        }
    }

    /// Why `e` holds, as the end of a sentence.
    fn because(&self, e: &SEdge) -> String {
        let txns = self.txns;
        let (a, b) = (name(txns, e.from), name(txns, e.to));
        match e.why {
            Why::So => {
                let p = txns.txns[e.from as usize].process;
                format!("{a} → {b} by session order (process {p} ran {a} before {b})")
            }
            Why::Wr { read, src } => {
                let r = self.reads[read as usize];
                let k = txns.key(r.key);
                let v = self.srcs[src as usize].1;
                match self.kind {
                    Kind::RwRegister => {
                        format!("{a} → {b} because {b} read {k}={v} written by {a}")
                    }
                    Kind::ListAppend => {
                        format!("{a} → {b} because {b} read {a}'s append of {v} to {k}")
                    }
                }
            }
            Why::Ww(i) => {
                let d = &self.ww[i as usize];
                format!("{a} → {b} because {}", because(txns, self.kind, d))
            }
            Why::Sat(i) => {
                let s = self.sats[i as usize];
                let r = self.reads[s.read as usize];
                let k = txns.key(r.key);
                let path: Vec<String> = self
                    .vis_path(s.t2, r.txn, s.vis)
                    .iter()
                    .map(|e| self.because(e))
                    .collect();
                format!(
                    "{a} (process {}) must commit before {b} because {} read {k}={} from {b} \
                     after {a}'s write of {k}={} was visible to it: {}",
                    txns.txns[e.from as usize].process,
                    name(txns, r.txn),
                    self.val(r.value),
                    self.val(self.final_write(s.t2, r.key)),
                    path.join(", ")
                )
            }
        }
    }

    /// A read that saw the initial state, or a list without an element, of a writer visible
    /// to it.
    fn direct(&self, r: u32, t2: u32, vis: Vis) -> Anomaly {
        let txns = self.txns;
        let read = self.reads[r as usize];
        let k = txns.key(read.key);
        let (tn, t2n) = (name(txns, read.txn), name(txns, t2));
        let w = self.val(self.final_write(t2, read.key));
        let path = self.vis_path(t2, read.txn, vis);
        let seen = match self.kind {
            Kind::RwRegister => format!("{k}=nil, the initial value"),
            Kind::ListAppend => format!(
                "{k} = {} without {w}",
                show_list(list(
                    &txns.txns[read.txn as usize].mops[read.mop as usize].value
                ))
            ),
        };
        let closing = match self.kind {
            Kind::RwRegister => format!(
                "{tn} → {t2n} because {tn} read {k}'s initial value, so {t2n}'s write of \
                 {k}={w} was not yet there"
            ),
            Kind::ListAppend => {
                format!("{tn} → {t2n} because {tn} read {k} without {t2n}'s append of {w}")
            }
        };
        let mut sentences = vec![format!(
            "{tn} read {seen}, although {t2n}'s write of {k}={w} was visible to it under {}:",
            self.level.phrase()
        )];
        let mut edges = Vec::new();
        let mut ids = vec![t2];
        for e in &path {
            let why = self.because(e);
            sentences.push(format!("  - {why}"));
            edges.push(Edge {
                from: txns.txns[e.from as usize].index,
                to: txns.txns[e.to as usize].index,
                because: why,
            });
            ids.push(e.to);
        }
        sentences.push(format!("  - {closing}"));
        edges.push(Edge {
            from: txns.txns[read.txn as usize].index,
            to: txns.txns[t2 as usize].index,
            because: closing,
        });
        sentences.push(format!(
            "So {t2n} would have to commit both before and after what {tn} read."
        ));
        for &t in &ids {
            sentences.push(format!("  - {}", describe(txns, t)));
        }
        let mut a = anomaly(
            txns,
            self.level.violation(),
            Some(read.key),
            format!(
                "{}: {tn} read {seen} after {t2n}'s write was visible",
                self.level.violation()
            ),
            sentences,
            &ids,
        );
        a.cycle = edges;
        a
    }

    /// A cycle of edges as an anomaly of `kind`.
    fn cycle_anomaly(&self, kind: &str, cycle: &[u32], scc: usize) -> Anomaly {
        let txns = self.txns;
        let ids: Vec<u32> = cycle.iter().map(|&e| self.edges[e as usize].from).collect();
        let names: Vec<String> = ids.iter().map(|&t| name(txns, t)).collect();
        let what = if kind == "cyclic-so-wr" {
            "session order and reads-from form a cycle, which no commit order can contain"
                .to_string()
        } else {
            format!(
                "no commit order allowed by {} contains these edges",
                self.level.phrase()
            )
        };
        let mut sentences = vec![format!(
            "{} transactions: {what} (found among {scc} transactions that must each commit \
             before another):",
            ids.len()
        )];
        let mut edges = Vec::new();
        for &e in cycle {
            let e = self.edges[e as usize];
            let why = self.because(&e);
            sentences.push(format!("  - {why}"));
            edges.push(Edge {
                from: txns.txns[e.from as usize].index,
                to: txns.txns[e.to as usize].index,
                because: why,
            });
        }
        sentences.push(format!(
            "So each of {} would have to commit before itself.",
            names.join(", ")
        ));
        // Beside the cycle, the readers whose view made each saturation edge, and the way
        // the writer reached them.
        let mut all = ids.clone();
        for &e in cycle {
            if let Why::Sat(i) = self.edges[e as usize].why {
                let sat = self.sats[i as usize];
                let read = self.reads[sat.read as usize];
                for step in self.vis_path(sat.t2, read.txn, sat.vis) {
                    if !all.contains(&step.to) {
                        all.push(step.to);
                    }
                }
            }
        }
        for &t in &all {
            sentences.push(format!("  - {}", describe(txns, t)));
        }
        let mut a = anomaly(
            txns,
            kind,
            None,
            format!("{kind}: {} → {}", names.join(" → "), names[0]),
            sentences,
            &all,
        );
        a.cycle = edges;
        a
    }

    /// Cycles of `so ∪ wr ∪ ww ∪ saturation`, one per component.
    fn cycles(&mut self, out: &mut Saturated) {
        self.report_cycles(self.level.violation(), None, out);
    }
}
