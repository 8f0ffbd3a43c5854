//! Causal consistency of read/write registers, the way Bouajjani, Enea, Guerraoui and Hamza
//! characterise it ("On verifying causal consistency", POPL 2017): with unique written values,
//! each read names the write it read from, so the causal order is fixed — CO = (session order
//! ∪ reads-from)+ — and a history is causally consistent exactly when none of a few **bad
//! patterns** occurs in it. Checking is then polynomial. The three models and their patterns:
//!
//! - **CC** (causal consistency): `CyclicCO` (CO has a cycle), `ThinAirRead` (a value no write
//!   wrote), `WriteCOInitRead` (a read returns the initial value though a write of the key is
//!   causally before it), `WriteCORead` (a read returns v though another write of the key is
//!   causally between v's write and the read).
//! - **CCv** (causal convergence: CC plus one arbitration order all replicas agree on):
//!   `CyclicCF`, a cycle in CO ∪ CF, where w1 CF w2 when w1 is causally before a read of w2:
//!   that read chose w2 over w1, so w1 must be arbitrated first.
//! - **CM** (causal memory: CC plus, for each session, one serialisation of its causal past
//!   that explains the session's own reads): `WriteHBInitRead` and `CyclicHB` over each
//!   session's happens-before relation HB, CO extended by the order its own reads impose on
//!   the writes they chose between ([`memory`]).
//!
//! CC holds when CCv or CM holds; CCv and CM are incomparable. The four session guarantees
//! (Terry et al., "Session guarantees for weakly consistent replicated data", 1994) are the
//! one-step cases of `WriteCORead` and `WriteCOInitRead`, and a violation that is one of them
//! is reported under its name: **read-your-writes** (the session's own earlier write),
//! **monotonic-reads** (a write the session had already read), **monotonic-writes** (a write
//! its writer's session made before one this session read), **writes-follow-reads** (a write
//! another session had read before making one this session read).
//!
//! Sessions are the history's processes (each a sequential client; the workloads keep a
//! process on one node, and a process that saw an indeterminate outcome continues as a new
//! one). An `info` write is in the history when some read returned its value, and left out
//! otherwise (nothing depends on it); `fail` writes never happened. A `cas` is a read of its
//! expected value followed by a write of its new one. Keys of sets and counters are skipped.
//!
//! Stores that keep concurrent versions (siblings, [`crate::siblings`]): a read returning a
//! set S read from every writer in S; it must not return a version a write causally before the
//! read superseded (`WriteCORead`), and every write causally before the read must be returned
//! or superseded by one that is (`WriteCOMissing`). When any read of the history returned
//! siblings, every read is judged that way (a multi-value register has no arbitration, so CCv
//! and CM add nothing to CC there).
//!
//! The causal order is never closed (n² pairs): events are taken in a topological order of
//! session order and reads-from, each with a vector clock over sessions (the last position of
//! each session causally before or at it), and for each read, each session's last write of
//! the key causally before it is found by binary search in that session's writes of the key;
//! earlier writes of that session precede it in session order and change nothing. So CC and
//! CCv take O(n · sessions · log n) time and n · sessions words of memory.

pub mod memory;
pub mod oracle;
pub mod synth;

use crate::registry::Checker;
use crate::result::{widen, Anomaly, CheckerResult, Edge, Judgement};
use crate::{CheckError, Options};
use hashbrown::HashMap;
use history::{EventType, History, Paired};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Anomalies described per kind (the rest are counted).
pub const MAX_PER_KIND: usize = 20;
/// Cycles described per kind.
pub const MAX_CYCLES: usize = 8;
/// How long causal memory may take when no time limit is given.
pub const DEFAULT_CM_BUDGET: Duration = Duration::from_secs(30);

/// The consistency model `--consistency-model` chooses for the causal checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    /// Causal consistency.
    Cc,
    /// Causal convergence.
    Ccv,
    /// Causal memory.
    Cm,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::Cc, Model::Ccv, Model::Cm];

    pub fn name(self) -> &'static str {
        match self {
            Model::Cc => "CC",
            Model::Ccv => "CCv",
            Model::Cm => "CM",
        }
    }

    /// The model called `name` (any case), or the list of them.
    pub fn find(name: &str) -> Result<Model, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "unknown causal model '{name}'; the causal checker checks CC (causal \
                     consistency), CCv (causal convergence) or CM (causal memory)"
                )
            })
    }

    fn long(self) -> &'static str {
        match self {
            Model::Cc => "causal consistency",
            Model::Ccv => "causal convergence",
            Model::Cm => "causal memory",
        }
    }
}

/// The model checked when none is chosen.
pub const DEFAULT_MODEL: Model = Model::Ccv;

/// The four session guarantees, in the order a violation is classified.
pub const GUARANTEES: [&str; 4] = [
    "read-your-writes",
    "monotonic-reads",
    "monotonic-writes",
    "writes-follow-reads",
];

/// Every anomaly kind, with the model it rules out first (all rule out the stronger ones).
pub const KINDS: &[(&str, Model)] = &[
    ("CyclicCO", Model::Cc),
    ("ThinAirRead", Model::Cc),
    ("WriteCOInitRead", Model::Cc),
    ("WriteCORead", Model::Cc),
    ("WriteCOMissing", Model::Cc),
    ("read-your-writes", Model::Cc),
    ("monotonic-reads", Model::Cc),
    ("monotonic-writes", Model::Cc),
    ("writes-follow-reads", Model::Cc),
    ("CyclicCF", Model::Ccv),
    ("WriteHBInitRead", Model::Cm),
    ("CyclicHB", Model::Cm),
];

