//! The weak levels of Biswas and Enea checked by saturation (`checkers::txn::saturate`):
//! hand-made histories that are read committed but not read atomic, read atomic but not
//! causal, causal, and cyclic in session order and reads-from, for rw-register and for
//! list-append, each with the anomaly kind and the verdict it must get; then differential
//! tests against the brute-force oracle that tries every commit order (exact agreement, for
//! both workloads, on corrupted strict-serializable runs and on histories whose reads see any
//! earlier write), and the order between the levels on random histories.
//!
//! SEEDS=N checks N random histories per workload (default 3000); FIRST_SEED=S starts
//! elsewhere. A disagreement prints the seed and the history.

use checkers::result::Judgement;
use checkers::txn::oracle::{self, Workload};
use checkers::txn::saturate::Level;
use checkers::txn::{analyse, check_txns, synth, Kind, TxnOptions, Txns};
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const RC: &str = "strong-session-read-committed";
const RA: &str = "read-atomic";
const CC: &str = "causal";

/// A transaction: process and micro-ops as they completed; each runs alone, in list order.
struct T(u64, Value);

/// Builds the history: each transaction's invocation then its `ok` completion, one after
/// another.
fn history(txns: &[T]) -> History {
    let mut h = History::new("weak.jsonl");
    let mut i = 0u64;
    for T(p, mops) in txns {
        let invoked: Vec<Value> = mops
            .as_array()
            .expect("mops")
            .iter()
            .map(|m| {
                if m[0] == "r" {
                    json!(["r", m[1], null])
                } else {
                    m.clone()
                }
            })
            .collect();
        for (kind, value) in [
            (EventType::Invoke, Value::Array(invoked)),
            (EventType::Ok, mops.clone()),
        ] {
            let e = Event {
                index: i,
                time: 1000 * (i + 1),
                process: Process::Client(*p),
                kind,
                f: "txn".into(),
                key: None,
                value,
                node: None,
                error: None,
                local: false,
                siblings: false,
                context: None,
            };
            h.push(e, i as usize + 1);
            i += 1;
        }
    }
    h
}

fn txns_of(h: &History) -> Txns {
    let p = history::pair(h).expect("well formed");
    Txns::from_history(h, &p).expect("valid txns")
}

fn opts(model: &str) -> TxnOptions {
    TxnOptions {
        model: Some(model.into()),
        ..TxnOptions::default()
    }
}

/// Checks `txns` for `model`: exactly the anomaly kinds `want` (none: valid), with the
/// verdict to match. Returns the anomalies.
fn expect(kind: Kind, model: &str, want: &[&str], txns: &[T]) -> Vec<checkers::result::Anomaly> {
    let t = txns_of(&history(txns));
    let a = analyse(kind, &t, &opts(model)).expect("checks");
    let got: BTreeSet<&str> = a.anomalies.iter().map(|x| x.kind.as_str()).collect();
    let want_set: BTreeSet<&str> = want.iter().copied().collect();
    assert_eq!(got, want_set, "{} {model}: {:#?}", kind.name(), a.anomalies);
    let r = check_txns(kind, &t, &opts(model)).expect("checks");
    let verdict = if want.is_empty() {
        Judgement::Valid
    } else {
        Judgement::Invalid
    };
    assert_eq!(
        r.verdict,
        verdict,
        "{} {model}: {:?}",
        kind.name(),
        r.summary
    );
    for x in &a.anomalies {
        assert!(!x.cycle.is_empty(), "{x:#?}");
        assert!(!x.ops.is_empty() && !x.title.is_empty());
        // The cycle closes.
        assert_eq!(
            x.cycle.first().map(|e| e.from),
            x.cycle.last().map(|e| e.to),
            "{x:#?}"
        );
    }
    a.anomalies
}

/// Read committed, not read atomic: T1 read y before x and saw T0's write of x but not of y
/// (a fractured read). Nothing of T0 was visible when T1 read y, so read committed holds.
fn fractured(kind: Kind) -> Vec<T> {
    match kind {
        Kind::RwRegister => vec![
            T(0, json!([["w", "x", 1], ["w", "y", 1]])),
            T(1, json!([["r", "y", null], ["r", "x", 1]])),
        ],
        Kind::ListAppend => vec![
            T(0, json!([["append", "x", 1], ["append", "y", 1]])),
            T(1, json!([["r", "y", []], ["r", "x", [1]]])),
        ],
    }
}

