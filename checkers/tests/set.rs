//! The set checker: valid histories pass; lost, unexpected, vanished and failed-but-present
//! elements are caught with the right element; no final read is unknown.

use checkers::rng::SplitMix64;
use checkers::set::{check, SetReport};
use checkers::Verdict;
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};

/// Builds a history event by event; event `i` happens at `i` × 0.1 s.
#[derive(Default)]
struct B {
    h: History,
}

impl B {
    fn ev(&mut self, p: u64, kind: EventType, f: &str, key: &str, value: Value, node: &str) {
        let i = self.h.events.len() as u64;
        self.h.push(
            Event {
                index: i,
                time: i * 100_000_000,
                process: Process::Client(p),
                kind,
                f: f.to_owned(),
                key: Some(key.to_owned()),
                value,
                node: Some(node.to_owned()),
                error: (kind == EventType::Fail).then(|| json!("precondition")),
                local: false,
                siblings: false,
                context: None,
            },
            i as usize + 1,
        );
    }
    fn invoke_add(&mut self, p: u64, key: &str, e: u64, node: &str) {
        self.ev(p, EventType::Invoke, "add", key, json!(e), node);
    }
    fn done_add(&mut self, p: u64, kind: EventType, key: &str, e: u64, node: &str) {
        self.ev(p, kind, "add", key, json!(e), node);
    }
    fn add(&mut self, p: u64, kind: EventType, key: &str, e: u64, node: &str) {
        self.invoke_add(p, key, e, node);
        self.done_add(p, kind, key, e, node);
    }
    fn invoke_read(&mut self, p: u64, key: &str, node: &str) {
        self.ev(p, EventType::Invoke, "read", key, Value::Null, node);
    }
    fn done_read(&mut self, p: u64, key: &str, v: Value, node: &str) {
        self.ev(p, EventType::Ok, "read", key, v, node);
    }
    fn read(&mut self, p: u64, key: &str, v: Value, node: &str) {
        self.invoke_read(p, key, node);
        self.done_read(p, key, v, node);
    }
    fn check(&self) -> SetReport {
        let paired = history::pair(&self.h).expect("test histories are well formed");
        let report = check(&self.h, &paired);
        // Every report serialises.
        serde_json::to_string(&report).expect("serialises");
        report
    }
}

fn witness(r: &SetReport, key: usize) -> &checkers::set::SetWitness {
    match &r.keys[key].verdict {
        Verdict::Invalid { witness } => witness,
        other => panic!("expected invalid, got {other:?}"),
    }
}

fn elements(list: &[checkers::set::ElementAnomaly]) -> Vec<Value> {
    list.iter().map(|a| a.element.clone()).collect()
}

#[test]
fn a_valid_history_passes() {
    let mut b = B::default();
    b.add(0, EventType::Ok, "s0", 1, "n1");
    b.invoke_add(1, "s0", 2, "n2");
    // A read concurrent with the add of 2 may or may not see it.
    b.read(2, "s0", json!([1]), "n3");
    b.done_add(1, EventType::Ok, "s0", 2, "n2");
    b.add(0, EventType::Ok, "s0", 3, "n1");
    b.read(3, "s0", json!([1, 2, 3]), "n1");
    b.read(4, "s0", json!([3, 2, 1]), "n2");
    let r = b.check();
    assert_eq!(r.verdict, "valid", "{r:#?}");
    let c = &r.keys[0].counts;
    assert_eq!(
        (c.attempted, c.acknowledged, c.read_final, c.stable),
        (3, 3, 2, 3)
    );
    assert_eq!(c.reads, 3);
    assert!(r.keys[0].sentences().is_empty());
    let v = serde_json::to_value(&r).expect("serialises");
    assert_eq!(v["keys"][0]["verdict"], json!("valid"));
    assert_eq!(v["keys"][0]["key"], json!("s0"));
}