/// One read or write of the checked history. A `cas` is two: its read, then its write.
#[derive(Clone, Debug)]
pub struct Event {
    pub session: u32,
    /// Position in its session.
    pub pos: u32,
    pub key: u32,
    pub write: bool,
    /// The value written, or what the read returned, as JSON text.
    pub text: String,
    /// Index of its operation in `Paired::ops`.
    pub op: u32,
    /// Reads: the writes read from, a range of `Events::rf` (empty: the initial value).
    rf: (u32, u32),
    /// The read returned siblings.
    pub multi: bool,
}

/// A history as the causal checker sees it.
#[derive(Debug, Default)]
pub struct Events {
    pub events: Vec<Event>,
    rf: Vec<u32>,
    /// Per session: its process id, and its events in order.
    pub sessions: Vec<(u64, Vec<u32>)>,
    pub keys: Vec<String>,
    /// Per event: history index and [invoke, complete] times of its operation.
    pub index: Vec<u64>,
    span: Vec<[u64; 2]>,
    /// Per write: the reads that read from it (CSR over `events`).
    readers_off: Vec<u32>,
    readers: Vec<u32>,
    /// Per (session, key): that session's writes of the key, in session order.
    writes: HashMap<(u32, u32), Vec<u32>>,
    /// Per key: the sessions that write it.
    writers_of_key: Vec<Vec<u32>>,
    /// Anomalies found while reading (values nobody wrote).
    pub thin_air: Vec<Anomaly>,
    /// Why the history cannot be judged (a value written twice to one key).
    pub unusable: Option<String>,
    /// Some read returned siblings: judge every read as a multi-value register read.
    pub multi_value: bool,
    pub dropped_info_writes: usize,
}

impl Events {
    pub fn n(&self) -> usize {
        self.events.len()
    }

    pub fn rf(&self, e: u32) -> &[u32] {
        let (a, b) = self.events[e as usize].rf;
        &self.rf[a as usize..b as usize]
    }

    pub fn readers(&self, w: u32) -> &[u32] {
        let a = self.readers_off[w as usize] as usize;
        let b = self.readers_off[w as usize + 1] as usize;
        &self.readers[a..b]
    }

    fn session_of(&self, e: u32) -> u32 {
        self.events[e as usize].session
    }

    /// The writes of `key` by session `s` in session order.
    fn writes_of(&self, s: u32, key: u32) -> &[u32] {
        self.writes.get(&(s, key)).map_or(&[], Vec::as_slice)
    }

    /// "w(x, 3)" or "r(x, 1)".
    pub fn label(&self, e: u32) -> String {
        let ev = &self.events[e as usize];
        let key = &self.keys[ev.key as usize];
        if ev.write {
            format!("w({key}, {})", ev.text)
        } else {
            format!("r({key}, {})", ev.text)
        }
    }

    /// "w(x, 3) by session 2".
    pub fn who(&self, e: u32) -> String {
        format!("{} by session {}", self.label(e), self.process(e))
    }

    pub fn process(&self, e: u32) -> u64 {
        self.sessions[self.session_of(e) as usize].0
    }

    /// The events of `history` (reads and writes of register keys).
    pub fn from_history(history: &History, paired: &Paired) -> Events {
        build(history, paired)
    }
}

/// A candidate event before `info` writes nobody read are dropped.
struct Cand {
    process: u64,
    key: u32,
    write: bool,
    text: String,
    op: u32,
    multi: bool,
    /// For reads: the texts of the versions returned.
    versions: Vec<String>,
    /// A write whose operation is `info` (kept only when read).
    tentative: bool,
}