/// Read atomic, not causal: T2 read y from T1, which had read x from T0, yet T2's x is
/// older than T0's (register: T9's earlier write in T0's session; list: empty).
fn not_causal(kind: Kind) -> Vec<T> {
    match kind {
        Kind::RwRegister => vec![
            T(0, json!([["w", "x", 9]])),
            T(0, json!([["w", "x", 1]])),
            T(1, json!([["r", "x", 1], ["w", "y", 2]])),
            T(2, json!([["r", "y", 2], ["r", "x", 9]])),
        ],
        Kind::ListAppend => vec![
            T(0, json!([["append", "x", 1]])),
            T(1, json!([["r", "x", [1]], ["append", "y", 2]])),
            T(2, json!([["r", "y", [2]], ["r", "x", []]])),
        ],
    }
}

/// Causal: the same chain, with T2 seeing T0's write; a reader in another session may still
/// miss it (nothing of T0 is visible to it).
fn causal(kind: Kind) -> Vec<T> {
    match kind {
        Kind::RwRegister => vec![
            T(0, json!([["w", "x", 1]])),
            T(1, json!([["r", "x", 1], ["w", "y", 2]])),
            T(2, json!([["r", "y", 2], ["r", "x", 1]])),
            T(3, json!([["r", "y", null], ["r", "x", null]])),
            T(0, json!([["r", "y", 2], ["w", "x", 4]])),
            T(2, json!([["r", "x", 4]])),
        ],
        Kind::ListAppend => vec![
            T(0, json!([["append", "x", 1]])),
            T(1, json!([["r", "x", [1]], ["append", "y", 2]])),
            T(2, json!([["r", "y", [2]], ["r", "x", [1]]])),
            T(3, json!([["r", "y", []], ["r", "x", []]])),
            T(0, json!([["r", "y", [2]], ["append", "x", 4]])),
            T(2, json!([["r", "x", [1, 4]]])),
        ],
    }
}

/// Each read what the other wrote: reads-from is cyclic; and a session that reads what its
/// own later transaction writes.
fn cyclic(kind: Kind) -> Vec<T> {
    match kind {
        Kind::RwRegister => vec![
            T(0, json!([["r", "y", 2], ["w", "x", 1]])),
            T(1, json!([["r", "x", 1], ["w", "y", 2]])),
        ],
        Kind::ListAppend => vec![
            T(0, json!([["r", "y", [2]], ["append", "x", 1]])),
            T(1, json!([["r", "x", [1]], ["append", "y", 2]])),
        ],
    }
}

fn cyclic_with_session(kind: Kind) -> Vec<T> {
    match kind {
        Kind::RwRegister => vec![T(0, json!([["r", "x", 5]])), T(0, json!([["w", "x", 5]]))],
        Kind::ListAppend => vec![
            T(0, json!([["r", "x", [5]]])),
            T(0, json!([["append", "x", 5]])),
        ],
    }
}

/// Not read committed: a session that does not read its own write.
fn unread_own_write(kind: Kind) -> Vec<T> {
    match kind {
        Kind::RwRegister => vec![
            T(0, json!([["w", "x", 1]])),
            T(0, json!([["r", "x", null]])),
        ],
        Kind::ListAppend => vec![
            T(0, json!([["append", "x", 1]])),
            T(0, json!([["r", "x", []]])),
        ],
    }
}

const KINDS: [Kind; 2] = [Kind::RwRegister, Kind::ListAppend];

#[test]
fn read_committed_but_not_read_atomic() {
    for kind in KINDS {
        expect(kind, RC, &[], &fractured(kind));
        let a = expect(kind, RA, &["read-atomic-violation"], &fractured(kind));
        let s = a[0].sentences.join("\n");
        assert!(s.contains("T2 read y") && s.contains("T0"), "{s}");
        assert!(
            s.contains("T0 → T2 because T2 read x=1 written by T0")
                || s.contains("T0 → T2 because T2 read T0's append of 1 to x"),
            "{s}"
        );
        expect(kind, CC, &["causal-violation"], &fractured(kind));
    }
}

