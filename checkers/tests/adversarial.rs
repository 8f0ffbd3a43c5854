//! Adversarial differential tests: histories aimed at the corners of the fast procedures
//! (indeterminate operations in compare-and-set chains, refused compare-and-sets, reads and
//! writes of null, values written twice, string pieces that repeat or are prefixes of each
//! other, blind appends, indeterminate twins invoked at different times, operations left open
//! at the end of the history, several keys), each checked by the search, by the graph path
//! where it applies, by the full checker and by a brute-force oracle; all must agree, and every
//! witness window must fail on its own.
//!
//! Three kinds of case: seeded random histories of several families, every history of three
//! operations from a small alphabet (sampled), and hand-written corners with their verdicts.
//! A failure prints the events. Knobs for a longer hunt: `SEED=<n>` replays one random case,
//! `CASES=<n>` and `MAXOPS=<n>` set the random cases per family and their size (above ten
//! operations the oracle memoises failed configurations), `OPS=<k> EVERY=<m>` enumerate every
//! m-th history of k operations.

mod common;

use checkers::lin::model::{new_model, AnyModel, Model, ModelKind};
use checkers::lin::oracle::brute_force;
use checkers::lin::search::{search, Budget, KeyOp, Outcome};
use checkers::lin::strings::{register_view, StringView};
use checkers::lin::unique::{check_unique, GraphOutcome};
use common::{kops_of, seeds, window_of};
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};

