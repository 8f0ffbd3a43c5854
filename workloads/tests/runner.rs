//! The runner drives clients as Jepsen does and records a history that pairs.

mod common;

use common::{refused_addr, serve};
use history::{EventType, Process};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use workloads::{final_reads, run_clients, OpClient, Recorder, RunStats, Workload, WorkloadConfig};

fn cfg(workload: &'static Workload, concurrency: usize, rate: Option<f64>) -> WorkloadConfig {
    WorkloadConfig {
        concurrency,
        rate,
        op_timeout: Duration::from_millis(300),
        seed: 42,
        keys: 3,
        workload,
        txn: workloads::TxnSettings::default(),
    }
}

/// Runs the clients for `run_for`, then stops them; returns the stats, the time from the stop
/// to the clients' return, and the history.
async fn run_for(
    cfg: &WorkloadConfig,
    nodes: &[(String, SocketAddr)],
    dir: &Path,
    run_for: Duration,
) -> (RunStats, Duration, history::History, Recorder) {
    let path = dir.join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).expect("create");
    let (tx, rx) = watch::channel(false);
    let task = {
        let (cfg, nodes, rec) = (cfg.clone(), nodes.to_vec(), rec.clone());
        tokio::spawn(async move { run_clients(&cfg, &nodes, rec, rx).await })
    };
    tokio::time::sleep(run_for).await;
    let stopped = Instant::now();
    tx.send(true).expect("clients listen");
    let stats = task.await.expect("runner");
    let stop_took = stopped.elapsed();
    rec.close().await.expect("close");
    let empty = std::fs::metadata(&path)
        .map(|m| m.len() == 0)
        .unwrap_or(false);
    let h = if empty {
        history::History::new(&path)
    } else {
        history::jsonl::read_jsonl(&path).expect("readable")
    };
    (stats, stop_took, h, rec)
}

async fn two_nodes() -> (Vec<(String, SocketAddr)>, Vec<common::TestServer>) {
    let a = serve().await;
    let b = serve().await;
    (
        vec![("n1".to_owned(), a.addr), ("n2".to_owned(), b.addr)],
        vec![a, b],
    )
}

#[tokio::test]
async fn clients_talk_to_their_node_and_the_history_pairs() {
    let (nodes, _servers) = two_nodes().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(&workloads::register::WORKLOAD, 5, None);
    let (stats, _, h, rec) = run_for(&c, &nodes, dir.path(), Duration::from_millis(500)).await;
    let paired = history::pair(&h).expect("the history pairs");
    assert!(stats.ok > 100, "{stats:?}");
    assert_eq!(stats.info, 0);
    let counts = rec.counts();
    assert_eq!(
        (counts.ok, counts.fail, counts.info),
        (stats.ok, stats.fail, stats.info)
    );
    assert_eq!(paired.ops.len() as u64, stats.ok + stats.fail + stats.info);
    for op in &paired.ops {
        assert!(op.process < 5);
        let want = &nodes[(op.process as usize % 5) % nodes.len()].0;
        assert_eq!(op.node.as_ref(), Some(want));
        assert_ne!(op.kind, EventType::Info, "no op is left open after stop");
    }
    assert!(paired
        .ops
        .iter()
        .any(|o| o.f == "cas" && o.kind == EventType::Ok));
    assert_eq!(stats.next_process, 5);
    for (i, ev) in h.events.iter().enumerate() {
        assert_eq!(ev.index, i as u64);
    }
    assert!(h.events.windows(2).all(|w| w[0].time <= w[1].time));
}

#[tokio::test]
async fn a_client_continues_under_a_fresh_process_after_info() {
    let s = serve().await;
    // Every 4th operation answers after the timeout.
    s.switches.slow_every.store(4, Ordering::SeqCst);
    s.switches.slow_ms.store(1_000, Ordering::SeqCst);
    let nodes = vec![("n1".to_owned(), s.addr)];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = cfg(&workloads::register::WORKLOAD, 3, None);
    c.op_timeout = Duration::from_millis(100);
    let (stats, _, h, _) = run_for(&c, &nodes, dir.path(), Duration::from_millis(800)).await;
    assert!(stats.info > 0, "{stats:?}");
    // pair() rejects a process used again after its info.
    let paired = history::pair(&h).expect("the history pairs");
    let mut by_worker: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for op in &paired.ops {
        let ids = by_worker.entry(op.process % 3).or_default();
        if ids.last() != Some(&op.process) {
            ids.push(op.process);
        }
    }
    for (w, ids) in by_worker {
        let expect: Vec<u64> = (0..ids.len() as u64).map(|k| w + 3 * k).collect();
        assert_eq!(ids, expect, "worker {w} retires ids in order");
    }
    let max = paired.ops.iter().map(|o| o.process).max().unwrap_or(0);
    // A client retired by its last operation holds an id it never used; it counts as used.
    assert!(stats.next_process > max, "{stats:?} vs {max}");
}

