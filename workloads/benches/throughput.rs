//! How many operations per second the harness itself can drive and record: 50 clients against
//! an in-process /op server that answers at once, for 3 s (target: at least 2,000 ops/s, so the
//! harness is never the bottleneck). `cargo bench -p harness-workloads --bench throughput`.
//! Set BENCH_SECONDS / BENCH_CLIENTS to change the run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};
use workloads::{run_clients, Recorder, WorkloadConfig};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let seconds: f64 = env_or("BENCH_SECONDS", 3.0);
    let clients: usize = env_or("BENCH_CLIENTS", 50);
    let mut nodes = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=5 {
        let s = common::serve().await;
        nodes.push((format!("n{n}"), s.addr));
        servers.push(s);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for workload in [&workloads::register::WORKLOAD, &workloads::set::WORKLOAD] {
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path, Instant::now()).expect("create the history");
        let cfg = WorkloadConfig {
            concurrency: clients,
            rate: None,
            op_timeout: Duration::from_secs(1),
            seed: 1,
            keys: 5,
            workload,
            txn: workloads::TxnSettings::default(),
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = {
            let (cfg, nodes, rec) = (cfg.clone(), nodes.clone(), rec.clone());
            tokio::spawn(async move { run_clients(&cfg, &nodes, rec, rx).await })
        };
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let _ = tx.send(true);
        let stats = task.await.expect("runner");
        rec.close().await.expect("close the history");
        let h = history::jsonl::read_jsonl(&path).expect("read the history back");
        let ops = h.events.len() / 2;
        let per_s = ops as f64 / stats.elapsed.as_secs_f64();
        println!(
            "{workload:?}: {clients} clients, 5 nodes, {:.1} s: {ops} operations recorded \
             ({} ok, {} fail, {} info), {per_s:.0} ops/s{}",
            stats.elapsed.as_secs_f64(),
            stats.ok,
            stats.fail,
            stats.info,
            if per_s >= 2_000.0 {
                ""
            } else {
                "  BELOW the 2,000 ops/s target"
            }
        );
    }
}