/// The workspace's splitmix64, drawn from with this file's own `below` and `chance` (modulo
/// and `<=`), so that each seed still generates the histories it always has.
struct Rng(history::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(history::rng::SplitMix64(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    /// Certainly did not happen (or, for `cas` with `precondition`, was refused).
    Fail,
    Info,
    /// Invoked, never completed (the run stopped).
    Open,
}

/// One operation before it is laid out as events.
#[derive(Clone, Debug)]
struct Spec {
    f: &'static str,
    input: Value,
    /// The completion's value (a read's result); the input again for other operations.
    output: Value,
    end: End,
    error: Option<Value>,
}

impl Spec {
    fn new(f: &'static str, input: Value) -> Self {
        Spec {
            f,
            input: input.clone(),
            output: input,
            end: End::Ok,
            error: None,
        }
    }
    fn read(f: &'static str, out: Value) -> Self {
        Spec {
            f,
            input: Value::Null,
            output: out,
            end: End::Ok,
            error: None,
        }
    }
    fn ended(mut self, end: End) -> Self {
        self.end = end;
        if end == End::Info {
            self.error = Some(json!("timeout"));
        }
        self
    }
    fn refused(mut self) -> Self {
        self.end = End::Fail;
        self.error = Some(json!("precondition"));
        self
    }
}

/// Lays out operations as events. `order` lists op indices, each twice (invocation, then
/// completion), or once for an operation left open. Every operation gets its own process, so
/// the process rules hold whatever the order.
fn build(specs: &[Spec], order: &[usize]) -> History {
    let mut seen = vec![false; specs.len()];
    let mut h = History::new("adversarial.jsonl");
    for (pos, &i) in order.iter().enumerate() {
        let s = &specs[i];
        let invoke = !seen[i];
        seen[i] = true;
        let ev = if invoke {
            Event {
                index: pos as u64,
                time: pos as u64,
                process: Process::Client(i as u64),
                kind: EventType::Invoke,
                f: s.f.to_owned(),
                key: None,
                value: s.input.clone(),
                node: None,
                error: None,
                local: false,
                siblings: false,
                context: None,
            }
        } else {
            Event {
                index: pos as u64,
                time: pos as u64,
                process: Process::Client(i as u64),
                kind: match s.end {
                    End::Ok => EventType::Ok,
                    End::Fail => EventType::Fail,
                    End::Info | End::Open => EventType::Info,
                },
                f: s.f.to_owned(),
                key: None,
                value: s.output.clone(),
                node: None,
                error: s.error.clone(),
                local: false,
                siblings: false,
                context: None,
            }
        };
        h.push(ev, pos + 1);
    }
    h
}

/// A history written by hand: `seq` names op indices in event order; the first mention of an
/// op is its invocation, the second its completion (an open op is mentioned once).
fn hand(specs: &[Spec], seq: &[usize]) -> History {
    build(specs, seq)
}

fn dump(h: &History) -> String {
    h.events
        .iter()
        .map(|e| serde_json::to_string(e).expect("events serialise"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every procedure's verdict on one single-key history (`true` = linearizable).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Verdicts {
    oracle: bool,
    search: bool,
    graph: Option<bool>,
    check: bool,
    /// For an invalid verdict: whether the witness window fails on its own.
    window_fails: Option<bool>,
}

/// The brute-force oracle with a memo of failed (placed set, state) configurations and
/// nothing else (no reduction), for histories slightly too long for `brute_force`.
/// `None` if the memo grows too big.
fn memo_oracle<M: Model>(model: &mut M, ops: &[KeyOp]) -> Option<bool> {
    fn go<M: Model>(
        model: &mut M,
        ops: &[KeyOp],
        placed: u64,
        state: u64,
        failed: &mut std::collections::HashSet<(u64, u64)>,
    ) -> Option<bool> {
        if (0..ops.len()).all(|i| placed & (1 << i) != 0 || !ops[i].prepared.required) {
            return Some(true);
        }
        if failed.contains(&(placed, state)) {
            return Some(false);
        }
        if failed.len() > 1 << 21 {
            return None;
        }
        for i in 0..ops.len() {
            if placed & (1 << i) != 0 {
                continue;
            }
            let blocked = (0..ops.len())
                .any(|j| j != i && placed & (1 << j) == 0 && ops[j].ret < ops[i].call);
            if blocked {
                continue;
            }
            if let Some(ns) = model.step(state, ops[i].prepared.action) {
                match go(model, ops, placed | (1 << i), ns, failed) {
                    Some(false) => {}
                    other => return other,
                }
            }
        }
        failed.insert((placed, state));
        Some(false)
    }
    assert!(ops.len() < 64);
    go(
        model,
        ops,
        0,
        checkers::lin::model::INIT,
        &mut Default::default(),
    )
}

/// `None` when the history is too big for the oracles.
fn verdicts(model: ModelKind, h: &History) -> Option<Verdicts> {
    let mut m = new_model(model);
    let kops = kops_of(&mut m, h);
    let oracle = if kops.len() <= 10 {
        brute_force(&mut m, &kops)
    } else {
        memo_oracle(&mut m, &kops)?
    };
    let searched = match search(&mut m, &kops, &Budget::unlimited()).0 {
        Outcome::Linearizable(_) => true,
        Outcome::NotLinearizable(_) => false,
        Outcome::Unknown(r) => panic!("unbounded search gave up: {r}"),
    };
    let describe = |i: u32| format!("op {i}");
    let decide = |ops: &[KeyOp]| match check_unique(ops, &describe) {
        GraphOutcome::Valid => Some(true),
        GraphOutcome::Invalid { .. } => Some(false),
        GraphOutcome::Undecided(_) => None,
    };
    let graph = match &m {
        AnyModel::Register(r) if r.unique_writes() => decide(&kops),
        AnyModel::StringKv(s) => match register_view(s, &kops, &describe).0 {
            StringView::Registers(ops) => decide(&ops),
            StringView::Invalid { .. } => Some(false),
            StringView::NotApplicable(_) => None,
        },
        _ => None,
    };
    let paired = history::pair(h).expect("well formed");
    let report = checkers::check(h, &paired, &checkers::Options::new(model)).expect("checks");
    assert_ne!(report.verdict, "unknown", "no limits were set");
    // A witness window must fail on its own.
    let mut window_fails = None;
    if let Some(checkers::Verdict::Invalid { witness }) = report.keys.first().map(|k| &k.verdict) {
        let (mut m2, window) = window_of(model, h, &kops, &witness.window);
        window_fails = if window.is_empty() {
            Some(false)
        } else {
            memo_oracle(&mut m2, &window).map(|linearizable| !linearizable)
        };
    }
    Some(Verdicts {
        oracle,
        search: searched,
        graph,
        check: report.verdict == "valid",
        window_fails,
    })
}

fn agree(v: &Verdicts) -> bool {
    v.search == v.oracle
        && v.check == v.oracle
        && v.graph.is_none_or(|g| g == v.oracle)
        && v.window_fails != Some(false)
}

fn assert_agree(what: &str, model: ModelKind, h: &History) -> Option<Verdicts> {
    let v = verdicts(model, h)?;
    assert!(agree(&v), "{what} ({model}): {v:?}\n{}", dump(h));
    Some(v)
}

// ---------------------------------------------------------------------------------------------
// Generators

/// A random event order for `n` operations (as `build` takes it): any interleaving, short
/// operations in sequence under one or two long ones, or short operations in sequence with
/// some overlap. Operations marked `open` get no completion.
fn random_order(rng: &mut Rng, n: usize, open: &[bool]) -> Vec<usize> {
    let mut order = Vec::with_capacity(2 * n);
    match rng.below(4) {
        // Any interleaving: shuffle two tokens per op.
        0 => {
            for (i, &o) in open.iter().enumerate() {
                order.push(i);
                if !o {
                    order.push(i);
                }
            }
            for k in (1..order.len()).rev() {
                let j = rng.below(k as u64 + 1) as usize;
                order.swap(k, j);
            }
        }
        // Short intervals in sequence, under one or two long operations spanning them.
        1 => {
            let umbrellas = 1 + rng.below(2) as usize;
            order.extend(0..umbrellas.min(n));
            for (i, &o) in open.iter().enumerate().skip(umbrellas.min(n)) {
                order.push(i);
                if !o {
                    order.push(i);
                }
            }
            for (i, &o) in open.iter().enumerate().take(umbrellas.min(n)) {
                if !o {
                    order.push(i);
                }
            }
        }
        // Short intervals in sequence, with occasional overlap.
        _ => {
            let mut events: Vec<(u64, u8, usize)> = Vec::new();
            let mut t = 0u64;
            for (i, &o) in open.iter().enumerate() {
                t += rng.below(3);
                events.push((t * 2, 1, i));
                if !o {
                    let long = rng.chance(0.3);
                    let len = 1 + rng.below(if long { 12 } else { 4 });
                    events.push(((t + len) * 2 + 1, 0, i));
                }
            }
            events.sort();
            order = events.into_iter().map(|(_, _, i)| i).collect();
        }
    }
    order
}

/// Positions of each op's invocation and completion in `order` (completion `None` if open).
fn intervals(order: &[usize], n: usize) -> Vec<(usize, Option<usize>)> {
    let mut iv: Vec<(usize, Option<usize>)> = vec![(usize::MAX, None); n];
    for (pos, &i) in order.iter().enumerate() {
        if iv[i].0 == usize::MAX {
            iv[i].0 = pos;
        } else {
            iv[i].1 = Some(pos);
        }
    }
    iv
}

/// The abstract kinds of operation the generators choose between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Cas,
    Append,
    Put,
    Add,
}

/// Which family of histories to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// cas-register over {null, 1, 2, 3}, null writes included.
    CasTiny,
    /// cas-register with unique written values (graph path), many indeterminate ops and
    /// refusals.
    CasUnique,
    /// register with unique values.
    RegUnique,
    /// string-kv with pieces that are prefixes of each other.
    KvPrefix,
    /// string-kv with repeated multi-letter pieces.
    KvRepeat,
    /// string-kv with unique pieces (graph path), many blind appends and puts.
    KvUnique,
    /// set with indeterminate adds of repeated elements.
    Set,
    /// string-kv with unique pieces, few reads: blind appends and puts.
    KvBlind,
    /// cas-register with unique values, mostly compare-and-sets, many refused.
    CasRefuse,
}

impl Family {
    fn model(self) -> ModelKind {
        match self {
            Family::CasTiny | Family::CasUnique | Family::CasRefuse => ModelKind::CasRegister,
            Family::RegUnique => ModelKind::Register,
            Family::KvPrefix | Family::KvRepeat | Family::KvUnique | Family::KvBlind => {
                ModelKind::StringKv
            }
            Family::Set => ModelKind::Set,
        }
    }
}

/// A random history of the family; results are simulated from a sequential object at random
/// points (then perhaps corrupted), or chosen at random from a small domain.
fn generate(rng: &mut Rng, fam: Family, max_ops: usize) -> History {
    let n = 1 + rng.below(max_ops as u64) as usize;
    let info_rate = [0.0, 0.15, 0.35, 0.6][rng.below(4) as usize];
    let open: Vec<bool> = (0..n).map(|_| rng.chance(info_rate / 3.0)).collect();
    let order = random_order(rng, n, &open);
    let iv = intervals(&order, n);
    let simulate = rng.chance(match fam {
        Family::KvBlind | Family::CasRefuse => 0.9,
        _ => 0.6,
    });

    // Kinds and arguments.
    let mut counter = 0i64;
    let kinds: Vec<Kind> = (0..n)
        .map(|_| match fam {
            Family::CasTiny | Family::CasUnique => {
                *rng.pick(&[Kind::Read, Kind::Read, Kind::Write, Kind::Cas, Kind::Cas])
            }
            Family::RegUnique => *rng.pick(&[Kind::Read, Kind::Write]),
            Family::KvPrefix | Family::KvRepeat | Family::KvUnique => *rng.pick(&[
                Kind::Read,
                Kind::Read,
                Kind::Append,
                Kind::Append,
                Kind::Put,
            ]),
            Family::Set => *rng.pick(&[Kind::Read, Kind::Add, Kind::Add]),
            Family::KvBlind => *rng.pick(&[
                Kind::Read,
                Kind::Append,
                Kind::Append,
                Kind::Append,
                Kind::Put,
            ]),
            Family::CasRefuse => *rng.pick(&[Kind::Read, Kind::Write, Kind::Cas, Kind::Cas]),
        })
        .collect();
    let prefix_pool = ["a", "ab", "abc", "b", "ba", "c"];
    let repeat_pool = ["xy", "xy", "z", "yz"];
    let mut fresh_value = |rng: &mut Rng| -> Value {
        match fam {
            Family::CasTiny => {
                if rng.chance(0.15) {
                    Value::Null
                } else {
                    json!(1 + rng.below(3))
                }
            }
            Family::KvPrefix => json!(*rng.pick(&prefix_pool)),
            Family::KvRepeat => json!(*rng.pick(&repeat_pool)),
            Family::KvUnique => {
                counter += 1;
                // Unique texts, some prefixes of others: "1", "12", "2", "21", ...
                json!(format!(
                    "{}{}",
                    counter % 3 + 1,
                    "0".repeat((counter / 3) as usize)
                ))
            }
            Family::Set => json!(1 + rng.below(3)),
            Family::KvBlind => {
                counter += 1;
                json!(format!("<{counter}>"))
            }
            Family::CasUnique | Family::RegUnique | Family::CasRefuse => {
                counter += 1;
                json!(counter)
            }
        }
    };
    let args: Vec<Value> = kinds
        .iter()
        .map(|k| match k {
            Kind::Read => Value::Null,
            Kind::Cas => Value::Null, // chosen below
            _ => fresh_value(rng),
        })
        .collect();
    let written: Vec<Value> = args.iter().filter(|v| !v.is_null()).cloned().collect();

    // Linearization points; indeterminate ops may take effect late or never.
    let ends: Vec<End> = (0..n)
        .map(|i| {
            if open[i] {
                End::Open
            } else if kinds[i] != Kind::Read && rng.chance(info_rate) {
                End::Info
            } else {
                End::Ok
            }
        })
        .collect();
    let horizon = order.len() as f64 + 2.0;
    let mut points: Vec<(f64, usize)> = (0..n)
        .map(|i| {
            let c = iv[i].0 as f64;
            let r = match (ends[i], iv[i].1) {
                (End::Ok, Some(r)) => r as f64,
                _ => horizon,
            };
            (
                c + 0.01 + rng.below(1000) as f64 / 1000.0 * (r - c - 0.02),
                i,
            )
        })
        .collect();
    points.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("no NaN"));

    let mut specs: Vec<Option<Spec>> = vec![None; n];
    let mut reg = Value::Null;
    let mut text = String::new();
    let mut set: Vec<u64> = Vec::new();
    for &(_, i) in &points {
        let takes_effect = ends[i] == End::Ok || rng.chance(0.5);
        let spec = match kinds[i] {
            Kind::Read => {
                let out = if simulate {
                    match fam.model() {
                        ModelKind::StringKv => json!(text.clone()),
                        ModelKind::Set => json!(set.clone()),
                        _ => reg.clone(),
                    }
                } else {
                    random_result(rng, fam, &written)
                };
                let s = Spec::read(if rng.chance(0.5) { "read" } else { "get" }, out);
                let s = if fam.model() == ModelKind::StringKv {
                    s
                } else {
                    Spec { f: "read", ..s }
                };
                if rng.chance(0.05) {
                    // A failed read constrains nothing.
                    Spec {
                        output: Value::Null,
                        error: Some(json!("timeout")),
                        ..s
                    }
                    .ended(End::Fail)
                } else {
                    s
                }
            }
            Kind::Write | Kind::Put => {
                let v = args[i].clone();
                let f = if kinds[i] == Kind::Put {
                    "put"
                } else {
                    "write"
                };
                if rng.chance(0.05) && ends[i] == End::Ok {
                    let mut s = Spec::new(f, v);
                    s.end = End::Fail;
                    s.error = Some(json!("timeout"));
                    s
                } else {
                    if takes_effect {
                        match fam.model() {
                            ModelKind::StringKv => text = v.as_str().unwrap_or("").to_owned(),
                            _ => reg = v.clone(),
                        }
                    }
                    Spec::new(f, v)
                }
            }
            Kind::Append => {
                let v = args[i].clone();
                if takes_effect {
                    text.push_str(v.as_str().expect("pieces are strings"));
                }
                Spec::new("append", v)
            }
            Kind::Add => {
                let e = args[i].as_u64().expect("elements are numbers");
                if takes_effect && !set.contains(&e) {
                    set.push(e);
                    set.sort_unstable();
                }
                Spec::new("add", json!(e))
            }
            Kind::Cas => {
                let from = if rng.chance(0.5) {
                    reg.clone()
                } else if rng.chance(0.2) || written.is_empty() {
                    if fam == Family::CasTiny || rng.chance(0.5) {
                        Value::Null
                    } else {
                        json!(1000 + rng.below(2))
                    }
                } else {
                    rng.pick(&written).clone()
                };
                let to = fresh_value(rng);
                let matches = reg == from;
                let ok = if simulate { matches } else { rng.chance(0.6) };
                let s = Spec::new("cas", json!([from, to]));
                if ok {
                    if takes_effect && matches {
                        reg = to.clone();
                    }
                    s
                } else {
                    s.refused()
                }
            }
        };
        specs[i] = Some(spec);
    }
    let mut specs: Vec<Spec> = specs.into_iter().map(|s| s.expect("generated")).collect();
    for (i, s) in specs.iter_mut().enumerate() {
        if ends[i] == End::Info && s.end == End::Ok {
            s.end = End::Info;
            s.error = Some(json!("timeout"));
        }
        if ends[i] == End::Open {
            s.end = End::Open;
        }
    }
    if simulate && rng.chance(0.4) {
        let reads: Vec<usize> = (0..n)
            .filter(|&i| kinds[i] == Kind::Read && specs[i].end == End::Ok)
            .collect();
        if !reads.is_empty() {
            let r = *rng.pick(&reads);
            specs[r].output = random_result(rng, fam, &written);
        }
    }
    build(&specs, &order)
}

/// A plausible but random read result.
fn random_result(rng: &mut Rng, fam: Family, written: &[Value]) -> Value {
    match fam.model() {
        ModelKind::StringKv => {
            let mut s = String::new();
            if !written.is_empty() {
                for _ in 0..rng.below(4) {
                    s.push_str(rng.pick(written).as_str().unwrap_or(""));
                }
            }
            json!(s)
        }
        ModelKind::Set => {
            let out: Vec<u64> = (1..=3).filter(|_| rng.chance(0.4)).collect();
            json!(out)
        }
        _ => {
            if written.is_empty() || rng.chance(0.25) {
                if fam == Family::CasTiny || rng.chance(0.7) {
                    Value::Null
                } else {
                    json!(999)
                }
            } else {
                rng.pick(written).clone()
            }
        }
    }
}

fn run_family(fam: Family, count: u64, max_ops: usize, salt: u64) {
    let max_ops =
        std::env::var("MAXOPS").map_or(max_ops, |c| c.parse().expect("MAXOPS is a number"));
    let (mut valid, mut invalid, mut graph) = (0u64, 0u64, 0u64);
    for seed in seeds(count, 104_729, salt) {
        let mut rng = Rng::new(seed);
        let h = generate(&mut rng, fam, max_ops);
        let Some(v) = assert_agree(&format!("seed {seed} {fam:?}"), fam.model(), &h) else {
            continue;
        };
        if v.oracle {
            valid += 1;
        } else {
            invalid += 1;
        }
        if v.graph.is_some() {
            graph += 1;
        }
    }
    if std::env::var("SEED").is_err() {
        assert!(
            valid > seeds(count, 104_729, salt).len() as u64 / 10
                && invalid > seeds(count, 104_729, salt).len() as u64 / 10,
            "{fam:?}: {valid} valid, {invalid} invalid"
        );
        eprintln!("{fam:?}: {valid} valid, {invalid} invalid, graph decided {graph}");
    }
}

#[test]
fn cas_register_tiny_domain() {
    run_family(Family::CasTiny, 15000, 9, 11);
}

#[test]
fn cas_register_unique_values() {
    run_family(Family::CasUnique, 15000, 9, 12);
}

#[test]
fn register_unique_values() {
    run_family(Family::RegUnique, 8000, 9, 13);
}

#[test]
fn string_kv_prefix_pieces() {
    run_family(Family::KvPrefix, 12000, 8, 14);
}

#[test]
fn string_kv_repeated_pieces() {
    run_family(Family::KvRepeat, 12000, 8, 15);
}

#[test]
fn string_kv_unique_pieces() {
    run_family(Family::KvUnique, 15000, 9, 16);
}

#[test]
fn string_kv_blind_appends() {
    run_family(Family::KvBlind, 15000, 9, 18);
}

#[test]
fn cas_register_refusals() {
    run_family(Family::CasRefuse, 15000, 9, 19);
}

#[test]
fn set_repeated_adds() {
    run_family(Family::Set, 10000, 8, 17);
}

// ---------------------------------------------------------------------------------------------
// Exhaustive tiny histories: every choice of three operations from a small alphabet, in every
// interleaving of their events.

/// Every order of the events of `n` operations (each invocation before its completion; open
/// operations have no completion).
fn interleavings(open: &[bool]) -> Vec<Vec<usize>> {
    fn go(open: &[bool], state: &mut Vec<u8>, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        let mut any = false;
        for i in 0..open.len() {
            let limit = if open[i] { 1 } else { 2 };
            if state[i] < limit {
                any = true;
                state[i] += 1;
                cur.push(i);
                go(open, state, cur, out);
                cur.pop();
                state[i] -= 1;
            }
        }
        if !any {
            out.push(cur.clone());
        }
    }
    let mut out = Vec::new();
    go(open, &mut vec![0; open.len()], &mut Vec::new(), &mut out);
    out
}

fn cas_alphabet() -> Vec<Spec> {
    let mut a = vec![
        Spec::read("read", Value::Null),
        Spec::read("read", json!(1)),
        Spec::read("read", json!(2)),
    ];
    for end in [End::Ok, End::Info, End::Open] {
        a.push(Spec::new("write", json!(1)).ended(end));
        a.push(Spec::new("cas", json!([null, 2])).ended(end));
        a.push(Spec::new("cas", json!([1, 2])).ended(end));
    }
    a.push(Spec::new("cas", json!([1, 3])).refused());
    a.push(Spec::new("cas", json!([null, 3])).refused());
    a.push(Spec::new("cas", json!([2, 3])).refused());
    a.push(Spec::new("write", json!(2)));
    a
}

fn kv_alphabet() -> Vec<Spec> {
    let mut a = vec![
        Spec::read("get", json!("")),
        Spec::read("get", json!("a")),
        Spec::read("get", json!("ab")),
        Spec::read("get", json!("ba")),
        Spec::read("get", json!("aab")),
    ];
    for end in [End::Ok, End::Info, End::Open] {
        a.push(Spec::new("append", json!("a")).ended(end));
        a.push(Spec::new("append", json!("b")).ended(end));
        a.push(Spec::new("put", json!("a")).ended(end));
    }
    a.push(Spec::new("append", json!("ab")));
    a.push(Spec::new("put", json!("ab")));
    a
}

fn exhaust(model: ModelKind, alphabet: &[Spec], k: usize, sample_every: usize) -> (u64, u64) {
    // `OPS=<k> EVERY=<m>` for a longer hunt: k operations, every m-th history.
    let k: usize = std::env::var("OPS").map_or(k, |v| v.parse().expect("OPS is a number"));
    let sample_every: usize =
        std::env::var("EVERY").map_or(sample_every, |v| v.parse().expect("EVERY is a number"));
    let (mut valid, mut invalid) = (0u64, 0u64);
    let n = alphabet.len();
    let total = n.pow(k as u32);
    let mut counter = 0usize;
    for code in 0..total {
        let mut c = code;
        let specs: Vec<Spec> = (0..k)
            .map(|_| {
                let s = alphabet[c % n].clone();
                c /= n;
                s
            })
            .collect();
        let open: Vec<bool> = specs.iter().map(|s| s.end == End::Open).collect();
        for order in interleavings(&open) {
            counter += 1;
            if !counter.is_multiple_of(sample_every) {
                continue;
            }
            let h = build(&specs, &order);
            let v = assert_agree(&format!("exhaustive {k} ops"), model, &h)
                .expect("tiny histories fit the oracle");
            if v.oracle {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
    }
    (valid, invalid)
}

#[test]
fn cas_register_every_history_of_three_ops() {
    let (v, i) = exhaust(ModelKind::CasRegister, &cas_alphabet(), 3, 3);
    eprintln!("cas-register, tiny histories: {v} valid, {i} invalid");
    assert!(v > 1000 && i > 1000);
}

#[test]
fn string_kv_every_history_of_three_ops() {
    let (v, i) = exhaust(ModelKind::StringKv, &kv_alphabet(), 3, 3);
    eprintln!("string-kv, tiny histories: {v} valid, {i} invalid");
    assert!(v > 1000 && i > 1000);
}

// ---------------------------------------------------------------------------------------------
// Hand-written corners, each with the verdict it must get.

/// Checks one hand-written history: the oracle gives `expected`, and every procedure agrees.
fn expect(model: ModelKind, specs: &[Spec], seq: &[usize], expected: bool) -> Verdicts {
    let h = hand(specs, seq);
    let v = assert_agree("hand-written", model, &h).expect("small enough");
    assert_eq!(
        v.oracle,
        expected,
        "oracle disagrees with the expectation\n{}",
        dump(&h)
    );
    v
}

#[test]
fn indeterminate_cas_in_a_chain() {
    let m = ModelKind::CasRegister;
    // write 1; an open cas 1→2; a read of 2 after it: the cas certainly happened.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("cas", json!([1, 2])).ended(End::Open),
        Spec::read("read", json!(2)),
    ];
    expect(m, &ops, &[0, 0, 1, 2, 2], true);
    // The read of 2 completed before the cas was invoked.
    expect(m, &ops, &[0, 0, 2, 2, 1], false);
    // An info cas 1→2 observed, and an ok cas 1→3: both cannot succeed from the single 1.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("cas", json!([1, 2])).ended(End::Info),
        Spec::new("cas", json!([1, 3])),
        Spec::read("read", json!(2)),
    ];
    expect(m, &ops, &[0, 0, 1, 2, 1, 2, 3, 3], false);
    // The same with the ok cas unobserved and refused instead: fine.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("cas", json!([1, 2])).ended(End::Info),
        Spec::new("cas", json!([1, 3])).refused(),
        Spec::read("read", json!(2)),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2, 3, 3], true);
    // An info cas whose source value only an info write produces, read twice around a write.
    let ops = [
        Spec::new("write", json!(1)).ended(End::Info),
        Spec::new("cas", json!([1, 2])).ended(End::Info),
        Spec::read("read", json!(2)),
        Spec::new("write", json!(3)),
        Spec::read("read", json!(2)),
    ];
    expect(m, &ops, &[0, 1, 2, 2, 3, 3, 4, 4], false);
    expect(m, &ops, &[0, 1, 2, 3, 2, 4, 3, 4], true);
}

