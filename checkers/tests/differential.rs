//! Differential test: thousands of random small histories, checked by the search, by the graph
//! path where it applies, and by the brute-force oracle; all must agree. Seeded: a failure
//! prints the seed, and `SEED=<n> cargo test -p harness-checkers --test differential` replays it.

mod common;

use checkers::lin::model::{new_model, AnyModel, Model, ModelKind};
use checkers::lin::oracle::brute_force;
use checkers::lin::search::{search, Budget, Outcome};
use checkers::lin::unique::{check_unique, GraphOutcome};
use common::{kops_of, seeds, window_of};
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};

use checkers::rng::SplitMix64 as Rng;

/// One generated operation before it is laid out as events.
struct GenOp {
    f: &'static str,
    input: Value,
    output: Value,
    kind: EventType,
    error: Option<Value>,
}

/// A random history of up to `max_ops` operations on one key. With `simulate`, results come
/// from a real sequential object applied at a random point inside each operation (so the
/// history is linearizable unless `corrupt` changes a result); otherwise results are random.
fn generate(rng: &mut Rng, model: ModelKind, max_ops: usize, unique: bool) -> History {
    let n = 1 + rng.below(max_ops as u64) as usize;
    let simulate = rng.chance(0.6);
    let mut counter = 0i64;
    let mut fresh = |rng: &mut Rng| -> i64 {
        if unique {
            counter += 1;
            counter
        } else {
            1 + rng.below(3) as i64
        }
    };
    // Lay out intervals: each op gets an invoke and a completion position; processes never
    // overlap with themselves.
    let processes = 1 + rng.below(4) as usize;
    let mut slots: Vec<(u64, u64, usize)> = Vec::new(); // (call, ret, process)
    let mut free_at = vec![0u64; processes];
    for _ in 0..n {
        let p = rng.below(processes as u64) as usize;
        let call = free_at[p] + rng.below(4);
        let ret = call + 1 + rng.below(6);
        free_at[p] = ret + 1;
        slots.push((call, ret, p));
    }
    // Linearization points for the simulation: a random time inside each interval.
    let mut points: Vec<(f64, usize)> = slots
        .iter()
        .enumerate()
        .map(|(i, &(c, r, _))| {
            (
                c as f64 + 0.5 + (rng.below(1000) as f64 / 1000.0) * ((r - c) as f64 - 0.9),
                i,
            )
        })
        .collect();
    points.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("no NaN"));
    let mut ops: Vec<Option<GenOp>> = (0..n).map(|_| None).collect();
    let mut reg: Value = Value::Null;
    let mut text = String::new();
    let mut set: Vec<i64> = Vec::new();
    for &(_, i) in &points {
        let info = rng.chance(0.15);
        let takes_effect = !info || rng.chance(0.5);
        let op = match model {
            ModelKind::Register | ModelKind::CasRegister => {
                let r = rng.below(if model == ModelKind::CasRegister {
                    3
                } else {
                    2
                });
                match r {
                    0 => {
                        let out = if simulate {
                            reg.clone()
                        } else if rng.chance(0.3) {
                            Value::Null
                        } else {
                            json!(fresh(rng))
                        };
                        GenOp {
                            f: "read",
                            input: Value::Null,
                            output: out,
                            kind: EventType::Ok,
                            error: None,
                        }
                    }
                    1 => {
                        let v = json!(fresh(rng));
                        if takes_effect {
                            reg = v.clone();
                        }
                        GenOp {
                            f: "write",
                            input: v,
                            output: Value::Null,
                            kind: EventType::Ok,
                            error: None,
                        }
                    }
                    _ => {
                        let from = if rng.chance(0.6) && !reg.is_null() {
                            reg.clone()
                        } else {
                            json!(1 + rng.below(if unique { n as u64 + 3 } else { 3 }))
                        };
                        let to = json!(fresh(rng));
                        let matches = reg == from;
                        let succeeded = if simulate { matches } else { rng.chance(0.5) };
                        if succeeded && takes_effect && matches {
                            reg = to.clone();
                        }
                        if succeeded {
                            GenOp {
                                f: "cas",
                                input: json!([from, to]),
                                output: Value::Null,
                                kind: EventType::Ok,
                                error: None,
                            }
                        } else {
                            GenOp {
                                f: "cas",
                                input: json!([from, to]),
                                output: Value::Null,
                                kind: EventType::Fail,
                                error: Some(json!("precondition")),
                            }
                        }
                    }
                }
            }
            ModelKind::StringKv => match rng.below(3) {
                0 => {
                    let out = if simulate {
                        text.clone()
                    } else if unique {
                        ["", "<1>", "<1><2>", "<2>", "<2><1>", "<3>"][rng.below(6) as usize]
                            .to_owned()
                    } else {
                        ["", "a", "ab", "b", "ba"][rng.below(5) as usize].to_owned()
                    };
                    GenOp {
                        f: "get",
                        input: Value::Null,
                        output: json!(out),
                        kind: EventType::Ok,
                        error: None,
                    }
                }
                1 => {
                    let piece = if unique {
                        format!("<{}>", fresh(rng))
                    } else {
                        ["a", "b", "c"][rng.below(3) as usize].to_owned()
                    };
                    if takes_effect {
                        text.push_str(&piece);
                    }
                    GenOp {
                        f: "append",
                        input: json!(piece),
                        output: Value::Null,
                        kind: EventType::Ok,
                        error: None,
                    }
                }
                _ => {
                    let piece = if unique {
                        format!("<{}>", fresh(rng))
                    } else {
                        ["a", "b"][rng.below(2) as usize].to_owned()
                    };
                    if takes_effect {
                        text = piece.clone();
                    }
                    GenOp {
                        f: "put",
                        input: json!(piece),
                        output: Value::Null,
                        kind: EventType::Ok,
                        error: None,
                    }
                }
            },
            ModelKind::Set => {
                if rng.chance(0.4) {
                    let out: Vec<i64> = if simulate {
                        set.clone()
                    } else {
                        (1..=3).filter(|_| rng.chance(0.4)).collect()
                    };
                    GenOp {
                        f: "read",
                        input: Value::Null,
                        output: json!(out),
                        kind: EventType::Ok,
                        error: None,
                    }
                } else {
                    let e = fresh(rng);
                    if takes_effect && !set.contains(&e) {
                        set.push(e);
                        set.sort_unstable();
                    }
                    GenOp {
                        f: "add",
                        input: json!(e),
                        output: Value::Null,
                        kind: EventType::Ok,
                        error: None,
                    }
                }
            }
        };
        let mut op = op;
        if info && op.f != "read" && op.f != "get" {
            op.kind = EventType::Info;
            op.output = Value::Null;
            op.error = Some(json!("timeout"));
        } else if info {
            // An indeterminate read constrains nothing; make some reads fail instead.
            op.kind = EventType::Fail;
            op.output = Value::Null;
        }
        ops[i] = Some(op);
    }
    // A corrupted result, sometimes, to get invalid histories of the simulated kind too.
    if simulate && rng.chance(0.3) {
        if let Some(op) = ops
            .iter_mut()
            .flatten()
            .find(|o| o.kind == EventType::Ok && (o.f == "read" || o.f == "get"))
        {
            op.output = match model {
                ModelKind::StringKv => json!("b"),
                ModelKind::Set => json!([2]),
                _ => json!(1 + rng.below(3)),
            };
        }
    }
    // Events in position order; info ops retire their process: give every op its own id
    // space (process * 100 + sequence) so ids are never reused after info.
    let mut events: Vec<(u64, u8, usize)> = Vec::new();
    for (i, &(c, r, _)) in slots.iter().enumerate() {
        events.push((c, 1, i));
        events.push((r, 0, i));
    }
    events.sort();
    let mut h = History::new("generated.jsonl");
    let mut proc_seq = vec![0u64; processes];
    let mut proc_of = vec![0u64; n];
    for (i, &(_, _, p)) in slots.iter().enumerate() {
        proc_of[i] = (p as u64) * 1000 + proc_seq[p];
        if ops[i].as_ref().is_some_and(|o| o.kind == EventType::Info) {
            proc_seq[p] += 1;
        }
    }
    for (pos, &(_, is_call, i)) in events.iter().enumerate() {
        let op = ops[i].as_ref().expect("every op generated");
        let ev = Event {
            index: pos as u64,
            time: pos as u64,
            process: Process::Client(proc_of[i]),
            kind: if is_call == 1 {
                EventType::Invoke
            } else {
                op.kind
            },
            f: op.f.to_owned(),
            key: None,
            value: if is_call == 1 {
                op.input.clone()
            } else if op.kind == EventType::Ok && (op.f == "read" || op.f == "get") {
                op.output.clone()
            } else {
                op.input.clone()
            },
            node: None,
            error: if is_call == 1 { None } else { op.error.clone() },
            local: false,
            siblings: false,
            context: None,
        };
        h.push(ev, pos + 1);
    }
    h
}

