//! Transactional histories of known shape, for the tests and benchmarks of the list-append and
//! rw-register checkers: small random ones for differential testing against the brute-force
//! [`oracle`](super::oracle), and large list-append ones, optionally with one planted anomaly.
//!
//! Both are built the same way: clients run transactions concurrently, each transaction takes
//! effect atomically at one instant between its invocation and its completion, and its reads
//! are filled from the state at that instant. The recorded history is therefore strict
//! serializable by construction (the instants give the order; Papadimitriou 1979, Herlihy &
//! Wing 1990 for the real-time part) while the clients overlap freely. An `info` transaction
//! may take effect at any time after its invocation, even after its `info` completion, or
//! never (shared/DESIGN.md section 2); its process id is then retired. Written values and
//! appended elements are unique, as our workloads write them.
//!
//! [`random_small`] then, about half the time, corrupts one read (a stale or future value, an
//! element of a failed transaction, one nobody wrote, a list with an element dropped,
//! duplicated or out of order, ...). A corrupted history is usually, not always, invalid: the
//! oracle decides. [`large`] follows the key lifecycle of Elle's generator (Kingsbury &
//! Alvaro, "Elle", VLDB 2020; `elle.list-append/gen`'s `:key-count` and
//! `:max-writes-per-key`): a pool of active keys, each retired after a number of appends, so
//! reads stay short however long the run; it plants G0, G1c or G2-item (Adya, "Weak
//! consistency", 1999) between two concurrent transactions on keys of their own.

use super::oracle::Workload;
use crate::rng::SplitMix64;
use history::txn::{self, Mop, MopKind, MopValue};
use history::{Event, EventType, History, Process};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::ops::RangeInclusive;

/// Streams of the seeded generator, so that a seed means different things to each generator.
const PURPOSE_SMALL: u64 = 0x5458_4e5f_534d_414c; // "TXN_SMAL"
const PURPOSE_LARGE: u64 = 0x5458_4e5f_4c41_5247; // "TXN_LARG"

/// Elements and values no generated transaction writes start here (garbage reads).
const GARBAGE_BASE: i64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Small random histories
// ---------------------------------------------------------------------------------------------

/// The shape of [`random_small_with`]'s histories; each range is drawn from per history.
#[derive(Clone, Debug, PartialEq)]
pub struct SmallConfig {
    pub txns: RangeInclusive<usize>,
    /// Client workers; each has one transaction outstanding at most. A worker whose
    /// transaction ends `info` continues under a fresh process id, so ids can exceed this.
    pub processes: RangeInclusive<usize>,
    /// Keys, named `x`, `y`, `z`, `k3`, ...
    pub keys: RangeInclusive<usize>,
    pub mops: RangeInclusive<usize>,
    /// Chance that a micro-op is a read (otherwise `append` or `w`).
    pub read_rate: f64,
    /// Chance that a transaction ends `fail`, and `info`.
    pub fail_rate: f64,
    pub info_rate: f64,
    /// Chance that a completion due after the last invocation is never written (a run killed
    /// before it), leaving the invocation indeterminate.
    pub unfinished_rate: f64,
    /// Chance that one `ok` read is corrupted.
    pub corrupt_rate: f64,
}

impl Default for SmallConfig {
    fn default() -> Self {
        SmallConfig {
            txns: 2..=7,
            processes: 2..=4,
            keys: 2..=3,
            mops: 1..=4,
            read_rate: 0.5,
            fail_rate: 0.12,
            info_rate: 0.12,
            unfinished_rate: 0.1,
            corrupt_rate: 0.5,
        }
    }
}

/// What was done to one read of a valid history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CorruptionKind {
    /// An earlier state of the key: a register's overwritten value (or nil), a list's prefix.
    Stale,
    /// A value or element written to the key that the read could not have seen at its place:
    /// a later write, or one of an `info` transaction that never took effect.
    Future,
    /// A value or element written to another key.
    Foreign,
    /// A value or element written by a `fail` transaction.
    Aborted,
    /// A value or element nobody wrote.
    Garbage,
    /// A list with one element (not the last) missing.
    Dropped,
    /// A list with two neighbouring elements swapped.
    Reordered,
    /// A list with one element twice.
    Duplicated,
}

/// One corrupted read: micro-op `mop` of transaction `txn` (an index into
/// [`history::txn::txns`]'s list) read `now` where the valid history had `was`.
#[derive(Clone, Debug, PartialEq)]
pub struct Corruption {
    pub kind: CorruptionKind,
    pub txn: usize,
    pub mop: usize,
    pub was: MopValue,
    pub now: MopValue,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "T{} micro-op {} reads {} instead of {} ({:?})",
            self.txn, self.mop, self.now, self.was, self.kind
        )
    }
}

/// A small random history, with the valid history it came from.
#[derive(Clone, Debug)]
pub struct Small {
    /// What to check: `clean`, or `clean` with one read corrupted.
    pub history: History,
    /// The history before corruption: strict serializable by construction.
    pub clean: History,
    pub corruption: Option<Corruption>,
}

/// A random small history of `kind` with [`SmallConfig::default`]'s shape: about half are
/// valid (strict serializable), the rest have one read corrupted.
pub fn random_small(seed: u64, kind: Workload) -> History {
    random_small_with(seed, kind, &SmallConfig::default()).history
}

/// A random small history of `kind` and shape `cfg`, with its valid original and what was
/// corrupted. One seed, one history.
pub fn random_small_with(seed: u64, kind: Workload, cfg: &SmallConfig) -> Small {
    let stream = match kind {
        Workload::ListAppend => 0,
        Workload::RwRegister => 1,
    };
    let mut rng = SplitMix64::for_stream(seed, stream, PURPOSE_SMALL);
    let n = draw(&mut rng, &cfg.txns);
    let workers = draw(&mut rng, &cfg.processes).max(1);
    let keys = draw(&mut rng, &cfg.keys).max(1);
    let key_name = |k: usize| match k {
        0 => "x".to_owned(),
        1 => "y".to_owned(),
        2 => "z".to_owned(),
        _ => format!("k{k}"),
    };

    // The transactions, as invoked, and how each will end.
    let mut next_value = 1i64;
    let plans: Vec<Plan> = (0..n)
        .map(|_| {
            let len = draw(&mut rng, &cfg.mops).max(1);
            let mops = (0..len)
                .map(|_| {
                    let key = key_name(rng.below(keys as u64) as usize);
                    if rng.chance(cfg.read_rate) {
                        Mop::read(key)
                    } else {
                        next_value += 1;
                        Mop {
                            f: kind.write_kind(),
                            key,
                            value: MopValue::Int(next_value - 1),
                        }
                    }
                })
                .collect();
            let roll = rng.unit();
            let fate = if roll < cfg.fail_rate {
                EventType::Fail
            } else if roll < cfg.fail_rate + cfg.info_rate {
                EventType::Info
            } else {
                EventType::Ok
            };
            let takes_effect = match fate {
                EventType::Ok => true,
                EventType::Fail => false,
                _ => rng.chance(0.5),
            };
            Plan {
                mops,
                fate,
                takes_effect,
            }
        })
        .collect();

    let schedule = schedule_small(&mut rng, cfg, &plans, workers);

    // Run the transactions in the order they took effect; `ok` ones get their reads filled.
    let mut state: Vec<Vec<i64>> = vec![Vec::new(); keys];
    // Every state each key passed through, to draw stale values from.
    let mut versions: Vec<Vec<Vec<i64>>> = vec![vec![Vec::new()]; keys];
    let mut done: Vec<Vec<Mop>> = plans.iter().map(|p| p.mops.clone()).collect();
    // (txn, mop, key, versions of the key before the read)
    let mut reads: Vec<(usize, usize, usize, usize)> = Vec::new();
    let key_of = |name: &str| {
        (0..keys)
            .find(|&k| key_name(k) == name)
            .expect("every micro-op's key was drawn from the key names")
    };
    for &t in &schedule.effects {
        let ok = plans[t].fate == EventType::Ok && !schedule.unfinished[t];
        for (m, mop) in plans[t].mops.iter().enumerate() {
            let k = key_of(&mop.key);
            match mop.f {
                MopKind::Read => {
                    if ok {
                        done[t][m].value = read_value(kind, &state[k], &mut rng);
                        reads.push((t, m, k, versions[k].len()));
                    }
                }
                _ => {
                    let v = mop.value.int().expect("generated writes carry integers");
                    if kind == Workload::RwRegister {
                        state[k].clear();
                    }
                    state[k].push(v);
                    versions[k].push(state[k].clone());
                }
            }
        }
    }

    let clean = emit_small(kind, seed, &plans, &schedule, &done);
    let mut history = clean.clone();
    let corruption = if !reads.is_empty() && rng.chance(cfg.corrupt_rate) {
        let (t, m, k, seen_versions) = reads[rng.below(reads.len() as u64) as usize];
        let facts = Facts {
            kind,
            plans: &plans,
            unfinished: &schedule.unfinished,
            key_name: &key_name,
            key: k,
            earlier: &versions[k][..seen_versions],
        };
        let was = done[t][m].value.clone();
        let (what, now) = corrupt(&mut rng, &facts, &was);
        let pos = schedule.completions[t].expect("an `ok` read belongs to a completed txn");
        let mut mops = done[t].clone();
        mops[m].value = now.clone();
        history.events[pos].value = txn::to_json(&mops);
        Some(Corruption {
            kind: what,
            txn: t,
            mop: m,
            was,
            now,
        })
    } else {
        None
    };
    Small {
        history,
        clean,
        corruption,
    }
}