fn build(history: &History, paired: &Paired) -> Events {
    let mut out = Events::default();
    let mut key_ids: HashMap<String, u32> = HashMap::new();
    // Keys of sets and counters are not registers.
    let mut skip: hashbrown::HashSet<&str> = hashbrown::HashSet::new();
    for op in &paired.ops {
        if matches!(op.f.as_str(), "add" | "incr" | "txn" | "append") {
            if let Some(k) = &op.key {
                skip.insert(k.as_str());
            }
        }
    }
    let mut cands: Vec<Cand> = Vec::new();
    let mut failed: HashMap<(u32, String), u32> = HashMap::new();
    for (i, op) in paired.ops.iter().enumerate() {
        let Some(key) = op.key.as_deref().filter(|k| !skip.contains(k)) else {
            continue;
        };
        let kid = match key_ids.get(key) {
            Some(&k) => k,
            None => {
                let k = out.keys.len() as u32;
                out.keys.push(key.to_owned());
                key_ids.insert(key.to_owned(), k);
                k
            }
        };
        let mut cand = |write: bool, value: &Value, multi: bool, tentative: bool| {
            let versions: Vec<String> = if write {
                Vec::new()
            } else {
                crate::convergence::versions(value, multi)
                    .iter()
                    .map(Value::to_string)
                    .collect()
            };
            cands.push(Cand {
                process: op.process,
                key: kid,
                write,
                text: value.to_string(),
                op: i as u32,
                multi: multi && !write,
                versions,
                tentative,
            });
        };
        let siblings = op
            .complete
            .is_some_and(|c| history.events[c].siblings && op.kind == EventType::Ok);
        match (op.f.as_str(), op.kind) {
            ("read", EventType::Ok) => cand(false, &op.output, siblings, false),
            ("write", EventType::Ok | EventType::Info) => {
                cand(true, &op.input, false, op.kind == EventType::Info)
            }
            ("cas", EventType::Ok) => {
                let (from, to) = (op.input.get(0), op.input.get(1));
                if let (Some(from), Some(to)) = (from, to) {
                    cand(false, from, false, false);
                    cand(true, to, false, false);
                }
            }
            ("cas", EventType::Info) => {
                if let Some(to) = op.input.get(1) {
                    cand(true, to, false, true);
                }
            }
            ("write", EventType::Fail) => {
                failed.insert((kid, op.input.to_string()), i as u32);
            }
            ("cas", EventType::Fail) => {
                if let Some(to) = op.input.get(1) {
                    failed.insert((kid, to.to_string()), i as u32);
                }
            }
            _ => {}
        }
    }
    // Who wrote what; a value written twice to one key leaves reads ambiguous.
    let mut writer: HashMap<(u32, &str), usize> = HashMap::new();
    for (c, cand) in cands.iter().enumerate() {
        if cand.write {
            if let Some(&other) = writer.get(&(cand.key, cand.text.as_str())) {
                let first = &paired.ops[cands[other].op as usize];
                let again = &paired.ops[cand.op as usize];
                out.unusable.get_or_insert(format!(
                    "the value {} was written twice to key {} (history indices {} and {}): \
                     the causal checker needs unique written values, to know which write each \
                     read saw",
                    cand.text,
                    out.keys[cand.key as usize],
                    history.events[first.invoke].index,
                    history.events[again.invoke].index,
                ));
            }
            writer.insert((cand.key, cand.text.as_str()), c);
        }
    }
    // Reads resolve their writers; info writes somebody read are kept.
    let mut rf_cands: Vec<Vec<usize>> = vec![Vec::new(); cands.len()];
    let mut read_from = vec![false; cands.len()];
    for (c, cand) in cands.iter().enumerate() {
        if cand.write {
            continue;
        }
        for v in &cand.versions {
            match writer.get(&(cand.key, v.as_str())) {
                Some(&w) => {
                    rf_cands[c].push(w);
                    read_from[w] = true;
                }
                None => {
                    let op = &paired.ops[cand.op as usize];
                    let inv = &history.events[op.invoke];
                    let key = &out.keys[cand.key as usize];
                    let why = match failed.get(&(cand.key, v.clone())) {
                        Some(&f) => format!(
                            "{key}={v} was written only by an operation that failed (history \
                             index {}): it never took effect",
                            history.events[paired.ops[f as usize].invoke].index
                        ),
                        None => format!("no operation wrote {v} to {key}"),
                    };
                    out.thin_air.push(Anomaly {
                        kind: "ThinAirRead".into(),
                        key: Some(key.clone()),
                        title: format!(
                            "session {} read {key}={v}, a value nobody wrote",
                            op.process
                        ),
                        sentences: vec![why, "A read can only return a written value.".into()],
                        ops: vec![inv.index],
                        cycle: Vec::new(),
                        span_ns: Some([
                            inv.time,
                            op.complete.map_or(inv.time, |c| history.events[c].time),
                        ]),
                    });
                }
            }
        }
        if cand.multi {
            out.multi_value = true;
        }
    }
    // Number the kept events, session by session.
    let mut id = vec![u32::MAX; cands.len()];
    let mut session_ids: HashMap<u64, u32> = HashMap::new();
    for (c, cand) in cands.iter().enumerate() {
        if cand.tentative && !read_from[c] {
            out.dropped_info_writes += 1;
            continue;
        }
        let s = *session_ids.entry(cand.process).or_insert_with(|| {
            out.sessions.push((cand.process, Vec::new()));
            (out.sessions.len() - 1) as u32
        });
        let e = out.events.len() as u32;
        id[c] = e;
        let list = &mut out.sessions[s as usize].1;
        let op = &paired.ops[cand.op as usize];
        let inv = &history.events[op.invoke];
        out.index.push(inv.index);
        out.span.push([
            inv.time,
            op.complete.map_or(inv.time, |c| history.events[c].time),
        ]);
        out.events.push(Event {
            session: s,
            pos: list.len() as u32,
            key: cand.key,
            write: cand.write,
            text: cand.text.clone(),
            op: cand.op,
            rf: (0, 0),
            multi: cand.multi,
        });
        list.push(e);
    }
    for (c, ws) in rf_cands.iter().enumerate() {
        if id[c] == u32::MAX || cand_is_write(&cands[c]) {
            continue;
        }
        let start = out.rf.len() as u32;
        let mut these: Vec<u32> = ws.iter().map(|&w| id[w]).collect();
        these.sort_unstable();
        these.dedup();
        out.rf.extend(these);
        out.events[id[c] as usize].rf = (start, out.rf.len() as u32);
    }
    index_writes(&mut out);
    out
}

fn cand_is_write(c: &Cand) -> bool {
    c.write
}

/// The readers of each write, and each session's writes of each key.
fn index_writes(out: &mut Events) {
    let n = out.events.len();
    let mut count = vec![0u32; n + 1];
    for e in 0..n {
        for &w in out.rf(e as u32) {
            count[w as usize + 1] += 1;
        }
    }
    for i in 0..n {
        count[i + 1] += count[i];
    }
    let mut fill = count.clone();
    out.readers = vec![0; count[n] as usize];
    for e in 0..n {
        let (a, b) = out.events[e].rf;
        for i in a..b {
            let w = out.rf[i as usize] as usize;
            out.readers[fill[w] as usize] = e as u32;
            fill[w] += 1;
        }
    }
    out.readers_off = count;
    out.writers_of_key = vec![Vec::new(); out.keys.len()];
    for (e, ev) in out.events.iter().enumerate() {
        if ev.write {
            let list = out.writes.entry((ev.session, ev.key)).or_default();
            if list.is_empty() {
                out.writers_of_key[ev.key as usize].push(ev.session);
            }
            list.push(e as u32);
        }
    }
}