#[tokio::test]
async fn the_rate_is_roughly_respected() {
    let (nodes, _servers) = two_nodes().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(&workloads::set::WORKLOAD, 4, Some(100.0));
    let (stats, _, _, _) = run_for(&c, &nodes, dir.path(), Duration::from_secs(2)).await;
    let total = stats.ok + stats.fail + stats.info;
    // 200 expected; jitter is uniform, so 4 clients x ~50 ops each stay well within this.
    assert!((120..=280).contains(&total), "{total} ops in 2 s at 100/s");
}

#[tokio::test]
async fn stop_is_prompt_even_with_slow_operations_in_flight() {
    let s = serve().await;
    let nodes = vec![("n1".to_owned(), s.addr)];
    let dir = tempfile::tempdir().expect("tempdir");
    // Slow but within the timeout: in-flight ops finish as ok.
    s.switches.delay_ms.store(150, Ordering::SeqCst);
    let mut c = cfg(&workloads::register::WORKLOAD, 8, None);
    c.op_timeout = Duration::from_millis(400);
    let (stats, took, h, _) = run_for(&c, &nodes, dir.path(), Duration::from_millis(400)).await;
    assert!(took < Duration::from_millis(1_000), "stop took {took:?}");
    assert!(stats.ok > 0);
    history::pair(&h).expect("pairs");
    // Ops slower than the timeout: the wait is bounded by it.
    s.switches.delay_ms.store(5_000, Ordering::SeqCst);
    let (stats, took, h, _) = run_for(&c, &nodes, dir.path(), Duration::from_millis(100)).await;
    // Bounded by the 400 ms timeout, not the 5 s answer (slack for a loaded machine).
    assert!(took < Duration::from_millis(1_500), "stop took {took:?}");
    assert_eq!(stats.ok, 0);
    let paired = history::pair(&h).expect("pairs");
    assert!(paired.ops.iter().all(|o| o.kind == EventType::Info));
    // With a rate, a client asleep between operations stops at once.
    s.switches.delay_ms.store(0, Ordering::SeqCst);
    let c = cfg(&workloads::register::WORKLOAD, 2, Some(0.5));
    let (_, took, _, _) = run_for(&c, &nodes, dir.path(), Duration::from_millis(100)).await;
    assert!(took < Duration::from_millis(500), "stop took {took:?}");
}

#[tokio::test]
async fn the_same_seed_gives_each_client_the_same_operations() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (nodes, _servers) = two_nodes().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let c = cfg(&workloads::set::WORKLOAD, 4, None);
        let (_, _, h, _) = run_for(&c, &nodes, dir.path(), Duration::from_millis(300)).await;
        let mut per_client: BTreeMap<u64, Vec<(String, Option<String>, serde_json::Value)>> =
            BTreeMap::new();
        for ev in h.events.iter().filter(|e| e.kind == EventType::Invoke) {
            if let Process::Client(p) = ev.process {
                per_client.entry(p % 4).or_default().push((
                    ev.f.clone(),
                    ev.key.clone(),
                    ev.value.clone(),
                ));
            }
        }
        runs.push(per_client);
    }
    for w in 0..4 {
        let (a, b) = (&runs[0][&w], &runs[1][&w]);
        let n = a.len().min(b.len());
        assert!(n > 20, "client {w} did {n} ops");
        assert_eq!(a[..n], b[..n], "client {w}");
    }
}

#[tokio::test]
async fn final_reads_read_every_key_from_every_node_and_retry() {
    let good = serve().await;
    let down = refused_addr().await;
    let nodes = vec![("n1".to_owned(), good.addr), ("n2".to_owned(), down)];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).expect("create");
    let client = OpClient::new(Duration::from_millis(300));
    let keys = vec!["s0".to_owned(), "s1".to_owned()];
    let t0 = Instant::now();
    let r = final_reads(&keys, &nodes, &client, &rec, 100).await;
    assert!(
        t0.elapsed() < Duration::from_secs(7),
        "retries run concurrently"
    );
    rec.close().await.expect("close");
    assert_eq!((r.ok, r.failed), (2, 2));
    assert_eq!(r.next_process, 100 + 4 * 5);
    let h = history::jsonl::read_jsonl(&path).expect("readable");
    let paired = history::pair(&h).expect("pairs");
    let ok: Vec<_> = paired
        .ops
        .iter()
        .filter(|o| o.kind == EventType::Ok)
        .collect();
    assert_eq!(ok.len(), 2);
    assert!(ok
        .iter()
        .all(|o| o.f == "read" && o.node.as_deref() == Some("n1")));
    let to_down = paired
        .ops
        .iter()
        .filter(|o| o.node.as_deref() == Some("n2"))
        .count();
    assert_eq!(to_down, 2 * 5, "five attempts per key on the dead node");
    let mut procs: Vec<u64> = paired.ops.iter().map(|o| o.process).collect();
    procs.sort_unstable();
    procs.dedup();
    assert_eq!(
        procs.len(),
        paired.ops.len(),
        "each attempt its own process"
    );
    assert!(procs.iter().all(|p| (100..120).contains(p)));
}

