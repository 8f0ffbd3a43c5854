//! One hand-made history per anomaly class, each reported as exactly that class (and nothing
//! else), plus histories that must pass; and the witness sentences a person reads.

use checkers::txn::{analyse, Kind, TxnOptions, Txns};
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A transaction for a test history: process, invoke and complete times, outcome, micro-ops
/// as they completed (reads filled in).
struct T(u64, u64, u64, EventType, Value);

fn ok(p: u64, from: u64, to: u64, mops: Value) -> T {
    T(p, from, to, EventType::Ok, mops)
}

/// Builds the history: each transaction's invocation at its start, completion at its end.
fn history(txns: &[T]) -> History {
    let mut events: Vec<(u64, u8, Event)> = Vec::new();
    for T(p, from, to, kind, mops) in txns {
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
        let ev = |kind: EventType, time: u64, value: Value| Event {
            index: 0,
            time,
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
        events.push((
            *from,
            1,
            ev(EventType::Invoke, *from, Value::Array(invoked.clone())),
        ));
        let done = if *kind == EventType::Ok {
            mops.clone()
        } else {
            Value::Array(invoked)
        };
        events.push((*to, 0, ev(*kind, *to, done)));
    }
    // Completions before invocations at the same instant.
    events.sort_by_key(|(t, order, _)| (*t, *order));
    let mut h = History::new("test.jsonl");
    for (i, (_, _, mut e)) in events.into_iter().enumerate() {
        e.index = i as u64;
        h.push(e, i + 1);
    }
    h
}

fn found(kind: Kind, model: &str, txns: &[T]) -> (BTreeSet<String>, checkers::txn::Analysis) {
    let h = history(txns);
    let p = history::pair(&h).expect("well formed");
    let t = Txns::from_history(&h, &p).expect("valid txns");
    let opts = TxnOptions {
        model: Some(model.into()),
        ..TxnOptions::default()
    };
    let a = analyse(kind, &t, &opts).expect("checks");
    (a.anomalies.iter().map(|x| x.kind.clone()).collect(), a)
}

fn exactly(kind: Kind, model: &str, class: &str, txns: &[T]) -> checkers::txn::Analysis {
    let (got, a) = found(kind, model, txns);
    let want: BTreeSet<String> = [class.to_string()].into();
    assert_eq!(got, want, "expected exactly {class}");
    a
}

fn la(model: &str, class: &str, txns: &[T]) -> checkers::txn::Analysis {
    exactly(Kind::ListAppend, model, class, txns)
}

#[test]
fn list_append_cycles_each_reported_as_their_class() {
    // G0: two writers each append after the other, on x and on y.
    la(
        "serializable",
        "G0",
        &[
            ok(0, 0, 1, json!([["append", "x", 1], ["append", "y", 1]])),
            ok(1, 2, 3, json!([["append", "x", 2], ["append", "y", 2]])),
            ok(2, 4, 5, json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]])),
        ],
    );
    // G1c: each reads what the other wrote.
    la(
        "serializable",
        "G1c",
        &[
            ok(0, 0, 3, json!([["append", "x", 1], ["r", "y", [1]]])),
            ok(1, 1, 2, json!([["append", "y", 1], ["r", "x", [1]]])),
        ],
    );
    // G-single: T1 read x after T0's append but missed T0's append to y (read skew).
    la(
        "serializable",
        "G-single",
        &[
            ok(0, 0, 3, json!([["append", "x", 1], ["append", "y", 1]])),
            ok(1, 1, 4, json!([["r", "x", [1]], ["r", "y", []]])),
            ok(2, 5, 6, json!([["r", "x", [1]], ["r", "y", [1]]])),
        ],
    );
    // G2-item: write skew.
    let a = la(
        "serializable",
        "G2-item",
        &[
            ok(0, 0, 2, json!([["r", "x", []], ["append", "y", 1]])),
            ok(1, 1, 3, json!([["r", "y", []], ["append", "x", 1]])),
            ok(2, 4, 5, json!([["r", "x", [1]], ["r", "y", [1]]])),
        ],
    );
    let g2 = &a.anomalies[0];
    assert_eq!(g2.cycle.len(), 2);
    assert!(
        g2.sentences
            .iter()
            .any(|s| s.contains("T0 < T1 (rw) because T0 read x empty before T1 appended 1")),
        "{:#?}",
        g2.sentences
    );
    assert_eq!(a.not, ["repeatable-read"]);
    // G-nonadjacent: rw, wr, rw, wr around four transactions (no two rw in a row).
    la(
        "serializable",
        "G-nonadjacent",
        &[
            ok(0, 0, 1, json!([["append", "x", 1]])),
            ok(1, 2, 3, json!([["r", "x", [1]], ["r", "y", []]])),
            ok(2, 4, 5, json!([["append", "y", 1]])),
            ok(3, 6, 7, json!([["r", "y", [1]], ["r", "x", []]])),
        ],
    );
}

