//! The dependency graph between transactions, its strongly connected components, and the
//! shortest cycle of each class in each of them.
//!
//! Nodes are transactions (a failed one has no edges). Edges are the inferred ww, wr and rw
//! dependencies, plus process order (each process's consecutive transactions) when the model
//! is a `strong-session` one, plus real-time order when it is `strict-serializable` or a
//! `strong` one. Real time is not drawn as its n² pairs, nor as a transitive reduction (which
//! still has about n × concurrency edges), but through one extra node per completion: `A →
//! c(A)` from each ok transaction to the node of its completion, `c_k → c_{k+1}` along the
//! completions in time order, and `c_m → B` from the last completion before B's invocation.
//! B is reachable from A through them exactly when A completed before B was invoked, so the
//! reachability (and every cycle) is that of real-time order, in 3n edges. A path through
//! completion nodes counts as one real-time edge, and is shown as one.
//!
//! Cycles can only lie inside a strongly connected component (Tarjan's algorithm, on
//! petgraph). In each, the classes are searched in Elle's order, most severe first: G0 (only
//! ww), G1c (ww and wr, at least one wr), G-single (exactly one rw), G-nonadjacent (two or
//! more rw, no two adjacent), G2-item (two or more rw, some adjacent), then each with process
//! edges (`-process`) and with real-time edges (`-realtime`); a class implied by one already
//! found in the component is not searched again. Each search is a breadth-first search over
//! (transaction, what the path so far holds), which returns the cycle with the fewest
//! transactions through its start; the starts are tried within a time budget per class.

use super::explain;
use super::{model, Dep, Rel, Txns};
use crate::result::Anomaly;
use hashbrown::{HashMap, HashSet};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Cycles of one class reported per class, across all components (the rest are counted).
pub const MAX_CYCLES_PER_CLASS: usize = 8;

/// What an edge of the graph is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edge {
    /// An inferred dependency or process order: its index in `Graph::deps`.
    Dep(u32),
    /// A transaction to the node of its completion.
    RtOut,
    /// One completion node to the next.
    RtChain,
    /// A completion node to a transaction invoked after it.
    RtIn,
}

/// The dependency graph.
pub struct Graph {
    g: DiGraph<(), Edge, u32>,
    txns: usize,
    deps: Vec<Dep>,
}

/// The classes of cycle, by what their edges hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    G0,
    G1c,
    GSingle,
    GNonadjacent,
    G2Item,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Data,
    Process,
    Realtime,
}

impl Base {
    fn name(self) -> &'static str {
        match self {
            Base::G0 => "G0",
            Base::G1c => "G1c",
            Base::GSingle => "G-single",
            Base::GNonadjacent => "G-nonadjacent",
            Base::G2Item => "G2-item",
        }
    }
}

fn class_name(base: Base, variant: Variant) -> String {
    match variant {
        Variant::Data => base.name().to_string(),
        Variant::Process => format!("{}-process", base.name()),
        Variant::Realtime => format!("{}-realtime", base.name()),
    }
}

/// What the cycle search found.
#[derive(Debug, Default)]
pub struct Cycles {
    pub anomalies: Vec<Anomaly>,
    /// Searches that ran out of time.
    pub timeouts: usize,
    /// Transactions in the largest strongly connected component.
    pub largest_scc: usize,
}

/// One step of a cycle: the dependency it follows.
pub type Step = Dep;

impl Graph {
    /// The graph over `txns` with the inferred `deps`, plus process order and real-time order
    /// when asked for.
    pub fn build(txns: &Txns, mut deps: Vec<Dep>, process: bool, realtime: bool) -> Graph {
        let n = txns.txns.len();
        deps.retain(|d| {
            d.from != d.to
                && !txns.txns[d.from as usize].failed()
                && !txns.txns[d.to as usize].failed()
        });
        if process {
            let mut last: HashMap<u64, u32> = HashMap::new();
            for (i, t) in txns.txns.iter().enumerate() {
                if t.failed() {
                    continue;
                }
                if let Some(prev) = last.insert(t.process, i as u32) {
                    deps.push(Dep::order(prev, i as u32, Rel::Process));
                }
            }
        }
        let completions: Vec<u32> = if realtime {
            let mut c: Vec<u32> = (0..n as u32)
                .filter(|&i| {
                    txns.txns[i as usize].ok() && txns.txns[i as usize].complete_ns.is_some()
                })
                .collect();
            c.sort_by_key(|&i| txns.txns[i as usize].complete_ns);
            c
        } else {
            Vec::new()
        };
        let mut g: DiGraph<(), Edge, u32> =
            DiGraph::with_capacity(n + completions.len(), deps.len() + 3 * completions.len());
        for _ in 0..n + completions.len() {
            g.add_node(());
        }
        for (i, d) in deps.iter().enumerate() {
            g.add_edge(
                NodeIndex::new(d.from as usize),
                NodeIndex::new(d.to as usize),
                Edge::Dep(i as u32),
            );
        }
        if !completions.is_empty() {
            let node = |k: usize| NodeIndex::new(n + k);
            for (k, &t) in completions.iter().enumerate() {
                g.add_edge(NodeIndex::new(t as usize), node(k), Edge::RtOut);
                if k > 0 {
                    g.add_edge(node(k - 1), node(k), Edge::RtChain);
                }
            }
            let times: Vec<u64> = completions
                .iter()
                .map(|&t| txns.txns[t as usize].complete_ns.unwrap_or(u64::MAX))
                .collect();
            for (i, t) in txns.txns.iter().enumerate() {
                if t.failed() {
                    continue;
                }
                // Completions strictly before this invocation.
                let m = times.partition_point(|&c| c < t.invoke_ns);
                if m > 0 {
                    g.add_edge(node(m - 1), NodeIndex::new(i), Edge::RtIn);
                }
            }
        }
        Graph { g, txns: n, deps }
    }