#[test]
fn read_atomic_but_not_causal() {
    for kind in KINDS {
        expect(kind, RC, &[], &not_causal(kind));
        expect(kind, RA, &[], &not_causal(kind));
        let a = expect(kind, CC, &["causal-violation"], &not_causal(kind));
        let s = a[0].sentences.join("\n");
        // The causal chain is spelt out: T0's write reached the reader through T1.
        assert!(s.contains("because T4 read"), "{s}");
        if kind == Kind::RwRegister {
            assert!(
                s.contains(
                    "T2 (process 0) must commit before T0 because T6 read x=9 from T0 after \
                     T2's write of x=1 was visible to it: T2 → T4 because T4 read x=1 written \
                     by T2, T4 → T6 because T6 read y=2 written by T4"
                ),
                "{s}"
            );
            // The cycle: T0 → T2 by session order, T2 → T0 by saturation.
            assert_eq!(a[0].cycle.len(), 2, "{:#?}", a[0].cycle);
        }
    }
}

#[test]
fn causal_histories_pass_every_level() {
    for kind in KINDS {
        for model in [RC, RA, CC] {
            expect(kind, model, &[], &causal(kind));
        }
    }
}

#[test]
fn cyclic_session_order_and_reads_from_breaks_every_level() {
    for kind in KINDS {
        for model in [RC, RA, CC] {
            let a = expect(kind, model, &["cyclic-so-wr"], &cyclic(kind));
            assert_eq!(a[0].cycle.len(), 2);
            let a = expect(kind, model, &["cyclic-so-wr"], &cyclic_with_session(kind));
            assert!(
                a[0].sentences
                    .iter()
                    .any(|s| s.contains("by session order (process 0 ran T0 before T2)")),
                "{:#?}",
                a[0].sentences
            );
        }
    }
}

#[test]
fn a_session_that_misses_its_own_write_is_not_read_committed() {
    for kind in KINDS {
        let a = expect(
            kind,
            RC,
            &["read-committed-violation"],
            &unread_own_write(kind),
        );
        assert!(a[0].sentences[0].contains("T2 read x"), "{:#?}", a[0]);
        expect(
            kind,
            RA,
            &["read-atomic-violation"],
            &unread_own_write(kind),
        );
        expect(kind, CC, &["causal-violation"], &unread_own_write(kind));
        // Elle's (session-less) serializable allows it.
        let t = txns_of(&history(&unread_own_write(kind)));
        let a = analyse(kind, &t, &opts("serializable")).expect("checks");
        assert!(a.forbidden.is_empty(), "{:?}", a.anomalies);
    }
}

#[test]
fn the_summary_names_the_level_and_what_it_rules_out() {
    let t = txns_of(&history(&not_causal(Kind::RwRegister)));
    let r = check_txns(Kind::RwRegister, &t, &opts(CC)).expect("checks");
    let s = r.summary.join("\n");
    assert!(s.contains("checked for causal"), "{s}");
    assert!(
        s.contains("causal forbids what was found: causal-violation"),
        "{s}"
    );
    assert!(s.contains("not causal"), "{s}");
    assert!(
        s.contains("checked by saturation (AWDIT) for causal consistency"),
        "{s}"
    );
}

#[test]
fn non_cycle_anomalies_still_rule_the_levels_out() {
    // An aborted read (G1a) and a garbage read.
    let h = vec![
        T(0, json!([["r", "x", 77]])),
        T(1, json!([["r", "y", 5]])),
        T(1, json!([["w", "y", 5]])),
    ];
    for model in [RC, RA, CC] {
        let t = txns_of(&history(&h));
        let a = analyse(Kind::RwRegister, &t, &opts(model)).expect("checks");
        assert!(a.forbidden.contains(&"garbage-read".to_string()), "{model}");
    }
}