struct Plan {
    mops: Vec<Mop>,
    fate: EventType,
    takes_effect: bool,
}

/// When things happened: the events to write, in order, and the order transactions took
/// effect in.
struct SmallSchedule {
    /// (transaction, event type, process), in history order.
    events: Vec<(usize, EventType, u64)>,
    effects: Vec<usize>,
    /// Position in `events` of each transaction's completion.
    completions: Vec<Option<usize>>,
    unfinished: Vec<bool>,
}

/// Interleaves invocations, effects and completions at random: any step that is allowed may
/// come next, so intervals overlap in every way the workers allow.
fn schedule_small(
    rng: &mut SplitMix64,
    cfg: &SmallConfig,
    plans: &[Plan],
    workers: usize,
) -> SmallSchedule {
    #[derive(Clone, Copy)]
    enum Step {
        Invoke(usize),
        Effect(usize),
        Complete(usize),
    }
    let n = plans.len();
    let mut process: Vec<u64> = (0..workers as u64).collect();
    let mut next_process = workers as u64;
    let mut busy: Vec<Option<usize>> = vec![None; workers];
    let mut worker_of = vec![0usize; n];
    let mut invoked = vec![false; n];
    let mut effected = vec![false; n];
    let mut ended = vec![false; n];
    let mut out = SmallSchedule {
        events: Vec::with_capacity(2 * n),
        effects: Vec::with_capacity(n),
        completions: vec![None; n],
        unfinished: vec![false; n],
    };
    let mut next = 0;
    let mut steps = Vec::new();
    loop {
        steps.clear();
        if next < n {
            steps.extend(
                (0..workers)
                    .filter(|&w| busy[w].is_none())
                    .map(Step::Invoke),
            );
        }
        for t in 0..n {
            if invoked[t] && plans[t].takes_effect && !effected[t] {
                steps.push(Step::Effect(t));
            }
            if invoked[t] && !ended[t] && (plans[t].fate != EventType::Ok || effected[t]) {
                steps.push(Step::Complete(t));
            }
        }
        let Some(&step) = rng.pick(&steps) else {
            break;
        };
        match step {
            Step::Invoke(w) => {
                let t = next;
                next += 1;
                busy[w] = Some(t);
                worker_of[t] = w;
                invoked[t] = true;
                out.events.push((t, EventType::Invoke, process[w]));
            }
            Step::Effect(t) => {
                effected[t] = true;
                out.effects.push(t);
            }
            Step::Complete(t) => {
                let w = worker_of[t];
                ended[t] = true;
                busy[w] = None;
                // Only once nothing more is invoked, so no process waits on it forever.
                if next == n && rng.chance(cfg.unfinished_rate) {
                    out.unfinished[t] = true;
                    continue;
                }
                out.completions[t] = Some(out.events.len());
                out.events.push((t, plans[t].fate, process[w]));
                if plans[t].fate == EventType::Info {
                    process[w] = next_process;
                    next_process += 1;
                }
            }
        }
    }
    out
}

/// A read of `state` as a client sees it; an empty list is written `null` or `[]` at random,
/// as systems do both.
fn read_value(kind: Workload, state: &[i64], rng: &mut SplitMix64) -> MopValue {
    match (kind, state.last()) {
        (Workload::RwRegister, None) => MopValue::Nil,
        (Workload::RwRegister, Some(v)) => MopValue::Int(*v),
        (Workload::ListAppend, None) if rng.chance(0.5) => MopValue::Nil,
        (Workload::ListAppend, _) => MopValue::List(state.to_vec()),
    }
}

fn emit_small(
    kind: Workload,
    seed: u64,
    plans: &[Plan],
    schedule: &SmallSchedule,
    done: &[Vec<Mop>],
) -> History {
    let mut h = History::new(format!("small-{}-seed{seed}.jsonl", kind.name()));
    // Times follow positions, a few microseconds apart; drawn from the seed alone, so the
    // history's other draws do not move them.
    let mut clock = SplitMix64::for_stream(seed, 2, PURPOSE_SMALL);
    let mut time = 0u64;
    for (i, &(t, ty, process)) in schedule.events.iter().enumerate() {
        time += 1 + clock.below(5_000);
        let value = match ty {
            EventType::Ok => txn::to_json(&done[t]),
            _ => txn::to_json(&plans[t].mops),
        };
        h.push(event(i, time, process, ty, value), i + 1);
    }
    h
}

/// The history of `plans` (micro-ops asked, outcome, worker) run one at a time, each `ok`
/// one completing with `done`'s micro-ops; a worker continues as a fresh process after `info`.
fn one_at_a_time(
    name: String,
    plans: &[(Vec<Mop>, EventType, usize)],
    done: &[Vec<Mop>],
    workers: usize,
) -> History {
    let mut h = History::new(name);
    let mut process: Vec<u64> = (0..workers as u64).collect();
    let mut next_process = workers as u64;
    for (t, (mops, fate, w)) in plans.iter().enumerate() {
        let p = process[*w];
        let i = h.events.len();
        h.push(
            event(
                i,
                1000 * (i as u64 + 1),
                p,
                EventType::Invoke,
                txn::to_json(mops),
            ),
            i + 1,
        );
        let value = if *fate == EventType::Ok {
            txn::to_json(&done[t])
        } else {
            txn::to_json(mops)
        };
        h.push(event(i + 1, 1000 * (i as u64 + 2), p, *fate, value), i + 2);
        if *fate == EventType::Info {
            process[*w] = next_process;
            next_process += 1;
        }
    }
    h
}

fn event(index: usize, time: u64, process: u64, kind: EventType, value: Value) -> Event {
    let error = match kind {
        EventType::Fail => Some(Value::from("aborted")),
        EventType::Info => Some(Value::from("timeout")),
        _ => None,
    };
    Event {
        index: index as u64,
        time,
        process: Process::Client(process),
        kind,
        f: "txn".to_owned(),
        key: None,
        value,
        node: None,
        error,
        local: false,
        siblings: false,
        context: None,
    }
}

/// What a corruption may draw on.
struct Facts<'a> {
    kind: Workload,
    plans: &'a [Plan],
    unfinished: &'a [bool],
    key_name: &'a dyn Fn(usize) -> String,
    key: usize,
    /// The states of the key before the read.
    earlier: &'a [Vec<i64>],
}

impl Facts<'_> {
    /// Values written to the read's key (`same_key`) or to the others, by transactions that
    /// surely failed (`failed`) or by the others (which may or may not have taken effect).
    fn written(&self, same_key: bool, failed: bool) -> Vec<i64> {
        let name = (self.key_name)(self.key);
        let mut out = Vec::new();
        for (t, p) in self.plans.iter().enumerate() {
            if (p.fate == EventType::Fail && !self.unfinished[t]) != failed {
                continue;
            }
            for mop in &p.mops {
                if mop.f != MopKind::Read && (mop.key == name) == same_key {
                    out.extend(mop.value.int());
                }
            }
        }
        out
    }
}