/// What an edge of a causal path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Session order.
    So,
    /// Reads-from.
    Rf,
    /// Conflict: the first write is causally before this read of the second (CCv).
    Cf(u32),
    /// A session's happens-before: this read of the session chose the second write over the
    /// first, which was already before it (CM).
    Hb(u32),
}

impl Via {
    pub fn is_cf(self) -> bool {
        matches!(self, Via::Cf(_))
    }

    pub fn is_hb(self) -> bool {
        matches!(self, Via::Hb(_))
    }
}

/// A graph over the events: session order, reads-from and extra edges, with a topological
/// order and vector clocks when it has no cycle.
pub struct Order {
    /// Successors (CSR), with what each edge is.
    off: Vec<u32>,
    succ: Vec<(u32, Via)>,
    /// Per event, per session: 1 + the last position of that session at or before it (0:
    /// none). Empty when the graph has a cycle.
    pub vc: Vec<u32>,
    sessions: usize,
    /// Events left over by the topological sort: they lie on or after a cycle.
    pub cyclic: Vec<u32>,
}

impl Order {
    /// The order over `ev`'s session order and reads-from, plus `extra` edges.
    pub fn new(ev: &Events, extra: &[(u32, u32, Via)]) -> Order {
        let n = ev.n();
        let mut edges: Vec<(u32, u32, Via)> = Vec::with_capacity(n + ev.rf.len() + extra.len());
        for (_, list) in &ev.sessions {
            for w in list.windows(2) {
                edges.push((w[0], w[1], Via::So));
            }
        }
        for e in 0..n as u32 {
            for &w in ev.rf(e) {
                edges.push((w, e, Via::Rf));
            }
        }
        edges.extend_from_slice(extra);
        let mut off = vec![0u32; n + 1];
        for &(a, _, _) in &edges {
            off[a as usize + 1] += 1;
        }
        for i in 0..n {
            off[i + 1] += off[i];
        }
        let mut fill = off.clone();
        let mut succ = vec![(0u32, Via::So); edges.len()];
        let mut indeg = vec![0u32; n];
        for &(a, b, via) in &edges {
            succ[fill[a as usize] as usize] = (b, via);
            fill[a as usize] += 1;
            indeg[b as usize] += 1;
        }
        let s = ev.sessions.len();
        let mut order = Order {
            off,
            succ,
            vc: Vec::new(),
            sessions: s,
            cyclic: Vec::new(),
        };
        let mut queue: VecDeque<u32> = (0..n as u32).filter(|&e| indeg[e as usize] == 0).collect();
        let mut vc = vec![0u32; n * s];
        let mut done = 0;
        while let Some(e) = queue.pop_front() {
            done += 1;
            let ee = e as usize;
            let me = &ev.events[ee];
            vc[ee * s + me.session as usize] = me.pos + 1;
            for i in order.off[ee]..order.off[ee + 1] {
                let (b, _) = order.succ[i as usize];
                let bb = b as usize;
                // Join e's clock into b's (b's row is after e's or before it; split the slice).
                let (lo, hi) = if bb > ee {
                    let (l, h) = vc.split_at_mut(bb * s);
                    (&l[ee * s..ee * s + s], &mut h[..s])
                } else {
                    let (l, h) = vc.split_at_mut(ee * s);
                    let src: &[u32] = &h[..s];
                    let dst = &mut l[bb * s..bb * s + s];
                    for (d, x) in dst.iter_mut().zip(src) {
                        *d = (*d).max(*x);
                    }
                    indeg[bb] -= 1;
                    if indeg[bb] == 0 {
                        queue.push_back(b);
                    }
                    continue;
                };
                for (d, x) in hi.iter_mut().zip(lo) {
                    *d = (*d).max(*x);
                }
                indeg[bb] -= 1;
                if indeg[bb] == 0 {
                    queue.push_back(b);
                }
            }
        }
        if done < n {
            order.cyclic = (0..n as u32).filter(|&e| indeg[e as usize] > 0).collect();
        } else {
            order.vc = vc;
        }
        order
    }

    pub fn acyclic(&self) -> bool {
        self.cyclic.is_empty()
    }

    fn clock(&self, e: u32) -> &[u32] {
        let s = self.sessions;
        &self.vc[e as usize * s..e as usize * s + s]
    }

    /// Whether `a` is before `b` or is `b` (needs an acyclic order).
    pub fn reaches(&self, ev: &Events, a: u32, b: u32) -> bool {
        let ea = &ev.events[a as usize];
        self.clock(b)[ea.session as usize] > ea.pos
    }

    /// Whether `a` is strictly before `b`.
    pub fn before(&self, ev: &Events, a: u32, b: u32) -> bool {
        a != b && self.reaches(ev, a, b)
    }

    /// The last write of `key` by session `s` at or before `e`.
    pub fn last_write(&self, ev: &Events, s: u32, key: u32, e: u32) -> Option<u32> {
        let upto = self.clock(e)[s as usize];
        let ws = ev.writes_of(s, key);
        let k = ws.partition_point(|&w| ev.events[w as usize].pos < upto);
        (k > 0).then(|| ws[k - 1])
    }

    fn succs(&self, e: u32) -> &[(u32, Via)] {
        &self.succ[self.off[e as usize] as usize..self.off[e as usize + 1] as usize]
    }