    pub fn txn_nodes(&self) -> usize {
        self.txns
    }

    pub fn edge_count(&self) -> usize {
        self.g.edge_count()
    }

    /// Every strongly connected component with a cycle, as lists of transaction nodes and
    /// completion nodes.
    fn components(&self) -> Vec<Vec<NodeIndex<u32>>> {
        petgraph::algo::tarjan_scc(&self.g)
            .into_iter()
            .filter(|c| c.len() > 1)
            .collect()
    }

    /// Finds and explains the cycles of every class in every component.
    pub fn cycles(&self, txns: &Txns, budget: Duration, kind: super::Kind) -> Cycles {
        let mut out = Cycles::default();
        let mut per_class: HashMap<String, usize> = HashMap::new();
        let variants: Vec<Variant> = {
            let has_process = self.deps.iter().any(|d| d.rel == Rel::Process);
            let has_rt = self.g.node_count() > self.txns;
            let mut v = vec![Variant::Data];
            if has_process {
                v.push(Variant::Process);
            }
            if has_rt {
                v.push(Variant::Realtime);
            }
            v
        };
        let mut comps = self.components();
        comps.sort_by_key(|c| c.len());
        for comp in comps {
            let size = comp.iter().filter(|n| n.index() < self.txns).count();
            out.largest_scc = out.largest_scc.max(size);
            let local = Local::new(self, &comp);
            let mut implied: HashSet<&'static str> = HashSet::new();
            for &variant in &variants {
                for base in [
                    Base::G0,
                    Base::G1c,
                    Base::GSingle,
                    Base::GNonadjacent,
                    Base::G2Item,
                ] {
                    let name = class_name(base, variant);
                    let Some(known) = model::anomaly_name(&name) else {
                        continue;
                    };
                    if implied.contains(known) {
                        continue;
                    }
                    let (found, timed_out) = local.search(self, base, variant, budget);
                    out.timeouts += timed_out as usize;
                    let Some(steps) = found else { continue };
                    implied.extend(model::implied(known));
                    let count = per_class.entry(name.clone()).or_default();
                    *count += 1;
                    if *count <= MAX_CYCLES_PER_CLASS {
                        out.anomalies
                            .push(explain::cycle(txns, kind, &name, &steps, size));
                    }
                }
            }
        }
        out
    }
}

/// A component copied out with local node numbers, so searches touch only it.
struct Local {
    /// Global node of each local node.
    nodes: Vec<u32>,
    /// Out-edges of each local node: (local target, edge).
    out: Vec<Vec<(u32, Edge)>>,
    txns: usize,
}

