//! The polynomial path for register histories in which every written value is unique
//! (Gibbons & Korach, "Testing shared memories", 1997, extended to compare-and-set).
//!
//! With unique values the reads-from relation is known, so the only freedom left is the order
//! of the versions. Group each value's writer with the operations that read it into a
//! *segment*; a successful `cas a→b` is the writer of `b` and forces `b` to come right after `a`,
//! so segments form *chains* that must stay contiguous. Real time orders segments: if an
//! operation of segment `v` completes before an operation of segment `u` begins, `v` precedes `u`.
//! For a chain `c` let `A(c)` be the earliest completion and `B(c)` the latest invocation among
//! its operations; then `c` must precede `d` exactly when `A(c) < B(d)`.
//!
//! Lemma: if `c → d` and not `d → c`, then `A(c) + B(c) < A(d) + B(d)` (from `A(c) < B(d)` and
//! `B(c) <= A(d)`). So the constraints are acyclic exactly when sorting chains by `A + B` leaves no
//! edge pointing backwards, and any backward edge closes a two-cycle: the history is decided in
//! O(n log n). The two-cycle, and the operations that create it, become the witness; the
//! explanation graph is a petgraph graph (see `explain_cycle`).
//!
//! Indeterminate writes take part only when their value is observed (then they certainly
//! happened); unobserved ones can be left out without changing the verdict. Refused
//! compare-and-sets only say "the value was not `a` at some point": the relaxed history without
//! them decides `Invalid` soundly; for `Valid` we build the earliest linearization of the
//! chosen version order and check that each refusal fits it. If one does not, the graph path
//! answers `Undecided` and the search takes over.

use crate::lin::model::{Action, INIT};
use crate::lin::search::KeyOp;
use hashbrown::HashMap;

/// What the graph path concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphOutcome {
    Valid,
    /// Not linearizable; `suspects` (indices into the key's operations) are a set of operations
    /// that cannot be linearized together, and `reason` says why in one sentence.
    Invalid {
        suspects: Vec<u32>,
        reason: String,
        /// For ordering conflicts: the cycle of "must come before" edges, one sentence each.
        cycle: Vec<CycleEdge>,
    },
    /// The fast path cannot decide this history; use the search.
    Undecided(String),
}

/// One edge of a cycle of "must come before" constraints, for witnesses (as Elle explains
/// its cycles): `from` must take effect before `to`, `because` says why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CycleEdge {
    pub from: String,
    pub to: String,
    pub because: String,
}

/// Finds a cycle in the constraint graph `edges` (from, to, because) with petgraph, and lists
/// its edges in order. The graphs here are small: the operations of one conflict.
fn find_cycle(edges: &[(String, String, String)]) -> Vec<CycleEdge> {
    use petgraph::graph::{DiGraph, NodeIndex};
    use petgraph::visit::EdgeRef;
    let mut g: DiGraph<String, String> = DiGraph::new();
    let mut index: HashMap<String, NodeIndex> = HashMap::new();
    let mut node = |g: &mut DiGraph<String, String>, label: &String| {
        *index
            .entry(label.clone())
            .or_insert_with(|| g.add_node(label.clone()))
    };
    for (from, to, because) in edges {
        let (a, b) = (node(&mut g, from), node(&mut g, to));
        g.add_edge(a, b, because.clone());
    }
    let Some(scc) = petgraph::algo::tarjan_scc(&g)
        .into_iter()
        .find(|c| c.len() > 1)
    else {
        return Vec::new();
    };
    // Walk from the first node along edges inside the component until it closes.
    let inside = |n: NodeIndex| scc.contains(&n);
    let start = scc[0];
    let mut path: Vec<petgraph::graph::EdgeIndex> = Vec::new();
    let mut seen = vec![start];
    let mut at = start;
    while path.len() <= scc.len() {
        let next = g
            .edges(at)
            .map(|e| (e.id(), e.target()))
            .filter(|&(_, t)| inside(t))
            .min_by_key(|&(_, t)| (t != start, seen.contains(&t)));
        let Some((e, t)) = next else { break };
        path.push(e);
        if t == start {
            break;
        }
        seen.push(t);
        at = t;
    }
    path.iter()
        .map(|&e| {
            let (a, b) = g.edge_endpoints(e).expect("edges of the graph");
            CycleEdge {
                from: g[a].clone(),
                to: g[b].clone(),
                because: g[e].clone(),
            }
        })
        .collect()
}