#[test]
fn realtime_and_process_variants_need_their_models() {
    // A stale read: T1 began after T0 completed, yet missed its append. Serializable allows
    // it; strict-serializable does not (G-single-realtime).
    let stale = [
        ok(0, 0, 1, json!([["append", "x", 1]])),
        ok(1, 2, 3, json!([["r", "x", []]])),
        ok(2, 4, 5, json!([["r", "x", [1]]])),
    ];
    let (got, _) = found(Kind::ListAppend, "serializable", &stale);
    assert!(got.is_empty(), "{got:?}");
    let a = la("strict-serializable", "G-single-realtime", &stale);
    assert!(a.anomalies[0]
        .sentences
        .iter()
        .any(|s| s.contains("(realtime) because T0 completed")));
    assert_eq!(a.forbidden, ["G-single-realtime"]);
    // The same on one process, concurrent with nothing: strong-session-serializable sees the
    // process variant.
    let session = [
        ok(0, 0, 1, json!([["append", "x", 1]])),
        ok(0, 2, 3, json!([["r", "x", []]])),
        ok(1, 4, 5, json!([["r", "x", [1]]])),
    ];
    la("strong-session-serializable", "G-single-process", &session);
}

#[test]
fn list_append_non_cycle_anomalies_each_reported_as_their_class() {
    use EventType::Fail;
    // G1a: a read of a failed append.
    la(
        "serializable",
        "G1a",
        &[
            T(0, 0, 1, Fail, json!([["append", "x", 1]])),
            ok(1, 2, 3, json!([["r", "x", [1]]])),
        ],
    );
    // G1b: a read that ends in the middle of another transaction's appends.
    la(
        "serializable",
        "G1b",
        &[
            ok(0, 0, 1, json!([["append", "x", 1], ["append", "x", 2]])),
            ok(1, 2, 3, json!([["r", "x", [1]]])),
        ],
    );
    // internal: a transaction that does not see its own append.
    la(
        "serializable",
        "internal",
        &[ok(0, 0, 1, json!([["append", "x", 1], ["r", "x", []]]))],
    );
    // garbage-read: an element nobody appended.
    la(
        "serializable",
        "garbage-read",
        &[
            ok(0, 0, 1, json!([["append", "x", 1]])),
            ok(1, 2, 3, json!([["r", "x", [1, 9]]])),
        ],
    );
    // incompatible-order: two reads that cannot be moments of one list.
    la(
        "read-committed",
        "incompatible-order",
        &[
            ok(0, 0, 1, json!([["append", "x", 1]])),
            ok(1, 0, 1, json!([["append", "x", 2]])),
            ok(2, 2, 3, json!([["r", "x", [1, 2]]])),
            ok(3, 2, 3, json!([["r", "x", [2, 1]]])),
        ],
    );
    // duplicate-elements.
    la(
        "read-committed",
        "duplicate-elements",
        &[
            ok(0, 0, 1, json!([["append", "x", 1]])),
            ok(1, 2, 3, json!([["r", "x", [1, 1]]])),
        ],
    );
    // future-read: a read of an element the same transaction appends later.
    la(
        "read-committed",
        "future-read",
        &[ok(0, 0, 1, json!([["r", "x", [1]], ["append", "x", 1]]))],
    );
}

#[test]
fn dirty_updates_and_lost_updates_come_with_what_they_imply() {
    use EventType::Fail;
    let (got, _) = found(
        Kind::ListAppend,
        "read-committed",
        &[
            T(0, 0, 1, Fail, json!([["append", "x", 1]])),
            ok(1, 2, 3, json!([["append", "x", 2]])),
            ok(2, 4, 5, json!([["r", "x", [1, 2]]])),
        ],
    );
    assert_eq!(got, ["G1a", "dirty-update"].map(String::from).into());
    // Two read-modify-writes from the same version: a lost update, and, with the final read
    // showing 1 before 2, the G-single it is (T2 missed T1's append, then appended after it).
    let (got, a) = found(
        Kind::ListAppend,
        "serializable",
        &[
            ok(0, 0, 1, json!([["append", "x", 0]])),
            ok(1, 2, 4, json!([["r", "x", [0]], ["append", "x", 1]])),
            ok(2, 3, 5, json!([["r", "x", [0]], ["append", "x", 2]])),
            ok(3, 6, 7, json!([["r", "x", [0, 1, 2]]])),
        ],
    );
    assert_eq!(got, ["G-single", "lost-update"].map(String::from).into());
    assert!(a.not.contains(&"cursor-stability"), "{:?}", a.not);
}