impl Local {
    fn new(g: &Graph, comp: &[NodeIndex<u32>]) -> Local {
        let mut nodes: Vec<u32> = comp.iter().map(|n| n.index() as u32).collect();
        nodes.sort_unstable();
        let pos: HashMap<u32, u32> = nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i as u32))
            .collect();
        let out = nodes
            .iter()
            .map(|&n| {
                g.g.edges(NodeIndex::new(n as usize))
                    .filter_map(|e| {
                        pos.get(&(e.target().index() as u32))
                            .map(|&t| (t, *e.weight()))
                    })
                    .collect()
            })
            .collect();
        Local {
            nodes,
            out,
            txns: g.txns,
        }
    }

    fn is_txn(&self, local: u32) -> bool {
        (self.nodes[local as usize] as usize) < self.txns
    }

    /// The shortest cycle of the class found within the budget, and whether it ran out.
    fn search(
        &self,
        g: &Graph,
        base: Base,
        variant: Variant,
        budget: Duration,
    ) -> (Option<Vec<Step>>, bool) {
        let deadline = Instant::now() + budget;
        let rule = Rule { base, variant };
        // Starts: transactions with an out-edge the class needs first-hand.
        let starts: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&u| self.is_txn(u))
            .filter(|&u| self.out[u as usize].iter().any(|&(_, e)| rule.anchor(g, e)))
            .collect();
        let exhaustive = self.nodes.len() <= 2_000;
        // (length, path, start)
        let mut best: Option<Found> = None;
        let mut tried_after_found = 0;
        for &s in &starts {
            if Instant::now() > deadline {
                return (best.map(|(_, path, s)| self.steps(g, s, &path)), true);
            }
            if best.is_some() {
                tried_after_found += 1;
                if !exhaustive && tried_after_found > 32 {
                    break;
                }
            }
            let limit = best.as_ref().map(|b| b.0).unwrap_or(u32::MAX);
            match self.bfs(g, &rule, s, limit, deadline) {
                Bfs::Found(len, path) => best = Some((len, path, s)),
                Bfs::None => {}
                Bfs::OutOfTime => {
                    return (best.map(|(_, path, s)| self.steps(g, s, &path)), true);
                }
            }
            if best.as_ref().is_some_and(|b| b.0 <= 2) {
                break;
            }
        }
        (best.map(|(_, path, s)| self.steps(g, s, &path)), false)
    }

    /// 0-1 breadth-first search from `s` back to `s` over (node, state), cheapest first; a
    /// hop along completion nodes is free, so the cost is the number of transactions.
    fn bfs(&self, g: &Graph, rule: &Rule, s: u32, limit: u32, deadline: Instant) -> Bfs {
        type Key = u64;
        let key = |n: u32, st: u8| ((n as u64) << 8) | st as u64;
        // state -> (cost, parent, edge into it)
        let mut seen: HashMap<Key, (u32, Key, Edge)> = HashMap::new();
        let mut queue: VecDeque<(u32, u8, u32)> = VecDeque::new();
        queue.push_back((s, 0, 0));
        seen.insert(key(s, 0), (0, u64::MAX, Edge::RtChain));
        let mut best: Option<(u32, Key, Key, Edge)> = None; // cost, last state, arrival "state", edge
        let mut steps = 0u32;
        while let Some((u, st, cost)) = queue.pop_front() {
            if seen.get(&key(u, st)).is_some_and(|&(c, _, _)| c < cost) {
                continue;
            }
            if best.as_ref().is_some_and(|b| cost >= b.0) || cost >= limit {
                continue;
            }
            steps += 1;
            if steps.is_multiple_of(4096) && Instant::now() > deadline {
                return Bfs::OutOfTime;
            }
            for &(v, e) in &self.out[u as usize] {
                let Some((next, w)) = rule.step(g, st, e) else {
                    continue;
                };
                let c = cost + w;
                if v == s {
                    if rule.accepts(next) && best.as_ref().is_none_or(|b| c < b.0) && c < limit {
                        best = Some((c, key(u, st), key(v, next), e));
                    }
                    continue;
                }
                let k = key(v, next);
                if seen.get(&k).is_some_and(|&(old, _, _)| old <= c) {
                    continue;
                }
                seen.insert(k, (c, key(u, st), e));
                if w == 0 {
                    queue.push_front((v, next, c));
                } else {
                    queue.push_back((v, next, c));
                }
            }
        }
        let Some((cost, last, _, e)) = best else {
            return Bfs::None;
        };
        // Walk back from the last state to the start.
        let mut path = vec![(s, e)];
        let mut k = last;
        while k != key(s, 0) {
            let (_, parent, edge) = seen[&k];
            path.push(((k >> 8) as u32, edge));
            k = parent;
        }
        path.reverse();
        Bfs::Found(cost, path)
    }

    /// The cycle's steps from the path of (node reached, edge taken) starting at `s`, with
    /// each run through completion nodes folded into one real-time step.
    fn steps(&self, g: &Graph, s: u32, path: &[(u32, Edge)]) -> Vec<Step> {
        let mut out = Vec::new();
        let mut at = self.nodes[s as usize];
        let mut rt_from: Option<u32> = None;
        for &(node, e) in path {
            let global = self.nodes[node as usize];
            match e {
                Edge::Dep(i) => {
                    out.push(g.deps[i as usize]);
                    at = global;
                }
                Edge::RtOut => rt_from = Some(at),
                Edge::RtChain => {}
                Edge::RtIn => {
                    out.push(Dep::new(
                        rt_from.take().unwrap_or(at),
                        global,
                        Rel::Realtime,
                        0,
                        None,
                        None,
                        0,
                    ));
                    at = global;
                }
            }
        }
        out
    }
}