    /// A shortest path of edges from `a` to `b` (a ≤ b), visiting only events before `b`, with
    /// each run of session order told as one step.
    pub fn path(&self, ev: &Events, a: u32, b: u32) -> Vec<(u32, u32, Via)> {
        compress(self.raw_path(ev, a, b))
    }

    fn raw_path(&self, ev: &Events, a: u32, b: u32) -> Vec<(u32, u32, Via)> {
        let mut prev: HashMap<u32, (u32, Via)> = HashMap::new();
        let mut queue = VecDeque::from([a]);
        while let Some(x) = queue.pop_front() {
            if x == b {
                break;
            }
            for &(y, via) in self.succs(x) {
                if y != a && !prev.contains_key(&y) && self.reaches(ev, y, b) {
                    prev.insert(y, (x, via));
                    queue.push_back(y);
                }
            }
        }
        let mut path = Vec::new();
        let mut at = b;
        while at != a {
            let Some(&(x, via)) = prev.get(&at) else {
                return Vec::new();
            };
            path.push((x, at, via));
            at = x;
        }
        path.reverse();
        path
    }

    /// Up to `max` shortest cycles, one per strongly connected component (Tarjan, petgraph),
    /// each as its edges, when the graph has cycles; prefers cycles through an edge `want`.
    pub fn cycles(&self, max: usize, want: Option<fn(Via) -> bool>) -> Vec<Vec<(u32, u32, Via)>> {
        if self.cyclic.is_empty() {
            return Vec::new();
        }
        let nodes = &self.cyclic;
        let mut g: DiGraph<u32, Via, u32> = DiGraph::with_capacity(nodes.len(), nodes.len());
        let mut at: HashMap<u32, NodeIndex<u32>> = HashMap::new();
        for &e in nodes {
            at.insert(e, g.add_node(e));
        }
        for &e in nodes {
            for &(b, via) in self.succs(e) {
                if let Some(&nb) = at.get(&b) {
                    g.add_edge(at[&e], nb, via);
                }
            }
        }
        let mut out = Vec::new();
        for scc in petgraph::algo::tarjan_scc(&g) {
            if out.len() >= max {
                break;
            }
            if scc.len() < 2 {
                continue;
            }
            let members: hashbrown::HashSet<u32> = scc.iter().map(|&i| g[i]).collect();
            // Starts: the sources of wanted edges first.
            let mut starts: Vec<u32> = scc.iter().map(|&i| g[i]).collect();
            starts.sort_unstable();
            if let Some(w) = want {
                starts.sort_by_key(|&e| {
                    !self
                        .succs(e)
                        .iter()
                        .any(|&(b, v)| w(v) && members.contains(&b))
                });
            }
            let mut best: Option<Vec<(u32, u32, Via)>> = None;
            for &s in starts.iter().take(16) {
                if let Some(c) = self.shortest_cycle(s, &members) {
                    let has = want.is_none_or(|w| c.iter().any(|e| w(e.2)));
                    let better = match &best {
                        None => true,
                        Some(b) => {
                            let bh = want.is_none_or(|w| b.iter().any(|e| w(e.2)));
                            (has && !bh) || (has == bh && c.len() < b.len())
                        }
                    };
                    if better {
                        best = Some(c);
                    }
                }
            }
            out.extend(best);
        }
        out
    }

    /// The shortest cycle through `s` inside `members`.
    fn shortest_cycle(
        &self,
        s: u32,
        members: &hashbrown::HashSet<u32>,
    ) -> Option<Vec<(u32, u32, Via)>> {
        let mut prev: HashMap<u32, (u32, Via)> = HashMap::new();
        let mut queue = VecDeque::from([s]);
        while let Some(x) = queue.pop_front() {
            for &(y, via) in self.succs(x) {
                if !members.contains(&y) {
                    continue;
                }
                if y == s {
                    let mut path = vec![(x, s, via)];
                    let mut at = x;
                    while at != s {
                        let (p, v) = prev[&at];
                        path.push((p, at, v));
                        at = p;
                    }
                    path.reverse();
                    return Some(compress(path));
                }
                if let hashbrown::hash_map::Entry::Vacant(slot) = prev.entry(y) {
                    slot.insert((x, via));
                    queue.push_back(y);
                }
            }
        }
        None
    }
}

/// Consecutive session-order edges as one: "session 2 did w(y, 7) after w(x, 3)".
pub fn compress(path: Vec<(u32, u32, Via)>) -> Vec<(u32, u32, Via)> {
    let mut out: Vec<(u32, u32, Via)> = Vec::with_capacity(path.len());
    for e in path {
        match out.last_mut() {
            Some(last) if last.2 == Via::So && e.2 == Via::So && last.1 == e.0 => last.1 = e.1,
            _ => out.push(e),
        }
    }
    out
}

/// One sentence per edge of a path or cycle.
pub fn because(ev: &Events, a: u32, b: u32, via: Via) -> String {
    let (pa, pb) = (ev.process(a), ev.process(b));
    match via {
        Via::So => format!("session {pb} did {} after {}", ev.label(b), ev.label(a)),
        Via::Rf => {
            let ea = &ev.events[a as usize];
            format!(
                "session {pb} read {}={}, which session {pa} wrote",
                ev.keys[ea.key as usize], ea.text
            )
        }
        Via::Cf(r) => format!(
            "{} must be arbitrated before {}: {} returned the latter while the former was \
             causally before it",
            ev.who(a),
            ev.who(b),
            ev.who(r)
        ),
        Via::Hb(r) => format!(
            "in session {}'s view {} comes before {}: its {} returned the latter while the \
             former was already before it",
            ev.process(r),
            ev.who(a),
            ev.who(b),
            ev.label(r)
        ),
    }
}

