//! Seeded, deterministic simulations of 3- and 5-server clusters under message loss, delay,
//! duplication, reordering, partitions and crash-restart. After every step the invariants of
//! the paper hold; at the end, our linearizability checker finds the clients' history valid, and
//! the causal checker finds it causal (CC, CCv and CM), as linearizability implies.
//!
//! A failure prints its seed; `SEED=<n> cargo test -p raft-node --test simulation` replays it
//! exactly, and `SEEDS=<n>` runs more.

mod sim;

use raft::core::ReadMode;
use sim::{check_history, seeds, Sim, SimConfig};

fn run_seeds(nodes: usize, salt: u64, count: u64, tweak: impl Fn(&mut SimConfig)) {
    let mut failures = Vec::new();
    let mut ok_ops = 0;
    let mut fail_ops = 0;
    let mut info_ops = 0;
    let mut elections = 0;
    let mut snapshots = 0;
    for seed in seeds(count, salt) {
        let mut cfg = SimConfig::new(nodes, seed);
        tweak(&mut cfg);
        let result = Sim::new(cfg).run();
        ok_ops += result.ops_ok;
        fail_ops += result.ops_fail;
        info_ops += result.ops_info;
        elections += result.elections;
        snapshots += result.snapshots_installed;
        if std::env::var("TRACE").is_ok() {
            for line in &result.trace {
                eprintln!("{line}");
            }
        }
        if let Some(v) = result.violation {
            failures.push(format!("{v} (reproduce with SEED={seed})"));
            continue;
        }
        if let Err(e) = check_history(&result.history) {
            failures.push(format!("seed {seed}: {e} (reproduce with SEED={seed})"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The runs must have exercised something, or passing means nothing.
    assert!(
        ok_ops > 0 && elections > 0,
        "no progress: {ok_ops} ok ops, {elections} elections"
    );
    eprintln!("{nodes} servers: {ok_ops} ok, {fail_ops} fail, {info_ops} info operations, {elections} elections, {snapshots} snapshots installed");
}

#[test]
fn three_servers_stay_safe_and_linearizable() {
    run_seeds(3, 1, 60, |_| {});
}

#[test]
fn five_servers_stay_safe_and_linearizable() {
    run_seeds(5, 2, 40, |_| {});
}

#[test]
fn heavy_faults_stay_safe() {
    run_seeds(5, 3, 30, |c| {
        c.drop = 0.2;
        c.duplicate = 0.1;
        c.max_delay = 12;
        c.partition = 0.02;
        c.heal = 0.02;
        c.crash = 0.01;
        // Short outages, or a majority is rarely up at all.
        c.max_down = 40;
    });
}

#[test]
fn without_pre_vote_stays_safe() {
    run_seeds(5, 4, 30, |c| {
        c.pre_vote = false;
        c.drop = 0.1;
        c.partition = 0.02;
        c.heal = 0.02;
        c.crash = 0.01;
        c.max_down = 40;
    });
}

#[test]
fn lease_reads_with_agreeing_clocks_are_linearizable() {
    run_seeds(3, 4, 40, |c| c.read_mode = ReadMode::Lease);
}

/// Clock jumps of up to ±5 s, aimed at leaders by isolating them.
fn jumping_clocks(c: &mut SimConfig) {
    c.clock_skew_ms = 5_000;
    c.clock_jump = 0.01;
    c.target_leader = true;
    c.partition = 0.01;
}

#[test]
fn read_index_does_not_care_about_clocks() {
    run_seeds(3, 5, 40, jumping_clocks);
}

#[test]
fn lease_reads_under_jumping_clocks_are_caught() {
    // The lease is timed on the leader's wall clock (thesis 6.4.1 assumes bounded drift); a
    // leader whose clock is set back keeps serving after it was deposed. The harness's clock
    // nemesis relies on this being visible.
    let mut caught = None;
    for seed in 0..100 {
        let mut cfg = SimConfig::new(3, seed);
        cfg.read_mode = ReadMode::Lease;
        jumping_clocks(&mut cfg);
        let result = Sim::new(cfg).run();
        assert!(result.violation.is_none(), "{:?}", result.violation);
        if let Err(e) = check_history(&result.history) {
            caught = Some(format!("seed {seed}: {e}"));
            break;
        }
    }
    let caught = caught.expect("stale lease reads under clock jumps were never seen in 100 seeds");
    eprintln!("lease under clock jumps: {caught}");
}

#[test]
fn a_seed_replays_exactly() {
    let a = Sim::new(SimConfig::new(5, 77)).run();
    let b = Sim::new(SimConfig::new(5, 77)).run();
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.history.events, b.history.events);
    let c = Sim::new(SimConfig::new(5, 78)).run();
    assert_ne!(a.trace, c.trace, "different seeds give different runs");
}

#[test]
fn without_faults_almost_everything_succeeds() {
    let mut cfg = SimConfig::new(3, 5);
    cfg.drop = 0.0;
    cfg.duplicate = 0.0;
    cfg.partition = 0.0;
    cfg.crash = 0.0;
    let r = Sim::new(cfg).run();
    if std::env::var("TRACE").is_ok() {
        for line in &r.trace {
            eprintln!("{line}");
        }
    }
    assert!(r.violation.is_none(), "{:?}", r.violation);
    check_history(&r.history).expect("valid");
    // Failures are refused cas and the moments before the first election; nothing times out.
    assert!(
        r.ops_info == 0 && r.ops_ok > 4 * r.ops_fail,
        "{} ok, {} fail, {} info",
        r.ops_ok,
        r.ops_fail,
        r.ops_info
    );
}