/// Corrupts one read whose valid result is `was`; always returns a different value.
fn corrupt(rng: &mut SplitMix64, facts: &Facts, was: &MopValue) -> (CorruptionKind, MopValue) {
    use CorruptionKind::*;
    let mut options: Vec<(CorruptionKind, MopValue)> = Vec::new();
    let garbage = GARBAGE_BASE + rng.below(1000) as i64;
    match facts.kind {
        Workload::ListAppend => {
            let seen = match was {
                MopValue::List(l) => l.clone(),
                _ => Vec::new(),
            };
            let with = |x: i64| {
                let mut l = seen.clone();
                l.push(x);
                MopValue::List(l)
            };
            let len = seen.len();
            if len > 0 {
                let cut = rng.below(len as u64) as usize;
                options.push((Stale, MopValue::List(seen[..cut].to_vec())));
                let i = rng.below(len as u64) as usize;
                let mut l = seen.clone();
                l.insert(i + 1, seen[i]);
                options.push((Duplicated, MopValue::List(l)));
            }
            if len > 1 {
                let i = rng.below(len as u64 - 1) as usize;
                let mut l = seen.clone();
                l.remove(i);
                options.push((Dropped, MopValue::List(l)));
                let i = rng.below(len as u64 - 1) as usize;
                let mut l = seen.clone();
                l.swap(i, i + 1);
                options.push((Reordered, MopValue::List(l)));
            }
            let future: Vec<i64> = facts
                .written(true, false)
                .into_iter()
                .filter(|x| !seen.contains(x))
                .collect();
            if let Some(&x) = rng.pick(&future) {
                options.push((Future, with(x)));
            }
            if let Some(&x) = rng.pick(&facts.written(false, false)) {
                options.push((Foreign, with(x)));
            }
            let mut aborted = facts.written(true, true);
            if aborted.is_empty() {
                aborted = facts.written(false, true);
            }
            if let Some(&x) = rng.pick(&aborted) {
                options.push((Aborted, with(x)));
            }
            options.push((Garbage, with(garbage)));
        }
        Workload::RwRegister => {
            let seen = was.int();
            let as_value = |v: Option<i64>| v.map_or(MopValue::Nil, MopValue::Int);
            let earlier: Vec<Option<i64>> = facts
                .earlier
                .iter()
                .map(|s| s.last().copied())
                .filter(|v| *v != seen)
                .collect();
            if let Some(&v) = rng.pick(&earlier) {
                options.push((Stale, as_value(v)));
            }
            let future: Vec<i64> = facts
                .written(true, false)
                .into_iter()
                .filter(|x| Some(*x) != seen && !earlier.contains(&Some(*x)))
                .collect();
            if let Some(&x) = rng.pick(&future) {
                options.push((Future, MopValue::Int(x)));
            }
            if let Some(&x) = rng.pick(&facts.written(false, false)) {
                options.push((Foreign, MopValue::Int(x)));
            }
            let mut aborted = facts.written(true, true);
            if aborted.is_empty() {
                aborted = facts.written(false, true);
            }
            if let Some(&x) = rng.pick(&aborted) {
                options.push((Aborted, MopValue::Int(x)));
            }
            options.push((Garbage, MopValue::Int(garbage)));
        }
    }
    let i = rng.below(options.len() as u64) as usize;
    let chosen = options.swap_remove(i);
    debug_assert!(!same_read(&chosen.1, was), "a corruption changes the read");
    chosen
}

/// Whether two list reads mean the same (`null` and `[]` are both empty).
fn same_read(a: &MopValue, b: &MopValue) -> bool {
    let empty = |v: &MopValue| matches!(v, MopValue::Nil) || *v == MopValue::List(Vec::new());
    a == b || (empty(a) && empty(b))
}

fn draw(rng: &mut SplitMix64, range: &RangeInclusive<usize>) -> usize {
    let (lo, hi) = (*range.start(), *range.end());
    if hi <= lo {
        return lo;
    }
    lo + rng.below((hi - lo + 1) as u64) as usize
}

// ---------------------------------------------------------------------------------------------
// Large list-append histories
// ---------------------------------------------------------------------------------------------

/// An anomaly to plant in a [`large`] history, between two concurrent transactions on two keys
/// of their own, `a` and `b`, with a later observer reading both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Planted {
    None,
    /// Write cycle: T1 appends `x1` to `a` and `y1` to `b`, T2 appends `x2` and `y2`; the
    /// observer reads `a = [x1 x2]` and `b = [y2 y1]`, so T1 <ww T2 on `a` and T2 <ww T1 on `b`.
    G0,
    /// Circular information flow: T1 appends `x` to `a` and reads `b = [y]`, T2 appends `y` to
    /// `b` and reads `a = [x]`: each read the other's write.
    G1c,
    /// Write skew: T1 reads `a = []` and appends `x` to `b`, T2 reads `b = []` and appends `y`
    /// to `a`; the observer reads `a = [y]`, `b = [x]`: each missed the other's append.
    G2Item,
}

/// What [`large_with`] generates.
#[derive(Clone, Debug, PartialEq)]
pub struct LargeConfig {
    pub seed: u64,
    pub txns: usize,
    /// Concurrent client workers, each with one transaction outstanding at most.
    pub processes: usize,
    pub planted: Planted,
    /// Plant at the first invocation from this transaction number on (default: the middle).
    pub plant_at: Option<usize>,
    /// Keys being written at any time; a key retires after `max_appends_per_key` appends and
    /// a fresh one takes its place.
    pub active_keys: usize,
    pub max_appends_per_key: usize,
    pub mops: RangeInclusive<usize>,
    /// Chance that a micro-op is a read (otherwise an append).
    pub read_rate: f64,
    pub fail_rate: f64,
    pub info_rate: f64,
}

impl LargeConfig {
    /// About 4 micro-ops a transaction, half reads; 10 active keys of up to 16 appends; 1% of
    /// transactions `fail`, 0.1% end `info`.
    pub fn new(seed: u64, txns: usize, processes: usize, planted: Planted) -> Self {
        LargeConfig {
            seed,
            txns,
            processes,
            planted,
            plant_at: None,
            active_keys: 10,
            max_appends_per_key: 16,
            mops: 1..=7,
            read_rate: 0.5,
            fail_rate: 0.01,
            info_rate: 0.001,
        }
    }
}

/// Where an anomaly was planted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plant {
    pub kind: Planted,
    /// The two transactions of the cycle, as indices into [`history::txn::txns`]'s list
    /// (which, every operation being a txn, are also indices into `Paired::ops`).
    pub txns: [usize; 2],
    /// Positions in `History::events` of their invocations.
    pub invokes: [usize; 2],
    /// The transaction, invoked after both, that reads `a` and `b` and so reveals their
    /// version orders.
    pub observer: usize,
    /// The keys `a` and `b`, touched by these three transactions only.
    pub keys: [String; 2],
}

/// A large history and where its anomaly is.
#[derive(Clone, Debug)]
pub struct Large {
    pub history: History,
    /// `None` for [`Planted::None`], or when there was no room to plant (fewer than 3
    /// transactions or 2 processes).
    pub plant: Option<Plant>,
}

/// A list-append history of `txns` transactions by `processes` concurrent clients, strict
/// serializable unless `planted`; [`LargeConfig::new`] gives the rest of its shape.
pub fn large(seed: u64, txns: usize, processes: usize, planted: Planted) -> Large {
    large_with(&LargeConfig::new(seed, txns, processes, planted))
}

/// A list-append history per `cfg`. One seed, one history.
pub fn large_with(cfg: &LargeConfig) -> Large {
    LargeSim::new(cfg).run()
}

/// Operation latency, invocation to completion, in nanoseconds, and the pause between a
/// client's completion and its next invocation.
const MIN_LATENCY_NS: u64 = 20_000;
const MAX_LATENCY_NS: u64 = 1_000_000;
const MAX_THINK_NS: u64 = 50_000;
/// The first planted transaction stays open this long, so that the second (the next
/// invocation, by another client, within a latency and a think time) overlaps it.
const PLANT_LATENCY_NS: u64 = 3 * MAX_LATENCY_NS;

/// A plain transaction's micro-op, compact: a million transactions are generated without a
/// `Mop` (and its key string) each, their JSON built straight from these.
#[derive(Clone, Copy, Debug)]
struct Step {
    key: usize,
    /// The element appended; `None` for a read.
    append: Option<i64>,
}

#[derive(Debug)]
enum Body {
    Plain {
        steps: Vec<Step>,
        /// The reads' results, in order, once an `ok` transaction took effect.
        reads: Vec<Value>,
    },
    /// A planted transaction or the observer: fixed micro-ops and results, on keys of its own,
    /// never touching the state.
    Planted { invoked: Vec<Mop>, result: Vec<Mop> },
}