#[test]
fn refused_cas_observations() {
    let m = ModelKind::CasRegister;
    // A refusal of 1 alone, and of null alone (the initial value).
    expect(
        m,
        &[Spec::new("cas", json!([1, 2])).refused()],
        &[0, 0],
        true,
    );
    expect(
        m,
        &[Spec::new("cas", json!([null, 2])).refused()],
        &[0, 0],
        false,
    );
    // Refused while 1 was the only value ever present.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("cas", json!([1, 3])).refused(),
    ];
    expect(m, &ops, &[0, 0, 1, 1], false);
    // ... unless the refusal overlaps the write (it took effect before it).
    expect(m, &ops, &[0, 1, 0, 1], true);
    // Refused after 1 was written, fits only once a later write replaced 1.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("cas", json!([1, 3])).refused(),
        Spec::new("write", json!(2)),
    ];
    expect(m, &ops, &[0, 0, 1, 2, 2, 1], true);
    expect(m, &ops, &[0, 0, 1, 1, 2, 2], false);
    // A refusal that must come before a value's write, with a read pinning that write early.
    let ops = [
        Spec::new("cas", json!([1, 3])).refused(),
        Spec::new("write", json!(1)),
        Spec::read("read", json!(1)),
    ];
    expect(m, &ops, &[0, 1, 0, 2, 1, 2], true);
    expect(m, &ops, &[1, 2, 1, 0, 2, 0], false);
    // Refusal of a value that only an unobserved indeterminate write could produce.
    let ops = [
        Spec::new("write", json!(1)).ended(End::Info),
        Spec::new("cas", json!([1, 3])).refused(),
        Spec::read("read", json!(null)),
    ];
    expect(m, &ops, &[0, 1, 1, 2, 2], true);
}