fn edges_of(ev: &Events, path: &[(u32, u32, Via)]) -> Vec<Edge> {
    path.iter()
        .map(|&(a, b, via)| Edge {
            from: ev.index[a as usize],
            to: ev.index[b as usize],
            because: because(ev, a, b, via),
        })
        .collect()
}

/// An anomaly over `events`, in the order given; `cycle` drawn when not empty.
pub fn anomaly(
    ev: &Events,
    kind: &str,
    key: Option<u32>,
    title: String,
    sentences: Vec<String>,
    events: &[u32],
    cycle: &[(u32, u32, Via)],
) -> Anomaly {
    let mut span = None;
    let mut ops = Vec::new();
    for &e in events.iter().chain(cycle.iter().map(|c| &c.0)) {
        let [a, b] = ev.span[e as usize];
        widen(&mut span, a, b);
        let i = ev.index[e as usize];
        if !ops.contains(&i) {
            ops.push(i);
        }
    }
    Anomaly {
        kind: kind.to_owned(),
        key: key.map(|k| ev.keys[k as usize].clone()),
        title,
        sentences,
        ops,
        cycle: edges_of(ev, cycle),
        span_ns: span,
    }
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Anomalies described, and how many of each kind were found in all.
    pub anomalies: Vec<Anomaly>,
    pub counts: BTreeMap<String, usize>,
    /// Per model: held (Some(true)), broken (Some(false)) or undecided (None).
    pub holds: BTreeMap<Model, Option<bool>>,
    /// Why a model is undecided.
    pub unknown: Vec<String>,
    pub notes: Vec<String>,
}

impl Findings {
    fn add(&mut self, a: Anomaly) {
        let n = self.counts.entry(a.kind.clone()).or_default();
        *n += 1;
        if *n <= MAX_PER_KIND {
            self.anomalies.push(a);
        }
    }

    fn found(&self, model: Model) -> bool {
        KINDS
            .iter()
            .filter(|(_, m)| *m == model)
            .any(|(k, _)| self.counts.get(*k).is_some_and(|&n| n > 0))
    }
}

/// Checks `ev` for every model; `cm_budget` bounds causal memory's search.
pub fn analyse(ev: &Events, cm_budget: Duration) -> Findings {
    let mut f = Findings::default();
    for a in &ev.thin_air {
        f.add(a.clone());
    }
    let co = Order::new(ev, &[]);
    if !co.acyclic() {
        for c in co.cycles(MAX_CYCLES, None) {
            let events: Vec<u32> = c.iter().map(|e| e.0).collect();
            let mut sentences = vec![
                "Session order and reads-from form a cycle: each of these operations is \
                 causally before the next, and the last before the first."
                    .to_owned(),
            ];
            sentences.extend(
                c.iter()
                    .map(|&(a, b, via)| format!("  - {}", because(ev, a, b, via))),
            );
            let title = format!(
                "a cycle of {} operations in causal order, through {}",
                c.len(),
                ev.who(c[0].0)
            );
            f.add(anomaly(ev, "CyclicCO", None, title, sentences, &events, &c));
        }
        // Every later pattern is stated over a causal order; with none, CC is broken and
        // nothing further can be said.
        f.notes.push(
            "causal order has a cycle: CC, CCv and CM all fail, and no other pattern is \
             looked for"
                .into(),
        );
        for m in Model::ALL {
            f.holds.insert(m, Some(false));
        }
        return f;
    }
    let cf = reads(ev, &co, &mut f);
    let cc = !f.found(Model::Cc);
    f.holds.insert(Model::Cc, Some(cc));
    if !cc {
        f.holds.insert(Model::Ccv, Some(false));
        f.holds.insert(Model::Cm, Some(false));
        return f;
    }
    if ev.multi_value {
        f.notes.push(
            "reads returned siblings: every read is judged as a multi-value register read, \
             with no arbitration, so CCv and CM hold with CC"
                .into(),
        );
        f.holds.insert(Model::Ccv, Some(true));
        f.holds.insert(Model::Cm, Some(true));
        return f;
    }
    // CCv: CO ∪ CF acyclic.
    let with_cf = Order::new(ev, &cf);
    for c in with_cf.cycles(MAX_CYCLES, Some(Via::is_cf)) {
        let events: Vec<u32> = c.iter().map(|e| e.0).collect();
        let mut sentences = vec![
            "No single order of the writes explains every read: each edge below forces one \
             operation before the next, and the last before the first."
                .to_owned(),
        ];
        sentences.extend(
            c.iter()
                .map(|&(a, b, via)| format!("  - {}", because(ev, a, b, via))),
        );
        let key = c
            .iter()
            .find(|e| Via::is_cf(e.2))
            .map(|e| ev.events[e.0 as usize].key);
        let title = format!(
            "writes of {} cannot be arbitrated in one order that every session agrees on",
            key.map_or("several keys".to_owned(), |k| ev.keys[k as usize].clone())
        );
        f.add(anomaly(ev, "CyclicCF", key, title, sentences, &events, &c));
    }
    if !with_cf.acyclic() && !f.counts.contains_key("CyclicCF") {
        f.counts.insert("CyclicCF".into(), 1);
    }
    f.holds.insert(Model::Ccv, Some(with_cf.acyclic()));
    match memory::check(ev, &co, cm_budget, &mut f) {
        Some(ok) => {
            f.holds.insert(Model::Cm, Some(ok));
        }
        None => {
            f.holds.insert(Model::Cm, None);
        }
    }
    f
}

