//! Client operations as the plots need them: each invocation with its completion, by process.
//!
//! The pairing is lenient on purpose (the validator, `history::pair`, is strict and stops at
//! the first broken rule): the report must draw what a run recorded even when the history
//! breaks a rule, and the checkers' results already say whether it did. A completion whose
//! process has nothing outstanding is counted and shown, not fatal.

use history::{Event, EventType, Process};
use std::collections::HashMap;

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
    /// The history ends before its completion (a killed run).
    Open,
}

impl Outcome {
    pub const COMPLETED: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Info];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Open => "open",
        }
    }
}

/// One client operation.
#[derive(Clone, Debug)]
pub struct OpRec {
    /// Index into [`Ops::fs`].
    pub f: usize,
    pub outcome: Outcome,
    pub invoke_ns: u64,
    pub complete_ns: Option<u64>,
    /// Index into [`Ops::nodes`]: the node the client talked to (its invocation's `node`,
    /// else its completion's), when the history says.
    pub node: Option<u32>,
}

/// Every client operation of a history, and what did not pair.
#[derive(Clone, Debug, Default)]
pub struct Ops {
    /// Distinct `f` names, most frequent first.
    pub fs: Vec<String>,
    pub ops: Vec<OpRec>,
    /// Distinct `node` names, in order of first appearance.
    pub nodes: Vec<String>,
    /// Completions with no outstanding invocation of their process.
    pub unmatched: usize,
    /// The time of the last event of the history (ns).
    pub end_ns: u64,
}

impl Ops {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.ops.iter().filter(|o| o.outcome == outcome).count()
    }
}

/// Pairs the client events of `events`.
pub fn pair(events: &[Event]) -> Ops {
    let mut fs: Vec<String> = Vec::new();
    let mut f_index: HashMap<&str, usize> = HashMap::new();
    let mut ops: Vec<OpRec> = Vec::new();
    let mut nodes: Vec<String> = Vec::new();
    let mut node_index: HashMap<String, u32> = HashMap::new();
    let mut node_of = |name: &Option<String>| {
        name.as_ref().map(|n| match node_index.get(n.as_str()) {
            Some(&i) => i,
            None => {
                let i = nodes.len() as u32;
                nodes.push(n.clone());
                node_index.insert(n.clone(), i);
                i
            }
        })
    };
    let mut outstanding: HashMap<u64, usize> = HashMap::new();
    let mut unmatched = 0usize;
    let mut end_ns = 0u64;
    for e in events {
        end_ns = end_ns.max(e.time);
        let Process::Client(p) = e.process else {
            continue;
        };
        match e.kind {
            EventType::Invoke => {
                let f = *f_index.entry(e.f.as_str()).or_insert_with(|| {
                    fs.push(e.f.clone());
                    fs.len() - 1
                });
                // A second invocation while one is outstanding breaks a rule; the first one
                // stays open (never completed) and the new one is tracked.
                outstanding.insert(p, ops.len());
                ops.push(OpRec {
                    f,
                    outcome: Outcome::Open,
                    invoke_ns: e.time,
                    complete_ns: None,
                    node: node_of(&e.node),
                });
            }
            kind => match outstanding.remove(&p) {
                Some(i) => {
                    let op = &mut ops[i];
                    op.outcome = match kind {
                        EventType::Ok => Outcome::Ok,
                        EventType::Fail => Outcome::Fail,
                        _ => Outcome::Info,
                    };
                    op.complete_ns = Some(e.time);
                    if op.node.is_none() {
                        op.node = node_of(&e.node);
                    }
                }
                None => unmatched += 1,
            },
        }
    }
    // Most frequent first, so capped legends keep the operations that matter.
    let mut freq = vec![0usize; fs.len()];
    for o in &ops {
        freq[o.f] += 1;
    }
    let mut order: Vec<usize> = (0..fs.len()).collect();
    order.sort_by(|&a, &b| freq[b].cmp(&freq[a]).then_with(|| fs[a].cmp(&fs[b])));
    let mut remap = vec![0usize; fs.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new;
    }
    for o in &mut ops {
        o.f = remap[o.f];
    }
    let fs = order.iter().map(|&i| fs[i].clone()).collect();
    Ops {
        fs,
        ops,
        nodes,
        unmatched,
        end_ns,
    }
}