#[test]
fn nulls_and_values_written_twice() {
    let m = ModelKind::CasRegister;
    // Reads of null before, during and after a write.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::read("read", Value::Null),
    ];
    expect(m, &ops, &[0, 1, 0, 1], true);
    expect(m, &ops, &[0, 0, 1, 1], false);
    // A write of null brings the initial value back.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("write", Value::Null),
        Spec::read("read", Value::Null),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2], true);
    // A cas to null, then a cas from null: the register path must not apply.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("cas", json!([1, null])),
        Spec::new("cas", json!([null, 2])),
        Spec::read("read", json!(2)),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2, 3, 3], true);
    // The same value written twice: a read of 1 after 2 was written needs the second write.
    let ops = [
        Spec::new("write", json!(1)),
        Spec::new("write", json!(2)),
        Spec::new("write", json!(1)).ended(End::Info),
        Spec::read("read", json!(1)),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 3, 3], true);
    expect(m, &ops, &[0, 0, 1, 1, 3, 3, 2], false);
    // cas 5→5 alone explains nothing; cas 5→6 and 6→5 lead in a circle.
    expect(
        m,
        &[
            Spec::new("cas", json!([5, 5])),
            Spec::read("read", json!(5)),
        ],
        &[0, 0, 1, 1],
        false,
    );
    expect(
        m,
        &[
            Spec::new("cas", json!([5, 6])),
            Spec::new("cas", json!([6, 5])),
        ],
        &[0, 1, 0, 1],
        false,
    );
}

