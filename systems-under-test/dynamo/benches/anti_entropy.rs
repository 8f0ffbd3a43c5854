//! Anti-entropy, measured on real `dynamo-node` processes: three nodes with N=3 (every node
//! replicates every key, so no stand-in exists and no hint is written: only Merkle
//! anti-entropy can bring a node back), one of them cut off by SIGSTOP for 10 s while the
//! others take writes, then resumed. Figures: the time from the resume until every node's
//! store digest is equal, and the anti-entropy bytes all nodes sent in that time beside a
//! full transfer of one replica's store.
//!
//! Three scenarios: 10,000 keys loaded before the cut and 100 or 1,000 of them rewritten
//! during it (what Merkle trees are for: only differing leaves travel, and the fewer differ
//! the less travels), and 10,000 keys written during the cut (everything differs: the tree's
//! cost on top of a full transfer). The node is cut off for a second before the writes
//! start, so that none reaches it before the failure detector takes it for down.
//!
//! `cargo bench -p dynamo-node --bench anti_entropy` (KEYS=n, CUT_SECS=n; BENCH_QUICK=1 for
//! a smoke run: 1,000 keys, a 2 s cut).

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_sim::processes::Cluster;
use serde_json::json;

const DYNAMO_NODE: &str = env!("CARGO_BIN_EXE_dynamo-node");

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn field(c: &Cluster, i: usize, name: &str) -> u64 {
    c.health(i)
        .await
        .and_then(|h| h[name].as_u64())
        .unwrap_or(0)
}

/// Writes `keys` keys (`k{from}`..) through nodes 0 and 1, 64 at a time.
async fn write(c: &Arc<Cluster>, from: u64, keys: u64, tag: u64) {
    let mut tasks = Vec::new();
    for lane in 0..64u64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut k = lane;
            while k < keys {
                let key = format!("k{}", from + k);
                let r = c
                    .op(
                        (k % 2) as usize,
                        json!({"f":"write","key":key,"value":tag * 1_000_000 + k}),
                    )
                    .await;
                assert_eq!(r["type"], "ok", "{r}");
                k += 64;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
}

/// Waits until all three digests agree; how long it took.
async fn converge(c: &Cluster, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let d = [
            field(c, 0, "store_digest").await,
            field(c, 1, "store_digest").await,
            field(c, 2, "store_digest").await,
        ];
        if d[0] == d[1] && d[1] == d[2] {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "no convergence within {within:?}: {d:?}\n{}",
            c.logs(&[0, 1, 2])
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn ae_bytes(c: &Cluster) -> u64 {
    let mut sum = 0;
    for i in 0..3 {
        sum += field(c, i, "ae_bytes").await;
    }
    sum
}

async fn scenario(name: &str, preload: u64, during: u64, cut: Duration) {
    let c = Arc::new(Cluster::start(DYNAMO_NODE, 3, &[]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    if preload > 0 {
        write(&c, 0, preload, 1).await;
        converge(&c, Duration::from_secs(60)).await;
    }
    c.pause(2);
    let paused = Instant::now();
    // Until the others take it for down they still send it writes, which would wait in its
    // socket and arrive on resume without anti-entropy: write only after that.
    tokio::time::sleep(Duration::from_secs(1)).await;
    write(&c, 0, during, 2).await;
    if let Some(rest) = cut.checked_sub(paused.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let before = ae_bytes(&c).await;
    c.resume(2);
    let took = converge(&c, Duration::from_secs(60)).await;
    let sent = ae_bytes(&c).await - before;
    let full = field(&c, 0, "store_bytes").await;
    println!(
        "{name}: {} keys, {} written during a {:.0} s cut: converged {:.0} ms after the resume; \
         anti-entropy sent {} bytes, a full transfer of one replica is {} bytes (ratio {:.3})",
        field(&c, 0, "keys").await,
        during,
        cut.as_secs_f64(),
        took.as_secs_f64() * 1000.0,
        sent,
        full,
        sent as f64 / full.max(1) as f64
    );
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let keys = env_u64("KEYS", if quick { 1_000 } else { 10_000 });
    let cut = Duration::from_secs(env_u64("CUT_SECS", if quick { 2 } else { 10 }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        scenario("a hundredth rewritten", keys, keys / 100, cut).await;
        scenario("a tenth rewritten", keys, keys / 10, cut).await;
        scenario("all written during the cut", 0, keys, cut).await;
    });
}
