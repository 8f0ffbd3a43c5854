//! The counter checker: histories whose reads stay within their bounds pass (indeterminate
//! increments may or may not count); a lost acknowledged increment, a read above everything
//! that was attempted, and a read during the run that misses an increment completed before it
//! began are rejected with the read as the witness; no final read is unknown.

use checkers::{registry, Judgement};
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};

/// Builds a history event by event; event `i` happens at `i` × 0.1 s.
#[derive(Default)]
struct B {
    h: History,
}

impl B {
    fn ev(&mut self, p: u64, kind: EventType, f: &str, value: Value) {
        let i = self.h.events.len() as u64;
        self.h.push(
            Event {
                index: i,
                time: i * 100_000_000,
                process: Process::Client(p),
                kind,
                f: f.to_owned(),
                key: Some("c0".to_owned()),
                value,
                node: Some(format!("n{}", p % 3 + 1)),
                error: None,
                local: false,
                siblings: false,
                context: None,
            },
            i as usize + 1,
        );
    }
    fn incr(&mut self, p: u64, n: i64, kind: EventType) {
        self.ev(p, EventType::Invoke, "incr", json!(n));
        self.ev(p, kind, "incr", json!(n));
    }
    fn read(&mut self, p: u64, v: Value) {
        self.ev(p, EventType::Invoke, "read", Value::Null);
        self.ev(p, EventType::Ok, "read", v);
    }
    fn check(&self) -> checkers::CheckerResult {
        let paired = history::pair(&self.h).expect("test histories are well formed");
        let checker = registry::find("counter").expect("registered");
        let r = checker
            .check(
                &self.h,
                &paired,
                &checkers::Options::new(checkers::ModelKind::CasRegister),
            )
            .expect("counter histories check");
        serde_json::to_string(&r).expect("serialises");
        r
    }
}

#[test]
fn reads_within_bounds_pass_and_indeterminate_increments_may_count_or_not() {
    for final_value in [6, 9] {
        let mut b = B::default();
        b.read(0, Value::Null); // absent: 0
        b.incr(0, 2, EventType::Ok);
        b.incr(1, 4, EventType::Ok);
        b.incr(2, 3, EventType::Info); // may or may not have happened
        b.incr(3, 5, EventType::Fail); // certainly did not
        b.read(4, json!(final_value));
        b.read(5, json!(final_value));
        let r = b.check();
        assert_eq!(
            r.verdict,
            Judgement::Valid,
            "{final_value}: {:?}",
            r.summary
        );
        assert!(r.anomalies.is_empty());
        assert_eq!(r.detail["keys"][0]["acknowledged_sum"], json!(6));
        assert_eq!(r.detail["keys"][0]["final_reads"], json!(2));
    }
}

#[test]
fn a_lost_increment_is_rejected_with_the_final_read_and_the_increments_it_missed() {
    let mut b = B::default();
    b.incr(0, 2, EventType::Ok);
    b.incr(1, 4, EventType::Ok); // lost
    b.incr(2, 1, EventType::Ok);
    b.read(3, json!(3));
    let r = b.check();
    assert_eq!(r.verdict, Judgement::Invalid);
    assert_eq!(r.anomalies.len(), 1);
    let a = &r.anomalies[0];
    assert_eq!(a.kind, "lower-than-acknowledged");
    assert_eq!(a.key.as_deref(), Some("c0"));
    // The read first (invoked at event 6), then the acknowledged increments, latest first.
    assert_eq!(a.ops, vec![6, 4, 2, 0]);
    assert!(
        a.title.contains("final read of 3, below the 7"),
        "{}",
        a.title
    );
    assert!(
        a.sentences[0].contains("must lie between 7 and 7"),
        "{:?}",
        a.sentences
    );
    assert_eq!(a.span_ns, Some([0, 700_000_000]));
}

#[test]
fn a_read_above_every_attempt_is_rejected() {
    let mut b = B::default();
    b.incr(0, 2, EventType::Ok);
    b.incr(1, 4, EventType::Fail);
    b.read(2, json!(6));
    let r = b.check();
    assert_eq!(r.verdict, Judgement::Invalid);
    assert_eq!(r.anomalies[0].kind, "higher-than-attempted");
    assert_eq!(r.anomalies[0].ops, vec![4]);
}

#[test]
fn a_read_during_the_run_must_see_increments_completed_before_it_began() {
    let mut b = B::default();
    b.incr(0, 5, EventType::Ok);
    // Concurrent with this read, an increment of 1 is in flight: 5 and 6 are both fine.
    b.ev(1, EventType::Invoke, "incr", json!(1));
    b.read(2, json!(6));
    b.read(3, json!(5));
    // ...but 0 misses the acknowledged 5.
    b.read(4, json!(0));
    b.ev(1, EventType::Ok, "incr", json!(1));
    b.read(5, json!(6));
    let r = b.check();
    assert_eq!(r.verdict, Judgement::Invalid, "{:?}", r.summary);
    assert_eq!(r.anomalies.len(), 1);
    assert_eq!(r.anomalies[0].ops[0], 7);
    assert!(
        r.anomalies[0].title.contains("a read of 0"),
        "{}",
        r.anomalies[0].title
    );
}

#[test]
fn no_final_read_is_unknown() {
    let mut b = B::default();
    b.read(0, json!(0));
    b.incr(1, 2, EventType::Ok);
    let r = b.check();
    assert_eq!(r.verdict, Judgement::Unknown);
    assert!(r.summary[0].contains("no final read"), "{:?}", r.summary);
}