/// The CC patterns over every read (and, for multi-value reads, the missing writes); returns
/// the CF edges CCv needs.
fn reads(ev: &Events, co: &Order, f: &mut Findings) -> Vec<(u32, u32, Via)> {
    let mut cf = Vec::new();
    for r in 0..ev.n() as u32 {
        let er = &ev.events[r as usize];
        if er.write {
            continue;
        }
        let from = ev.rf(r);
        let multi = ev.multi_value;
        // The violation found for this read: (kind, the write that should have been seen,
        // the write returned, if any).
        let mut worst: Option<(usize, &'static str, u32, Option<u32>)> = None;
        let mut consider = |generic: &'static str, w: u32, returned: Option<u32>| {
            let (rank, kind) = match classify(ev, w, r) {
                Some(g) => (GUARANTEES.iter().position(|x| *x == g).unwrap_or(4), g),
                None => (4, generic),
            };
            if worst.is_none_or(|(best, ..)| rank < best) {
                worst = Some((rank, kind, w, returned));
            }
        };
        for &t in &ev.writers_of_key[er.key as usize] {
            let Some(w) = co.last_write(ev, t, er.key, r) else {
                continue;
            };
            if from.is_empty() {
                if !ev.thin_air_read(r) {
                    consider("WriteCOInitRead", w, None);
                }
                continue;
            }
            // A returned version superseded by w, which is causally before the read.
            if let Some(&old) = from.iter().find(|&&m| co.before(ev, m, w)) {
                consider("WriteCORead", w, Some(old));
                continue;
            }
            if from.contains(&w) {
                continue;
            }
            if multi {
                if !from.iter().any(|&m| co.reaches(ev, w, m)) {
                    consider("WriteCOMissing", w, None);
                }
            } else if !co.before(ev, w, from[0]) {
                cf.push((w, from[0], Via::Cf(r)));
            }
        }
        if let Some((_, kind, w, returned)) = worst {
            f.add(describe(ev, co, kind, r, w, returned));
        }
    }
    cf
}

impl Events {
    /// Whether read `r` returned a value nobody wrote (already reported).
    fn thin_air_read(&self, r: u32) -> bool {
        let e = &self.events[r as usize];
        !e.write && self.rf(r).is_empty() && e.text != "null"
    }
}

/// Which session guarantee, if any, makes write `w` visible to read `r` in one step.
fn classify(ev: &Events, w: u32, r: u32) -> Option<&'static str> {
    let (ew, er) = (&ev.events[w as usize], &ev.events[r as usize]);
    if ew.session == er.session && ew.pos < er.pos {
        return Some("read-your-writes");
    }
    let before_r = |x: u32| {
        let e = &ev.events[x as usize];
        e.session == er.session && e.pos < er.pos
    };
    if ev.readers(w).iter().any(|&x| before_r(x)) {
        return Some("monotonic-reads");
    }
    let session = &ev.sessions[er.session as usize].1;
    let seen = || {
        session[..=er.pos as usize]
            .iter()
            .filter(|&&x| !ev.events[x as usize].write)
            .flat_map(|&x| ev.rf(x).iter().copied())
    };
    if seen().any(|w2| {
        let e2 = &ev.events[w2 as usize];
        e2.session == ew.session && e2.pos > ew.pos
    }) {
        return Some("monotonic-writes");
    }
    if seen().any(|w2| {
        let e2 = &ev.events[w2 as usize];
        ev.readers(w).iter().any(|&x| {
            let ex = &ev.events[x as usize];
            ex.session == e2.session && ex.pos < e2.pos
        })
    }) {
        return Some("writes-follow-reads");
    }
    None
}

/// The anomaly of read `r`, which should have seen write `w` (causally before it).
fn describe(
    ev: &Events,
    co: &Order,
    kind: &'static str,
    r: u32,
    w: u32,
    returned: Option<u32>,
) -> Anomaly {
    let er = &ev.events[r as usize];
    let key = &ev.keys[er.key as usize];
    let path = co.path(ev, w, r);
    let mut sentences = Vec::new();
    let mut events = vec![w, r];
    let what = match returned {
        Some(old) => {
            events.insert(0, old);
            format!(
                "{} returned {key}={}, written by {}, which is causally before {}",
                ev.who(r),
                ev.events[old as usize].text,
                ev.who(old),
                ev.who(w)
            )
        }
        None if kind == "WriteCOMissing" || (ev.multi_value && !ev.rf(r).is_empty()) => format!(
            "{} returned {} but not {} nor any version that supersedes it",
            ev.who(r),
            er.text,
            ev.who(w)
        ),
        None => format!(
            "{} returned the initial value of {key}, but {} is causally before it",
            ev.who(r),
            ev.who(w)
        ),
    };
    sentences.push(what);
    sentences.push(format!(
        "{} is causally before {}, because:",
        ev.who(w),
        ev.label(r)
    ));
    sentences.extend(
        path.iter()
            .map(|&(a, b, via)| format!("  - {}", because(ev, a, b, via))),
    );
    if let Some(g) = GUARANTEES.iter().find(|g| **g == kind) {
        let pattern = if returned.is_some() {
            "WriteCORead"
        } else if ev.rf(r).is_empty() {
            "WriteCOInitRead"
        } else {
            "WriteCOMissing"
        };
        sentences.push(format!(
            "This breaks {g}, a case of the {pattern} pattern: under causal consistency a \
             read sees every write causally before it, or a newer one."
        ));
    }
    let title = match kind {
        "read-your-writes" => format!(
            "session {} did not read its own write of {key}",
            ev.process(r)
        ),
        "monotonic-reads" => format!(
            "session {} read an older {key} than it had read before",
            ev.process(r)
        ),
        "monotonic-writes" => format!(
            "session {} saw a write of session {} but not that session's earlier write of {key}",
            ev.process(r),
            ev.process(w)
        ),
        "writes-follow-reads" => format!(
            "session {} saw a write made after a read of {key}, but not the write that read saw",
            ev.process(r)
        ),
        _ => match returned {
            Some(old) => format!(
                "{} returned {key}={}, which {}, causally before the read, had superseded",
                ev.who(r),
                ev.events[old as usize].text,
                ev.label(w)
            ),
            None => format!(
                "{} missed {}, which is causally before it",
                ev.who(r),
                ev.label(w)
            ),
        },
    };
    let mut a = anomaly(ev, kind, Some(er.key), title, sentences, &events, &[]);
    a.cycle = edges_of(ev, &path);
    a.cycle.push(did_not_see(ev, r, w));
    a
}