/// Time in "positions + 1", so that 0 means "before everything" (the initial value's writer).
type T = u64;

#[derive(Clone, Debug)]
struct Segment {
    /// The writer (index into ops), `None` for the initial value.
    writer: Option<u32>,
    reads: Vec<u32>,
    /// Earliest completion among the segment's operations, and which operation it is.
    a: T,
    a_op: Option<u32>,
    /// Latest invocation among the segment's operations, and which operation it is.
    b: T,
    b_op: Option<u32>,
    /// Chain and position in it.
    chain: usize,
    pos: usize,
}

fn call_t(op: &KeyOp) -> T {
    op.call + 1
}

fn ret_t(op: &KeyOp) -> T {
    op.ret.saturating_add(1)
}

/// Decides a register or cas-register history whose written values are all unique.
pub fn check_unique(ops: &[KeyOp], describe: &dyn Fn(u32) -> String) -> GraphOutcome {
    // Writers of each value.
    let mut writer: HashMap<u32, u32> = HashMap::with_capacity(ops.len() / 2);
    for (i, op) in ops.iter().enumerate() {
        if let Some(v) = op.prepared.action.writes_value() {
            if writer.insert(v, i as u32).is_some() {
                return GraphOutcome::Undecided(format!(
                    "value {} is written twice",
                    describe(i as u32)
                ));
            }
        }
    }
    // Which operations take part: everything required, and indeterminate writers whose value
    // is observed (they certainly happened), transitively through compare-and-set.
    let mut included = vec![false; ops.len()];
    let mut work: Vec<u32> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.prepared.required && !matches!(op.prepared.action, Action::CasFail { .. }) {
            included[i] = true;
            work.push(i as u32);
        }
    }
    while let Some(i) = work.pop() {
        let Some(v) = ops[i as usize].prepared.action.reads_value() else {
            continue;
        };
        if v == INIT as u32 {
            continue;
        }
        match writer.get(&v) {
            None => {
                return GraphOutcome::Invalid {
                    suspects: vec![i],
                    reason: format!(
                        "{} observed a value that no operation ever wrote",
                        describe(i)
                    ),
                    cycle: Vec::new(),
                }
            }
            Some(&w) if !included[w as usize] => {
                included[w as usize] = true;
                work.push(w);
            }
            Some(_) => {}
        }
    }

    // Segments: the initial value, then every written value that takes part.
    let mut seg_of: HashMap<u32, usize> = HashMap::with_capacity(ops.len() / 2);
    let mut segs: Vec<Segment> = Vec::new();
    let new_seg = |writer: Option<u32>, segs: &mut Vec<Segment>| {
        let (a, b) = match writer {
            None => (0, 0),
            Some(w) => (ret_t(&ops[w as usize]), call_t(&ops[w as usize])),
        };
        segs.push(Segment {
            writer,
            reads: Vec::new(),
            a,
            a_op: writer,
            b,
            b_op: writer,
            chain: usize::MAX,
            pos: 0,
        });
        segs.len() - 1
    };
    seg_of.insert(INIT as u32, new_seg(None, &mut segs));
    for (i, op) in ops.iter().enumerate() {
        if !included[i] {
            continue;
        }
        if let Some(v) = op.prepared.action.writes_value() {
            seg_of.insert(v, new_seg(Some(i as u32), &mut segs));
        }
    }
    // Successor of each segment through a successful compare-and-set.
    let mut succ: Vec<Option<usize>> = vec![None; segs.len()];
    let mut has_pred = vec![false; segs.len()];
    for (i, op) in ops.iter().enumerate() {
        if !included[i] {
            continue;
        }
        match op.prepared.action {
            Action::Read(v) => {
                let s = seg_of[&v];
                segs[s].reads.push(i as u32);
                let seg = &mut segs[s];
                if ret_t(op) < seg.a {
                    seg.a = ret_t(op);
                    seg.a_op = Some(i as u32);
                }
                if call_t(op) > seg.b {
                    seg.b = call_t(op);
                    seg.b_op = Some(i as u32);
                }
            }
            Action::Cas { from, to } => {
                let (sf, st) = (seg_of[&from], seg_of[&to]);
                if let Some(other) = succ[sf] {
                    let other_writer = segs[other].writer.expect("a successor has a writer");
                    let mut suspects = vec![other_writer, i as u32];
                    suspects.extend(segs[sf].writer);
                    return GraphOutcome::Invalid {
                        suspects,
                        reason: format!(
                            "{} and {} both succeeded from the same value, which was written only once",
                            describe(other_writer),
                            describe(i as u32)
                        ),
                        cycle: Vec::new(),
                    };
                }
                succ[sf] = Some(st);
                has_pred[st] = true;
            }
            _ => {}
        }
    }
    // A read that completed before its value's writer began.
    for seg in &segs {
        let Some(w) = seg.writer else { continue };
        for &r in &seg.reads {
            if ret_t(&ops[r as usize]) < call_t(&ops[w as usize]) {
                let (rd, wd) = (describe(r), describe(w));
                let cycle = find_cycle(&[
                    (
                        wd.clone(),
                        rd.clone(),
                        format!("{rd} read the value {wd} wrote"),
                    ),
                    (
                        rd.clone(),
                        wd.clone(),
                        format!("{rd} completed before {wd} began"),
                    ),
                ]);
                return GraphOutcome::Invalid {
                    suspects: vec![w, r],
                    reason: format!(
                        "{rd} completed before {wd}, the only write of that value, began"
                    ),
                    cycle,
                };
            }
        }
    }

    // Chains, from their heads (segments no compare-and-set leads into).
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for (head, &pred) in has_pred.iter().enumerate() {
        if pred {
            continue;
        }
        let mut chain = Vec::new();
        let mut s = Some(head);
        while let Some(cur) = s {
            segs[cur].chain = chains.len();
            segs[cur].pos = chain.len();
            chain.push(cur);
            s = succ[cur];
        }
        chains.push(chain);
    }
    if let Some(orphan) = segs.iter().position(|s| s.chain == usize::MAX) {
        // Compare-and-sets that lead in a circle (a→b and b→a): no first version exists.
        let mut suspects = Vec::new();
        let mut s = orphan;
        loop {
            suspects.extend(segs[s].writer);
            s = succ[s].expect("a segment on a circle has a successor");
            if s == orphan {
                break;
            }
        }
        return GraphOutcome::Invalid {
            suspects,
            reason: "these compare-and-sets lead in a circle, so none of them can be first"
                .to_owned(),
            cycle: Vec::new(),
        };
    }
    // Inside a chain, a later version may not be forced before an earlier one.
    for chain in &chains {
        let mut max_b: Option<usize> = None; // segment with the largest b so far
        for &s in chain {
            if let Some(u) = max_b {
                if segs[s].a < segs[u].b {
                    let mut suspects: Vec<u32> = Vec::new();
                    for &between in &chain[segs[u].pos..=segs[s].pos] {
                        suspects.extend(segs[between].writer);
                    }
                    suspects.extend(segs[s].a_op);
                    suspects.extend(segs[u].b_op);
                    let (x, y) = (
                        op_or_init(segs[s].a_op, describe),
                        op_or_init(segs[u].b_op, describe),
                    );
                    // y saw (or wrote) u's value; each compare-and-set after it replaced the
                    // value before; x saw (or wrote) s's value; and x completed before y began.
                    let mut edges = vec![(
                        x.clone(),
                        y.clone(),
                        format!("{x} completed before {y} began"),
                    )];
                    let mut prev = y.clone();
                    for &next in &chain[segs[u].pos + 1..=segs[s].pos] {
                        let w = op_or_init(segs[next].writer, describe);
                        edges.push((
                            prev.clone(),
                            w.clone(),
                            format!("{w} replaced the value that {prev} saw or wrote"),
                        ));
                        prev = w;
                    }
                    if prev != x {
                        edges.push((
                            prev.clone(),
                            x.clone(),
                            format!("{x} saw the value {prev} wrote"),
                        ));
                    }
                    return GraphOutcome::Invalid {
                        suspects,
                        reason: format!(
                            "{x} completed before {y} began, yet the chain of compare-and-sets (appends, for strings) between their values puts the first after the second"
                        ),
                        cycle: find_cycle(&edges),
                    };
                }
            }
            if max_b.is_none_or(|u| segs[s].b > segs[u].b) {
                max_b = Some(s);
            }
        }
    }
    // Chain-level constraints: A = min a, B = max b, with the operations that set them.
    struct ChainSpan {
        a: T,
        a_seg: usize,
        b: T,
        b_seg: usize,
    }
    let spans: Vec<ChainSpan> = chains
        .iter()
        .map(|chain| {
            let a_seg = *chain
                .iter()
                .min_by_key(|&&s| segs[s].a)
                .expect("chains are non-empty");
            let b_seg = *chain
                .iter()
                .max_by_key(|&&s| segs[s].b)
                .expect("chains are non-empty");
            ChainSpan {
                a: segs[a_seg].a,
                a_seg,
                b: segs[b_seg].b,
                b_seg,
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..chains.len()).collect();
    order.sort_by_key(|&c| (spans[c].a + spans[c].b, c));
    // A backward edge c → d (c later in the order, A(c) < B(d)) closes a two-cycle.
    // Scan from the end keeping the chain with the smallest A seen so far.
    let mut min_a_after: Option<usize> = None;
    for &d in order.iter().rev() {
        if let Some(c) = min_a_after {
            if spans[c].a < spans[d].b {
                let mut suspects = Vec::new();
                for (x, y) in [(c, d), (d, c)] {
                    // x → y because of x's earliest completion and y's latest invocation.
                    suspects.extend(segs[spans[x].a_seg].a_op);
                    suspects.extend(segs[spans[y].b_seg].b_op);
                }
                for x in [c, d] {
                    let lo = segs[spans[x].a_seg].pos.min(segs[spans[x].b_seg].pos);
                    let hi = segs[spans[x].a_seg].pos.max(segs[spans[x].b_seg].pos);
                    for &s in &chains[x][lo..=hi] {
                        suspects.extend(segs[s].writer);
                    }
                }
                suspects.sort_unstable();
                suspects.dedup();
                let edge = |x: usize, y: usize| match (
                    segs[spans[x].a_seg].a_op,
                    segs[spans[y].b_seg].b_op,
                ) {
                    (None, Some(_)) => {
                        "the initial value comes before every written value".to_owned()
                    }
                    (Some(a), Some(b)) => {
                        format!("{} completed before {} began", describe(a), describe(b))
                    }
                    (Some(a), None) => format!(
                        "{} completed before the initial value was read",
                        describe(a)
                    ),
                    (None, None) => "the initial value comes first".to_owned(),
                };
                // The initial value's own edge is implied; name the edge that breaks it.
                let reason = if segs[spans[c].a_seg].a_op.is_none()
                    || segs[spans[d].a_seg].a_op.is_none()
                {
                    let (init, other) = if segs[spans[c].a_seg].a_op.is_none() {
                        (c, d)
                    } else {
                        (d, c)
                    };
                    let b = segs[spans[init].b_seg]
                        .b_op
                        .map_or_else(|| "a read".to_owned(), describe);
                    let what = if segs[spans[init].b_seg].writer.is_none() {
                        "the initial value, which no write can bring back"
                    } else {
                        "a value reached from the initial value by compare-and-sets alone, which must precede every other write"
                    };
                    format!(
                        "{} completed before {b} began, yet that operation saw {what}",
                        op_or_init(segs[spans[other].a_seg].a_op, describe),
                    )
                } else {
                    format!(
                        "{}, and {}: each value would have to come before the other",
                        edge(c, d),
                        edge(d, c)
                    )
                };
                let label = |x: usize| {
                    let head = op_or_init(segs[chains[x][0]].writer, describe);
                    match chains[x].len() {
                        1 if segs[chains[x][0]].writer.is_none() => "the initial value".to_owned(),
                        1 => format!("the value of {head}"),
                        n => format!(
                            "the value of {head} and the {} compare-and-sets after it",
                            n - 1
                        ),
                    }
                };
                let cycle = find_cycle(&[
                    (label(c), label(d), edge(c, d)),
                    (label(d), label(c), edge(d, c)),
                ]);
                return GraphOutcome::Invalid {
                    suspects,
                    reason,
                    cycle,
                };
            }
        }
        if min_a_after.is_none_or(|c| spans[d].a < spans[c].a) {
            min_a_after = Some(d);
        }
    }

    // Valid without the refused compare-and-sets. Check them against the earliest
    // linearization of this version order.
    let refusals: Vec<u32> = (0..ops.len() as u32)
        .filter(|&i| matches!(ops[i as usize].prepared.action, Action::CasFail { .. }))
        .collect();
    // Blind appends (string-kv): happened, but their result was never observed.
    let blind: Vec<u32> = (0..ops.len() as u32)
        .filter(|&i| {
            let op = &ops[i as usize];
            op.prepared.required && matches!(op.prepared.action, Action::Append(_))
        })
        .collect();
    if refusals.is_empty() && blind.is_empty() {
        return GraphOutcome::Valid;
    }
    // Any order that respects the chain constraints is a linearization; what differs is how
    // well the refusals fit. Try the order that follows real time (chains taken by the
    // invocation of their first write, keeping a chain whose last value was refused from
    // going last before the refusal returned), then the A + B order.
    let heads: Vec<T> = chains
        .iter()
        .map(|ch| segs[ch[0]].writer.map_or(0, |w| call_t(&ops[w as usize])))
        .collect();
    // For each chain: the earliest completion of a refusal of its last value that came after
    // that value's write completed (so only a following write can explain it).
    let mut next_before: Vec<T> = vec![T::MAX; chains.len()];
    for &i in &refusals {
        let op = &ops[i as usize];
        let Action::CasFail { from, .. } = op.prepared.action else {
            continue;
        };
        let Some(&s) = seg_of.get(&from) else {
            continue;
        };
        let c = segs[s].chain;
        let last = *chains[c].last().expect("chains are non-empty");
        let written_before = segs[s]
            .writer
            .is_some_and(|w| ret_t(&ops[w as usize]) <= call_t(op));
        if last == s && written_before {
            next_before[c] = next_before[c].min(ret_t(op));
        }
    }
    let ab: Vec<(T, T)> = spans.iter().map(|s| (s.a, s.b)).collect();
    let mut attempts: Vec<Vec<usize>> = Vec::new();
    attempts.extend(real_time_order(&ab, &heads, &next_before));
    attempts.push(order);
    let mut why = String::new();
    for mut chain_order in attempts {
        // A refused value with no successor in time: pull forward the first later chain whose
        // first write began before the refusal returned, if nothing in between must precede it.
        for _repair in 0..MAX_REPAIRS {
            let versions: Vec<usize> = chain_order
                .iter()
                .flat_map(|&c| chains[c].iter().copied())
                .collect();
            match fit(&versions, &segs, ops, &seg_of, &refusals, &blind, describe) {
                Ok(()) => return GraphOutcome::Valid,
                Err(misfit) => {
                    why = misfit.why;
                    let Some((s, deadline)) = misfit.refused else {
                        break;
                    };
                    let c = segs[s].chain;
                    if *chains[c].last().expect("chains are non-empty") != s {
                        break;
                    }
                    let at = chain_order.iter().position(|&x| x == c).expect("placed");
                    let pull = (at + 1..chain_order.len()).find(|&k| {
                        let x = chain_order[k];
                        heads[x] < deadline
                            && chain_order[at + 1..k]
                                .iter()
                                .all(|&y| spans[y].a >= spans[x].b)
                    });
                    let Some(k) = pull else { break };
                    let x = chain_order.remove(k);
                    chain_order.insert(at + 1, x);
                }
            }
        }
    }
    GraphOutcome::Undecided(why)
}

const MAX_REPAIRS: usize = 256;

/// Why a version order did not fit, and for a refused value `a` that needed a successor
/// before time `t`: `(a's segment, t)`.
struct Misfit {
    why: String,
    refused: Option<(usize, T)>,
}

/// Fits refusals and blind appends into the earliest linearization of `versions`. A refusal
/// of `a` that does not fit usually happened before `a` was written: delay `a`'s write past
/// the refusal's invocation and try again. Likewise a blind append delays the next put.
/// Delays only move points later, and every point is checked against its operation's
/// completion, so whatever schedule results is a real linearization.
fn fit(
    versions: &[usize],
    segs: &[Segment],
    ops: &[KeyOp],
    seg_of: &HashMap<u32, usize>,
    refusals: &[u32],
    blind: &[u32],
    describe: &dyn Fn(u32) -> String,
) -> Result<(), Misfit> {
    let mut delay: Vec<(T, u32)> = vec![(0, 0); segs.len()];
    for _round in 0..MAX_ROUNDS {
        let sched =
            schedule(versions, segs, ops, &delay).map_err(|why| Misfit { why, refused: None })?;
        let mut changed = false;
        for &i in blind {
            let op = &ops[i as usize];
            let (call, ret) = ((call_t(op), 0), (ret_t(op), 0));
            if sched
                .quiet
                .iter()
                .any(|&(z0, z1)| z0.max(call) < z1.min(ret))
            {
                continue;
            }
            // The first put whose quiet zone opens before the append returns and whose write
            // may still move past the append's invocation.
            let movable = versions.iter().enumerate().find(|&(k, &s)| {
                k > 0
                    && sched.ends[k - 1] < ret
                    && sched.start[s] <= call
                    && segs[s].writer.is_some_and(|w| {
                        let w = &ops[w as usize];
                        matches!(w.prepared.action, Action::Write(_)) && call.0 + 1 < ret_t(w)
                    })
            });
            match movable {
                Some((_, &s)) if delay[s] < call => {
                    delay[s] = call;
                    changed = true;
                }
                _ => {
                    return Err(Misfit {
                        why: format!(
                            "{} is never observed and does not fit where nothing observes it",
                            describe(i)
                        ),
                        refused: None,
                    })
                }
            }
        }
        for &i in refusals {
            let op = &ops[i as usize];
            let Action::CasFail { from, .. } = op.prepared.action else {
                unreachable!("filtered above")
            };
            let Some(&s) = seg_of.get(&from) else {
                continue; // that value never exists, so the refusal always fits
            };
            let before = (call_t(op), 0) < sched.start[s];
            let after = sched.next_start[s].is_some_and(|n| n.0 < ret_t(op));
            if before || after {
                continue;
            }
            let movable = segs[s]
                .writer
                .is_some_and(|w| call_t(op) + 1 < ret_t(&ops[w as usize]));
            if movable && delay[s] < (call_t(op), 0) {
                delay[s] = (call_t(op), 0);
                changed = true;
            } else {
                return Err(Misfit {
                    why: format!("{} does not fit the earliest linearization", describe(i)),
                    refused: Some((s, ret_t(op))),
                });
            }
        }
        if !changed {
            return Ok(());
        }
    }
    Err(Misfit {
        why: "refusals and blind appends did not settle".to_owned(),
        refused: None,
    })
}

const MAX_ROUNDS: usize = 16;

/// A linear extension of "c before d when A(c) < B(d)" (`ab[c] = (A, B)`, known acyclic) that
/// at each step takes, among the chains whose predecessors are all placed, the one with the
/// smallest `key`. A chain d is free once B(d) <= A(c) for every other unplaced chain c.
/// O(n log n); `None` if no chain is free (only if the relation had a cycle).
///
/// `next_before[c]`: the chain placed right after `c` should have a key below this; when the
/// best free chain would break that, the next best goes first (a bounded number of times).
fn real_time_order(ab: &[(T, T)], key: &[T], next_before: &[T]) -> Option<Vec<usize>> {
    use std::cmp::Reverse;
    use std::collections::{BTreeSet, BinaryHeap};
    let n = ab.len();
    let mut by_b: Vec<usize> = (0..n).collect();
    by_b.sort_by_key(|&c| ab[c].1);
    let mut unplaced: BTreeSet<(T, usize)> = (0..n).map(|c| (ab[c].0, c)).collect();
    let mut free: BinaryHeap<Reverse<(T, usize)>> = BinaryHeap::new();
    let mut queued = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut next_by_b = 0;
    let mut deferrals = 0;
    while let Some(&(min_a, first)) = unplaced.first() {
        let second_a = unplaced.iter().nth(1).map_or(T::MAX, |&(a, _)| a);
        while next_by_b < n && ab[by_b[next_by_b]].1 <= min_a {
            let d = by_b[next_by_b];
            if !queued[d] {
                queued[d] = true;
                free.push(Reverse((key[d], d)));
            }
            next_by_b += 1;
        }
        // The chain with the smallest A only has to wait for the others.
        if !queued[first] && ab[first].1 <= second_a {
            queued[first] = true;
            free.push(Reverse((key[first], first)));
        }
        let Reverse((k, mut d)) = free.pop()?;
        let followed_in_time = free
            .peek()
            .is_some_and(|Reverse((k2, _))| *k2 < next_before[d]);
        if next_before[d] < T::MAX && !followed_in_time && deferrals < n {
            if let Some(Reverse((k2, d2))) = free.pop() {
                free.push(Reverse((k, d)));
                let _ = k2;
                d = d2;
                deferrals += 1;
            }
        }
        unplaced.remove(&(ab[d].0, d));
        order.push(d);
    }
    Some(order)
}

/// The earliest linearization points of a version order, given minimum start points.
struct Schedule {
    /// Start (writer point) of each segment.
    start: Vec<(T, u32)>,
    /// Start of the segment that follows each one, if any.
    next_start: Vec<Option<(T, u32)>>,
    /// Last point of each segment, in version order.
    ends: Vec<(T, u32)>,
    /// Intervals where nothing observes the state: before each plain write, and at the end.
    quiet: Vec<((T, u32), (T, u32))>,
}

/// Points are (position, tiebreak), strictly inside each operation's (call, ret).
fn schedule(
    versions: &[usize],
    segs: &[Segment],
    ops: &[KeyOp],
    delay: &[(T, u32)],
) -> Result<Schedule, String> {
    let bump = |p: (T, u32)| (p.0, p.1 + 1);
    let mut start: Vec<(T, u32)> = vec![(0, 0); segs.len()];
    let mut ends: Vec<(T, u32)> = Vec::with_capacity(versions.len());
    let mut prev: (T, u32) = (0, 0);
    for &s in versions {
        let seg = &segs[s];
        let w_point = match seg.writer {
            None => (0, 0),
            Some(w) => {
                let p = bump(prev.max((call_t(&ops[w as usize]), 0)).max(delay[s]));
                if p.0 >= ret_t(&ops[w as usize]) {
                    return Err("the earliest linearization does not fit the writes".to_owned());
                }
                p
            }
        };
        start[s] = w_point;
        let mut end = w_point;
        for &r in &seg.reads {
            let p = bump(w_point).max((call_t(&ops[r as usize]), 1));
            if p.0 >= ret_t(&ops[r as usize]) {
                return Err("the earliest linearization does not fit the reads".to_owned());
            }
            end = end.max(p);
        }
        ends.push(end);
        prev = end;
    }
    let mut next_start: Vec<Option<(T, u32)>> = vec![None; segs.len()];
    for pair in versions.windows(2) {
        next_start[pair[0]] = Some(start[pair[1]]);
    }
    let mut quiet = Vec::new();
    for (k, &s) in versions.iter().enumerate() {
        let plain_write = segs[s]
            .writer
            .is_some_and(|w| matches!(ops[w as usize].prepared.action, Action::Write(_)));
        if k > 0 && plain_write {
            quiet.push((ends[k - 1], start[s]));
        }
    }
    quiet.push((prev, (T::MAX, u32::MAX)));
    Ok(Schedule {
        start,
        next_start,
        ends,
        quiet,
    })
}

fn op_or_init(op: Option<u32>, describe: &dyn Fn(u32) -> String) -> String {
    op.map_or_else(|| "the initial value".to_owned(), describe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lin::model::Prepared;

    fn op(id: usize, call: u64, ret: u64, action: Action) -> KeyOp {
        KeyOp {
            id,
            call,
            ret,
            prepared: Prepared {
                action,
                required: true,
            },
        }
    }

    #[test]
    fn stale_read_is_a_closed_cycle_found_with_petgraph() {
        // write 1, then write 2, then a read of 1: 1 precedes 2 (real time), and 2 precedes
        // 1 (the read of 1 began after the write of 2 completed).
        let ops = [
            op(0, 0, 1, Action::Write(1)),
            op(1, 2, 3, Action::Write(2)),
            op(2, 4, 5, Action::Read(1)),
        ];
        let GraphOutcome::Invalid { cycle, .. } = check_unique(&ops, &|i| format!("op{i}")) else {
            panic!("a stale read must be invalid")
        };
        assert_eq!(cycle.len(), 2, "{cycle:?}");
        assert_eq!(cycle[0].to, cycle[1].from);
        assert_eq!(cycle[1].to, cycle[0].from);
        assert!(cycle.iter().any(|e| e.because.contains("completed before")));
    }

    #[test]
    fn read_before_its_write_is_a_cycle_and_a_valid_history_is_not() {
        let ops = [op(0, 2, 3, Action::Write(1)), op(1, 0, 1, Action::Read(1))];
        let GraphOutcome::Invalid {
            cycle, suspects, ..
        } = check_unique(&ops, &|i| format!("op{i}"))
        else {
            panic!("a read that returns before its write begins must be invalid")
        };
        assert_eq!(suspects.len(), 2);
        assert_eq!(cycle.len(), 2);
        let ok = [op(0, 0, 3, Action::Write(1)), op(1, 1, 2, Action::Read(1))];
        assert_eq!(
            check_unique(&ok, &|i| format!("op{i}")),
            GraphOutcome::Valid
        );
    }

    #[test]
    fn find_cycle_ignores_acyclic_graphs() {
        let edges = [("a".to_owned(), "b".to_owned(), "x".to_owned())];
        assert!(find_cycle(&edges).is_empty());
    }
}
