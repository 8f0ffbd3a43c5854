//! The counter checker: histories whose reads stay within their bounds pass (indeterminate
//! increments may or may not count); a lost acknowledged increment, a read above everything
//! that was attempted, and a read during the run that misses an increment completed before it
//! began are rejected with the read as the witness; no final read is unknown. Decrements (a
//! PN-counter's negative increments) bound reads from the other side: a read that misses an
//! acknowledged decrement, or goes below every decrement attempted, is rejected too.

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
    assert!(
        r.summary.iter().any(|s| s.contains("no final read")),
        "{:?}",
        r.summary
    );
}

fn kinds(r: &checkers::CheckerResult) -> Vec<&str> {
    r.anomalies.iter().map(|a| a.kind.as_str()).collect()
}

#[test]
fn with_decrements_every_combination_of_the_indeterminate_ones_passes() {
    for final_value in [2, 0, 6, 4] {
        let mut b = B::default();
        b.incr(0, 5, EventType::Ok);
        b.incr(1, -3, EventType::Ok);
        b.incr(2, -2, EventType::Info); // may or may not have happened
        b.incr(3, 4, EventType::Info); // likewise
        b.incr(4, -5, EventType::Fail); // certainly did not
        b.read(5, json!(final_value));
        let r = b.check();
        assert_eq!(
            r.verdict,
            Judgement::Valid,
            "{final_value}: {:?}",
            r.anomalies
        );
        assert_eq!(r.detail["keys"][0]["acknowledged_sum"], json!(2));
    }
}

#[test]
fn a_decrement_concurrent_with_a_read_may_or_may_not_be_seen() {
    let mut b = B::default();
    b.incr(0, 5, EventType::Ok);
    b.ev(1, EventType::Invoke, "incr", json!(-2));
    b.read(2, json!(3));
    b.read(3, json!(5));
    b.ev(1, EventType::Ok, "incr", json!(-2));
    b.read(4, json!(3));
    let r = b.check();
    assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.anomalies);
}

#[test]
fn a_lost_decrement_is_rejected_naming_the_decrement() {
    let mut b = B::default();
    b.incr(0, 5, EventType::Ok);
    b.incr(1, -3, EventType::Ok); // lost
    b.read(2, json!(5));
    let r = b.check();
    assert_eq!(r.verdict, Judgement::Invalid);
    assert_eq!(kinds(&r), ["higher-than-acknowledged"]);
    let a = &r.anomalies[0];
    // The read, then the acknowledged decrement it missed.
    assert_eq!(a.ops, vec![4, 2]);
    assert!(
        a.sentences[0].contains("must lie between 2 and 2"),
        "{:?}",
        a.sentences
    );
    assert!(
        a.sentences[1].starts_with("1 acknowledged decrements, adding up to -3"),
        "{:?}",
        a.sentences
    );
    assert!(
        a.sentences[2].contains("incr -3 by process 1"),
        "{:?}",
        a.sentences
    );
    assert!(
        a.sentences
            .last()
            .is_some_and(|s| s.contains("at least 3 of acknowledged decrements")),
        "{:?}",
        a.sentences
    );
}

#[test]
fn with_decrements_a_lost_increment_is_still_lower_than_acknowledged() {
    let mut b = B::default();
    b.incr(0, 5, EventType::Ok); // lost
    b.incr(1, -3, EventType::Ok);
    b.read(2, json!(-3));
    let r = b.check();
    assert_eq!(kinds(&r), ["lower-than-acknowledged"]);
    let a = &r.anomalies[0];
    assert_eq!(a.ops, vec![4, 0], "the read, then the increment it missed");
    assert!(
        a.sentences
            .last()
            .is_some_and(|s| s.contains("or a decrement took effect more than once")),
        "{:?}",
        a.sentences
    );
}

#[test]
fn a_read_below_every_decrement_attempted_is_rejected() {
    let mut b = B::default();
    b.incr(0, -3, EventType::Ok);
    b.incr(1, -2, EventType::Fail);
    b.read(2, json!(-5)); // the failed decrement took effect
    let r = b.check();
    assert_eq!(kinds(&r), ["lower-than-attempted"]);
    assert!(
        r.anomalies[0]
            .title
            .contains("below the -3 that may have been taken away"),
        "{}",
        r.anomalies[0].title
    );
    // With increments only, a negative read is below anything attempted.
    let mut b = B::default();
    b.incr(0, 2, EventType::Ok);
    b.read(1, json!(-1));
    assert_eq!(kinds(&b.check()), ["lower-than-attempted"]);
}