/// The edge that closes a witness's path into a cycle: read `r` did not see write `w`, so in
/// its view it comes before `w`; yet `w` is causally before it.
pub fn did_not_see(ev: &Events, r: u32, w: u32) -> Edge {
    Edge {
        from: ev.index[r as usize],
        to: ev.index[w as usize],
        because: format!(
            "{} did not see {} (it returned {}), so it must come before it",
            ev.label(r),
            ev.label(w),
            ev.events[r as usize].text
        ),
    }
}

/// The registry's causal checker.
pub struct Causal;

impl Checker for Causal {
    fn name(&self) -> &'static str {
        "causal"
    }

    fn property(&self) -> &'static str {
        "causal"
    }

    fn about(&self) -> &'static str {
        "registers with unique writes: the bad patterns of causal consistency (CC), causal \
         convergence (CCv) and causal memory (CM), and the four session guarantees, against \
         --consistency-model CC, CCv or CM (default CCv)"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        let started = Instant::now();
        let model = opts.causal.unwrap_or(DEFAULT_MODEL);
        let ev = Events::from_history(history, paired);
        let mut result = judge(
            &ev,
            model,
            opts.time_limit.unwrap_or(DEFAULT_CM_BUDGET),
            opts,
        );
        result.elapsed_us = started.elapsed().as_micros() as u64;
        Ok(result)
    }
}

/// The verdict for `model`, with every model's outcome in the summary and the detail.
pub fn judge(ev: &Events, model: Model, cm_budget: Duration, opts: &Options) -> CheckerResult {
    let reads = ev.events.iter().filter(|e| !e.write).count();
    let mut summary = vec![format!(
        "{} reads and {} writes of {} keys by {} sessions, checked for {} ({})",
        reads,
        ev.n() - reads,
        ev.keys.len(),
        ev.sessions.len(),
        model.name(),
        model.long()
    )];
    let bytes = ev.n() as u64 * ev.sessions.len() as u64 * 4;
    let unusable = ev.unusable.clone().or_else(|| {
        (bytes > opts.memory_limit_bytes as u64).then(|| {
            format!(
                "the causal order's vector clocks would take {} MiB ({} events × {} \
                 sessions), over the memory limit of {} MiB",
                bytes >> 20,
                ev.n(),
                ev.sessions.len(),
                opts.memory_limit_bytes >> 20
            )
        })
    });
    if let Some(why) = unusable {
        summary.push(why);
        return CheckerResult {
            checker: "causal".into(),
            verdict: Judgement::Unknown,
            promised: true,
            summary,
            anomalies: Vec::new(),
            elapsed_us: 0,
            detail: json!({"model": model.name()}),
        };
    }
    let f = analyse(ev, cm_budget);
    let state = |m: Model| match f.holds.get(&m).copied().flatten() {
        Some(true) => "holds",
        Some(false) => "violated",
        None => "unknown",
    };
    summary.push(
        Model::ALL
            .iter()
            .map(|&m| format!("{}: {}", m.name(), state(m)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let guarantee = |g: &str| !f.counts.contains_key(g);
    summary.push(format!(
        "session guarantees: {}",
        GUARANTEES
            .iter()
            .map(|g| format!("{g} {}", if guarantee(g) { "held" } else { "violated" }))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !f.counts.is_empty() {
        summary.push(format!(
            "found: {}",
            f.counts
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if ev.dropped_info_writes > 0 {
        summary.push(format!(
            "{} indeterminate writes nobody read were left out (they may not have happened)",
            ev.dropped_info_writes
        ));
    }
    summary.extend(f.notes.iter().cloned());
    summary.extend(f.unknown.iter().cloned());
    let verdict = match f.holds.get(&model).copied().flatten() {
        Some(false) => Judgement::Invalid,
        None => Judgement::Unknown,
        Some(true) if reads == 0 => {
            summary.push("no read of a register: nothing to check".into());
            Judgement::Unknown
        }
        Some(true) => Judgement::Valid,
    };
    let models: serde_json::Map<String, Value> = Model::ALL
        .iter()
        .map(|&m| (m.name().to_owned(), json!(state(m))))
        .collect();
    let guarantees: serde_json::Map<String, Value> = GUARANTEES
        .iter()
        .map(|g| ((*g).to_owned(), json!(guarantee(g))))
        .collect();
    CheckerResult {
        checker: "causal".into(),
        verdict,
        promised: true,
        summary,
        anomalies: f.anomalies,
        elapsed_us: 0,
        detail: json!({
            "model": model.name(),
            "models": models,
            "session_guarantees": guarantees,
            "counts": f.counts,
            "sessions": ev.sessions.len(),
            "events": ev.n(),
            "multi_value": ev.multi_value,
        }),
    }
}