#[test]
fn valid_histories_pass_every_model() {
    let serial = [
        ok(0, 0, 1, json!([["append", "x", 1], ["r", "y", []]])),
        ok(1, 2, 3, json!([["r", "x", [1]], ["append", "y", 1]])),
        ok(
            0,
            4,
            5,
            json!([["append", "x", 2], ["r", "x", [1, 2]], ["r", "y", [1]]]),
        ),
        T(2, 6, 7, EventType::Fail, json!([["append", "z", 5]])),
        T(3, 6, 20, EventType::Info, json!([["append", "x", 3]])),
        ok(1, 8, 9, json!([["r", "x", [1, 2, 3]], ["r", "z", []]])),
    ];
    for model in [
        "strict-serializable",
        "serializable",
        "snapshot-isolation",
        "read-committed",
    ] {
        let (got, a) = found(Kind::ListAppend, model, &serial);
        assert!(got.is_empty(), "{model}: {got:?}");
        assert!(a.forbidden.is_empty());
    }
}

#[test]
fn an_unread_append_still_orders_its_readers() {
    // Write skew over elements nobody read back: Elle's inference misses it; ours must not.
    let (got, _) = found(
        Kind::ListAppend,
        "serializable",
        &[
            ok(0, 0, 2, json!([["r", "x", []], ["append", "y", 1]])),
            ok(1, 1, 3, json!([["r", "y", []], ["append", "x", 1]])),
        ],
    );
    assert_eq!(got, ["G2-item"].map(String::from).into());
}

fn rw(model: &str, class: &str, txns: &[T]) -> checkers::txn::Analysis {
    exactly(Kind::RwRegister, model, class, txns)
}

#[test]
fn rw_register_anomalies_each_reported_as_their_class() {
    use EventType::Fail;
    rw(
        "serializable",
        "G1a",
        &[
            T(0, 0, 1, Fail, json!([["w", "x", 1]])),
            ok(1, 2, 3, json!([["r", "x", 1]])),
        ],
    );
    rw(
        "serializable",
        "G1b",
        &[
            ok(0, 0, 1, json!([["w", "x", 1], ["w", "x", 2]])),
            ok(1, 2, 3, json!([["r", "x", 1]])),
        ],
    );
    rw(
        "serializable",
        "garbage-read",
        &[ok(0, 0, 1, json!([["r", "x", 7]]))],
    );
    rw(
        "serializable",
        "internal",
        &[ok(0, 0, 1, json!([["w", "x", 1], ["r", "x", 2]]))],
    );
    // Read skew: T1 saw T0's x but the initial y (every write follows the initial state).
    rw(
        "serializable",
        "G-single",
        &[
            ok(0, 0, 3, json!([["w", "x", 1], ["w", "y", 1]])),
            ok(1, 1, 4, json!([["r", "x", 1], ["r", "y", null]])),
        ],
    );
    // Write skew on the initial state.
    rw(
        "serializable",
        "G2-item",
        &[
            ok(0, 0, 2, json!([["r", "x", null], ["w", "y", 1]])),
            ok(1, 1, 3, json!([["r", "y", null], ["w", "x", 1]])),
        ],
    );
    // Versions that contradict each other: 1 then 2 (read then write), 2 then 1.
    rw(
        "serializable",
        "cyclic-versions",
        &[
            ok(0, 0, 1, json!([["r", "x", 1], ["w", "x", 2]])),
            ok(1, 2, 3, json!([["r", "x", 2], ["w", "x", 1]])),
        ],
    );
    let (got, _) = found(
        Kind::RwRegister,
        "serializable",
        &[
            ok(0, 0, 2, json!([["r", "x", null], ["w", "x", 1]])),
            ok(1, 1, 3, json!([["r", "x", null], ["w", "x", 2]])),
        ],
    );
    assert!(
        got.contains("lost-update") && got.contains("G2-item"),
        "{got:?}"
    );
}

#[test]
fn malformed_transactions_are_errors_naming_the_line() {
    let h = history(&[ok(0, 0, 1, json!([["w", "x", 1]]))]);
    let p = history::pair(&h).unwrap();
    let t = Txns::from_history(&h, &p).unwrap();
    let e = analyse(Kind::ListAppend, &t, &TxnOptions::default()).unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.message.contains("use --checker rw-register"), "{e}");
    let h = history(&[
        ok(0, 0, 1, json!([["append", "x", 1]])),
        ok(1, 2, 3, json!([["append", "x", 1]])),
    ]);
    let p = history::pair(&h).unwrap();
    let t = Txns::from_history(&h, &p).unwrap();
    let e = analyse(Kind::ListAppend, &t, &TxnOptions::default()).unwrap_err();
    assert!(e.message.contains("appended to x twice"), "{e}");
    let bad = TxnOptions {
        model: Some("serialisable".into()),
        ..TxnOptions::default()
    };
    let e = analyse(Kind::ListAppend, &t, &bad).unwrap_err();
    assert!(e.message.contains("unknown consistency model"), "{e}");
}
