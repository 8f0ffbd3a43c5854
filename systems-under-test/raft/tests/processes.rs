//! Three real `raft-node` processes on 127.0.0.1 ports: the /op protocol end to end, then the
//! leader is killed, a new one is elected, and no acknowledged write is lost — also after the
//! killed node restarts on its data directory and catches up.

use std::time::Duration;

use harness_sim::processes::Cluster;
use serde_json::json;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_survive_killing_the_leader() {
    let mut c = Cluster::start(RAFT_NODE, 3, &[]);
    let leader = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let follower = (leader + 1) % 3;

    // The protocol of DESIGN section 3, through a follower (which forwards) and the leader.
    assert_eq!(
        c.op(follower, json!({"f":"write","key":"x","value":1}))
            .await,
        json!({"type":"ok"})
    );
    assert_eq!(
        c.op(leader, json!({"f":"read","key":"x"})).await,
        json!({"type":"ok","value":1})
    );
    assert_eq!(
        c.op(follower, json!({"f":"read","key":"nope"})).await,
        json!({"type":"ok","value":null})
    );
    assert_eq!(
        c.op(follower, json!({"f":"cas","key":"x","value":[1,2]}))
            .await,
        json!({"type":"ok"})
    );
    assert_eq!(
        c.op(leader, json!({"f":"cas","key":"x","value":[1,3]}))
            .await,
        json!({"type":"fail","error":"precondition"})
    );
    assert_eq!(
        c.op(leader, json!({"f":"add","key":"s","value":5})).await["type"],
        "ok"
    );
    assert_eq!(
        c.op(leader, json!({"f":"incr","key":"c","value":2})).await["type"],
        "ok"
    );
    assert_eq!(
        c.op(
            follower,
            json!({"f":"txn","value":[["r","x",null],["append","l",7],["r","l",null]]})
        )
        .await,
        json!({"type":"ok","value":[["r","x",2],["append","l",7],["r","l",[7]]]})
    );
    let bad = c.op(leader, json!({"f":"cas","key":"x","value":5})).await;
    assert_eq!(bad["type"], "fail", "{bad}");

    // Acknowledged writes, then the leader dies without a word.
    let mut acked = Vec::new();
    for v in 0..50 {
        let key = format!("k{}", v % 5);
        let r = c
            .op(follower, json!({"f":"write","key":key,"value":v}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        acked.push((key, v));
    }
    c.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = c.leader(&survivors, Duration::from_secs(5)).await;
    assert_ne!(new_leader, leader);
    let last: std::collections::BTreeMap<String, i64> = acked.iter().cloned().collect();
    for (key, v) in &last {
        for &i in &survivors {
            let r = c.op(i, json!({"f":"read","key":key})).await;
            assert_eq!(
                r,
                json!({"type":"ok","value":v}),
                "n{} lost {key}={v}",
                i + 1
            );
        }
    }
    assert_eq!(
        c.op(survivors[0], json!({"f":"read","key":"x"})).await["value"],
        2
    );

    // Writes go on with two of three; the killed node comes back on its data and catches up.
    assert_eq!(
        c.op(survivors[1], json!({"f":"write","key":"after","value":9}))
            .await["type"],
        "ok"
    );
    c.spawn(leader);
    c.caught_up(leader, new_leader, Duration::from_secs(10))
        .await;
    // Its own reads are forwarded to the leader, and they see everything.
    assert_eq!(
        c.op(leader, json!({"f":"read","key":"after"})).await,
        json!({"type":"ok","value":9})
    );
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