#[test]
fn a_lost_element_is_caught_with_the_read_that_missed_it() {
    let mut b = B::default();
    b.add(3, EventType::Ok, "s0", 41, "n1");
    b.add(3, EventType::Ok, "s0", 42, "n2");
    b.read(7, "s0", json!([41, 42]), "n1");
    b.read(8, "s0", json!([41, 42]), "n1");
    b.read(9, "s0", json!([41]), "n4");
    let r = b.check();
    assert_eq!(r.verdict, "invalid");
    let w = witness(&r, 0);
    assert_eq!(elements(&w.lost), vec![json!(42)]);
    let lost = &w.lost[0];
    let add = lost.add.as_ref().expect("the ok add");
    assert_eq!((add.process, add.node.as_deref()), (3, Some("n2")));
    assert_eq!((add.invoke_index, add.complete_index), (2, Some(3)));
    assert_eq!(lost.missed_total, 1);
    assert_eq!(lost.missed_by[0].node.as_deref(), Some("n4"));
    assert_eq!(lost.missed_by[0].invoke_index, 8);
    assert_eq!(lost.last_seen.as_ref().map(|r| r.complete_index), Some(7));
    assert!(w.vanished.is_empty(), "a lost element is reported once");
    assert_eq!(r.keys[0].counts.lost, 1);
    let s = &w.sentences[0];
    assert!(
        s.starts_with("element 42 of s0 was added by process 3 via n2 (ok at 0.30 s)"),
        "{s}"
    );
    assert!(s.contains("from n4 invoked at 0.80 s"), "{s}");
}

#[test]
fn an_unexpected_element_is_caught() {
    let mut b = B::default();
    b.add(0, EventType::Ok, "s0", 1, "n1");
    b.read(1, "s0", json!([1, 99]), "n2");
    let r = b.check();
    let w = witness(&r, 0);
    assert_eq!(elements(&w.unexpected), vec![json!(99)]);
    assert!(w.unexpected[0].add.is_none());
    assert_eq!(w.unexpected[0].seen_by[0].node.as_deref(), Some("n2"));
    assert!(w.lost.is_empty() && w.vanished.is_empty());
    assert!(
        w.sentences[0].contains("no process ever tried to add it"),
        "{:?}",
        w.sentences
    );
}

#[test]
fn a_vanished_element_is_caught() {
    let mut b = B::default();
    // 5's add is indeterminate, so it can never be lost, but once read it must stay.
    b.invoke_add(0, "s0", 5, "n1");
    b.done_add(0, EventType::Info, "s0", 5, "n1");
    b.add(1, EventType::Ok, "s0", 6, "n1");
    b.read(2, "s0", json!([5, 6]), "n2");
    b.read(3, "s0", json!([6]), "n3");
    let r = b.check();
    let w = witness(&r, 0);
    assert_eq!(elements(&w.vanished), vec![json!(5)]);
    let v = &w.vanished[0];
    assert_eq!(v.seen_by[0].node.as_deref(), Some("n2"));
    assert_eq!(v.missed_by[0].node.as_deref(), Some("n3"));
    assert!(w.lost.is_empty());
    assert!(
        w.sentences[0].contains("never loses an element"),
        "{:?}",
        w.sentences
    );
}

#[test]
fn an_acknowledged_element_that_vanishes_and_returns_is_vanished_not_lost() {
    let mut b = B::default();
    b.add(0, EventType::Ok, "s0", 1, "n1");
    b.invoke_add(1, "s0", 2, "n1");
    b.read(2, "s0", json!([1]), "n2");
    b.read(3, "s0", json!([]), "n3");
    b.done_add(1, EventType::Ok, "s0", 2, "n1");
    b.read(4, "s0", json!([1, 2]), "n1");
    let r = b.check();
    let w = witness(&r, 0);
    assert_eq!(elements(&w.vanished), vec![json!(1)]);
    assert!(w.lost.is_empty());
}

#[test]
fn overlapping_reads_do_not_make_a_vanishing() {
    let mut b = B::default();
    b.add(0, EventType::Ok, "s0", 1, "n1");
    // Two concurrent final reads that both contain the element.
    b.invoke_read(1, "s0", "n1");
    b.invoke_read(2, "s0", "n2");
    b.done_read(1, "s0", json!([1]), "n1");
    b.done_read(2, "s0", json!([1]), "n2");
    assert_eq!(b.check().verdict, "valid");
    // An info add read by one read and missed by a concurrent one: fine.
    let mut b = B::default();
    b.invoke_add(0, "s0", 1, "n1");
    b.done_add(0, EventType::Info, "s0", 1, "n1");
    b.invoke_read(1, "s0", "n1");
    b.invoke_read(2, "s0", "n2");
    b.done_read(1, "s0", json!([1]), "n1");
    b.done_read(2, "s0", json!([]), "n2");
    let r = b.check();
    assert_eq!(r.verdict, "valid", "{r:#?}");
    assert_eq!(r.keys[0].counts.recovered, 1);
}