/// A cycle found: its cost, its path of (node, edge), and its start.
type Found = (u32, Vec<(u32, Edge)>, u32);

enum Bfs {
    Found(u32, Vec<(u32, Edge)>),
    None,
    OutOfTime,
}

// Search state bits.
const STARTED: u8 = 1;
const RW_ONE: u8 = 1 << 1;
const RW_MANY: u8 = 1 << 2;
const LAST_RW: u8 = 1 << 3;
const FIRST_RW: u8 = 1 << 4;
const HAS_WR: u8 = 1 << 5;
const MARKED: u8 = 1 << 6;
const ADJACENT: u8 = 1 << 7;

/// What a class allows and requires, as transitions over the search state.
struct Rule {
    base: Base,
    variant: Variant,
}

impl Rule {
    fn rel(&self, g: &Graph, e: Edge) -> Option<Rel> {
        match e {
            Edge::Dep(i) => Some(g.deps[i as usize].rel),
            Edge::RtOut => Some(Rel::Realtime),
            Edge::RtChain | Edge::RtIn => None,
        }
    }

    fn allows(&self, rel: Rel) -> bool {
        match rel {
            Rel::Ww => true,
            Rel::Wr => self.base != Base::G0,
            Rel::Rw => !matches!(self.base, Base::G0 | Base::G1c),
            Rel::Process => self.variant != Variant::Data,
            Rel::Realtime => self.variant == Variant::Realtime,
        }
    }

    /// Whether a cycle of this class may start with edge `e`.
    fn anchor(&self, g: &Graph, e: Edge) -> bool {
        self.rel(g, e).is_some_and(|r| self.allows(r))
    }

    /// The state after following `e` from `st`, and the edge's cost; `None` if the class
    /// cannot use it here.
    fn step(&self, g: &Graph, st: u8, e: Edge) -> Option<(u8, u32)> {
        let Some(rel) = self.rel(g, e) else {
            // Along completion nodes: real time only.
            return (self.variant == Variant::Realtime).then_some((st, 0));
        };
        if !self.allows(rel) {
            return None;
        }
        let mut next = st | STARTED;
        match rel {
            Rel::Rw => {
                let rws = if st & RW_MANY != 0 {
                    2
                } else if st & RW_ONE != 0 {
                    1
                } else {
                    0
                };
                if self.base == Base::GSingle && rws >= 1 {
                    return None;
                }
                if st & LAST_RW != 0 {
                    if self.base == Base::GNonadjacent {
                        return None;
                    }
                    next |= ADJACENT;
                }
                if st & STARTED == 0 {
                    next |= FIRST_RW;
                }
                next = (next & !(RW_ONE | RW_MANY)) | if rws >= 1 { RW_MANY } else { RW_ONE };
                next |= LAST_RW;
            }
            other => {
                next &= !LAST_RW;
                if other == Rel::Wr {
                    next |= HAS_WR;
                }
                let marks = match self.variant {
                    Variant::Data => false,
                    Variant::Process => other == Rel::Process,
                    Variant::Realtime => other == Rel::Realtime,
                };
                if marks {
                    next |= MARKED;
                }
            }
        }
        Some((self.relevant(next), 1))
    }

    /// Drops the bits this class does not look at, so equivalent states merge.
    fn relevant(&self, st: u8) -> u8 {
        let keep = STARTED
            | if self.variant == Variant::Data {
                0
            } else {
                MARKED
            }
            | match self.base {
                Base::G0 => 0,
                Base::G1c => HAS_WR,
                Base::GSingle => RW_ONE,
                Base::GNonadjacent => RW_ONE | RW_MANY | LAST_RW | FIRST_RW,
                Base::G2Item => RW_ONE | RW_MANY | LAST_RW | FIRST_RW | ADJACENT,
            };
        st & keep
    }

    fn accepts(&self, st: u8) -> bool {
        if self.variant != Variant::Data && st & MARKED == 0 {
            return false;
        }
        let wrap = st & LAST_RW != 0 && st & FIRST_RW != 0;
        match self.base {
            Base::G0 => true,
            Base::G1c => st & HAS_WR != 0,
            Base::GSingle => st & RW_ONE != 0,
            Base::GNonadjacent => st & RW_MANY != 0 && !wrap,
            Base::G2Item => st & RW_MANY != 0 && (st & ADJACENT != 0 || wrap),
        }
    }
}
