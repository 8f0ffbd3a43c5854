//! Each planted `--bug` must be caught by the simulation within a bounded number of seeds,
//! and caught the way that bug shows: the safety property of Paxos it breaks (as
//! `sim::Invariants` names them), or a history our linearizability checker proves invalid.
//! Proof that the bug is real, that the tests can see it, and that they see it for the right
//! reason. The same hunts without the bugs find nothing.

mod sim;

use paxos::core::Bugs;
use sim::{
    check_history, invalid_keys, Sim, SimConfig, LEARNS_CHOSEN, ONE_VALUE_PER_SLOT,
    PROMISE_MONOTONE, SAME_SEQUENCE, VOTE_ABOVE_PROMISE,
};

/// How a run exposed a bug.
#[derive(Debug, PartialEq, Eq)]
enum Signature {
    /// A safety property broke, named as the invariants name it.
    Invariant(&'static str),
    /// The checker proved these keys' histories not linearizable.
    InvalidHistory(Vec<String>),
    /// Something else: an unnamed invariant, or a rejection without proof.
    Other,
}

struct Caught {
    signature: Signature,
    text: String,
}

const INVARIANTS: [&str; 5] = [
    ONE_VALUE_PER_SLOT,
    LEARNS_CHOSEN,
    PROMISE_MONOTONE,
    VOTE_ABOVE_PROMISE,
    SAME_SEQUENCE,
];

/// Runs `cfg`'s seeds from `SEED` (default 0) on; the first that breaks anything, and how.
fn first_failure(
    bugs: Bugs,
    nodes: usize,
    max_seeds: u64,
    tweak: &dyn Fn(&mut SimConfig),
) -> Option<Caught> {
    let first = std::env::var("SEED").map_or(0, |s| s.parse().expect("SEED is a number"));
    for seed in first..first + max_seeds {
        let mut cfg = SimConfig::new(nodes, seed);
        cfg.bugs = bugs;
        tweak(&mut cfg);
        let result = Sim::new(cfg).run();
        if let Some(v) = result.violation {
            let signature = INVARIANTS
                .into_iter()
                .find(|n| v.contains(n))
                .map_or(Signature::Other, Signature::Invariant);
            return Some(Caught {
                signature,
                text: format!("seed {seed}: {v}"),
            });
        }
        if let Err(e) = check_history(&result.history) {
            let keys = invalid_keys(&result.history).unwrap_or_default();
            return Some(Caught {
                signature: if keys.is_empty() {
                    Signature::Other
                } else {
                    Signature::InvalidHistory(keys)
                },
                text: format!("seed {seed}: {e}"),
            });
        }
    }
    None
}

fn hunt(bug: &str, nodes: usize, max_seeds: u64, tweak: impl Fn(&mut SimConfig)) -> Caught {
    let mut bugs = Bugs::default();
    bugs.enable(bug).expect("a known bug");
    let caught = first_failure(bugs, nodes, max_seeds, &tweak)
        .unwrap_or_else(|| panic!("--bug {bug} was not caught in {max_seeds} seeds"));
    eprintln!("{bug}: {}", caught.text);
    caught
}

fn crashy(c: &mut SimConfig) {
    c.crash = 0.01;
    c.max_down = 20;
    c.partition = 0.01;
    c.target_leader = true;
}

fn lossy(c: &mut SimConfig) {
    c.drop = 0.2;
    c.max_delay = 8;
}

fn split(c: &mut SimConfig) {
    c.partition = 0.02;
    c.heal = 0.005;
}

#[test]
fn forget_promise_is_caught_by_the_promise_invariant() {
    let caught = hunt("forget-promise", 3, 30, crashy);
    assert_eq!(
        caught.signature,
        Signature::Invariant(PROMISE_MONOTONE),
        "{}",
        caught.text
    );
}

#[test]
fn half_quorum_lets_a_minority_choose() {
    // Two halves of five need not intersect: a value "chosen" by two servers is not the
    // value a majority voted for.
    let caught = hunt("half-quorum", 5, 30, split);
    assert!(
        matches!(
            caught.signature,
            Signature::Invariant(ONE_VALUE_PER_SLOT | LEARNS_CHOSEN | SAME_SEQUENCE)
        ),
        "{}",
        caught.text
    );
}

#[test]
fn ignore_accepted_loses_a_chosen_value() {
    let caught = hunt("ignore-accepted", 3, 60, |c| {
        crashy(c);
        c.drop = 0.1;
    });
    assert!(
        matches!(
            caught.signature,
            Signature::Invariant(ONE_VALUE_PER_SLOT | LEARNS_CHOSEN | SAME_SEQUENCE)
        ),
        "{}",
        caught.text
    );
}

#[test]
fn skip_hole_makes_replicas_diverge() {
    let caught = hunt("skip-hole", 3, 30, lossy);
    // The skipped slot is executed as a no-op that was never chosen.
    assert!(
        matches!(
            caught.signature,
            Signature::Invariant(LEARNS_CHOSEN | SAME_SEQUENCE)
        ),
        "{}",
        caught.text
    );
}

#[test]
fn stale_read_is_caught_by_the_checker_alone() {
    let caught = hunt("stale-read", 5, 30, split);
    // Paxos itself is intact; only what the reads return is wrong.
    assert!(
        matches!(&caught.signature, Signature::InvalidHistory(keys) if !keys.is_empty()),
        "{}",
        caught.text
    );
}

#[test]
fn without_bugs_the_same_hunts_find_nothing() {
    // (servers, seeds, settings)
    type Hunt = (usize, u64, fn(&mut SimConfig));
    let hunts: [Hunt; 4] = [
        (3, 30, crashy),
        (5, 30, split),
        (3, 30, lossy),
        (3, 30, |c| {
            crashy(c);
            c.drop = 0.1;
        }),
    ];
    for (nodes, seeds, tweak) in hunts {
        if let Some(c) = first_failure(Bugs::default(), nodes, seeds, &tweak) {
            panic!("a correct cluster failed: {}", c.text);
        }
    }
}
