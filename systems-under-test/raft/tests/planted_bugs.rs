//! Each planted `--bug` must be caught by the simulation within a bounded number of seeds,
//! and caught the way that bug shows: the invariant of the paper it breaks, or a history our
//! linearizability checker proves invalid. Proof that the bug is real, that the tests can see
//! it, and that they see it for the right reason (a run that breaks something else instead
//! fails the test).

mod sim;

use raft::core::Bugs;
use sim::{check_history, invalid_keys, Sim, SimConfig};

/// How a run exposed a bug.
#[derive(Debug, PartialEq, Eq)]
enum Signature {
    /// A safety property of the paper broke, named as the invariants name it
    /// ("Election Safety", ...); `None` for any other check of the invariants.
    Invariant(Option<&'static str>),
    /// The checker proved these keys' histories not linearizable.
    InvalidHistory(Vec<String>),
    /// The checker rejected the history without proof (an `unknown` verdict, say).
    Rejected,
}

/// The first seed that exposed a bug, and how.
struct Caught {
    signature: Signature,
    text: String,
}

impl std::fmt::Display for Caught {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The safety properties of the Raft paper, as `sim::invariants` names them.
const INVARIANTS: [&str; 4] = [
    "Election Safety",
    "Log Matching",
    "Leader Completeness",
    "State Machine Safety",
];

/// Runs seeds until one exposes the bug; returns what exposed it.
fn hunt(bug: &str, nodes: usize, max_seeds: u64, tweak: impl Fn(&mut SimConfig)) -> Caught {
    let mut bugs = Bugs::default();
    bugs.enable(bug).expect("a known bug");
    let first = std::env::var("SEED").map_or(0, |s| s.parse().expect("SEED is a number"));
    for seed in first..first + max_seeds {
        let mut cfg = SimConfig::new(nodes, seed);
        cfg.bugs = bugs;
        tweak(&mut cfg);
        let result = Sim::new(cfg).run();
        if let Some(v) = result.violation {
            let name = INVARIANTS.into_iter().find(|n| v.contains(n));
            return Caught {
                signature: Signature::Invariant(name),
                text: format!("seed {seed}: {v}"),
            };
        }
        if let Err(e) = check_history(&result.history) {
            let keys = invalid_keys(&result.history).unwrap_or_default();
            return Caught {
                signature: if keys.is_empty() {
                    Signature::Rejected
                } else {
                    Signature::InvalidHistory(keys)
                },
                text: format!("seed {seed}: {e}"),
            };
        }
    }
    panic!("--bug {bug} was not caught in {max_seeds} seeds");
}

/// True for an invalid history on a key the clients wrote (every key is written: the
/// clients read, write and cas `k0`, `k1`, ...).
fn invalid_on_written_keys(s: &Signature) -> bool {
    matches!(s, Signature::InvalidHistory(keys) if keys.iter().all(|k| k.starts_with('k')))
}

#[test]
fn stale_read_is_caught() {
    let caught = hunt("stale-read", 5, 20, |_| {});
    let found = caught.to_string();
    eprintln!("stale-read: {found}");
    assert!(found.contains("history is invalid"), "{found}");
    // Raft itself is intact; only what the reads return is wrong.
    assert!(invalid_on_written_keys(&caught.signature), "{found}");
}

#[test]
fn early_ack_is_caught() {
    let caught = hunt("early-ack", 5, 40, |c| {
        c.partition = 0.01;
        c.crash = 0.004;
    });
    let found = caught.to_string();
    eprintln!("early-ack: {found}");
    // The log stays safe; a write acknowledged before it was committed is lost, which only
    // the clients' history shows.
    assert!(invalid_on_written_keys(&caught.signature), "{found}");
}

#[test]
fn forget_vote_is_caught() {
    // Three servers: a voter that forgets is then enough for two majorities in one term.
    let caught = hunt("forget-vote", 3, 200, |c| {
        c.crash = 0.02;
        c.max_down = 5;
        c.drop = 0.1;
        c.max_delay = 10;
    });
    let found = caught.to_string();
    eprintln!("forget-vote: {found}");
    // Two leaders in one term, or one node leading the same term twice after a restart in
    // which it forgot it had voted for itself: either way two histories share (index, term).
    assert!(
        found.contains("Election Safety") || found.contains("Log Matching"),
        "{found}"
    );
    assert!(
        matches!(
            caught.signature,
            Signature::Invariant(Some("Election Safety" | "Log Matching"))
        ),
        "{found}"
    );
}

#[test]
fn commit_old_term_is_caught() {
    let caught = hunt("commit-old-term", 5, 1000, commit_old_term_settings);
    let found = caught.to_string();
    eprintln!("commit-old-term: {found}");
    // Figure 8: an entry of an old term counted as committed is overwritten by a later
    // leader, which then lacks it (section 5.4) or commits another entry at its index
    // (section 5.4.3), whichever the run sees first.
    assert!(
        matches!(
            caught.signature,
            Signature::Invariant(Some("Leader Completeness" | "State Machine Safety"))
        ),
        "{found}"
    );
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
