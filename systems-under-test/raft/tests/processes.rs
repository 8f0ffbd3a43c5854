//! Three real `raft-node` processes on 127.0.0.1 ports: the /op protocol end to end, then the
//! leader is killed, a new one is elected, and no acknowledged write is lost — also after the
//! killed node restarts on its data directory and catches up.

use std::time::Duration;

use harness_sim::processes::Cluster;
use serde_json::json;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_survive_killing_the_leader() {
    // Election timeouts of 250–500 ms with PreVote: a successor serves well within 5 s.
    harness_sim::processes::ops_survive_killing_the_leader(RAFT_NODE, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_recovers_from_its_logs_and_snapshots() {
    // Snapshots every 20 entries, so recovery goes through snapshot + log tail.
    let mut c = Cluster::start(RAFT_NODE, 3, &["--snapshot-every", "20"]);
    let leader = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    for v in 0..75 {
        let r = c
            .op(leader, json!({"f":"append","key":"l","value":v}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        assert!(
            c.data_dir(i).join("snapshot.bin").exists(),
            "n{} took no snapshot",
            i + 1
        );
        c.spawn(i);
    }
    let leader = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let r = c.op(leader, json!({"f":"read","key":"l"})).await;
    let expect: Vec<i64> = (0..75).collect();
    assert_eq!(r, json!({"type":"ok","value":expect}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_command_lines_are_refused_with_the_field() {
    let out = std::process::Command::new(RAFT_NODE)
        .args([
            "--id",
            "n9",
            "--listen",
            "127.0.0.1:1",
            "--peers",
            "n1=127.0.0.1:2",
            "--data-dir",
            "/tmp/x",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--id n9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(RAFT_NODE)
        .args([
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--peers",
            "n1=127.0.0.1:2",
            "--data-dir",
            "/tmp/x",
            "--bug",
            "typo",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typo") && err.contains("stale-read"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_far_behind_catches_up_through_big_messages() {
    // 200 values of 20 KB while a follower is down: the log it misses (4 MB) and the snapshot
    // it then needs (4 MB, with a snapshot every 50 entries) exceed any default body limit.
    let mut c = Cluster::start(RAFT_NODE, 3, &["--snapshot-every", "50"]);
    let leader = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let lagger = (leader + 1) % 3;
    c.kill(lagger);
    let big = "x".repeat(20_000);
    for v in 0..200 {
        let value = format!("{v}{big}");
        let r = c
            .op(
                leader,
                json!({"f":"write","key":format!("k{v}"),"value":value}),
            )
            .await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    c.spawn(lagger);
    c.caught_up(lagger, leader, Duration::from_secs(15)).await;
    // And it can carry the cluster: the other follower goes, writes still succeed.
    let other = 3 - leader - lagger;
    c.kill(other);
    let r = c
        .op(leader, json!({"f":"write","key":"after","value":1}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
}
