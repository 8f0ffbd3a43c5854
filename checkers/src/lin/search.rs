//! Just-in-time linearization search: Wing & Gong's backtracking over the operations that may
//! take effect next, with Lowe's memoisation of (linearized set, state) configurations, as in
//! Porcupine (Athalye) and "Testing for Linearizability" (Lowe, 2017).
//!
//! What we do beyond Porcupine:
//! - Memo keys are 128-bit Zobrist fingerprints of the linearized set, updated by one XOR per
//!   step, combined with the compact model state: a fixed 16 bytes per configuration however
//!   long the history, and no allocation or bitset copy in the inner loop. Two different
//!   configurations collide with probability about n²/2¹²⁹ (below 10⁻²⁰ for a billion
//!   configurations).
//! - Indeterminate (`info`) operations never have to be linearized: the search succeeds as soon
//!   as every operation that must have happened is placed.
//! - Partial-order reduction: a pure observation (a read, a refused compare-and-set) is
//!   committed where it first fits and never retried later, because any linearization that
//!   places it later can place it here instead (it is callable, so no pending operation
//!   returned before its invocation, and it changes no state anywhere).

use crate::lin::model::{Action, Model, Prepared, INIT};
use crate::rng::splitmix64;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

/// One operation of one key, in the form the search needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyOp {
    /// Index of the operation in `Paired::ops`.
    pub id: usize,
    /// Position of the invocation in the history (the order events were observed).
    pub call: u64,
    /// Position of the completion; `u64::MAX` for indeterminate operations.
    pub ret: u64,
    pub prepared: Prepared,
}

/// Limits for one search.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub deadline: Option<Instant>,
    /// Bytes the memo table may use.
    pub memo_bytes: usize,
}

impl Budget {
    pub fn unlimited() -> Self {
        Budget {
            deadline: None,
            memo_bytes: usize::MAX,
        }
    }
}

/// Where the search got furthest before failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deepest {
    /// Indices into the key's operations, in linearization order: the longest linearizable
    /// prefix the search found.
    pub prefix: Vec<u32>,
    /// The state after the prefix.
    pub state: u64,
    /// The operation that had to be placed next (it returned before anything else could be
    /// linearized) but could not be.
    pub stuck: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A linearization: indices into the key's operations, in order.
    Linearizable(Vec<u32>),
    NotLinearizable(Deepest),
    Unknown(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Configurations entered (memo insertions).
    pub configurations: u64,
    /// Peak bytes of the memo table (estimated from its capacity).
    pub memo_bytes: usize,
}

fn zobrist(i: usize) -> u128 {
    let a = splitmix64(i as u64 ^ 0x5851_F42D_4C95_7F2D);
    let b = splitmix64(a ^ 0x1405_7B7E_F767_814F);
    (u128::from(a) << 64) | u128::from(b)
}

#[inline]
fn state_mix(s: u64) -> u128 {
    let a = splitmix64(s ^ 0xD1B5_4A32_D192_ED03);
    let b = splitmix64(s ^ 0x8CB9_2BA7_2F3D_8DD7);
    (u128::from(a) << 64) | u128::from(b)
}

/// The memo's keys are already uniformly random, so hashing is folding them to 64 bits.
#[derive(Default, Clone, Copy)]
struct Fold;

#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, k: u128) {
        self.0 = (k as u64) ^ ((k >> 64) as u64);
    }
}

impl BuildHasher for Fold {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}

const NONE: u32 = u32::MAX;

/// Bytes one memo slot costs in hashbrown: the key plus one control byte.
const MEMO_SLOT_BYTES: usize = 17;

struct Frame {
    op: u32,
    state: u64,
    /// A pure observation that fit here, so it is never retried elsewhere.
    forced: bool,
}