#[test]
fn indeterminate_twins_invoked_at_different_times() {
    // Two info writes of 1, one invoked early and one late; reads need 1 late.
    let m = ModelKind::CasRegister;
    let ops = [
        Spec::new("write", json!(1)).ended(End::Info),
        Spec::new("write", json!(2)),
        Spec::read("read", json!(2)),
        Spec::new("write", json!(1)).ended(End::Open),
        Spec::read("read", json!(1)),
        Spec::read("read", json!(2)),
    ];
    // 1 late, then 2 again: impossible, 2 is written once.
    expect(m, &ops, &[0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 5], false);
    // 1 before and after a read of 2.
    let ops = [
        Spec::new("write", json!(1)).ended(End::Info),
        Spec::read("read", json!(1)),
        Spec::new("write", json!(2)),
        Spec::read("read", json!(2)),
        Spec::new("write", json!(1)).ended(End::Info),
        Spec::read("read", json!(1)),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5], true);
    expect(m, &ops, &[0, 0, 1, 1, 2, 2, 3, 3, 5, 5, 4, 4], false);
    // Sets: the same element added twice, indeterminately.
    let ops = [
        Spec::new("add", json!(1)).ended(End::Info),
        Spec::read("read", json!([])),
        Spec::new("add", json!(1)).ended(End::Open),
        Spec::read("read", json!([1])),
    ];
    expect(ModelKind::Set, &ops, &[0, 0, 1, 1, 2, 3, 3], true);
    expect(ModelKind::Set, &ops, &[0, 0, 3, 3, 1, 1, 2], false);
}

