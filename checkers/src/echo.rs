//! The echo checker: Maelstrom's `echo` workload (jepsen-io/maelstrom, doc/workloads.md), the
//! first thing a Maelstrom node learns to do: every `echo` that completed `ok` must have
//! returned exactly the value it was invoked with (JSON equality; the workload sends a string
//! no other operation sends, so an answer meant for another request shows).
//!
//! Anomaly: **wrong-echo**, one per operation (up to [`MAX_ANOMALIES`]), naming what was sent
//! and what came back, and, when another echo sent what came back, that one too. Echoes that
//! failed or ended indeterminate are counted.

use crate::registry::Checker;
use crate::result::{brief, line, secs, widen, Anomaly, CheckerResult, Judgement};
use crate::{CheckError, Options};
use history::{EventType, History, Paired};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// Anomalies described (the rest are counted).
pub const MAX_ANOMALIES: usize = 20;

/// The figures of a check, its `detail`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoDetail {
    pub attempted: usize,
    pub acknowledged: usize,
    pub failed: usize,
    pub indeterminate: usize,
    /// Ok echoes whose answer differed from what they sent.
    pub wrong: usize,
}

/// The registry's echo checker.
pub struct Echo;

impl Checker for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn property(&self) -> &'static str {
        "echo"
    }

    fn about(&self) -> &'static str {
        "Maelstrom's echo: every acknowledged echo returned exactly the value it sent"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        _opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        Ok(check(history, paired))
    }
}

/// Checks every `echo` operation (others are ignored).
pub fn check(history: &History, paired: &Paired) -> CheckerResult {
    let started = Instant::now();
    let mut d = EchoDetail::default();
    // Which echo sent each value, to name the request a misdirected answer belonged to.
    let mut sender: HashMap<String, usize> = HashMap::new();
    let mut wrong = Vec::new();
    for (i, op) in paired.ops.iter().enumerate() {
        if op.f != "echo" {
            continue;
        }
        d.attempted += 1;
        sender.entry(op.input.to_string()).or_insert(i);
        match op.kind {
            EventType::Ok if op.complete.is_some() => {
                d.acknowledged += 1;
                if op.output != op.input {
                    wrong.push(i);
                }
            }
            EventType::Fail => d.failed += 1,
            _ => d.indeterminate += 1,
        }
    }
    d.wrong = wrong.len();
    let anomalies: Vec<Anomaly> = wrong
        .iter()
        .take(MAX_ANOMALIES)
        .map(|&i| {
            let other = sender
                .get(&paired.ops[i].output.to_string())
                .copied()
                .filter(|&o| o != i);
            wrong_echo(history, paired, i, other)
        })
        .collect();
    let mut summary = Vec::new();
    if d.wrong > 0 {
        summary.push(format!(
            "{} of {} acknowledged echoes returned something other than what they sent",
            d.wrong, d.acknowledged
        ));
        summary.extend(
            anomalies
                .iter()
                .take(3)
                .filter_map(|a| a.sentences.first().cloned()),
        );
    }
    if d.failed + d.indeterminate > 0 {
        summary.push(format!(
            "{} echoes failed and {} ended indeterminate (info): nothing to check in them",
            d.failed, d.indeterminate
        ));
    }
    let verdict = if d.wrong > 0 {
        Judgement::Invalid
    } else if d.acknowledged == 0 {
        summary.push("no acknowledged echo to check".into());
        Judgement::Unknown
    } else {
        summary.insert(
            0,
            format!(
                "all {} acknowledged echoes returned what they sent",
                d.acknowledged
            ),
        );
        Judgement::Valid
    };
    CheckerResult {
        checker: "echo".into(),
        verdict,
        promised: true,
        summary,
        anomalies,
        elapsed_us: started.elapsed().as_micros() as u64,
        detail: serde_json::to_value(&d).unwrap_or_default(),
    }
}