fn run_case(seed: u64, model: ModelKind, unique: bool) -> (bool, Option<bool>) {
    let mut rng = Rng(seed);
    let h = generate(&mut rng, model, 10, unique);
    let mut m = new_model(model);
    let kops = kops_of(&mut m, &h);
    let oracle = brute_force(&mut m, &kops);
    let (outcome, _) = search(&mut m, &kops, &Budget::unlimited());
    let searched = match outcome {
        Outcome::Linearizable(_) => true,
        Outcome::NotLinearizable(_) => false,
        Outcome::Unknown(r) => panic!("seed {seed}: unbounded search gave up: {r}"),
    };
    let dump = || {
        h.events
            .iter()
            .map(|e| serde_json::to_string(e).expect("events serialise"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        searched, oracle,
        "seed {seed} ({model}): search says {searched}, oracle says {oracle}; reproduce with SEED={seed}\n{}",
        dump()
    );
    let graph = match &m {
        AnyModel::Register(r) if r.unique_writes() => {
            match check_unique(&kops, &|i| format!("op {i}")) {
                GraphOutcome::Valid => Some(true),
                GraphOutcome::Invalid { .. } => Some(false),
                GraphOutcome::Undecided(_) => None,
            }
        }
        AnyModel::StringKv(s) => {
            match checkers::lin::strings::register_view(s, &kops, &|i| format!("op {i}")).0 {
                checkers::lin::strings::StringView::Registers(ops) => {
                    match check_unique(&ops, &|i| format!("op {i}")) {
                        GraphOutcome::Valid => Some(true),
                        GraphOutcome::Invalid { .. } => Some(false),
                        GraphOutcome::Undecided(_) => None,
                    }
                }
                checkers::lin::strings::StringView::Invalid { .. } => Some(false),
                checkers::lin::strings::StringView::NotApplicable(_) => None,
            }
        }
        _ => None,
    };
    if let Some(g) = graph {
        assert_eq!(
            g, oracle,
            "seed {seed} ({model}): graph path says {g}, oracle says {oracle}; reproduce with SEED={seed}\n{}",
            dump()
        );
    }
    (oracle, graph)
}

fn run_many(model: ModelKind, unique: bool, salt: u64) {
    let (mut valid, mut invalid, mut graph_decided) = (0, 0, 0);
    for seed in seeds(3000, 7919, salt) {
        let (v, g) = run_case(seed, model, unique);
        if v {
            valid += 1;
        } else {
            invalid += 1;
        }
        if g.is_some() {
            graph_decided += 1;
        }
    }
    if std::env::var("SEED").is_err() {
        // Both verdicts must be well represented, or the test proves little.
        assert!(
            valid > 300 && invalid > 300,
            "{model}: {valid} valid, {invalid} invalid"
        );
        if unique
            && matches!(
                model,
                ModelKind::Register | ModelKind::CasRegister | ModelKind::StringKv
            )
        {
            assert!(
                graph_decided > 1500,
                "{model}: graph path decided only {graph_decided}"
            );
        }
    }
}

#[test]
fn register_unique_values_search_graph_and_oracle_agree() {
    run_many(ModelKind::Register, true, 1);
}

#[test]
fn cas_register_unique_values_search_graph_and_oracle_agree() {
    run_many(ModelKind::CasRegister, true, 2);
}

#[test]
fn cas_register_repeated_values_search_and_oracle_agree() {
    run_many(ModelKind::CasRegister, false, 3);
}

#[test]
fn string_kv_search_and_oracle_agree() {
    run_many(ModelKind::StringKv, false, 4);
}

#[test]
fn string_kv_unique_pieces_search_graph_and_oracle_agree() {
    run_many(ModelKind::StringKv, true, 7);
}

#[test]
fn set_search_and_oracle_agree() {
    run_many(ModelKind::Set, true, 5);
}

/// The full checker (which picks the graph path or the search, and builds witnesses) gives
/// the oracle's verdict, and every witness window really fails on its own.
#[test]
fn full_checker_agrees_and_witness_windows_fail() {
    for seed in seeds(1500, 7919, 6) {
        for (model, unique) in [
            (ModelKind::CasRegister, true),
            (ModelKind::CasRegister, false),
            (ModelKind::StringKv, false),
            (ModelKind::StringKv, true),
        ] {
            let mut rng = Rng(seed);
            let h = generate(&mut rng, model, 10, unique);
            let paired = history::pair(&h).expect("well formed");
            let mut m = new_model(model);
            let kops = kops_of(&mut m, &h);
            let oracle = brute_force(&mut m, &kops);
            let report =
                checkers::check(&h, &paired, &checkers::Options::new(model)).expect("checks");
            assert_eq!(
                report.verdict == "valid",
                oracle,
                "seed {seed} ({model}): checker says {}, oracle {oracle}",
                report.verdict
            );
            if let checkers::Verdict::Invalid { witness } = &report.keys[0].verdict {
                assert!(!witness.window.is_empty(), "seed {seed}: empty window");
                let (mut m2, window) = window_of(model, &h, &kops, &witness.window);
                assert!(
                    !brute_force(&mut m2, &window),
                    "seed {seed} ({model}): the witness window is linearizable"
                );
                assert!(!witness.explanation.is_empty());
            }
        }
    }
}
