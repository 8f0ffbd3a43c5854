//! The cluster benchmark every bundled server shares: three processes on loopback, fsync on,
//! acknowledged writes and linearizable reads per second with p50/p99 latency at 1, 10 and 50
//! concurrent clients talking to the leader, and the time from killing the leader to the
//! first write acknowledged by its successor. Each system's `benches/cluster.rs` calls
//! [`cluster`] with its binary, so raft-node and paxos-node are measured by the same code.
//!
//! Targets: >= 5000 writes/s at 50 clients, p99 < 50 ms, failover < 1 s. `BENCH_SECS=n` per
//! row (default 5), `BENCH_QUICK=1` for a smoke run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::processes::Cluster;
use serde_json::json;

struct Figures {
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    not_ok: u64,
}

async fn load(c: &Arc<Cluster>, node: usize, clients: usize, secs: f64, reads: bool) -> Figures {
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..clients {
        let c = c.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut not_ok = 0u64;
            while Instant::now() < stop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let key = format!("k{}", (n as usize + t) % 100);
                let body = if reads {
                    json!({"f":"read","key":key})
                } else {
                    json!({"f":"write","key":key,"value":n})
                };
                let t0 = Instant::now();
                let r = c.op(node, body).await;
                if r["type"] == "ok" {
                    lat.push(t0.elapsed());
                } else {
                    not_ok += 1;
                }
            }
            (lat, not_ok)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut not_ok = 0;
    for t in tasks {
        let (lat, n) = t.await.expect("client task");
        all.extend(lat);
        not_ok += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    Figures {
        ops_per_s: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        not_ok,
    }
}

async fn failover(c: &mut Cluster) -> Duration {
    let leader = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    // Make sure the cluster is warm and the survivors know the leader.
    for v in 0..20 {
        c.op(leader, json!({"f":"write","key":"warm","value":v}))
            .await;
    }
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let killed = Instant::now();
    c.kill(leader);
    let mut n = 0;
    let took = loop {
        let node = survivors[n % 2];
        n += 1;
        let r = tokio::time::timeout(
            Duration::from_millis(300),
            c.op(node, json!({"f":"write","key":"failover","value":n})),
        )
        .await;
        if matches!(r, Ok(ref v) if v["type"] == "ok") {
            break killed.elapsed();
        }
        if killed.elapsed() > Duration::from_secs(20) {
            break killed.elapsed();
        }
    };
    c.spawn(leader);
    let _ = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    took
}

/// Runs the benchmark against `program` (a server binary taking the shared node arguments),
/// printing a table; `name` heads it. With `BENCH_ONLY=failover` only the failover trials run
/// (`FAILOVER_TRIALS`, default 3, 1 with `BENCH_QUICK`).
pub fn cluster(program: &str, name: &str) {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 1.0 } else { 5.0 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = Arc::new(Cluster::start(program, 3, &[]));
        let leader = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
        println!("{name}, 3 processes on loopback, fsync on, {secs} s per row, clients talk to the leader");
        println!("{:<6} {:>7} {:>10} {:>8} {:>8} {:>7}", "op", "clients", "ops/s", "p50 ms", "p99 ms", "not ok");
        let mut writes_at_50 = None;
        let only_failover = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "failover");
        let rows: &[bool] = if only_failover { &[] } else { &[false, true] };
        for &reads in rows {
            for clients in [1, 10, 50] {
                let f = load(&c, leader, clients, secs, reads).await;
                println!(
                    "{:<6} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>7}",
                    if reads { "read" } else { "write" },
                    clients,
                    f.ops_per_s,
                    f.p50_ms,
                    f.p99_ms,
                    f.not_ok
                );
                if !reads && clients == 50 {
                    writes_at_50 = Some(f);
                }
            }
        }
        let mut c = Arc::into_inner(c).expect("no client task holds the cluster any more");
        let trials = std::env::var("FAILOVER_TRIALS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if quick { 1 } else { 3 });
        let mut worst = Duration::ZERO;
        for t in 1..=trials {
            let took = failover(&mut c).await;
            println!("failover {t}: first write acknowledged by the new leader {:.0} ms after SIGKILL of the old one", took.as_secs_f64() * 1000.0);
            worst = worst.max(took);
        }
        if let Some(w) = writes_at_50 {
            let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
            println!(
                "targets: writes/s at 50 clients >= 5000: {:.0} ({}); p99 < 50 ms: {:.2} ms ({}); failover < 1 s: {:.0} ms ({})",
                w.ops_per_s,
                verdict(w.ops_per_s >= 5000.0),
                w.p99_ms,
                verdict(w.p99_ms < 50.0),
                worst.as_secs_f64() * 1000.0,
                verdict(worst < Duration::from_secs(1))
            );
        }
    });
}
