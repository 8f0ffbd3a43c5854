//! Witnesses for linearizability (shared/DESIGN.md section 7): what a person needs to see
//! the bug. The longest linearizable prefix (as Porcupine shows), the operation that cannot be
//! placed after it and what each candidate would have done, the smallest set of operations that
//! cannot be linearized together, and every order of that set with the state it reaches.

use crate::lin::model::{Model, INIT};
use crate::lin::search::{search, Budget, Deepest, KeyOp, Outcome};
use crate::lin::unique::CycleEdge;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// An operation as a witness shows it. `op` is the index in `Paired::ops`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpView {
    pub op: usize,
    pub process: u64,
    /// "read 3", "cas 1→2", "cas 1→2 (refused)".
    pub action: String,
    /// `ok`, `fail` or `info`.
    pub kind: String,
    /// `index` of the invocation event and of the completion event, if any.
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
    /// `time` (ns) of the invocation and completion events.
    pub invoke_time: u64,
    pub complete_time: Option<u64>,
    /// Line of the invocation in the history file, and of the completion.
    pub line: usize,
    pub complete_line: Option<usize>,
}

/// What one candidate would have done at the point where the search got stuck.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub op: usize,
    /// The state it would lead to, or `None` if its recorded result is impossible there.
    pub reaches: Option<String>,
    /// One sentence.
    pub note: String,
}

/// One order of the window's operations, applied from the initial state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAttempt {
    /// Operations applied successfully, each with the state after it.
    pub steps: Vec<(usize, String)>,
    /// The operation that could not be applied next, with the state it met.
    pub fails_at: Option<(usize, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinWitness {
    /// The longest linearizable prefix found, in linearization order (ops indices), if it was
    /// computed within the budget.
    pub prefix: Option<Vec<usize>>,
    /// The state after the prefix.
    pub prefix_state: Option<String>,
    /// The operation that had to come next but could not be placed.
    pub stuck: Option<usize>,
    pub candidates: Vec<Candidate>,
    /// A set of operations that cannot be linearized together (ops indices, invocation order).
    pub window: Vec<usize>,
    /// Whether every operation of `window` is needed: leaving out any one of them makes the
    /// rest linearizable, or leaves one of the remaining reads without the write it observed.
    pub window_minimal: bool,
    /// Each real-time-respecting order of the window and how far it gets.
    pub orders: Vec<OrderAttempt>,
    /// Orders not listed (the list is capped).
    pub orders_omitted: usize,
    /// The graph path's one-sentence reason, when it found the anomaly.
    pub reason: Option<String>,
    /// When the anomaly is a cycle of "must come before" constraints: its edges, in order.
    pub cycle: Vec<CycleEdge>,
    /// Every operation mentioned above.
    pub ops: Vec<OpView>,
    /// The witness in plain sentences.
    pub explanation: Vec<String>,
}

const MAX_ORDERS: usize = 4;
const PREFIX_SEARCH_TIME: Duration = Duration::from_millis(100);
const MAX_ORDER_NODES: usize = 20_000;
const MAX_WINDOW_FOR_MINIMISING: usize = 400;

/// What the deciding procedure already knows about a failing key.
#[derive(Clone, Copy, Default)]
pub struct Clues<'a> {
    /// The search's deepest point, if the search ran.
    pub deepest: Option<&'a Deepest>,
    /// Operations (indices into the key's ops) known to fail together, from the graph path.
    pub suspects: Option<&'a [u32]>,
    /// The graph path's one-sentence reason.
    pub reason: Option<&'a str>,
    /// For string-kv: what each read needs (see `strings::Needs`).
    pub needs: Option<&'a [Vec<u32>]>,
    /// The graph path's cycle of constraints, if the anomaly is one.
    pub cycle: &'a [CycleEdge],
}