#[test]
fn string_pieces_repeated_prefixes_and_blind() {
    let m = ModelKind::StringKv;
    // Pieces that are prefixes of each other: "a", "ab".
    let ops = [
        Spec::new("append", json!("a")),
        Spec::new("append", json!("ab")),
        Spec::read("get", json!("aab")),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2], true);
    expect(m, &ops, &[1, 1, 0, 0, 2, 2], false);
    // A repeated piece told apart by a put certainly between.
    let ops = [
        Spec::new("put", json!("p")),
        Spec::new("append", json!("x")),
        Spec::read("get", json!("px")),
        Spec::new("put", json!("p")),
        Spec::read("get", json!("px")),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2, 3, 3, 4, 4], false);
    // ... unless another append of "x" may come after the second put.
    let mut more = ops.to_vec();
    more.push(Spec::new("append", json!("x")).ended(End::Info));
    expect(m, &more, &[0, 0, 1, 1, 2, 2, 3, 3, 5, 4, 4], true);
    // A blind append must hide before a put or after the last get.
    let ops = [
        Spec::new("put", json!("x")),
        Spec::new("append", json!("y")),
        Spec::read("get", json!("x")),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2], false);
    expect(m, &ops, &[0, 0, 1, 2, 2, 1], true);
    let ops = [
        Spec::new("put", json!("x")),
        Spec::new("append", json!("y")),
        Spec::new("put", json!("z")),
        Spec::read("get", json!("z")),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2, 3, 3], true);
    // Null reads are the empty string; a put of "" resets it.
    let ops = [
        Spec::new("append", json!("a")),
        Spec::new("put", json!("")),
        Spec::read("get", Value::Null),
    ];
    expect(m, &ops, &[0, 0, 1, 1, 2, 2], true);
    expect(m, &ops, &[1, 1, 0, 0, 2, 2], false);
}