/// Decides whether `ops` (one key) can be linearized from the model's initial state.
pub fn search<M: Model>(model: &mut M, ops: &[KeyOp], budget: &Budget) -> (Outcome, Stats) {
    let init = INIT;
    let n = ops.len();
    let mut stats = Stats::default();
    let mut remaining = ops.iter().filter(|o| o.prepared.required).count();
    if remaining == 0 {
        return (Outcome::Linearizable(Vec::new()), stats);
    }
    assert!(
        n < (u32::MAX / 2) as usize,
        "a key has fewer than 2^31 operations"
    );

    // Entries: 2i is the call of op i, 2i+1 its return; `head` is the list's sentinel.
    let head = 2 * n;
    let mut order: Vec<(u64, u32)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        order.push((op.call, 2 * i as u32));
        order.push((op.ret, 2 * i as u32 + 1));
    }
    // Ties only happen between indeterminate returns (all at u64::MAX); keep op order there.
    order.sort_unstable();
    let mut next = vec![0u32; 2 * n + 1];
    let mut prev = vec![0u32; 2 * n + 1];
    let mut last = head as u32;
    for &(_, e) in &order {
        next[last as usize] = e;
        prev[e as usize] = last;
        last = e;
    }
    next[last as usize] = head as u32;
    prev[head] = last;

    let zob: Vec<u128> = (0..n).map(zobrist).collect();
    // Indeterminate operations with the same action are interchangeable once both are
    // invoked: only the earliest-invoked unlinearized one of each group is ever tried.
    let twin_prev: Vec<u32> = {
        let mut last: hashbrown::HashMap<crate::lin::model::Action, u32> =
            hashbrown::HashMap::new();
        let mut by_call: Vec<usize> = (0..n).collect();
        by_call.sort_by_key(|&i| (ops[i].call, i));
        let mut tp = vec![NONE; n];
        for i in by_call {
            if !ops[i].prepared.required {
                if let Some(p) = last.insert(ops[i].prepared.action, i as u32) {
                    tp[i] = p;
                }
            }
        }
        tp
    };
    let mut linearized = vec![false; n];
    // Lookahead for models that only move forward between plain writes (string-kv, set): a
    // step is pointless if the next read that must happen can no longer be observed and no
    // write that could reset the state may come before it.
    let monotone = ops.iter().any(|o| {
        model
            .reachable_without_write(init, o.prepared.action)
            .is_some()
    });
    // For each read: the plain writes invoked before it returned whose value it could extend.
    let mut resets: Vec<Vec<u32>> = vec![Vec::new(); if monotone { n } else { 0 }];
    if monotone {
        let writes: Vec<u32> = (0..n as u32)
            .filter(|&w| matches!(ops[w as usize].prepared.action, Action::Write(_)))
            .collect();
        for (g, op) in ops.iter().enumerate() {
            if !matches!(op.prepared.action, Action::Read(_)) {
                continue;
            }
            for &w in &writes {
                let wo = &ops[w as usize];
                if wo.call >= op.ret {
                    break;
                }
                let Some(ws) = model.step(init, wo.prepared.action) else {
                    continue;
                };
                if model.reachable_without_write(ws, op.prepared.action) != Some(false) {
                    resets[g].push(w);
                }
            }
        }
    }
    let mut memo: hashbrown::HashSet<u128, Fold> =
        hashbrown::HashSet::with_capacity_and_hasher(1024.min(8 * n), Fold);
    let mut stack: Vec<Frame> = Vec::with_capacity(n);
    let mut state = init;
    let mut hash: u128 = 0;
    let mut entry = next[head];

    // The deepest partial linearization, copied lazily: `snap[..common]` always equals the
    // bottom of the stack, so each snapshot copies only what changed since the last one.
    let mut best_depth = 0usize;
    let mut need_snapshot = false;
    let mut snap: Vec<u32> = Vec::new();
    let mut common = 0usize;
    let mut deepest = Deepest {
        prefix: Vec::new(),
        state: init,
        stuck: 0,
    };

    let mut iterations: u64 = 0;
    loop {
        if remaining == 0 {
            let order = stack.iter().map(|f| f.op).collect();
            stats.memo_bytes = stats.memo_bytes.max(memo.capacity() * MEMO_SLOT_BYTES);
            return (Outcome::Linearizable(order), stats);
        }
        iterations += 1;
        if iterations & 0xFFF == 0 {
            if let Some(d) = budget.deadline {
                if Instant::now() >= d {
                    stats.memo_bytes = memo.capacity() * MEMO_SLOT_BYTES;
                    return (
                        Outcome::Unknown(format!(
                            "time limit reached after exploring {} configurations",
                            stats.configurations
                        )),
                        stats,
                    );
                }
            }
            let used = memo.capacity() * MEMO_SLOT_BYTES + model.memory_bytes();
            if used > budget.memo_bytes {
                stats.memo_bytes = used;
                return (
                    Outcome::Unknown(format!(
                        "memory limit reached: the memo held {} configurations and the model {} of states",
                        memo.len(),
                        human_bytes(model.memory_bytes())
                    )),
                    stats,
                );
            }
        }
        let e = entry as usize;
        let mut backtrack = e & 1 == 1;
        if !backtrack {
            let i = e / 2;
            let op = &ops[i];
            let mut twin = twin_prev[i];
            while twin != NONE && linearized[twin as usize] {
                twin = twin_prev[twin as usize];
            }
            if twin != NONE {
                entry = next[e];
                continue;
            }
            let mut next_state = model.step(state, op.prepared.action);
            if let (true, Some(ns)) = (monotone, next_state) {
                if ns != state
                    && !still_observable(model, ops, &next, head, i, ns, &resets, &linearized)
                {
                    next_state = None;
                }
            }
            if let Some(ns) = next_state {
                let nh = hash ^ zob[i];
                let key = nh ^ state_mix(ns);
                let unchanged = op.prepared.action.is_observation();
                if memo.len() == memo.capacity() {
                    let grown = memo.capacity().max(16) * 2 * MEMO_SLOT_BYTES;
                    if grown + memo.capacity() * MEMO_SLOT_BYTES + model.memory_bytes()
                        > budget.memo_bytes
                    {
                        stats.memo_bytes = memo.capacity() * MEMO_SLOT_BYTES;
                        return (
                            Outcome::Unknown(format!(
                                "memory limit reached: the memo held {} configurations",
                                memo.len()
                            )),
                            stats,
                        );
                    }
                }
                if memo.insert(key) {
                    stats.configurations += 1;
                    stack.push(Frame {
                        op: i as u32,
                        state,
                        forced: unchanged,
                    });
                    if stack.len() > best_depth {
                        best_depth = stack.len();
                        need_snapshot = true;
                    }
                    state = ns;
                    hash = nh;
                    linearized[i] = true;
                    if op.prepared.required {
                        remaining -= 1;
                    }
                    lift(&mut next, &mut prev, i);
                    entry = next[head];
                    continue;
                }
                // Already explored from here and it failed; for a state-preserving operation
                // that means this configuration fails too.
                backtrack = unchanged;
            }
            if !backtrack {
                entry = next[e];
                continue;
            }
        }
        // Backtrack: the first pending return (or a known-failing configuration) was reached.
        if need_snapshot {
            need_snapshot = false;
            snap.truncate(common);
            snap.extend(stack[common..].iter().map(|f| f.op));
            common = stack.len();
            deepest.state = state;
            deepest.stuck = first_return(&next, head) / 2;
        }
        loop {
            let Some(fr) = stack.pop() else {
                deepest.prefix = snap;
                stats.memo_bytes = memo.capacity() * MEMO_SLOT_BYTES;
                return (Outcome::NotLinearizable(deepest), stats);
            };
            common = common.min(stack.len());
            let i = fr.op as usize;
            linearized[i] = false;
            state = fr.state;
            hash ^= zob[i];
            if ops[i].prepared.required {
                remaining += 1;
            }
            unlift(&mut next, &mut prev, i);
            if !fr.forced {
                entry = next[2 * i];
                break;
            }
        }
    }
}