#[test]
fn a_failed_add_that_is_read_is_caught() {
    let mut b = B::default();
    b.add(0, EventType::Fail, "s0", 8, "n1");
    b.add(0, EventType::Ok, "s0", 9, "n1");
    b.read(1, "s0", json!([8, 9]), "n2");
    let r = b.check();
    let w = witness(&r, 0);
    assert_eq!(elements(&w.failed_but_present), vec![json!(8)]);
    let add = w.failed_but_present[0]
        .add
        .as_ref()
        .expect("the failed add");
    assert_eq!(add.kind, "fail");
    assert_eq!(add.error, Some(json!("precondition")));
    let s = &w.sentences[0];
    assert!(s.contains("failed at 0.10 s (precondition)"), "{s}");
    assert!(s.contains("never take effect"), "{s}");
    assert_eq!(r.keys[0].counts.failed, 1);
}

#[test]
fn indeterminate_and_failed_adds_are_never_lost() {
    let mut b = B::default();
    b.add(0, EventType::Info, "s0", 1, "n1");
    b.add(1, EventType::Fail, "s0", 2, "n1");
    // Never completes: the run ended with it in flight.
    b.invoke_add(2, "s0", 3, "n1");
    b.read(3, "s0", json!([]), "n2");
    let r = b.check();
    assert_eq!(r.verdict, "valid", "{r:#?}");
    let c = &r.keys[0].counts;
    assert_eq!(
        (c.attempted, c.indeterminate, c.failed, c.read_final),
        (3, 2, 1, 1)
    );
}

