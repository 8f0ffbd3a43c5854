//! The recorder writes a history that the history crate reads back and pairs.

use history::{EventType, Process};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use workloads::{Completion, Op, Recorder};

fn read(path: &Path) -> history::History {
    history::jsonl::read_jsonl(path).expect("the recorder writes a readable history")
}

fn check_order(h: &history::History) {
    for (i, ev) in h.events.iter().enumerate() {
        assert_eq!(ev.index, i as u64);
    }
    for w in h.events.windows(2) {
        assert!(w[0].time <= w[1].time, "time goes backwards: {w:?}");
    }
    assert!(h.warnings.is_empty(), "{:?}", h.warnings);
}

#[tokio::test]
async fn many_writers_make_one_ordered_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).expect("create");
    let mut threads = Vec::new();
    for t in 0..8u64 {
        let rec = rec.clone();
        threads.push(std::thread::spawn(move || {
            for n in 0..500u64 {
                let op = Op {
                    f: "write".into(),
                    key: Some("k0".into()),
                    value: json!(t * 1000 + n),
                    local: false,
                    context: None,
                };
                rec.invoke(t, &op, "n1");
                let kind = if n % 3 == 0 {
                    EventType::Fail
                } else {
                    EventType::Ok
                };
                let c = Completion {
                    kind,
                    value: op.value.clone(),
                    error: (kind == EventType::Fail).then(|| "precondition".to_owned()),
                    refused: false,
                    siblings: false,
                    context: None,
                };
                rec.complete(t, &op, "n1", &c);
            }
        }));
    }
    for t in threads {
        t.join().expect("writer thread");
    }
    rec.nemesis(EventType::Info, "start-partition", json!({"n1": ["n2"]}));
    let counts = rec.counts();
    assert_eq!(counts.invoked, 4000);
    assert_eq!(counts.ok + counts.fail, 4000);
    rec.close().await.expect("close");
    let h = read(&path);
    assert_eq!(h.events.len(), 8001);
    check_order(&h);
    let last = h.events.last().expect("events");
    assert_eq!(last.process, Process::Nemesis);
    assert_eq!(last.f, "start-partition");
    let paired = history::pair(&h).expect("pairs");
    assert_eq!(paired.ops.len(), 4000);
    assert_eq!(paired.nemesis.len(), 1);
    let failed = paired
        .ops
        .iter()
        .find(|o| o.kind == EventType::Fail)
        .expect("a failed op");
    assert_eq!(failed.error, Some(json!("precondition")));
    assert_eq!(failed.node.as_deref(), Some("n1"));
}

#[tokio::test]
async fn events_reach_the_file_within_a_second_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).expect("create");
    let op = Op::read("k0");
    rec.invoke(0, &op, "n1");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let h = read(&path);
    assert_eq!(h.events.len(), 1, "flushed without close");
    let c = Completion {
        kind: EventType::Info,
        value: json!(null),
        error: Some("timeout".into()),
        refused: false,
        siblings: false,
        context: None,
    };
    rec.complete(0, &op, "n1", &c);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(read(&path).events.len(), 2);
    rec.close().await.expect("close");
    // Closing twice is harmless; events after close are dropped and counted.
    rec.close().await.expect("second close");
    rec.invoke(1, &op, "n1");
    assert_eq!(rec.dropped(), 1);
    assert_eq!(read(&path).events.len(), 2);
}

#[test]
fn dropping_the_last_handle_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    {
        let rec = Recorder::create(&path, Instant::now()).expect("create");
        for p in 0..1000 {
            rec.invoke(p, &Op::read("k0"), "n1");
        }
    }
    let h = read(&path);
    assert_eq!(h.events.len(), 1000);
    check_order(&h);
}

#[test]
fn close_blocking_works_outside_a_runtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).expect("create");
    rec.nemesis(EventType::Info, "kill", json!(["n1"]));
    rec.close_blocking().expect("close");
    assert_eq!(read(&path).events.len(), 1);
}

#[tokio::test]
async fn write_errors_are_reported_by_close() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("no /dev/full here; skipped");
        return;
    }
    let rec = Recorder::create(full, Instant::now()).expect("create");
    for p in 0..10_000 {
        rec.invoke(p, &Op::read("k0"), "n1");
    }
    let err = rec.close().await.expect_err("/dev/full cannot be written");
    assert!(err.to_string().contains("history.jsonl"), "{err}");
}

/// sled-style: the test re-runs itself as a child that records without end, kills it with
/// SIGKILL, and checks that the file holds a readable prefix flushed within the last second.
#[test]
fn a_killed_process_leaves_a_readable_prefix() {
    const CHILD: &str = "WORKLOADS_RECORDER_CHILD";
    if let Ok(path) = std::env::var(CHILD) {
        let rec = Recorder::create(Path::new(&path), Instant::now()).expect("create");
        for p in 0u64.. {
            let op = Op {
                f: "add".into(),
                key: Some("s0".into()),
                value: json!(p),
                local: false,
                context: None,
            };
            rec.invoke(p, &op, "n1");
            let c = Completion {
                kind: EventType::Ok,
                value: json!(p),
                error: None,
                refused: false,
                siblings: false,
                context: None,
            };
            rec.complete(p, &op, "n1", &c);
            if p % 100 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_killed_process_leaves_a_readable_prefix",
            "--nocapture",
        ])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the child");
    std::thread::sleep(Duration::from_millis(2_500));
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let h = read(&path);
    assert!(h.events.len() > 1_000, "{} events", h.events.len());
    for (i, ev) in h.events.iter().enumerate() {
        assert_eq!(ev.index, i as u64);
    }
    history::pair(&h).expect("a prefix pairs (an open invocation is indeterminate)");
}