/// Eventual mode (a system that promises no-lost-updates, not linearizability).
mod eventual {
    use super::*;

    fn check_eventual(b: &B) -> checkers::CheckerResult {
        let paired = history::pair(&b.h).expect("well formed");
        let checker = registry::find("counter").expect("registered");
        let mut opts = checkers::Options::new(checkers::ModelKind::CasRegister);
        let promises = vec!["convergent".to_owned(), "no-lost-updates".to_owned()];
        assert!(checker.promised_by(&promises, &mut opts));
        checker.check(&b.h, &paired, &opts).expect("checks")
    }

    fn local_read(b: &mut B, p: u64, v: Value) {
        b.read(p, v);
        let at = b.h.events.len() - 2;
        b.h.events[at].local = true;
    }

    #[test]
    fn a_stale_read_during_the_run_is_allowed() {
        let mut b = B::default();
        b.incr(1, 2, EventType::Ok);
        b.read(2, json!(0));
        b.incr(1, 3, EventType::Ok);
        b.read(4, json!(2));
        local_read(&mut b, 10, json!(5));
        local_read(&mut b, 11, json!(5));
        let r = check_eventual(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.summary);
        assert!(r.summary[0].starts_with("eventual mode"));
        assert!(r
            .summary
            .iter()
            .any(|s| s.contains("2 reads during the run")));
        let full = b.check();
        assert_eq!(
            kinds(&full),
            ["lower-than-acknowledged", "lower-than-acknowledged"]
        );
    }

    #[test]
    fn a_final_read_below_the_acknowledged_sum_is_lost() {
        let mut b = B::default();
        b.incr(1, 2, EventType::Ok);
        b.incr(1, 3, EventType::Ok);
        local_read(&mut b, 10, json!(5));
        local_read(&mut b, 11, json!(2));
        let r = check_eventual(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        assert_eq!(kinds(&r), ["lower-than-acknowledged"]);
    }

    #[test]
    fn a_read_above_the_attempted_sum_is_always_a_violation() {
        let mut b = B::default();
        b.incr(1, 2, EventType::Ok);
        b.read(2, json!(7));
        b.incr(1, 3, EventType::Fail);
        local_read(&mut b, 10, json!(2));
        let r = check_eventual(&b);
        assert_eq!(kinds(&r), ["higher-than-attempted"]);
    }

    #[test]
    fn a_stale_read_that_missed_a_decrement_is_allowed_during_the_run_only() {
        let mut b = B::default();
        b.incr(1, 5, EventType::Ok);
        b.incr(1, -3, EventType::Ok);
        b.read(2, json!(5)); // a replica without the decrement
        b.read(3, json!(0)); // one with neither
        b.read(4, json!(-3)); // one with the decrement only
        local_read(&mut b, 10, json!(2));
        local_read(&mut b, 11, json!(2));
        let r = check_eventual(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.anomalies);
        assert_eq!(r.detail["keys"][0]["stale"], json!(3));
        assert_eq!(
            kinds(&b.check()),
            [
                "higher-than-acknowledged",
                "lower-than-acknowledged",
                "lower-than-acknowledged"
            ]
        );
        // A final read that still misses the decrement loses it.
        let mut b = B::default();
        b.incr(1, 5, EventType::Ok);
        b.incr(1, -3, EventType::Ok);
        local_read(&mut b, 10, json!(2));
        local_read(&mut b, 11, json!(5));
        assert_eq!(kinds(&check_eventual(&b)), ["higher-than-acknowledged"]);
    }

    #[test]
    fn a_read_no_combination_of_attempts_gives_is_always_a_violation() {
        let mut b = B::default();
        b.incr(1, 5, EventType::Ok);
        b.incr(1, -3, EventType::Ok);
        b.read(2, json!(-4)); // below -3, every decrement there was
        b.read(3, json!(6)); // above 5, every increment there was
        local_read(&mut b, 10, json!(2));
        let r = check_eventual(&b);
        assert_eq!(kinds(&r), ["lower-than-attempted", "higher-than-attempted"]);
    }
}