#[test]
fn no_final_read_is_unknown() {
    let mut b = B::default();
    b.read(0, "s0", json!([]), "n1");
    b.add(1, EventType::Ok, "s0", 1, "n1");
    let r = b.check();
    assert_eq!(r.verdict, "unknown");
    match &r.keys[0].verdict {
        Verdict::Unknown { reason } => assert!(reason.starts_with("no final read"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.keys[0].sentences().len(), 1);
    // Without any read at all.
    let mut b = B::default();
    b.add(1, EventType::Ok, "s0", 1, "n1");
    assert_eq!(b.check().verdict, "unknown");
    // A history without set operations decides nothing.
    let mut b = B::default();
    b.ev(0, EventType::Invoke, "write", "k", json!(1), "n1");
    b.ev(0, EventType::Ok, "write", "k", json!(1), "n1");
    let r = b.check();
    assert_eq!((r.verdict, r.keys.len()), ("unknown", 0));
}

#[test]
fn keys_are_checked_apart() {
    let mut b = B::default();
    b.add(0, EventType::Ok, "s10", 1, "n1");
    b.add(0, EventType::Ok, "s2", 2, "n1");
    b.read(1, "s10", json!([1]), "n1");
    // 1 belongs to s10: in s2 it is unexpected, and 2 is lost.
    b.read(2, "s2", json!([1]), "n2");
    let r = b.check();
    assert_eq!(r.verdict, "invalid");
    let names: Vec<_> = r
        .keys
        .iter()
        .map(|k| k.key.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["s2", "s10"], "natural order");
    assert_eq!(r.keys[1].verdict.name(), "valid");
    let w = witness(&r, 0);
    assert_eq!(elements(&w.lost), vec![json!(2)]);
    assert_eq!(elements(&w.unexpected), vec![json!(1)]);
    assert_eq!(r.count("invalid"), 1);
}

/// A simulated client's operation in flight: (is an add, element, took effect yet, what a
/// read saw when it took effect).
type InFlight = (bool, u64, bool, Option<Value>);

/// A linearizable set with concurrent clients whose operations take effect at a random moment
/// between invocation and completion; then the same history with one element dropped from one
/// final read.
#[test]
fn simulated_linearizable_sets_pass_and_one_drop_is_caught() {
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = SplitMix64(seed);
    let mut b = B::default();
    let mut set: Vec<u64> = Vec::new();
    let clients = 6u64;
    let mut flight: Vec<Option<InFlight>> = vec![None; clients as usize];
    let mut next = 1u64;
    for _ in 0..4_000 {
        let p = rng.below(clients);
        let slot = &mut flight[p as usize];
        match slot.take() {
            None => {
                if rng.below(10) == 0 {
                    b.invoke_read(p, "s0", "n1");
                    *slot = Some((false, 0, false, None));
                } else {
                    b.invoke_add(p, "s0", next, "n1");
                    *slot = Some((true, next, false, None));
                    next += 1;
                }
            }
            Some((is_add, e, applied, seen)) => {
                if !applied && rng.below(2) == 0 {
                    // Take effect now, complete later.
                    let seen = if is_add {
                        set.push(e);
                        None
                    } else {
                        Some(json!(set.clone()))
                    };
                    *slot = Some((is_add, e, true, seen));
                    continue;
                }
                let seen = if applied {
                    seen
                } else if is_add {
                    set.push(e);
                    None
                } else {
                    Some(json!(set.clone()))
                };
                match (is_add, seen) {
                    (true, _) => b.done_add(p, EventType::Ok, "s0", e, "n1"),
                    (false, Some(v)) => b.done_read(p, "s0", v, "n1"),
                    (false, None) => unreachable!("reads record what they saw"),
                }
            }
        }
    }
    // Finish what is in flight, then two final reads.
    for (p, slot) in flight.iter_mut().enumerate() {
        if let Some((is_add, e, applied, seen)) = slot.take() {
            if is_add {
                if !applied {
                    set.push(e);
                }
                b.done_add(p as u64, EventType::Ok, "s0", e, "n1");
            } else {
                let v = seen.unwrap_or_else(|| json!(set.clone()));
                b.done_read(p as u64, "s0", v, "n1");
            }
        }
    }
    b.read(100, "s0", json!(set.clone()), "n1");
    let full = b.h.clone();
    b.read(101, "s0", json!(set.clone()), "n2");
    let r = b.check();
    assert_eq!(
        r.verdict,
        "valid",
        "reproduce with SEED={seed}: {:?}",
        r.sentences()
    );
    assert!(r.keys[0].counts.stable > 500, "{:?}", r.keys[0].counts);

    let dropped = set.remove(set.len() / 2);
    let mut b = B { h: full };
    b.read(101, "s0", json!(set), "n2");
    let r = b.check();
    let w = witness(&r, 0);
    assert_eq!(
        elements(&w.lost),
        vec![json!(dropped)],
        "reproduce with SEED={seed}"
    );
    assert_eq!(w.lost[0].missed_by[0].node.as_deref(), Some("n2"));
}

/// Eventual mode (a system that promises no-lost-updates, not linearizability): what the
/// checker judges through the registry, as a run does.
/// Stable latency: from an element's add until every later read contains it.
mod stable_latency {
    use super::*;

    #[test]
    fn it_runs_from_the_add_to_the_last_read_that_missed_it() {
        let mut b = B::default();
        b.add(0, EventType::Ok, "s0", 1, "n1"); // events 0-1: invoked at 0 s
        b.read(1, "s0", json!([]), "n2"); // 2-3: missed 1, invoked at 0.2 s
        b.read(2, "s0", json!([1]), "n1"); // 4-5
        b.add(0, EventType::Ok, "s0", 2, "n1"); // 6-7: invoked at 0.6 s
        b.read(1, "s0", json!([1, 2]), "n2"); // 8-9: no read after 0.6 s missed 2
        b.add(0, EventType::Ok, "s0", 3, "n1"); // 10-11: invoked at 1.0 s
        b.read(3, "s0", json!([1, 2, 3]), "n3"); // 12-13
        b.read(1, "s0", json!([1, 2, 3]), "n2"); // 14-15
        let r = b.check();
        assert_eq!(r.verdict, "valid", "{:?}", r.sentences());
        let l = r.keys[0].stable_latency.clone().expect("measured");
        assert_eq!(l.count, 3);
        assert_eq!(l.median_ns, 0);
        assert_eq!(l.p95_ns, 200_000_000);
        assert_eq!(l.max_ns, 200_000_000);
        assert_eq!(l.slowest, Some(json!(1)));
        assert_eq!(r.stable_latency.as_ref().map(|l| l.count), Some(3));
        let result = r.into_result();
        assert!(
            result
                .summary
                .iter()
                .any(|s| s.contains("latency to visibility")
                    && s.contains("median 0.0 ms, p95 200.0 ms, max 200.0 ms over 3 elements")),
            "{:?}",
            result.summary
        );
        assert_eq!(
            result.detail["keys"][0]["stable_latency"]["max_ns"],
            json!(200_000_000)
        );
        assert_eq!(result.detail["stable_latency"]["count"], json!(3));
    }

    #[test]
    fn a_stale_read_on_another_node_after_the_element_was_seen_extends_it() {
        let mut b = B::default();
        b.add(0, EventType::Ok, "s0", 1, "n1"); // invoked at 0 s
        b.read(1, "s0", json!([1]), "n1");
        b.read(2, "s0", json!([]), "n3"); // events 4-5: n3 had not caught up at 0.4 s
        b.add(0, EventType::Ok, "s0", 2, "n1"); // so the reads above are not final ones
        b.read(1, "s0", json!([1, 2]), "n3");
        b.read(2, "s0", json!([1, 2]), "n2");
        let r = b.check();
        // A linearizable set may not do that (vanished), but the latency is measured alike.
        assert_eq!(r.keys[0].counts.vanished, 1);
        assert_eq!(
            r.keys[0].stable_latency.as_ref().map(|l| l.max_ns),
            Some(400_000_000)
        );
    }

    #[test]
    fn lost_unread_and_unacknowledged_elements_are_not_measured() {
        let mut b = B::default();
        b.add(0, EventType::Ok, "s0", 1, "n1");
        b.add(1, EventType::Ok, "s0", 2, "n1"); // lost
        b.add(2, EventType::Info, "s0", 3, "n1"); // indeterminate, recovered
        b.read(3, "s0", json!([1, 3]), "n1");
        let r = b.check();
        assert_eq!(r.verdict, "invalid");
        assert_eq!(r.keys[0].stable_latency.as_ref().map(|l| l.count), Some(1));
        // No read: nothing measured, and nothing said.
        let mut b = B::default();
        b.add(0, EventType::Ok, "s0", 1, "n1");
        let r = b.check();
        assert!(r.keys[0].stable_latency.is_none());
        assert!(!r
            .into_result()
            .summary
            .iter()
            .any(|s| s.contains("latency to visibility")));
    }
}

mod eventual {
    use super::*;
    use checkers::{registry, Judgement};

    fn check_eventual(b: &B) -> checkers::CheckerResult {
        let paired = history::pair(&b.h).expect("well formed");
        let checker = registry::find("set").expect("registered");
        let mut opts = checkers::Options::new(checkers::ModelKind::CasRegister);
        let promises = vec!["convergent".to_owned(), "no-lost-updates".to_owned()];
        assert!(checker.promised_by(&promises, &mut opts));
        assert!(opts.eventual);
        checker.check(&b.h, &paired, &opts).expect("checks")
    }

    fn local_read(b: &mut B, p: u64, key: &str, v: Value, node: &str) {
        b.read(p, key, v, node);
        let at = b.h.events.len() - 2;
        b.h.events[at].local = true;
    }

    #[test]
    fn a_stale_read_during_the_run_is_allowed() {
        let mut b = B::default();
        b.add(1, EventType::Ok, "s0", 1, "n1");
        b.read(2, "s0", json!([1]), "n1");
        // n2 has not caught up yet: in linearizable mode 1 vanished.
        b.read(3, "s0", json!([]), "n2");
        local_read(&mut b, 10, "s0", json!([1]), "n1");
        local_read(&mut b, 11, "s0", json!([1]), "n2");
        let r = check_eventual(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.summary);
        assert!(r.anomalies.is_empty());
        assert!(r.summary[0].starts_with("eventual mode"), "{:?}", r.summary);
        assert!(
            r.summary
                .iter()
                .any(|s| s.contains("vanished") && s.contains("allowed")),
            "{:?}",
            r.summary
        );
        // The same history, judged in full: vanished.
        let full = b.check();
        assert_eq!(full.verdict, "invalid");
    }

    #[test]
    fn a_client_read_after_the_last_add_is_not_final_when_local_ones_exist() {
        let mut b = B::default();
        b.add(1, EventType::Ok, "s0", 1, "n1");
        b.read(3, "s0", json!([]), "n2");
        local_read(&mut b, 10, "s0", json!([1]), "n1");
        local_read(&mut b, 11, "s0", json!([1]), "n2");
        assert_eq!(check_eventual(&b).verdict, Judgement::Valid);
    }

    #[test]
    fn an_acknowledged_element_missing_from_a_final_read_is_lost() {
        let mut b = B::default();
        b.add(1, EventType::Ok, "s0", 1, "n1");
        b.add(1, EventType::Ok, "s0", 2, "n1");
        local_read(&mut b, 10, "s0", json!([1, 2]), "n1");
        local_read(&mut b, 11, "s0", json!([1]), "n2");
        let r = check_eventual(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        let kinds: Vec<&str> = r.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["lost"]);
    }

    #[test]
    fn unexpected_and_failed_but_present_are_still_violations() {
        let mut b = B::default();
        b.add(1, EventType::Fail, "s0", 1, "n1");
        local_read(&mut b, 10, "s0", json!([1, 9]), "n1");
        let r = check_eventual(&b);
        let kinds: Vec<&str> = r.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["unexpected", "failed-but-present"]);
    }
}
