//! Real `dynamo-node` processes on 127.0.0.1 ports: the /op protocol end to end (siblings and
//! contexts, CRDTs, local reads), a write acknowledged while an owner is cut off (SIGSTOP)
//! reaching it through its hint and converging, and a killed owner catching up through hints
//! and anti-entropy after a restart on its write-ahead log.

use std::time::{Duration, Instant};

use dynamo::ring::Ring;
use harness_sim::processes::Cluster;
use node::runtime::NodeId;
use serde_json::{json, Value};

const DYNAMO_NODE: &str = env!("CARGO_BIN_EXE_dynamo-node");

/// Fast anti-entropy and failure detection, so the tests wait little.
const FAST: [&str; 4] = ["--anti-entropy-ms", "200", "--fd-timeout-ms", "300"];

/// The indices of `key`'s owners in a cluster of `n` nodes named n1..nN, as every node
/// computes them.
fn owners(n: usize, key: &str) -> Vec<usize> {
    let members: Vec<(NodeId, String)> = (0..n)
        .map(|i| (NodeId(i as u64), format!("n{}", i + 1)))
        .collect();
    Ring::new(&members, 64)
        .preference_list(key, 3)
        .into_iter()
        .map(|id| id.0 as usize)
        .collect()
}

async fn local(c: &Cluster, i: usize, key: &str) -> Value {
    c.op(i, json!({"f":"read","key":key,"local":true})).await
}

async fn health(c: &Cluster, i: usize, field: &str) -> u64 {
    c.health(i)
        .await
        .and_then(|h| h[field].as_u64())
        .unwrap_or(u64::MAX)
}

/// Waits until every owner's local read of `key` equals `want`.
async fn converged(c: &Cluster, key: &str, owners: &[usize], want: &Value, within: Duration) {
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for &o in owners {
            seen.push(local(c, o, key).await["value"].clone());
        }
        if seen.iter().all(|v| v == want) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{key} did not converge to {want} within {within:?}: owners {owners:?} hold {seen:?}\n{}",
            c.logs(owners)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_op_protocol_with_siblings_contexts_and_crdts() {
    let c = Cluster::start(DYNAMO_NODE, 3, &FAST);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two blind writes through different coordinators are concurrent: siblings.
    assert_eq!(
        c.op(0, json!({"f":"write","key":"x","value":1})).await["type"],
        "ok"
    );
    let w = c.op(1, json!({"f":"write","key":"x","value":2})).await;
    assert_eq!(w["type"], "ok", "{w}");
    assert!(
        w["context"].is_string(),
        "a write answers with a context: {w}"
    );
    let r = c.op(2, json!({"f":"read","key":"x"})).await;
    assert_eq!(r["value"], json!([1, 2]), "{r}");
    assert_eq!(r["siblings"], true, "{r}");
    // A write that brings the read's context replaces exactly what it saw.
    let ctx = r["context"].as_str().expect("context").to_string();
    let w = c
        .op(0, json!({"f":"write","key":"x","value":3,"context":ctx}))
        .await;
    assert_eq!(w["type"], "ok", "{w}");
    let r = c.op(1, json!({"f":"read","key":"x"})).await;
    assert_eq!(r["value"], 3, "{r}");
    assert!(r.get("siblings").is_none(), "{r}");
    // CRDTs: a counter and a set, incremented and added through every node.
    for i in 0..3 {
        for v in 0..5 {
            let a = c.op(i, json!({"f":"incr","key":"c","value":v})).await;
            assert_eq!(a["type"], "ok", "{a}");
            let a = c
                .op(i, json!({"f":"add","key":"s","value":i * 10 + v}))
                .await;
            assert_eq!(a["type"], "ok", "{a}");
        }
    }
    assert_eq!(c.op(2, json!({"f":"read","key":"c"})).await["value"], 30);
    let s = c.op(0, json!({"f":"read","key":"s"})).await;
    assert_eq!(s["value"].as_array().map(Vec::len), Some(15), "{s}");
    // What an eventually consistent store cannot do is refused, as a definite failure.
    let cas = c.op(0, json!({"f":"cas","key":"x","value":[3,4]})).await;
    assert_eq!(cas["type"], "fail", "{cas}");
    let wrong = c.op(0, json!({"f":"incr","key":"s","value":1})).await;
    assert_eq!(wrong["type"], "fail", "{wrong}");
    assert!(
        wrong["error"]
            .as_str()
            .unwrap_or("")
            .contains("holds a set"),
        "{wrong}"
    );
    let bad = c
        .op(
            0,
            json!({"f":"write","key":"x","value":5,"context":"nonsense"}),
        )
        .await;
    assert_eq!(bad["type"], "fail", "{bad}");
    // With N = 3 of 3 nodes, every node holds every key.
    converged(&c, "c", &[0, 1, 2], &json!(30), Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_while_an_owner_is_cut_off_reaches_it_and_converges() {
    let c = Cluster::start(DYNAMO_NODE, 4, &FAST);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let key = "s";
    let own = owners(4, key);
    let outsider = (0..4)
        .find(|i| !own.contains(i))
        .expect("4 nodes, 3 owners");
    let cut = own[0];
    let a = local(&c, outsider, key).await;
    assert!(
        a["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("not-a-replica"),
        "a local read where no replica lives is refused: {a}"
    );
    c.pause(cut);
    // Let the others notice; then the outsider stands in with a hint.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for v in 0..20 {
        let r = c.op(outsider, json!({"f":"add","key":key,"value":v})).await;
        assert_eq!(r["type"], "ok", "acknowledged during the cut: {r}");
    }
    assert!(
        health(&c, outsider, "hints").await > 0,
        "the stand-in owes the cut-off owner its writes"
    );
    c.resume(cut);
    let all: Value = (0..20).collect::<Vec<i64>>().into();
    converged(&c, key, &own, &all, Duration::from_secs(10)).await;
    let start = Instant::now();
    while health(&c, outsider, "hints").await != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "hint never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(health(&c, outsider, "hints_delivered").await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owner_catches_up_through_hints_and_anti_entropy() {
    let mut c = Cluster::start(DYNAMO_NODE, 5, &FAST);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keys: Vec<String> = (0..30).map(|k| format!("c{k}")).collect();
    let victim = 2;
    c.kill(victim);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for (i, k) in keys.iter().enumerate() {
        let via = [0, 1, 3, 4][i % 4];
        let r = c.op(via, json!({"f":"incr","key":k,"value":i + 1})).await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    c.spawn(victim);
    for (i, k) in keys.iter().enumerate() {
        let own = owners(5, k);
        converged(&c, k, &own, &json!(i + 1), Duration::from_secs(15)).await;
    }
    let recovered = c.log(victim);
    assert!(recovered.matches("recovered").count() >= 2, "{recovered}");
}