/// Two keys interleaved, with nemesis events between: each key gets the verdict it gets alone.
#[test]
fn keys_are_checked_apart() {
    for seed in seeds(300, 104_729, 21) {
        let mut rng = Rng::new(seed);
        let fam = *rng.pick(&[Family::CasUnique, Family::CasTiny, Family::KvBlind]);
        let parts: Vec<History> = (0..2).map(|_| generate(&mut rng, fam, 7)).collect();
        let alone: Vec<bool> = parts
            .iter()
            .map(|h| verdicts(fam.model(), h).expect("small").oracle)
            .collect();
        let mut merged = History::new("merged.jsonl");
        let mut at = [0usize; 2];
        while at[0] < parts[0].events.len() || at[1] < parts[1].events.len() {
            let k = if at[1] == parts[1].events.len()
                || (at[0] < parts[0].events.len() && rng.chance(0.5))
            {
                0
            } else {
                1
            };
            let mut e = parts[k].events[at[k]].clone();
            at[k] += 1;
            e.key = Some(format!("k{k}"));
            if let Process::Client(p) = e.process {
                e.process = Process::Client(p + 10_000 * k as u64);
            }
            if rng.chance(0.2) {
                let n = merged.events.len();
                merged.push(
                    Event {
                        index: n as u64,
                        time: n as u64,
                        process: Process::Nemesis,
                        kind: EventType::Info,
                        f: "start-partition".to_owned(),
                        key: None,
                        value: Value::Null,
                        node: None,
                        error: None,
                        local: false,
                        siblings: false,
                        context: None,
                    },
                    n + 1,
                );
            }
            let n = merged.events.len();
            e.index = n as u64;
            e.time = n as u64;
            merged.push(e, n + 1);
        }
        let paired = history::pair(&merged).expect("well formed");
        let report =
            checkers::check(&merged, &paired, &checkers::Options::new(fam.model())).expect("ok");
        for (k, &valid) in alone.iter().enumerate() {
            let key = format!("k{k}");
            let got = report
                .keys
                .iter()
                .find(|r| r.key.as_deref() == Some(key.as_str()));
            let got = got.map_or("missing", |r| r.verdict.name());
            assert_eq!(
                got == "valid",
                valid,
                "seed {seed} {fam:?} key {key}: {got}, alone {valid}\n{}",
                dump(&merged)
            );
        }
    }
}