fn wrong_echo(history: &History, paired: &Paired, i: usize, other: Option<usize>) -> Anomaly {
    let op = &paired.ops[i];
    let complete = op.complete.expect("only completed echoes are judged");
    let (inv, done) = (&history.events[op.invoke], &history.events[complete]);
    let mut span_ns = None;
    widen(&mut span_ns, inv.time, done.time);
    let mut ops = vec![inv.index];
    let mut sentences = vec![format!(
        "The echo by process {} via {} (invoked at {}, ok at {}, lines {}–{}) sent {} but got \
         back {}.",
        op.process,
        op.node.as_deref().unwrap_or("an unnamed node"),
        secs(inv.time),
        secs(done.time),
        line(history, op.invoke),
        line(history, complete),
        brief(&op.input),
        brief(&op.output)
    )];
    if let Some(o) = other {
        let oop = &paired.ops[o];
        let oinv = &history.events[oop.invoke];
        ops.push(oinv.index);
        let end = oop.complete.map_or(oinv.time, |c| history.events[c].time);
        widen(&mut span_ns, oinv.time, end);
        sentences.push(format!(
            "That is what the echo by process {} (invoked at {}, line {}) sent: the answer to \
             another request.",
            oop.process,
            secs(oinv.time),
            line(history, oop.invoke)
        ));
    }
    sentences.push("An echo must return exactly the value it was sent.".into());
    Anomaly {
        kind: "wrong-echo".into(),
        key: None,
        title: format!(
            "An echo of {} came back as {}",
            brief(&op.input),
            brief(&op.output)
        ),
        sentences,
        ops,
        cycle: Vec::new(),
        span_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Builder, Ev};
    use serde_json::{json, Value};

    fn run(b: &Builder) -> CheckerResult {
        b.check_with("echo")
    }

    fn echo(b: &mut Builder, p: u64, sent: Value, ev: Ev) -> u64 {
        b.keyless(p, "n1", "echo", sent, ev)
    }

    #[test]
    fn exact_echoes_pass_and_failures_are_only_counted() {
        let mut b = Builder::new();
        echo(&mut b, 0, json!("w0-1"), Ev::ok_value(json!("w0-1")));
        echo(&mut b, 1, json!("w1-1"), Ev::ok_value(json!("w1-1")));
        echo(&mut b, 2, json!("w2-1"), Ev::info());
        echo(&mut b, 3, json!("w3-1"), Ev::fail());
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.anomalies);
        assert_eq!(r.detail["acknowledged"], json!(2));
        assert!(r.summary[0].contains("all 2 acknowledged echoes"));
    }

    #[test]
    fn a_wrong_answer_is_rejected_and_a_misdirected_one_names_its_request() {
        let mut b = Builder::new();
        let other = echo(&mut b, 0, json!("w0-1"), Ev::ok_value(json!("w0-1")));
        let bad = echo(&mut b, 1, json!("w1-1"), Ev::ok_value(json!("w0-1")));
        let garbled = echo(&mut b, 2, json!("w2-1"), Ev::ok_value(json!("w2-")));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        let kinds: Vec<_> = r.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["wrong-echo", "wrong-echo"]);
        assert_eq!(r.anomalies[0].ops, vec![bad, other]);
        assert!(
            r.anomalies[0].sentences[0].contains(r#"sent "w1-1" but got back "w0-1""#),
            "{:?}",
            r.anomalies[0].sentences
        );
        assert!(r.anomalies[0].sentences[1].contains("process 0"));
        assert_eq!(r.anomalies[1].ops, vec![garbled]);
        assert_eq!(r.anomalies[1].span_ns, Some([4_000_000, 5_000_000]));
    }

    #[test]
    fn a_value_of_another_type_is_wrong_and_no_ok_echo_is_unknown() {
        let mut b = Builder::new();
        echo(&mut b, 0, json!("7"), Ev::ok_value(json!(7)));
        assert_eq!(run(&b).verdict, Judgement::Invalid);
        let mut b = Builder::new();
        echo(&mut b, 0, json!("x"), Ev::info());
        assert_eq!(run(&b).verdict, Judgement::Unknown);
    }
}
