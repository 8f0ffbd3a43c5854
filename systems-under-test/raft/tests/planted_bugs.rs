//! Each planted `--bug` must be caught by the simulation, through a broken invariant or a
//! history our linearizability checker rejects, within a bounded number of seeds: proof that
//! the bug is real and that the tests can see it.

mod sim;

use raft::core::Bugs;
use sim::{check_history, Sim, SimConfig};

/// Runs seeds until one exposes the bug; returns what exposed it.
fn hunt(bug: &str, nodes: usize, max_seeds: u64, tweak: impl Fn(&mut SimConfig)) -> String {
    let mut bugs = Bugs::default();
    bugs.enable(bug).expect("a known bug");
    let first = std::env::var("SEED").map_or(0, |s| s.parse().expect("SEED is a number"));
    for seed in first..first + max_seeds {
        let mut cfg = SimConfig::new(nodes, seed);
        cfg.bugs = bugs;
        tweak(&mut cfg);
        let result = Sim::new(cfg).run();
        if let Some(v) = result.violation {
            return format!("seed {seed}: {v}");
        }
        if let Err(e) = check_history(&result.history) {
            return format!("seed {seed}: {e}");
        }
    }
    panic!("--bug {bug} was not caught in {max_seeds} seeds");
}

#[test]
fn stale_read_is_caught() {
    let found = hunt("stale-read", 5, 20, |_| {});
    eprintln!("stale-read: {found}");
    assert!(found.contains("history is invalid"), "{found}");
}

#[test]
fn early_ack_is_caught() {
    let found = hunt("early-ack", 5, 40, |c| {
        c.partition = 0.01;
        c.crash = 0.004;
    });
    eprintln!("early-ack: {found}");
}

#[test]
fn forget_vote_is_caught() {
    // Three servers: a voter that forgets is then enough for two majorities in one term.
    let found = hunt("forget-vote", 3, 200, |c| {
        c.crash = 0.02;
        c.max_down = 5;
        c.drop = 0.1;
        c.max_delay = 10;
    });
    eprintln!("forget-vote: {found}");
    // Two leaders in one term, or one node leading the same term twice after a restart in
    // which it forgot it had voted for itself: either way two histories share (index, term).
    assert!(
        found.contains("Election Safety") || found.contains("Log Matching"),
        "{found}"
    );
}

#[test]
fn commit_old_term_is_caught() {
    let found = hunt("commit-old-term", 5, 1000, commit_old_term_settings);
    eprintln!("commit-old-term: {found}");
}

fn commit_old_term_settings(c: &mut SimConfig) {
    // One entry per AppendEntries, so an old entry can reach a majority before the new
    // leader's no-op does (Figure 8), and faults aimed at leaders.
    c.max_batch = 1;
    c.target_leader = true;
    c.crash = 0.01;
    c.max_down = 60;
    c.partition = 0.02;
    c.heal = 0.02;
    c.drop = 0.1;
}

#[test]
fn without_bugs_the_same_hunts_find_nothing() {
    // The harshest settings above, bug-free, over many seeds: nothing may be found.
    let count = std::env::var("SEEDS").map_or(150, |s| s.parse().expect("SEEDS is a number"));
    for seed in 0..count {
        for nodes in [3, 5] {
            let mut cfg = SimConfig::new(nodes, seed);
            if nodes == 3 {
                cfg.crash = 0.02;
                cfg.max_down = 5;
                cfg.drop = 0.1;
                cfg.max_delay = 10;
            } else {
                commit_old_term_settings(&mut cfg);
            }
            let result = Sim::new(cfg).run();
            assert!(
                result.violation.is_none(),
                "{:?} (SEED={seed}, {nodes} servers)",
                result.violation
            );
            check_history(&result.history)
                .unwrap_or_else(|e| panic!("seed {seed}, {nodes} servers: {e}"));
        }
    }
}