#[derive(Debug)]
struct InFlight {
    serial: u64,
    fate: EventType,
    body: Body,
    /// Whether it is to take effect, and whether it has.
    effect_due: bool,
    effected: bool,
}

#[derive(Debug)]
struct LargeClient {
    process: u64,
    op: Option<InFlight>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Invoke { client: usize },
    Effect { client: usize, serial: u64 },
    Complete { client: usize },
}

/// How far planting has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Waiting,
    /// The first transaction is out; the next invocation is the second.
    First,
    /// Both are out; the next invocation is the observer.
    Second,
    Done,
}

struct LargeSim<'a> {
    cfg: &'a LargeConfig,
    rng: SplitMix64,
    queue: BinaryHeap<Reverse<(u64, u64, Pending)>>,
    seq: u64,
    clients: Vec<LargeClient>,
    next_process: u64,
    /// Each key's list and name, by key number; a key's name is its number.
    lists: Vec<Vec<i64>>,
    names: Vec<String>,
    appends: Vec<usize>,
    active: Vec<usize>,
    next_element: i64,
    next_serial: u64,
    /// Appends of `info` transactions that take effect after their completion, by serial.
    late: hashbrown::HashMap<u64, Vec<Step>>,
    invoked: usize,
    last_time: u64,
    history: History,
    stage: Stage,
    plant_at: usize,
    plant: Option<Plant>,
    /// The planted transactions' micro-ops with their results: first, second, observer.
    planted_mops: Vec<Vec<Mop>>,
}

impl<'a> LargeSim<'a> {
    fn new(cfg: &'a LargeConfig) -> Self {
        let mut history = History::new(format!(
            "large-list-append-t{}-p{}-{:?}-seed{}.jsonl",
            cfg.txns, cfg.processes, cfg.planted, cfg.seed
        ));
        history.events.reserve(cfg.txns.saturating_mul(2));
        history.lines.reserve(cfg.txns.saturating_mul(2));
        let can_plant = cfg.planted != Planted::None && cfg.txns >= 3 && cfg.processes >= 2;
        let mut sim = LargeSim {
            cfg,
            rng: SplitMix64::for_stream(cfg.seed, 0, PURPOSE_LARGE),
            queue: BinaryHeap::new(),
            seq: 0,
            clients: (0..cfg.processes)
                .map(|c| LargeClient {
                    process: c as u64,
                    op: None,
                })
                .collect(),
            next_process: cfg.processes as u64,
            lists: Vec::new(),
            names: Vec::new(),
            appends: Vec::new(),
            active: Vec::new(),
            next_element: 1,
            next_serial: 0,
            late: hashbrown::HashMap::new(),
            invoked: 0,
            last_time: 0,
            history,
            stage: if can_plant {
                Stage::Waiting
            } else {
                Stage::Done
            },
            plant_at: cfg
                .plant_at
                .unwrap_or(cfg.txns / 2)
                .min(cfg.txns.saturating_sub(3)),
            plant: None,
            planted_mops: Vec::new(),
        };
        sim.active = (0..cfg.active_keys.max(1)).map(|_| sim.new_key()).collect();
        if can_plant {
            sim.prepare_plant();
        }
        sim
    }

    fn new_key(&mut self) -> usize {
        let k = self.lists.len();
        self.lists.push(Vec::new());
        self.names.push(k.to_string());
        self.appends.push(0);
        k
    }

    fn element(&mut self) -> i64 {
        self.next_element += 1;
        self.next_element - 1
    }

    /// The three planted transactions' micro-ops, with their results, on two fresh keys.
    fn prepare_plant(&mut self) {
        let (a, b) = (self.new_key(), self.new_key());
        let (a, b) = (self.names[a].clone(), self.names[b].clone());
        let read = |k: &String, l: Vec<i64>| Mop {
            f: MopKind::Read,
            key: k.clone(),
            value: MopValue::List(l),
        };
        let (first, second, observed) = match self.cfg.planted {
            Planted::G0 => {
                let (x1, y1, x2, y2) = (
                    self.element(),
                    self.element(),
                    self.element(),
                    self.element(),
                );
                (
                    vec![Mop::append(&a, x1), Mop::append(&b, y1)],
                    vec![Mop::append(&a, x2), Mop::append(&b, y2)],
                    (vec![x1, x2], vec![y2, y1]),
                )
            }
            Planted::G1c => {
                let (x, y) = (self.element(), self.element());
                (
                    vec![Mop::append(&a, x), read(&b, vec![y])],
                    vec![Mop::append(&b, y), read(&a, vec![x])],
                    (vec![x], vec![y]),
                )
            }
            Planted::G2Item => {
                let (x, y) = (self.element(), self.element());
                (
                    vec![read(&a, vec![]), Mop::append(&b, x)],
                    vec![read(&b, vec![]), Mop::append(&a, y)],
                    (vec![y], vec![x]),
                )
            }
            Planted::None => unreachable!("planting is only prepared for an anomaly"),
        };
        let observer = vec![read(&a, observed.0), read(&b, observed.1)];
        self.planted_mops = vec![first, second, observer];
        self.plant = Some(Plant {
            kind: self.cfg.planted,
            txns: [0, 0],
            invokes: [0, 0],
            observer: 0,
            keys: [a, b],
        });
    }