#[tokio::test]
async fn final_reads_are_local_and_a_node_that_is_not_a_replica_is_skipped_at_once() {
    let a = serve().await;
    let b = serve().await;
    b.switches.not_a_replica.store(true, Ordering::SeqCst);
    let nodes = vec![("n1".to_owned(), a.addr), ("n2".to_owned(), b.addr)];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let rec = Recorder::create(&path, Instant::now()).expect("create");
    let client = OpClient::new(Duration::from_millis(300));
    let keys = vec!["s0".to_owned(), "s1".to_owned()];
    let t0 = Instant::now();
    let r = final_reads(&keys, &nodes, &client, &rec, 100).await;
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "no retry after not-a-replica"
    );
    rec.close().await.expect("close");
    assert_eq!((r.ok, r.failed, r.skipped), (2, 0, 2));
    let h = history::jsonl::read_jsonl(&path).expect("readable");
    let invokes: Vec<_> = h
        .events
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .collect();
    assert_eq!(invokes.len(), 4, "one attempt per pair");
    assert!(invokes.iter().all(|e| e.local));
    assert_eq!(b.switches.received.lock().expect("lock").len(), 2);
}

/// Each process is a session: the context the system returned for a key goes with the
/// session's next operation on that key, and only that key's.
#[tokio::test]
async fn a_session_sends_back_the_last_context_of_each_key() {
    let s = serve().await;
    s.switches.dynamo.store(true, Ordering::SeqCst);
    let nodes = vec![("n1".to_owned(), s.addr)];
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(&workloads::register::WORKLOAD, 1, None);
    let (stats, _, h, _) = run_for(&c, &nodes, dir.path(), Duration::from_millis(300)).await;
    assert!(stats.ok > 20, "{stats:?}");
    let mut last: BTreeMap<(u64, String), String> = BTreeMap::new();
    let mut sent_some = 0;
    for e in &h.events {
        let (Process::Client(p), Some(k)) = (e.process, e.key.clone()) else {
            continue;
        };
        match e.kind {
            EventType::Invoke => {
                assert_eq!(
                    e.context.as_ref(),
                    last.get(&(p, k.clone())),
                    "event {}",
                    e.index
                );
                if let Some(ctx) = &e.context {
                    assert!(
                        ctx.starts_with(&format!("{k}@")),
                        "a context of another key"
                    );
                    sent_some += 1;
                }
            }
            EventType::Ok => {
                let ctx = e
                    .context
                    .clone()
                    .expect("the server returns a context on ok");
                last.insert((p, k), ctx);
            }
            _ => {}
        }
    }
    assert!(sent_some > 10);
    assert!(h.events.iter().any(|e| e.siblings && e.value.is_array()));
}

/// A client refused at once (here: a connection refused, as by a killed node) backs off,
/// exponentially up to about 100 ms, instead of recording thousands of refusals a second;
/// a client of a node that answers is not slowed.
#[tokio::test]
async fn instant_refusals_back_off() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let c = cfg(&workloads::register::WORKLOAD, 1, None);
    let nodes = vec![("n1".to_owned(), closed)];
    let (stats, _, _, _) = run_for(&c, &nodes, dir.path(), Duration::from_secs(1)).await;
    assert_eq!(stats.ok + stats.info, 0, "{stats:?}");
    // 2, 4, ..., 64 ms, then 50–100 ms each: a second holds about 20, never hundreds.
    assert!(
        (5..60).contains(&stats.fail),
        "refusals in one second: {stats:?}"
    );

    let (nodes, _servers) = two_nodes().await;
    let c = cfg(&workloads::register::WORKLOAD, 1, None);
    let (stats, _, _, _) = run_for(&c, &nodes, dir.path(), Duration::from_secs(1)).await;
    assert!(stats.ok > 200, "an answering node is not slowed: {stats:?}");
}