/// Builds a witness for a key whose operations `ops` are not linearizable.
///
/// `clues` says what the deciding procedure found; `view` renders operations.
pub fn explain<M: Model>(
    model: &mut M,
    ops: &[KeyOp],
    clues: Clues<'_>,
    budget: Duration,
    memo_bytes: usize,
    view: &dyn Fn(&M, &KeyOp) -> OpView,
) -> LinWitness {
    let Clues {
        deepest,
        suspects,
        reason,
        needs,
        cycle,
    } = clues;
    let started = Instant::now();
    let deadline = started + budget;
    let mut w = LinWitness {
        prefix: None,
        prefix_state: None,
        stuck: None,
        candidates: Vec::new(),
        window: Vec::new(),
        window_minimal: false,
        orders: Vec::new(),
        orders_omitted: 0,
        reason: reason.map(str::to_owned),
        cycle: cycle.to_vec(),
        ops: Vec::new(),
        explanation: Vec::new(),
    };
    let mut mentioned: Vec<u32> = Vec::new();

    // The deepest point: from the caller, or a budgeted search of our own.
    let own;
    let deepest = match deepest {
        Some(d) => Some(d),
        None => {
            // The graph path decided without a search; the prefix is a bonus worth a short
            // search, not the exponential one the graph path avoided.
            let b = Budget {
                deadline: Some(started + (budget / 2).min(PREFIX_SEARCH_TIME)),
                memo_bytes: memo_bytes.min(256 << 20),
            };
            own = search(model, ops, &b).0;
            match &own {
                Outcome::NotLinearizable(d) => Some(d),
                _ => None,
            }
        }
    };
    if let Some(d) = deepest.filter(|d| (d.stuck as usize) < ops.len()) {
        w.prefix = Some(d.prefix.iter().map(|&i| ops[i as usize].id).collect());
        w.prefix_state = Some(model.show_state(d.state));
        w.stuck = Some(ops[d.stuck as usize].id);
        mentioned.extend(d.prefix.iter().copied());
        let mut done = vec![false; ops.len()];
        for &i in &d.prefix {
            done[i as usize] = true;
        }
        let limit = ops[d.stuck as usize].ret;
        for (i, op) in ops.iter().enumerate() {
            if done[i] || op.call >= limit {
                continue;
            }
            let reaches = model.step(d.state, op.prepared.action);
            let note = match reaches {
                Some(s) if s == d.state => format!(
                    "{} fits here and leaves the state at {}",
                    model.show_action(op.prepared.action),
                    model.show_state(s)
                ),
                Some(s) => format!(
                    "{} would change the state to {}, but then the rest cannot be linearized",
                    model.show_action(op.prepared.action),
                    model.show_state(s)
                ),
                None => model.why_impossible(d.state, op.prepared.action),
            };
            w.candidates.push(Candidate {
                op: op.id,
                reaches: reaches.map(|s| model.show_state(s)),
                note,
            });
            mentioned.push(i as u32);
        }
    }

    // The window: start from the suspects (or the stuck operation), grow by distance in time
    // until the set fails on its own, then drop what is not needed.
    let fails = |model: &mut M, set: &[u32]| -> Option<bool> {
        let sub: Vec<KeyOp> = set.iter().map(|&i| ops[i as usize]).collect();
        let b = Budget {
            deadline: Some(deadline),
            memo_bytes: memo_bytes.min(64 << 20),
        };
        match search(model, &sub, &b).0 {
            Outcome::NotLinearizable(_) => Some(true),
            Outcome::Linearizable(_) => Some(false),
            Outcome::Unknown(_) => None,
        }
    };
    let seed: Vec<u32> = match (suspects, deepest) {
        (Some(s), _) => s.to_vec(),
        (None, Some(d)) if (d.stuck as usize) < ops.len() => vec![d.stuck],
        _ => Vec::new(),
    };
    if !seed.is_empty() {
        let deps = Deps::new(model, ops, needs);
        let mut window = deps.close(ops, seed.clone());
        let ok = match fails(model, &window) {
            Some(true) => true,
            Some(false) => {
                let lo = seed
                    .iter()
                    .map(|&i| ops[i as usize].call)
                    .min()
                    .unwrap_or(0);
                let hi = seed.iter().map(|&i| ops[i as usize].ret).max().unwrap_or(0);
                let mut by_distance: Vec<u32> = (0..ops.len() as u32).collect();
                by_distance.sort_by_key(|&i| {
                    let op = &ops[i as usize];
                    let gap = lo.saturating_sub(op.ret).max(op.call.saturating_sub(hi));
                    (gap, op.call)
                });
                // Binary search for the shortest failing prefix of `by_distance`.
                let (mut good, mut bad) = (0usize, by_distance.len());
                let mut found = None;
                while good + 1 < bad && Instant::now() < deadline {
                    let mid = (good + bad) / 2;
                    let mut set = seed.clone();
                    set.extend_from_slice(&by_distance[..mid]);
                    let set = deps.close(ops, set);
                    match fails(model, &set) {
                        Some(true) => {
                            bad = mid;
                            found = Some(set);
                        }
                        Some(false) => good = mid,
                        None => break,
                    }
                }
                if let Some(set) = found {
                    window = set;
                    true
                } else if good + 1 >= bad {
                    let mut set = seed.clone();
                    set.extend_from_slice(&by_distance[..bad]);
                    window = deps.close(ops, set);
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if ok {
            // Drop what is not needed, in chunks first (as in delta debugging), then one at a
            // time, latest first, while the rest still fails on its own.
            let mut minimal = window.len() <= MAX_WINDOW_FOR_MINIMISING;
            let mut chunk = (window.len() / 2).max(1);
            while minimal {
                let before_pass = window.len();
                let mut end = window.len();
                while end > 0 {
                    if Instant::now() >= deadline {
                        minimal = false;
                        break;
                    }
                    let begin = end.saturating_sub(chunk);
                    let gone = &window[begin..end];
                    let rest: Vec<u32> = window[..begin]
                        .iter()
                        .chain(&window[end..])
                        .copied()
                        .collect();
                    end = begin;
                    if rest.is_empty()
                        || !gone
                            .iter()
                            .all(|&g| deps.removable_kind(ops[g as usize].prepared.action))
                        || !deps.keeps_explained(ops, &window, &rest)
                    {
                        continue;
                    }
                    match fails(model, &rest) {
                        Some(true) => window = rest,
                        Some(false) => {}
                        None => {
                            minimal = false;
                            break;
                        }
                    }
                }
                if chunk == 1 {
                    // Removing one operation can make another removable: repeat the single
                    // pass until nothing changes, so the result really is 1-minimal.
                    if window.len() == before_pass {
                        break;
                    }
                } else {
                    chunk /= 2;
                }
            }
            // Operations never tried alone (writes, for models whose reads cannot be traced to
            // single writes) keep the window from being called minimal.
            if window
                .iter()
                .any(|&i| !deps.removable_kind(ops[i as usize].prepared.action))
            {
                minimal = false;
            }
            w.window = window.iter().map(|&i| ops[i as usize].id).collect();
            w.window_minimal = minimal;
            mentioned.extend(window.iter().copied());
            if window.len() <= 12 {
                let (orders, omitted) = enumerate_orders(model, ops, &window);
                w.orders = orders;
                w.orders_omitted = omitted;
            }
        } else if suspects.is_some() {
            // The graph path's suspects carry its contradiction with them, so they fail on
            // their own even when the search cannot confirm it within the budget.
            w.window = window.iter().map(|&i| ops[i as usize].id).collect();
            w.window_minimal = false;
            mentioned.extend(window.iter().copied());
        }
    }

    mentioned.sort_unstable();
    mentioned.dedup();
    let id_to_local: std::collections::HashMap<usize, u32> =
        mentioned.iter().map(|&i| (ops[i as usize].id, i)).collect();
    w.ops = mentioned
        .iter()
        .map(|&i| view(model, &ops[i as usize]))
        .collect();
    w.explanation = sentences(&w, &|id| {
        id_to_local
            .get(&id)
            .map(|&i| describe_view(&view(model, &ops[i as usize])))
            .unwrap_or_else(|| format!("operation #{id}"))
    });
    w
}

/// "process 3's cas 1→2 (ok, events 12–40)".
pub fn describe_view(v: &OpView) -> String {
    let lines = match v.complete_line {
        Some(c) => format!("lines {}–{c}", v.line),
        None => format!("line {}, never completed", v.line),
    };
    match v.kind.as_str() {
        "info" => format!(
            "process {}'s {} ({lines}; outcome unknown: it may or may not have taken effect)",
            v.process, v.action
        ),
        _ => format!("process {}'s {} ({lines})", v.process, v.action),
    }
}

/// "p3 write 4 (line 57)", for lists of steps.
pub fn short_view(v: &OpView) -> String {
    format!("p{} {} (line {})", v.process, v.action, v.line)
}

fn sentences(w: &LinWitness, name: &dyn Fn(usize) -> String) -> Vec<String> {
    let short = |id: usize| {
        w.ops
            .iter()
            .find(|v| v.op == id)
            .map_or_else(|| format!("operation #{id}"), short_view)
    };
    let mut out = Vec::new();
    if let Some(reason) = &w.reason {
        out.push(format!("{reason}."));
    }
    if !w.cycle.is_empty() {
        out.push(
            "Each of these must take effect before the next, which closes a cycle:".to_owned(),
        );
        for e in &w.cycle {
            out.push(format!("  - {} before {}: {}.", e.from, e.to, e.because));
        }
    }
    if let (Some(prefix), Some(state)) = (&w.prefix, &w.prefix_state) {
        match prefix.last() {
            Some(&last) => out.push(format!(
                "{} longest linearizable prefix has {} operation{}, ending with {}, and leaves the state at {state}.",
                if w.reason.is_some() { "Searching from the start, the" } else { "The" },
                prefix.len(),
                if prefix.len() == 1 { "" } else { "s" },
                name(last)
            )),
            None => out.push(format!(
                "No operation can be linearized first: the history already fails from the initial state {state}."
            )),
        }
    } else {
        out.push("(The longest linearizable prefix was not computed: its search was cut short, as the history is large.)".to_owned());
    }
    if let Some(stuck) = w.stuck {
        out.push(format!(
            "The next operation that must be placed is {} (it completed before any other pending operation could take effect); every possible next step fails:",
            name(stuck)
        ));
        for c in &w.candidates {
            out.push(format!("  - {}: {}.", short(c.op), c.note));
        }
    }
    if !w.window.is_empty() {
        let n = w.window.len();
        out.push(match (n, w.window_minimal) {
            (1, _) => "This operation cannot be linearized even on its own:".to_owned(),
            (_, true) => format!(
                "These {n} operations cannot be linearized together; leaving out any one of them makes the rest linearizable or leaves a read without the write it observed:"
            ),
            (_, false) => format!(
                "These {n} operations cannot be linearized together (a small set, not proven minimal within the budget):"
            ),
        });
        for &op in &w.window {
            out.push(format!("  {}", name(op)));
        }
        if let Some(first) = w.orders.first() {
            let init = first
                .steps
                .first()
                .map(|_| None)
                .unwrap_or_else(|| first.fails_at.as_ref().map(|(_, st)| st.clone()));
            out.push(match init {
                Some(st) => {
                    format!("  Every order that respects real time fails (starting from {st}):")
                }
                None => {
                    "  Every order that respects real time fails (starting from the initial state):"
                        .to_owned()
                }
            });
        }
        for (n, o) in w.orders.iter().enumerate() {
            let mut s = format!("    {}. ", n + 1);
            let steps: Vec<String> = o
                .steps
                .iter()
                .map(|(op, st)| format!("{} → {st}", short(*op)))
                .collect();
            s.push_str(&steps.join(", "));
            if let Some((op, st)) = &o.fails_at {
                if !steps.is_empty() {
                    s.push_str(", ");
                }
                s.push_str(&format!(
                    "{}{} is impossible (value {st})",
                    if steps.is_empty() { "" } else { "then " },
                    short(*op)
                ));
            }
            out.push(s);
        }
        if w.orders_omitted > 0 {
            out.push(format!(
                "    … and {} more orders, all failing (see --json).",
                w.orders_omitted
            ));
        }
    }
    out
}

/// What a read needs in a window so it is not left unexplained (a read of a value nothing in
/// the window wrote would "fail" for the wrong reason).
enum Deps<'a> {
    /// Registers: a read of `v` needs one write of `v` (the writers of each value).
    Registers(hashbrown::HashMap<u32, Vec<u32>>),
    /// Explicit: operation `i` needs all of `needs[i]` (string-kv gets need every piece).
    All(&'a [Vec<u32>]),
    /// Unknown: only observations may leave a window.
    None,
}

impl<'a> Deps<'a> {
    fn new<M: Model>(model: &M, ops: &[KeyOp], needs: Option<&'a [Vec<u32>]>) -> Self {
        if let Some(n) = needs {
            return Deps::All(n);
        }
        if !model.register_like() {
            return Deps::None;
        }
        let mut w: hashbrown::HashMap<u32, Vec<u32>> = hashbrown::HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let Some(v) = op.prepared.action.writes_value() {
                w.entry(v).or_default().push(i as u32);
            }
        }
        Deps::Registers(w)
    }

    /// Adds what the set's reads need: all needs, or for a register read whose value nothing
    /// in the set writes, the write of it invoked last before the read completed (none if no
    /// write of it was invoked in time: then the read is impossible by itself).
    fn close(&self, ops: &[KeyOp], mut set: Vec<u32>) -> Vec<u32> {
        let mut have = vec![false; ops.len()];
        for &i in &set {
            have[i as usize] = true;
        }
        let mut k = 0;
        while k < set.len() {
            let i = set[k] as usize;
            k += 1;
            let add: Vec<u32> = match self {
                Deps::All(needs) => needs[i].clone(),
                Deps::Registers(writers) => {
                    let Some(v) = ops[i].prepared.action.reads_value() else {
                        continue;
                    };
                    let candidates = writers.get(&v).map(Vec::as_slice).unwrap_or(&[]);
                    if candidates
                        .iter()
                        .any(|&j| have[j as usize] && ops[j as usize].call < ops[i].ret)
                    {
                        continue;
                    }
                    candidates
                        .iter()
                        .copied()
                        .filter(|&j| ops[j as usize].call < ops[i].ret)
                        .max_by_key(|&j| ops[j as usize].call)
                        .into_iter()
                        .collect()
                }
                Deps::None => continue,
            };
            for j in add {
                if !have[j as usize] {
                    have[j as usize] = true;
                    set.push(j);
                }
            }
        }
        set.sort_by_key(|&i| (ops[i as usize].call, i));
        set.dedup();
        set
    }

    /// Whether an operation of this kind may leave a window (if the rest stays `closed`).
    fn removable_kind(&self, action: crate::lin::model::Action) -> bool {
        match self {
            Deps::None => action.is_observation(),
            Deps::Registers(_) => action.is_observation() || action.writes_value().is_some(),
            Deps::All(_) => true,
        }
    }

    /// For each operation of `set` (same order): whether it is explained there, i.e. has
    /// in `set` what it needs (trivially true for operations that read nothing).
    fn explained(&self, ops: &[KeyOp], set: &[u32]) -> Vec<bool> {
        match self {
            Deps::None => vec![true; set.len()],
            Deps::All(needs) => {
                let have: hashbrown::HashSet<u32> = set.iter().copied().collect();
                set.iter()
                    .map(|&i| needs[i as usize].iter().all(|j| have.contains(j)))
                    .collect()
            }
            Deps::Registers(_) => {
                // A value read must be grounded: written by a plain write, or by a
                // compare-and-set from a grounded value, invoked before the read returned.
                // (A `cas 3→3` alone does not explain a read of 3.)
                let mut grounded: hashbrown::HashSet<u32> = hashbrown::HashSet::new();
                grounded.insert(INIT as u32);
                loop {
                    let before = grounded.len();
                    for &i in set {
                        let a = ops[i as usize].prepared.action;
                        if let Some(v) = a.writes_value() {
                            if a.reads_value().is_none_or(|u| grounded.contains(&u)) {
                                grounded.insert(v);
                            }
                        }
                    }
                    if grounded.len() == before {
                        break;
                    }
                }
                set.iter()
                    .map(|&i| {
                        let r = &ops[i as usize];
                        match r.prepared.action.reads_value() {
                            None => true,
                            Some(v) if u64::from(v) == INIT => true,
                            Some(v) => {
                                grounded.contains(&v)
                                    && set.iter().any(|&j| {
                                        let w = &ops[j as usize];
                                        j != i
                                            && w.prepared.action.writes_value() == Some(v)
                                            && w.call < r.ret
                                    })
                            }
                        }
                    })
                    .collect()
            }
        }
    }

    /// Whether going from `window` to its subset `rest` leaves unexplained a read that was
    /// explained before (which would make `rest` fail for the wrong reason).
    fn keeps_explained(&self, ops: &[KeyOp], window: &[u32], rest: &[u32]) -> bool {
        let before: hashbrown::HashSet<u32> = window
            .iter()
            .zip(self.explained(ops, window))
            .filter_map(|(&i, e)| e.then_some(i))
            .collect();
        rest.iter()
            .zip(self.explained(ops, rest))
            .all(|(i, e)| e || !before.contains(i))
    }
}

/// Every order of `window` that respects real time, applied from the initial state; each
/// attempt stops at the first operation that cannot be applied. Indeterminate operations that
/// cannot be applied are skipped (they may never have happened).
fn enumerate_orders<M: Model>(
    model: &mut M,
    ops: &[KeyOp],
    window: &[u32],
) -> (Vec<OrderAttempt>, usize) {
    let mut out = Vec::new();
    let mut omitted = 0usize;
    let mut nodes = 0usize;
    let mut placed = vec![false; window.len()];
    let mut steps: Vec<(usize, String)> = Vec::new();
    #[allow(clippy::too_many_arguments)]
    fn go<M: Model>(
        model: &mut M,
        ops: &[KeyOp],
        window: &[u32],
        placed: &mut Vec<bool>,
        state: u64,
        steps: &mut Vec<(usize, String)>,
        out: &mut Vec<OrderAttempt>,
        omitted: &mut usize,
        nodes: &mut usize,
    ) {
        *nodes += 1;
        if *nodes > MAX_ORDER_NODES {
            return;
        }
        let pending: Vec<usize> = (0..window.len()).filter(|&k| !placed[k]).collect();
        if pending.is_empty() {
            return; // a full order succeeded: cannot happen for a failing window
        }
        let earliest_ret = pending
            .iter()
            .filter(|&&k| ops[window[k] as usize].prepared.required)
            .map(|&k| ops[window[k] as usize].ret)
            .min()
            .unwrap_or(u64::MAX);
        for &k in &pending {
            let op = &ops[window[k] as usize];
            if op.call > earliest_ret {
                continue; // something pending completed before this began
            }
            match model.step(state, op.prepared.action) {
                Some(ns) => {
                    placed[k] = true;
                    steps.push((op.id, model.show_state(ns)));
                    go(model, ops, window, placed, ns, steps, out, omitted, nodes);
                    steps.pop();
                    placed[k] = false;
                }
                None if !op.prepared.required => {}
                None => {
                    if out.len() < MAX_ORDERS {
                        out.push(OrderAttempt {
                            steps: steps.clone(),
                            fails_at: Some((op.id, model.show_state(state))),
                        });
                    } else {
                        *omitted += 1;
                    }
                }
            }
        }
    }
    go(
        model,
        ops,
        window,
        &mut placed,
        INIT,
        &mut steps,
        &mut out,
        &mut omitted,
        &mut nodes,
    );
    (out, omitted)
}