// ---------------------------------------------------------------------------------------------
// Differential
// ---------------------------------------------------------------------------------------------

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn show(h: &History) -> String {
    h.events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

const LEVELS: [(Level, &str); 3] = [
    (Level::ReadCommitted, RC),
    (Level::ReadAtomic, RA),
    (Level::Causal, CC),
];

/// (histories, rejections per level, disagreements)
fn differential(
    name: &str,
    kind: Kind,
    make: impl Fn(u64) -> History,
) -> (u64, [u64; 3], Vec<String>) {
    let workload = match kind {
        Kind::RwRegister => Workload::RwRegister,
        Kind::ListAppend => Workload::ListAppend,
    };
    let (first, n) = (env("FIRST_SEED", 0), env("SEEDS", 3000));
    let mut rejected = [0u64; 3];
    let mut bad = Vec::new();
    for seed in first..first + n {
        let h = make(seed);
        let p = history::pair(&h).expect("generated histories pair");
        let txns = Txns::from_history(&h, &p).expect("generated histories are txns");
        for (i, (level, model)) in LEVELS.iter().enumerate() {
            let want = oracle::weak(&h, &p, workload, *level)
                .expect("small enough for the oracle")
                .is_some();
            let a = analyse(kind, &txns, &opts(model)).expect("checks");
            let got = a.forbidden.is_empty();
            rejected[i] += !want as u64;
            if got != want && bad.len() < 5 {
                let kinds: Vec<&str> = a.anomalies.iter().map(|x| x.kind.as_str()).collect();
                bad.push(format!(
                    "{name} seed {seed}, {model}: oracle says {}, checker says {} \
                     ({kinds:?}); reproduce with FIRST_SEED={seed} SEEDS=1\n{}",
                    if want { "valid" } else { "invalid" },
                    if got { "valid" } else { "invalid" },
                    show(&h)
                ));
            }
        }
    }
    println!(
        "{}, {name}: {n} histories; the oracle and saturation both reject {} for \
         read committed, {} for read atomic, {} for causal",
        kind.name(),
        rejected[0],
        rejected[1],
        rejected[2]
    );
    (n, rejected, bad)
}

/// Histories of a strict serializable run with one read corrupted (half of them): mostly
/// garbage, aborted and stale reads.
#[test]
fn rw_register_agrees_exactly_with_the_commit_order_oracle_on_corrupted_runs() {
    let (n, rejected, bad) = differential("corrupted runs", Kind::RwRegister, |seed| {
        synth::random_small(seed, Workload::RwRegister)
    });
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
    assert!(
        rejected[0] > n / 10,
        "the generator should make histories that break read committed"
    );
    assert!(rejected[2] > rejected[0], "causal should reject more");
}

#[test]
fn list_append_agrees_exactly_with_the_commit_order_oracle_on_corrupted_runs() {
    let (n, rejected, bad) = differential("corrupted runs", Kind::ListAppend, |seed| {
        synth::random_small(seed, Workload::ListAppend)
    });
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
    assert!(rejected[0] > n / 10, "{rejected:?}");
}

/// Histories whose reads see any earlier write: every level both holds and fails often, and
/// each rejects some history the weaker one accepts.
#[test]
fn rw_register_agrees_exactly_with_the_commit_order_oracle_on_weak_reads() {
    let (n, rejected, bad) = differential("weak reads", Kind::RwRegister, synth::random_weak);
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
    assert!(rejected[0] > n / 5, "{rejected:?}");
    assert!(rejected[2] < n - n / 10, "{rejected:?}");
    assert!(
        rejected[1] > rejected[0] + n / 150 && rejected[2] > rejected[1] + n / 150,
        "each level should reject more than the one below: {rejected:?}"
    );
}

/// List-append: the oracle gives each read exactly the chain of its key's appends up to the
/// transaction it read from, in commit order, and checks the level's axiom; saturation must
/// agree exactly (the version order the lists show, the appenders of everything read as
/// visible, and a visible appender missing from a list as a violation at once).
#[test]
fn list_append_agrees_exactly_with_the_commit_order_oracle_on_weak_reads() {
    let (n, rejected, bad) = differential("weak reads", Kind::ListAppend, synth::random_weak_lists);
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
    assert!(rejected[0] > n / 5, "{rejected:?}");
    assert!(rejected[2] < n - n / 10, "{rejected:?}");
    assert!(
        rejected[1] > rejected[0] + n / 150 && rejected[2] > rejected[1] + n / 150,
        "each level should reject more than the one below: {rejected:?}"
    );
}

#[test]
fn large_register_histories_are_causal_unless_planted() {
    for plant in [false, true] {
        let l = synth::large_register(5, 3000, 20, plant);
        let txns = txns_of(&l.history);
        assert_eq!(txns.txns.len(), 3000);
        let a = analyse(Kind::RwRegister, &txns, &opts(CC)).expect("checks");
        let ra = analyse(Kind::RwRegister, &txns, &opts(RA)).expect("checks");
        assert!(ra.forbidden.is_empty(), "{:#?}", ra.anomalies);
        assert!(a.graph_edges > 3000, "{}", a.graph_edges);
        match l.plant {
            None => {
                assert!(!plant);
                assert!(a.forbidden.is_empty(), "{:#?}", a.anomalies);
            }
            Some(p) => {
                assert_eq!(a.forbidden, ["causal-violation"], "{:#?}", a.anomalies);
                let ids: Vec<u64> = p.iter().map(|&t| txns.txns[t].index).collect();
                let x = &a.anomalies[0];
                assert!(x.ops.contains(&ids[0]) && x.ops.contains(&ids[1]), "{x:#?}");
                assert_eq!(x.cycle.len(), 2, "{x:#?}");
            }
        }
    }
}

/// A strict serializable history is causal (each process runs one transaction at a time, so
/// real time includes session order), causal implies read atomic, read atomic implies read
/// committed: on both workloads, what the oracle finds strict serializable passes every
/// level, and a level never passes what a weaker one rejects.
#[test]
fn the_levels_are_ordered_and_pass_strict_serializable_histories() {
    let (first, n) = (env("FIRST_SEED", 0), env("SEEDS", 3000));
    for (workload, kind) in [
        (Workload::RwRegister, Kind::RwRegister),
        (Workload::ListAppend, Kind::ListAppend),
    ] {
        let mut counts = [0u64; 4];
        for seed in first..first + n {
            let h = synth::random_small(seed, workload);
            let p = history::pair(&h).expect("pairs");
            let txns = Txns::from_history(&h, &p).expect("txns");
            let strict = oracle::serializable(&h, &p, workload, true)
                .expect("small enough")
                .is_some();
            let pass: Vec<bool> = LEVELS
                .iter()
                .map(|(_, m)| {
                    analyse(kind, &txns, &opts(m))
                        .expect("checks")
                        .forbidden
                        .is_empty()
                })
                .collect();
            let why = format!(
                "{} seed {seed}: strict {strict}, RC/RA/CC {pass:?}\n{}",
                kind.name(),
                show(&h)
            );
            assert!(!strict || pass.iter().all(|&x| x), "{why}");
            assert!(pass[2] <= pass[1] && pass[1] <= pass[0], "{why}");
            counts[0] += strict as u64;
            for i in 0..3 {
                counts[i + 1] += pass[i] as u64;
            }
        }
        println!(
            "{}: {n} histories, strict serializable {}, read committed {}, read atomic {}, \
             causal {}",
            kind.name(),
            counts[0],
            counts[1],
            counts[2],
            counts[3]
        );
        assert!(counts[3] < n, "{}: some histories must fail", kind.name());
    }
}

/// A store that loses everything: every read of a large history sees nil. Thousands of
/// violations, of which a few are shown and the rest counted, quickly.
#[test]
fn many_violations_are_counted_not_all_drawn() {
    let mut l = synth::large_register(9, 5000, 20, false);
    for e in &mut l.history.events {
        if e.kind != EventType::Ok {
            continue;
        }
        if let Some(mops) = e.value.as_array_mut() {
            for m in mops {
                if m[0] == "r" {
                    m[2] = Value::Null;
                }
            }
        }
    }
    let txns = txns_of(&l.history);
    for model in [RC, RA, CC] {
        let started = std::time::Instant::now();
        let a = analyse(Kind::RwRegister, &txns, &opts(model)).expect("checks");
        assert!(!a.forbidden.is_empty(), "{model}");
        let kinds: BTreeSet<&str> = a.anomalies.iter().map(|x| x.kind.as_str()).collect();
        assert!(
            a.anomalies.len() <= 8 * kinds.len(),
            "{model}: {} {kinds:?}",
            a.anomalies.len()
        );
        assert!(
            a.notes.iter().any(|n| n.contains("anomalies (8 shown)")),
            "{model}: {:?}",
            a.notes
        );
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