/// Whether, after linearizing op `i` into state `ns`, the pending reads can still observe
/// their values.
#[allow(clippy::too_many_arguments)]
#[inline]
fn still_observable<M: Model>(
    model: &M,
    ops: &[KeyOp],
    next: &[u32],
    head: usize,
    i: usize,
    ns: u64,
    resets: &[Vec<u32>],
    linearized: &[bool],
) -> bool {
    // Every read already invoked (its call precedes the first pending return, up to and
    // including that return's op) must still be observable, unless a write it could extend
    // may come before it.
    let blocked = |g: usize| {
        let read = ops[g].prepared.action;
        matches!(read, Action::Read(_))
            && model.reachable_without_write(ns, read) == Some(false)
            && !resets[g]
                .iter()
                .any(|&w| w as usize != i && !linearized[w as usize])
    };
    let mut e = next[head];
    while e as usize != head {
        let g = (e / 2) as usize;
        if g != i {
            if e & 1 == 1 {
                return !blocked(g);
            }
            if blocked(g) {
                return false;
            }
        }
        e = next[e as usize];
    }
    true
}

fn human_bytes(b: usize) -> String {
    format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
}

fn first_return(next: &[u32], head: usize) -> u32 {
    let mut e = next[head];
    while e as usize != head && e & 1 == 0 {
        e = next[e as usize];
    }
    e
}

#[inline]
fn lift(next: &mut [u32], prev: &mut [u32], i: usize) {
    for e in [2 * i, 2 * i + 1] {
        let (p, n) = (prev[e], next[e]);
        next[p as usize] = n;
        prev[n as usize] = p;
    }
}

#[inline]
fn unlift(next: &mut [u32], prev: &mut [u32], i: usize) {
    for e in [2 * i + 1, 2 * i] {
        let (p, n) = (prev[e], next[e]);
        next[p as usize] = e as u32;
        prev[n as usize] = e as u32;
    }
}