    fn schedule(&mut self, time: u64, what: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq, what)));
    }

    fn run(mut self) -> Large {
        for c in 0..self.clients.len() {
            let t = 1 + self.rng.below(MAX_THINK_NS);
            self.schedule(t, Pending::Invoke { client: c });
        }
        while let Some(Reverse((time, _, what))) = self.queue.pop() {
            match what {
                Pending::Invoke { client } => self.invoke(time, client),
                Pending::Effect { client, serial } => self.effect(client, serial),
                Pending::Complete { client } => self.complete(time, client),
            }
        }
        // Planting needs the invocations it counted on; with fewer, no plant.
        let plant = if self.stage == Stage::Done {
            self.plant
        } else {
            None
        };
        Large {
            history: self.history,
            plant,
        }
    }

    fn emit(&mut self, time: u64, process: u64, kind: EventType, value: Value) {
        // The harness's clock is monotonic and events are observed one at a time.
        let time = time.max(self.last_time + 1);
        self.last_time = time;
        let index = self.history.events.len();
        self.history
            .push(event(index, time, process, kind, value), index + 1);
    }

    /// A plain transaction's micro-ops, over the active keys, retiring keys as they fill.
    fn draw_steps(&mut self) -> Vec<Step> {
        let len = draw(&mut self.rng, &self.cfg.mops).max(1);
        let mut steps = Vec::with_capacity(len);
        for _ in 0..len {
            let slot = self.rng.below(self.active.len() as u64) as usize;
            let key = self.active[slot];
            if self.rng.chance(self.cfg.read_rate) {
                steps.push(Step { key, append: None });
            } else {
                let x = self.element();
                steps.push(Step {
                    key,
                    append: Some(x),
                });
                self.appends[key] += 1;
                if self.appends[key] >= self.cfg.max_appends_per_key {
                    self.active[slot] = self.new_key();
                }
            }
        }
        steps
    }

    /// A plain transaction's value, as `history::txn::to_json` writes it: reads `null`, or
    /// filled from `reads` in order.
    fn steps_json(&self, steps: &[Step], reads: Option<Vec<Value>>) -> Value {
        let mut reads = reads.map(Vec::into_iter);
        let mops = steps
            .iter()
            .map(|s| {
                let (f, value) = match s.append {
                    Some(x) => (MopKind::Append, Value::from(x)),
                    None => (
                        MopKind::Read,
                        reads
                            .as_mut()
                            .and_then(Iterator::next)
                            .unwrap_or(Value::Null),
                    ),
                };
                Value::Array(vec![
                    Value::String(f.name().to_owned()),
                    Value::String(self.names[s.key].clone()),
                    value,
                ])
            })
            .collect();
        Value::Array(mops)
    }

    fn invoke(&mut self, time: u64, client: usize) {
        if self.invoked >= self.cfg.txns {
            return;
        }
        let index = self.invoked;
        self.invoked += 1;
        let position = self.history.events.len();
        let mut latency = MIN_LATENCY_NS + self.rng.below(MAX_LATENCY_NS - MIN_LATENCY_NS);
        let body = match self.stage {
            Stage::Waiting if index >= self.plant_at => {
                self.stage = Stage::First;
                latency = PLANT_LATENCY_NS;
                self.planted(0, index, position)
            }
            Stage::First => {
                self.stage = Stage::Second;
                self.planted(1, index, position)
            }
            Stage::Second => {
                self.stage = Stage::Done;
                self.planted(2, index, position)
            }
            _ => Body::Plain {
                steps: self.draw_steps(),
                reads: Vec::new(),
            },
        };
        let fate = match body {
            Body::Planted { .. } => EventType::Ok,
            Body::Plain { .. } => {
                let roll = self.rng.unit();
                if roll < self.cfg.fail_rate {
                    EventType::Fail
                } else if roll < self.cfg.fail_rate + self.cfg.info_rate {
                    EventType::Info
                } else {
                    EventType::Ok
                }
            }
        };
        let serial = self.next_serial;
        self.next_serial += 1;
        let invocation = self.invocation_json(&body);
        let process = self.clients[client].process;
        self.emit(time, process, EventType::Invoke, invocation);
        let effect_at = match fate {
            EventType::Ok => Some(time + 1 + self.rng.below(latency - 1)),
            // Takes effect after all, possibly after its `info` completion.
            EventType::Info if self.rng.chance(0.5) => Some(time + 1 + self.rng.below(2 * latency)),
            _ => None,
        };
        if let Some(at) = effect_at {
            self.schedule(at, Pending::Effect { client, serial });
        }
        self.schedule(time + latency, Pending::Complete { client });
        self.clients[client].op = Some(InFlight {
            serial,
            fate,
            body,
            effect_due: effect_at.is_some(),
            effected: false,
        });
    }

    fn invocation_json(&self, body: &Body) -> Value {
        match body {
            Body::Plain { steps, .. } => self.steps_json(steps, None),
            Body::Planted { invoked, .. } => txn::to_json(invoked),
        }
    }

    /// Planted transaction `which` (first, second, observer) is transaction `index`, invoked
    /// at `position`.
    fn planted(&mut self, which: usize, index: usize, position: usize) -> Body {
        let plant = self
            .plant
            .as_mut()
            .expect("planting stages advance only when a plant was prepared");
        if which < 2 {
            plant.txns[which] = index;
            plant.invokes[which] = position;
        } else {
            plant.observer = index;
        }
        let result = self.planted_mops[which].clone();
        let invoked = result
            .iter()
            .map(|m| match m.f {
                MopKind::Read => Mop::read(m.key.clone()),
                _ => m.clone(),
            })
            .collect();
        Body::Planted { invoked, result }
    }

    fn effect(&mut self, client: usize, serial: u64) {
        let lists = &mut self.lists;
        match self.clients[client].op.as_mut() {
            Some(op) if op.serial == serial => {
                op.effected = true;
                let Body::Plain { steps, reads } = &mut op.body else {
                    return;
                };
                let fill = op.fate == EventType::Ok;
                for s in steps.iter() {
                    match s.append {
                        Some(x) => lists[s.key].push(x),
                        None if fill => reads.push(Value::Array(
                            lists[s.key].iter().map(|&x| Value::from(x)).collect(),
                        )),
                        None => {}
                    }
                }
            }
            _ => {
                // An `info` transaction taking effect after its completion.
                for s in self.late.remove(&serial).unwrap_or_default() {
                    if let Some(x) = s.append {
                        lists[s.key].push(x);
                    }
                }
            }
        }
    }

    fn complete(&mut self, time: u64, client: usize) {
        let op = self.clients[client]
            .op
            .take()
            .expect("a completion is scheduled only for a transaction in flight");
        let process = self.clients[client].process;
        let late = op.fate == EventType::Info && op.effect_due && !op.effected;
        let value = match (op.fate, op.body) {
            (EventType::Ok, Body::Plain { steps, reads }) => self.steps_json(&steps, Some(reads)),
            (EventType::Ok, Body::Planted { result, .. }) => txn::to_json(&result),
            (_, body) => {
                let value = self.invocation_json(&body);
                if let (true, Body::Plain { steps, .. }) = (late, body) {
                    // Its effect is still to come, without the client.
                    self.late.insert(op.serial, steps);
                }
                value
            }
        };
        self.emit(time, process, op.fate, value);
        if op.fate == EventType::Info {
            self.clients[client].process = self.next_process;
            self.next_process += 1;
        }
        if self.invoked < self.cfg.txns {
            let t = time + 1 + self.rng.below(MAX_THINK_NS);
            self.schedule(t, Pending::Invoke { client });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Weakly consistent rw-register histories
// ---------------------------------------------------------------------------------------------

/// Streams for the weak and large register generators.
const PURPOSE_WEAK: u64 = 0x5458_4e5f_5745_414b; // "TXN_WEAK"
const PURPOSE_REGISTER: u64 = 0x5458_4e5f_5245_4753; // "TXN_REGS"

/// A small rw-register history whose reads are not filled from one serial state: each read
/// of a key sees nil or any value an earlier transaction that did not fail left in it, often
/// the latest (rarely, any value written to it at all, or one that disagrees with the
/// transaction's own write), so that the weak
/// levels (read committed, read atomic, causal) each hold in some histories and not in others.
/// 3 to 10 transactions run one after another, on 3–5 processes; some `fail`, some end `info` (their
/// process retires). For differential tests of [`super::saturate`] against
/// [`super::oracle::weak_txns`].
pub fn random_weak(seed: u64) -> History {
    let mut rng = SplitMix64::for_stream(seed, 0, PURPOSE_WEAK);
    let n = 3 + rng.below(8) as usize;
    let workers = 3 + rng.below(3) as usize;
    let keys = 2 + rng.below(2) as usize;
    let key_name = |k: usize| ["x", "y", "z"][k].to_owned();
    let mut next_value = 1i64;
    let mut plans: Vec<(Vec<Mop>, EventType, usize)> = Vec::with_capacity(n);
    for _ in 0..n {
        let len = 1 + rng.below(4) as usize;
        let mops = (0..len)
            .map(|_| {
                let key = key_name(rng.below(keys as u64) as usize);
                if rng.chance(0.5) {
                    Mop::read(key)
                } else {
                    next_value += 1;
                    Mop {
                        f: MopKind::Write,
                        key,
                        value: MopValue::Int(next_value - 1),
                    }
                }
            })
            .collect();
        let roll = rng.unit();
        let fate = if roll < 0.06 {
            EventType::Fail
        } else if roll < 0.14 {
            EventType::Info
        } else {
            EventType::Ok
        };
        plans.push((mops, fate, rng.below(workers as u64) as usize));
    }
    // Per key: (transaction, value, its last write of the key).
    let mut written: Vec<Vec<(usize, i64, bool)>> = vec![Vec::new(); keys];
    for (t, (mops, _, _)) in plans.iter().enumerate() {
        for (i, m) in mops.iter().enumerate() {
            if let (MopKind::Write, MopValue::Int(v)) = (m.f, &m.value) {
                let last = !mops[i + 1..]
                    .iter()
                    .any(|o| o.f == MopKind::Write && o.key == m.key);
                let k = ["x", "y", "z"]
                    .iter()
                    .position(|x| *x == m.key)
                    .unwrap_or(0);
                written[k].push((t, *v, last));
            }
        }
    }
    let mut done: Vec<Vec<Mop>> = Vec::with_capacity(n);
    for (t, (mops, _, _)) in plans.iter().enumerate() {
        let mut out = mops.clone();
        for i in 0..out.len() {
            if out[i].f != MopKind::Read {
                continue;
            }
            let key = out[i].key.clone();
            let k = ["x", "y", "z"].iter().position(|x| *x == key).unwrap_or(0);
            let own = out[..i]
                .iter()
                .rev()
                .find(|m| m.f == MopKind::Write && m.key == key)
                .map(|m| m.value.clone());
            let value = match own {
                Some(v) if !rng.chance(0.01) => v,
                _ => {
                    let wild = rng.chance(0.02);
                    let pool: Vec<i64> = written[k]
                        .iter()
                        .filter(|&&(u, _, last)| {
                            wild || (u < t && last && plans[u].1 != EventType::Fail)
                        })
                        .map(|&(_, v, _)| v)
                        .collect();
                    // Often the latest value, else any (or nil).
                    let pick = if rng.chance(0.4) {
                        pool.len().wrapping_sub(1)
                    } else {
                        rng.below(pool.len() as u64 + 1) as usize
                    };
                    pool.get(pick).map_or(MopValue::Nil, |v| MopValue::Int(*v))
                }
            };
            out[i].value = value;
        }
        done.push(out);
    }
    one_at_a_time(
        format!("weak-rw-register-seed{seed}.jsonl"),
        &plans,
        &done,
        workers,
    )
}

/// [`random_weak`] for list-append: each read of a key sees a prefix of the key's appends by
/// earlier transactions that did not fail (in the order they were generated), cut between
/// two transactions, often the whole (rarely with an element dropped or a foreign one), then
/// the transaction's own appends; a later read of the key in the same transaction repeats
/// what the first saw with the appends made since.
pub fn random_weak_lists(seed: u64) -> History {
    let mut rng = SplitMix64::for_stream(seed, 1, PURPOSE_WEAK);
    let n = 3 + rng.below(8) as usize;
    let workers = 3 + rng.below(3) as usize;
    let keys = 2 + rng.below(2) as usize;
    let names = ["x", "y", "z"];
    let mut next = 1i64;
    let mut plans: Vec<(Vec<Mop>, EventType, usize)> = Vec::with_capacity(n);
    for _ in 0..n {
        let len = 1 + rng.below(4) as usize;
        let mops = (0..len)
            .map(|_| {
                let key = names[rng.below(keys as u64) as usize];
                if rng.chance(0.5) {
                    Mop::read(key)
                } else {
                    next += 1;
                    Mop::append(key, next - 1)
                }
            })
            .collect();
        let roll = rng.unit();
        let fate = if roll < 0.06 {
            EventType::Fail
        } else if roll < 0.14 {
            EventType::Info
        } else {
            EventType::Ok
        };
        plans.push((mops, fate, rng.below(workers as u64) as usize));
    }
    let appended = |t: usize, key: &str| -> Vec<i64> {
        plans[t]
            .0
            .iter()
            .filter(|m| m.f == MopKind::Append && m.key == key)
            .filter_map(|m| m.value.int())
            .collect()
    };
    let mut done: Vec<Vec<Mop>> = Vec::with_capacity(n);
    for t in 0..n {
        let mut out = plans[t].0.clone();
        let mut seen: Vec<(String, Vec<i64>)> = Vec::new();
        for i in 0..out.len() {
            let key = out[i].key.clone();
            if out[i].f == MopKind::Append {
                if let (Some(s), Some(e)) =
                    (seen.iter_mut().find(|s| s.0 == key), out[i].value.int())
                {
                    s.1.push(e);
                }
                continue;
            }
            let list = match seen.iter().find(|s| s.0 == key) {
                Some(s) if !rng.chance(0.01) => s.1.clone(),
                _ => {
                    let blocks: Vec<Vec<i64>> = (0..t)
                        .filter(|&u| plans[u].1 != EventType::Fail)
                        .map(|u| appended(u, &key))
                        .filter(|b| !b.is_empty())
                        .collect();
                    let cut = if rng.chance(0.4) {
                        blocks.len()
                    } else {
                        rng.below(blocks.len() as u64 + 1) as usize
                    };
                    let mut l: Vec<i64> = blocks[..cut].concat();
                    if rng.chance(0.02) && !l.is_empty() {
                        let j = rng.below(l.len() as u64) as usize;
                        l.remove(j);
                    } else if rng.chance(0.02) {
                        l.push(1 + rng.below(next as u64) as i64);
                    }
                    let own: Vec<i64> = out[..i]
                        .iter()
                        .filter(|m| m.f == MopKind::Append && m.key == key)
                        .filter_map(|m| m.value.int())
                        .collect();
                    l.extend(own);
                    l
                }
            };
            match seen.iter_mut().find(|s| s.0 == key) {
                Some(s) => s.1 = list.clone(),
                None => seen.push((key.clone(), list.clone())),
            }
            out[i].value = if list.is_empty() && rng.chance(0.5) {
                MopValue::Nil
            } else {
                MopValue::List(list)
            };
        }
        done.push(out);
    }
    one_at_a_time(
        format!("weak-list-append-seed{seed}.jsonl"),
        &plans,
        &done,
        workers,
    )
}

/// A register transaction's micro-ops, compact: (key, the value written, or `None` for a read).
type RegisterSteps = Vec<(usize, Option<i64>)>;

/// A large rw-register history and where its causal violation is.
#[derive(Clone, Debug)]
pub struct LargeRegister {
    pub history: History,
    /// With `plant`: the four planted transactions, as indices into
    /// [`history::txn::txns`]'s list. T0 and T1 write `a` in one session (T1 last), T2 reads
    /// T1's `a` and writes `b`, T3 reads T2's `b` and then T0's `a`: T1 is causally visible to
    /// T3, so it must commit before T0, which session order puts first. Read atomic still
    /// holds (T1 is not directly visible to T3).
    pub plant: Option<[usize; 4]>,
}

/// A rw-register history of `txns` transactions by `processes` concurrent clients, each
/// transaction taking effect at its completion, so strict serializable and causal; with
/// `plant`, a causal violation (read atomic still) on two keys of its own, in the middle.
/// Keys (`k0`, `k1`, ...) retire after 16 writes, 10 active at a time; about 4 micro-ops a
/// transaction, half reads; 1% of transactions fail, 0.1% end `info` (taking effect or not).
pub fn large_register(seed: u64, txns: usize, processes: usize, plant: bool) -> LargeRegister {
    let mut rng = SplitMix64::for_stream(seed, 0, PURPOSE_REGISTER);
    let processes = processes.max(1);
    let mut h = History::new(format!(
        "large-rw-register-t{txns}-p{processes}-plant{plant}-seed{seed}.jsonl"
    ));
    h.events.reserve(2 * txns + 8);
    h.lines.reserve(2 * txns + 8);
    let mut state: Vec<Option<i64>> = Vec::new();
    let mut writes: Vec<usize> = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    let new_key = |state: &mut Vec<Option<i64>>, writes: &mut Vec<usize>| {
        state.push(None);
        writes.push(0);
        state.len() - 1
    };
    for _ in 0..10 {
        active.push(new_key(&mut state, &mut writes));
    }
    let mut next_value = 1i64;
    let mut process: Vec<u64> = (0..processes as u64).collect();
    let mut next_process = processes as u64;
    // Per client: the outstanding transaction (key, value to write or None for a read) and
    // its fate.
    let mut outstanding: Vec<Option<(RegisterSteps, EventType)>> = vec![None; processes];
    let mut time = 0u64;
    let mut invoked = 0usize;
    let mut completed = 0usize;
    let mut planted: Option<[usize; 4]> = None;
    let json = |steps: &[(usize, Option<i64>)], reads: Option<&[Option<i64>]>| {
        let mut r = reads.map(|r| r.iter());
        Value::Array(
            steps
                .iter()
                .map(|&(k, w)| {
                    let (f, v) = match w {
                        Some(x) => ("w", Value::from(x)),
                        None => (
                            "r",
                            r.as_mut()
                                .and_then(Iterator::next)
                                .and_then(|v| *v)
                                .map_or(Value::Null, Value::from),
                        ),
                    };
                    Value::Array(vec![f.into(), format!("k{k}").into(), v])
                })
                .collect(),
        )
    };
    let push = |h: &mut History, p: u64, kind: EventType, value: Value, time: &mut u64| {
        *time += 1 + 10;
        let i = h.events.len();
        h.push(event(i, *time, p, kind, value), i + 1);
    };
    while completed < txns {
        if plant && planted.is_none() && invoked >= txns / 2 {
            // Four transactions on fresh keys, each alone, on processes of their own.
            let (a, b) = (
                new_key(&mut state, &mut writes),
                new_key(&mut state, &mut writes),
            );
            let (v0, v1, v2) = (next_value, next_value + 1, next_value + 2);
            next_value += 3;
            let (p0, p1, p2) = (next_process, next_process + 1, next_process + 2);
            next_process += 3;
            let plan: [(u64, RegisterSteps, Vec<Option<i64>>); 4] = [
                (p0, vec![(a, Some(v0))], vec![]),
                (p0, vec![(a, Some(v1))], vec![]),
                (p1, vec![(a, None), (b, Some(v2))], vec![Some(v1)]),
                (p2, vec![(b, None), (a, None)], vec![Some(v2), Some(v0)]),
            ];
            let mut at = [0usize; 4];
            for (j, (p, steps, reads)) in plan.iter().enumerate() {
                at[j] = invoked + j;
                push(&mut h, *p, EventType::Invoke, json(steps, None), &mut time);
                push(
                    &mut h,
                    *p,
                    EventType::Ok,
                    json(steps, Some(reads)),
                    &mut time,
                );
            }
            invoked += 4;
            completed += 4;
            planted = Some(at);
            continue;
        }
        let c = rng.below(processes as u64) as usize;
        match outstanding[c].take() {
            None if invoked < txns => {
                let len = 1 + rng.below(7) as usize;
                let mut steps = Vec::with_capacity(len);
                for _ in 0..len {
                    let slot = rng.below(active.len() as u64) as usize;
                    let k = active[slot];
                    if rng.chance(0.5) {
                        steps.push((k, None));
                    } else {
                        steps.push((k, Some(next_value)));
                        next_value += 1;
                        writes[k] += 1;
                        if writes[k] >= 16 {
                            active[slot] = new_key(&mut state, &mut writes);
                        }
                    }
                }
                let roll = rng.unit();
                let fate = if roll < 0.01 {
                    EventType::Fail
                } else if roll < 0.011 {
                    EventType::Info
                } else {
                    EventType::Ok
                };
                push(
                    &mut h,
                    process[c],
                    EventType::Invoke,
                    json(&steps, None),
                    &mut time,
                );
                invoked += 1;
                outstanding[c] = Some((steps, fate));
            }
            None => {}
            Some((steps, fate)) => {
                let effect = match fate {
                    EventType::Ok => true,
                    EventType::Info => rng.chance(0.5),
                    _ => false,
                };
                let mut reads = Vec::new();
                if effect {
                    let mut own: Vec<(usize, i64)> = Vec::new();
                    for &(k, w) in &steps {
                        match w {
                            Some(v) => own.push((k, v)),
                            None => reads.push(
                                own.iter()
                                    .rev()
                                    .find(|o| o.0 == k)
                                    .map(|o| o.1)
                                    .or(state[k]),
                            ),
                        }
                    }
                    for (k, v) in own {
                        state[k] = Some(v);
                    }
                }
                let value = if fate == EventType::Ok {
                    json(&steps, Some(&reads))
                } else {
                    json(&steps, None)
                };
                push(&mut h, process[c], fate, value, &mut time);
                completed += 1;
                if fate == EventType::Info {
                    process[c] = next_process;
                    next_process += 1;
                }
            }
        }
    }
    LargeRegister {
        history: h,
        plant: planted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::oracle::{explains, serializable};
    use history::jsonl::{read_jsonl_from, JsonlWriter};
    use std::collections::{HashMap, HashSet};

    const KINDS: [Workload; 2] = [Workload::ListAppend, Workload::RwRegister];

    /// The seeds a randomised test runs: `SEED` alone when set (to replay a failure), else
    /// `0..n`.
    fn seeds(n: u64) -> Vec<u64> {
        match std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
            Some(seed) => vec![seed],
            None => (0..n).collect(),
        }
    }

    /// Most operations outstanding at once.
    fn overlap(h: &History) -> usize {
        let (mut now, mut max) = (0usize, 0usize);
        for e in &h.events {
            if e.kind == EventType::Invoke {
                now += 1;
                max = max.max(now);
            } else {
                now -= 1;
            }
        }
        max
    }

    /// The rules every generated history keeps, whatever it is meant to show.
    fn assert_well_formed(h: &History, why: &str) -> Vec<txn::Txn> {
        let paired = history::pair(h).unwrap_or_else(|e| panic!("{why}: does not pair: {e}"));
        let txns = txn::txns(h, &paired).unwrap_or_else(|e| panic!("{why}: txns: {e}"));
        assert_eq!(
            txns.len(),
            paired.ops.len(),
            "{why}: every operation is a txn"
        );
        let mut written = HashSet::new();
        for (i, e) in h.events.iter().enumerate() {
            assert_eq!(e.index, i as u64, "{why}");
            assert_eq!(h.lines[i], i + 1, "{why}");
            assert!(
                i == 0 || e.time > h.events[i - 1].time,
                "{why}: time at {i}"
            );
            assert_eq!((e.f.as_str(), &e.key), ("txn", &None), "{why}");
        }
        for t in &txns {
            let invoked = &h.events[t.invoke].value;
            let mops = txn::parse_mops(invoked).expect("parsed once already");
            for m in &mops {
                match m.f {
                    MopKind::Read => assert_eq!(m.value, MopValue::Nil, "{why}: invoke reads"),
                    _ => assert!(written.insert(m.value.clone()), "{why}: {m} written twice"),
                }
            }
            if let (EventType::Fail | EventType::Info, Some(c)) = (t.kind, t.complete) {
                assert_eq!(&h.events[c].value, invoked, "{why}: repeats the invocation");
            }
        }
        txns
    }

    #[test]
    fn small_is_deterministic_per_seed() {
        for kind in KINDS {
            for seed in [0, 1, 77, u64::MAX] {
                let a = random_small_with(seed, kind, &SmallConfig::default());
                let b = random_small_with(seed, kind, &SmallConfig::default());
                assert_eq!(a.history.events, b.history.events, "SEED={seed}");
                assert_eq!(a.clean.events, b.clean.events, "SEED={seed}");
                assert_eq!(a.corruption, b.corruption, "SEED={seed}");
            }
            assert_ne!(random_small(1, kind).events, random_small(2, kind).events);
        }
    }

    #[test]
    fn small_histories_pair_and_keep_the_history_rules() {
        let cfg = SmallConfig::default();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for kind in KINDS {
            for seed in seeds(5000) {
                let why = format!("{} reproduce with SEED={seed}", kind.name());
                let s = random_small_with(seed, kind, &cfg);
                let txns = assert_well_formed(&s.history, &why);
                assert_well_formed(&s.clean, &why);
                assert!(cfg.txns.contains(&txns.len()), "{why}");
                assert!(
                    txns.iter().all(|t| cfg.mops.contains(&t.mops.len())),
                    "{why}"
                );
                // Exactly as our JSONL holds it.
                let mut out = JsonlWriter::new(Vec::new());
                for e in &s.history.events {
                    out.write(e).expect("writes to memory");
                }
                let bytes = out.into_inner();
                let back = read_jsonl_from(&bytes[..], &s.history.file).expect("reads back");
                assert_eq!(back.events, s.history.events, "{why}");
                // Only the corrupted read differs from the clean history.
                let differ: Vec<usize> = (0..s.clean.events.len())
                    .filter(|&i| s.clean.events[i] != s.history.events[i])
                    .collect();
                match &s.corruption {
                    None => assert!(differ.is_empty(), "{why}"),
                    Some(c) => {
                        assert_eq!(differ, vec![txns[c.txn].complete.unwrap()], "{why}");
                        assert_eq!(txns[c.txn].mops[c.mop].value, c.now, "{why}");
                        assert!(!same_read(&c.was, &c.now), "{why}");
                    }
                }
                let count = |k: EventType| txns.iter().filter(|t| t.kind == k).count();
                let mut note = |what, yes: bool| *seen.entry(what).or_default() += yes as usize;
                note("fail", count(EventType::Fail) > 0);
                note(
                    "info",
                    txns.iter()
                        .any(|t| t.complete.is_some() && t.kind == EventType::Info),
                );
                note("unfinished", txns.iter().any(|t| t.complete.is_none()));
                note("overlap", overlap(&s.history) >= 3);
                note("fresh process", txns.iter().any(|t| t.process >= 4));
                note(
                    "null empty list",
                    kind == Workload::ListAppend
                        && s.clean.events.iter().any(|e| {
                            e.kind == EventType::Ok && e.value.to_string().contains("null")
                        }),
                );
                note("corrupted", s.corruption.is_some());
            }
        }
        eprintln!("{seen:?}");
        for (what, n) in seen {
            assert!(n >= 100, "only {n} histories show {what}");
        }
    }

    #[test]
    fn clean_small_histories_are_strict_serializable() {
        for kind in KINDS {
            for seed in seeds(3000) {
                let why = format!("{} reproduce with SEED={seed}", kind.name());
                let s = random_small_with(seed, kind, &SmallConfig::default());
                let paired = history::pair(&s.clean).unwrap();
                let order = serializable(&s.clean, &paired, kind, true)
                    .expect("the oracle judges small histories")
                    .unwrap_or_else(|| panic!("{why}: the valid history was rejected"));
                let txns = txn::txns(&s.clean, &paired).unwrap();
                assert_eq!(explains(&txns, &order, kind, true), Ok(()), "{why}");
            }
        }
    }

    #[test]
    fn about_half_of_the_small_histories_are_valid_and_every_corruption_can_break_one() {
        for kind in KINDS {
            let mut valid = 0;
            let mut serial_only = 0;
            let mut breaks: HashMap<CorruptionKind, usize> = HashMap::new();
            let n = 3000;
            for seed in 0..n {
                let s = random_small_with(seed, kind, &SmallConfig::default());
                let paired = history::pair(&s.history).unwrap();
                let strict = serializable(&s.history, &paired, kind, true).unwrap();
                let serial = serializable(&s.history, &paired, kind, false).unwrap();
                assert!(strict.is_none() || serial.is_some(), "SEED={seed}");
                valid += strict.is_some() as usize;
                serial_only += (strict.is_none() && serial.is_some()) as usize;
                if let (Some(c), None) = (&s.corruption, &serial) {
                    *breaks.entry(c.kind).or_default() += 1;
                }
            }
            eprintln!(
                "{}: {valid} of {n} valid, {serial_only} only serializable; {breaks:?}",
                kind.name()
            );
            let share = valid as f64 / n as f64;
            assert!((0.4..0.75).contains(&share), "{}: {share}", kind.name());
            assert!(
                serial_only >= 20,
                "{}: stale reads that only real time catches",
                kind.name()
            );
            use CorruptionKind::*;
            let expected: &[CorruptionKind] = match kind {
                Workload::ListAppend => &[
                    Stale, Future, Foreign, Aborted, Garbage, Dropped, Reordered, Duplicated,
                ],
                Workload::RwRegister => &[Stale, Future, Foreign, Aborted, Garbage],
            };
            for k in expected {
                assert!(
                    breaks.get(k).copied().unwrap_or(0) >= 5,
                    "{}: {k:?} {breaks:?}",
                    kind.name()
                );
            }
        }
    }

    fn small_large(seed: u64, planted: Planted) -> LargeConfig {
        let mut cfg = LargeConfig::new(seed, 7, 2 + (seed % 3) as usize, planted);
        cfg.active_keys = 2;
        cfg.max_appends_per_key = 3;
        cfg.fail_rate = 0.1;
        cfg.info_rate = 0.1;
        cfg
    }

    #[test]
    fn large_at_oracle_size_is_valid_unless_planted() {
        for seed in seeds(400) {
            let why = format!("reproduce with SEED={seed}");
            let clean = large_with(&small_large(seed, Planted::None));
            assert_eq!(clean.plant, None);
            assert_well_formed(&clean.history, &why);
            let paired = history::pair(&clean.history).unwrap();
            let order = serializable(&clean.history, &paired, Workload::ListAppend, true).unwrap();
            assert!(order.is_some(), "{why}: Planted::None rejected");
            for planted in [Planted::G0, Planted::G1c, Planted::G2Item] {
                let why = format!("{planted:?} {why}");
                let l = large_with(&small_large(seed, planted));
                let txns = assert_well_formed(&l.history, &why);
                let plant = l.plant.unwrap_or_else(|| panic!("{why}: not planted"));
                assert_plant(&txns, &plant, &why);
                let paired = history::pair(&l.history).unwrap();
                let order = serializable(&l.history, &paired, Workload::ListAppend, false).unwrap();
                assert_eq!(order, None, "{why}: planted but serializable");
            }
        }
    }

    /// The plant is where it says: two overlapping `ok` txns, then an observer invoked after
    /// both, and nothing else touches their keys.
    fn assert_plant(txns: &[txn::Txn], plant: &Plant, why: &str) {
        let [t1, t2] = plant.txns.map(|i| &txns[i]);
        assert_eq!([t1.invoke, t2.invoke], plant.invokes, "{why}");
        assert!(
            t1.kind == EventType::Ok && t2.kind == EventType::Ok,
            "{why}"
        );
        assert!(t2.invoke < t1.complete.unwrap(), "{why}: the two overlap");
        assert!(plant.observer > plant.txns[1], "{why}");
        assert_eq!(txns[plant.observer].kind, EventType::Ok, "{why}");
        for (i, t) in txns.iter().enumerate() {
            let touches = t.mops.iter().any(|m| plant.keys.contains(&m.key));
            let planted = plant.txns.contains(&i) || i == plant.observer;
            assert_eq!(touches, planted, "{why}: T{i}");
        }
    }

    #[test]
    fn large_histories_are_concurrent_with_short_reads_and_a_plant_in_the_middle() {
        let n = 20_000;
        for planted in [Planted::None, Planted::G2Item] {
            let cfg = LargeConfig::new(7, n, 50, planted);
            let l = large_with(&cfg);
            let why = format!("{planted:?}");
            let txns = assert_well_formed(&l.history, &why);
            assert_eq!(txns.len(), n);
            assert!(overlap(&l.history) >= 40, "{why}: {}", overlap(&l.history));
            let mops: usize = txns.iter().map(|t| t.mops.len()).sum();
            let mean = mops as f64 / n as f64;
            assert!((3.5..4.5).contains(&mean), "{why}: {mean} micro-ops a txn");
            // Every read of a key is a prefix of its longest read, and short.
            let mut longest: HashMap<&str, &Vec<i64>> = HashMap::new();
            let mut reads = 0;
            for t in txns.iter().filter(|t| t.kind == EventType::Ok) {
                for m in &t.mops {
                    if let MopValue::List(l) = &m.value {
                        assert!(l.len() <= cfg.max_appends_per_key, "{why}");
                        let e = longest.entry(&m.key).or_insert(l);
                        if l.len() > e.len() {
                            *e = l;
                        }
                        reads += 1;
                    }
                }
            }
            assert!(reads > n, "{why}: {reads} reads");
            assert!(
                longest.len() > n / 20,
                "{why}: keys retire, {} keys",
                longest.len()
            );
            let prefixes = txns.iter().filter(|t| t.kind == EventType::Ok).all(|t| {
                t.mops.iter().all(|m| match &m.value {
                    MopValue::List(l) => longest[m.key.as_str()].starts_with(l),
                    _ => true,
                })
            });
            assert!(prefixes, "{why}");
            let kinds: HashSet<EventType> = txns.iter().map(|t| t.kind).collect();
            assert!(kinds.contains(&EventType::Fail) && kinds.contains(&EventType::Info));
            match &l.plant {
                None => assert_eq!(planted, Planted::None),
                Some(p) => {
                    assert_plant(&txns, p, &why);
                    assert!((n / 2..n / 2 + 100).contains(&p.txns[0]), "{why}: {p:?}");
                    // The anomaly lives on the plant's keys alone: those three txns, cut out
                    // of the history, are already not serializable.
                    let mut cut = History::new("cut.jsonl");
                    for t in [p.txns[0], p.txns[1], p.observer] {
                        let t = &txns[t];
                        for pos in [t.invoke, t.complete.unwrap()] {
                            cut.push(l.history.events[pos].clone(), pos + 1);
                        }
                    }
                    cut.events.sort_by_key(|e| e.index);
                    let paired = history::pair(&cut).unwrap();
                    let order = serializable(&cut, &paired, Workload::ListAppend, false).unwrap();
                    assert_eq!(order, None, "{why}");
                }
            }
        }
        let a = large(3, 2000, 10, Planted::G0);
        let b = large(3, 2000, 10, Planted::G0);
        assert_eq!(a.history.events, b.history.events, "one seed, one history");
        assert_eq!(a.plant, b.plant);
    }

    /// Figures for the benchmark; run with
    /// `cargo test --release -p harness-checkers --lib txn::synth -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn large_million_generation_time() {
        for planted in [Planted::None, Planted::G2Item] {
            let started = std::time::Instant::now();
            let l = large(1, 1_000_000, 50, planted);
            let took = started.elapsed();
            let mops: usize = l
                .history
                .events
                .iter()
                .filter(|e| e.kind == EventType::Invoke)
                .map(|e| e.value.as_array().map_or(0, Vec::len))
                .sum();
            eprintln!(
                "large(1, 1_000_000, 50, {planted:?}): {} events, {mops} micro-ops, in {took:?}; plant {:?}",
                l.history.events.len(),
                l.plant
            );
        }
    }
}
