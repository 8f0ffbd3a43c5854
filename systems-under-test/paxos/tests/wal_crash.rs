//! Crash test for the acceptor's storage (`paxos.wal` and `snapshot.bin`), in the style of
//! sled's test suite and of `node/tests/wal_crash.rs`: this test binary re-runs itself as a
//! child process that persists what an acceptor persists (promises that only increase, the
//! proposer's round, votes in increasing slots, re-votes at a new ballot, now and then a
//! snapshot) through [`FileStorage`] until it is SIGKILLed. Then the parent reopens the store
//! and checks that nothing acknowledged was lost.
//!
//! Why it matters (Lamport, "Paxos Made Simple", section 2.3, on stable storage): an acceptor
//! that forgets a promise may vote below it, and one that forgets a vote lets a new leader
//! choose another value in a slot already chosen.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use history::rng::SplitMix64 as SplitMix;
use paxos::core::{Accepted, Ballot, NodeId, Persist, Persisted, Slot, Snapshot};
use paxos::storage::{FileStorage, Storage};

/// Set in the child's environment to the data directory; without it `child_persister` does
/// nothing.
const CHILD_ENV: &str = "PAXOS_WAL_CRASH_CHILD";
/// The child's own seed, for what it persists.
const CHILD_SEED_ENV: &str = "PAXOS_WAL_CRASH_CHILD_SEED";
/// Overrides the crash test's seed, to replay a failure.
const SEED_ENV: &str = "PAXOS_WAL_CRASH_SEED";
/// Crash iterations: enough to land kills in appends, syncs and snapshots, few enough for a
/// few seconds.
const CRASH_ITERATIONS: u64 = 20;
/// The child stops by itself after this many persists, a bound in case the parent never kills.
const CHILD_MAX_PERSISTS: u64 = 100_000;
/// The one acceptor whose storage this is; every ballot is its own.
const ME: NodeId = NodeId(1);

/// What one `persist` call wrote, in the terms the child prints and the parent parses: ballots
/// by their round (the node is always [`ME`]), values by `(slot, round)`, a snapshot by its
/// last slot.
#[derive(Clone, Debug, Default, PartialEq)]
struct Step {
    promised: Option<u64>,
    round: Option<u64>,
    votes: Vec<(Slot, u64)>,
    snapshot: Option<Slot>,
}

impl Step {
    /// `P3,R3,V12@3,V13@3,S10`: no spaces, so a token of a line libtest may share.
    fn encode(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.promised {
            parts.push(format!("P{p}"));
        }
        if let Some(r) = self.round {
            parts.push(format!("R{r}"));
        }
        for (slot, round) in &self.votes {
            parts.push(format!("V{slot}@{round}"));
        }
        if let Some(s) = self.snapshot {
            parts.push(format!("S{s}"));
        }
        parts.join(",")
    }

    fn decode(text: &str) -> Option<Step> {
        let mut step = Step::default();
        for part in text.split(',') {
            let (kind, rest) = part.split_at_checked(1)?;
            match kind {
                "P" => step.promised = Some(rest.parse().ok()?),
                "R" => step.round = Some(rest.parse().ok()?),
                "V" => {
                    let (slot, round) = rest.split_once('@')?;
                    step.votes.push((slot.parse().ok()?, round.parse().ok()?));
                }
                "S" => step.snapshot = Some(rest.parse().ok()?),
                _ => return None,
            }
        }
        Some(step)
    }

    fn to_persist(&self) -> Persist {
        Persist {
            promised: self.promised.map(ballot),
            round: self.round,
            accepted: self
                .votes
                .iter()
                .map(|(slot, round)| Accepted {
                    slot: *slot,
                    ballot: ballot(*round),
                    value: vote_value(*slot, *round),
                })
                .collect(),
            snapshot: self.snapshot.map(|last_slot| Snapshot {
                last_slot,
                data: snapshot_data(last_slot),
            }),
        }
    }
}

fn ballot(round: u64) -> Ballot {
    Ballot { round, node: ME }
}

/// The value voted in `slot` at `round`: a function of both alone, so the parent knows what
/// the child wrote. Most are small; one slot in ten carries up to 100 KB, which spans many
/// pages, so a kill can land in the middle of its write().
fn vote_value(slot: Slot, round: u64) -> Vec<u8> {
    let mut rng = SplitMix::for_stream(slot, round, 1);
    let len = match slot % 10 {
        0 => rng.below(100_000),
        1..=3 => rng.below(8_192),
        _ => rng.below(200),
    };
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// The state machine's image in a snapshot up to `last_slot`, up to 64 KB.
fn snapshot_data(last_slot: Slot) -> Vec<u8> {
    let mut rng = SplitMix::for_stream(last_slot, 0, 2);
    let len = 1 + rng.below(65_536);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// What the store must hold at least: everything acknowledged, as a [`FileStorage`] should
/// fold it (a snapshot drops the votes it covers; a later vote in a slot replaces an earlier).
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    promised: u64,
    round: u64,
    snapshot: Slot,
    votes: BTreeMap<Slot, u64>,
}

impl Model {
    fn apply(&mut self, step: &Step) {
        if let Some(p) = step.promised {
            self.promised = p;
        }
        if let Some(r) = step.round {
            self.round = r;
        }
        for (slot, round) in &step.votes {
            self.votes.insert(*slot, *round);
        }
        if let Some(s) = step.snapshot {
            self.snapshot = s;
            self.votes = self.votes.split_off(&(s + 1));
        }
    }

    fn from_persisted(p: &Persisted) -> Model {
        Model {
            promised: p.promised.round,
            round: p.round,
            snapshot: p.snapshot.as_ref().map_or(0, |s| s.last_slot),
            votes: p
                .accepted
                .iter()
                .map(|a| (a.slot, a.ballot.round))
                .collect(),
        }
    }
}

/// The child's next persist, drawn from what it holds, as an acceptor (and sometimes leader)
/// would: a higher promise (with the candidate's round, and re-votes of the latest slots at
/// the new ballot, as a new leader re-proposes them), a snapshot of some executed prefix, or
/// votes in the next slots at the promised ballot.
fn next_step(rng: &mut SplitMix, m: &Model) -> Step {
    let last_slot = m
        .votes
        .keys()
        .next_back()
        .copied()
        .unwrap_or(0)
        .max(m.snapshot);
    let mut step = Step::default();
    if m.promised == 0 || rng.chance(0.1) {
        let promised = m.promised + 1 + rng.below(3);
        step.promised = Some(promised);
        if rng.chance(0.5) {
            step.round = Some(promised.max(m.round));
        }
        if rng.chance(0.5) {
            let revote: Vec<Slot> = m.votes.keys().rev().take(3).copied().collect();
            step.votes = revote.into_iter().rev().map(|s| (s, promised)).collect();
        }
        return step;
    }
    let new_votes = |rng: &mut SplitMix| -> Vec<(Slot, u64)> {
        let n = 1 + rng.below(4);
        (last_slot + 1..=last_slot + n)
            .map(|s| (s, m.promised))
            .collect()
    };
    if last_slot > m.snapshot && rng.chance(0.08) {
        step.snapshot = Some(m.snapshot + 1 + rng.below(last_slot - m.snapshot));
        // The replica persists the votes of a round together with the snapshot it took.
        if rng.chance(0.3) {
            step.votes = new_votes(rng);
        }
        return step;
    }
    step.votes = new_votes(rng);
    step
}

/// The child side of the crash test. Run as a normal test it returns at once; run by
/// `sigkill_loses_nothing_acknowledged` with CHILD_ENV set, it continues from what the store
/// holds, printing `paxos-try=N:STEP` before each persist and `paxos-ack=N` once `persist`
/// has returned, until it is killed.
#[test]
fn child_persister() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("child: a seed");
    let mut rng = SplitMix(seed);
    let mut store = FileStorage::open(Path::new(&dir)).expect("child: open");
    let mut model = Model::from_persisted(&store.load());
    let stdout = std::io::stdout();
    for n in 0..CHILD_MAX_PERSISTS {
        let step = next_step(&mut rng, &model);
        // The parent closing the pipe means it is done with us.
        let said = |line: String| {
            let mut out = stdout.lock();
            writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
        };
        if !said(format!("paxos-try={n}:{}", step.encode())) {
            return;
        }
        store.persist(&step.to_persist()).expect("child: persist");
        if !said(format!("paxos-ack={n}")) {
            return;
        }
        model.apply(&step);
    }
}

/// What the parent read from one child: every step it tried, and how many were acknowledged
/// (a prefix: the child tries one at a time).
#[derive(Default)]
struct Transcript {
    tried: Vec<Step>,
    acked: usize,
}

impl Transcript {
    fn read_line(&mut self, line: &str, ctx: &str) {
        // libtest may print its own text on the same line, so look for the markers.
        for token in line.split_whitespace() {
            if let Some(rest) = token.strip_prefix("paxos-try=") {
                let (n, step) = rest
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{ctx}: bad line {line:?}"));
                assert_eq!(n.parse(), Ok(self.tried.len()), "{ctx}: {line:?}");
                assert_eq!(self.acked, self.tried.len(), "{ctx}: try before the ack");
                self.tried
                    .push(Step::decode(step).unwrap_or_else(|| panic!("{ctx}: bad step {line:?}")));
            } else if let Some(n) = token.strip_prefix("paxos-ack=") {
                assert_eq!(n.parse(), Ok(self.acked), "{ctx}: {line:?}");
                assert_eq!(self.acked + 1, self.tried.len(), "{ctx}: ack without a try");
                self.acked += 1;
            }
        }
    }

    /// The step that was being persisted when the kill landed, if any: some of it may be
    /// durable, none of it was acknowledged.
    fn in_flight(&self) -> Option<&Step> {
        self.tried.get(self.acked)
    }
}

/// Checks the recovered store against what was acknowledged (`acked`) and what may have
/// become durable without an acknowledgement (`in_flight`).
fn check_recovered(ctx: &str, got: &Persisted, acked: &Model, in_flight: Option<&Step>) {
    let empty = Step::default();
    let maybe = in_flight.unwrap_or(&empty);

    // The promise: never below the last acknowledged one, and only what was written.
    let promised = got.promised.round;
    assert!(
        promised >= acked.promised,
        "{ctx}: promise {promised} recovered, but {} was acknowledged",
        acked.promised
    );
    assert!(
        promised == acked.promised || maybe.promised == Some(promised),
        "{ctx}: promise {promised} recovered, which was never written (acknowledged {}, in flight {:?})",
        acked.promised,
        maybe.promised
    );
    assert!(
        promised == 0 || got.promised.node == ME,
        "{ctx}: {:?}",
        got.promised
    );
    let round = got.round;
    assert!(
        round == acked.round || (maybe.round == Some(round) && round >= acked.round),
        "{ctx}: round {round} recovered (acknowledged {}, in flight {:?})",
        acked.round,
        maybe.round
    );

    // The snapshot: the last acknowledged one, or the one in flight, whole.
    let snap = got.snapshot.as_ref().map_or(0, |s| s.last_slot);
    assert!(
        snap == acked.snapshot || maybe.snapshot == Some(snap),
        "{ctx}: snapshot at {snap} recovered (acknowledged {}, in flight {:?})",
        acked.snapshot,
        maybe.snapshot
    );
    if let Some(s) = &got.snapshot {
        assert!(
            s.data == snapshot_data(s.last_slot),
            "{ctx}: the snapshot at {} holds other data",
            s.last_slot
        );
    }

    // Votes: every acknowledged one the snapshot does not cover, with its ballot and value
    // (or the in-flight re-vote that replaced it); nothing covered; nothing never written.
    let in_flight_votes: BTreeMap<Slot, u64> = maybe.votes.iter().copied().collect();
    let mut recovered: BTreeMap<Slot, u64> = BTreeMap::new();
    for a in &got.accepted {
        assert!(
            a.slot > snap,
            "{ctx}: a vote in slot {} survived the snapshot at {snap}",
            a.slot
        );
        assert_eq!(a.ballot.node, ME, "{ctx}: slot {}", a.slot);
        let round = a.ballot.round;
        assert!(
            acked.votes.get(&a.slot) == Some(&round)
                || in_flight_votes.get(&a.slot) == Some(&round),
            "{ctx}: a vote in slot {} at round {round} recovered, which was never written \
             (acknowledged {:?}, in flight {:?})",
            a.slot,
            acked.votes.get(&a.slot),
            in_flight_votes.get(&a.slot)
        );
        assert!(
            a.value == vote_value(a.slot, round),
            "{ctx}: the vote in slot {} at round {round} holds another value ({} bytes)",
            a.slot,
            a.value.len()
        );
        assert!(
            recovered.insert(a.slot, round).is_none(),
            "{ctx}: two votes in slot {}",
            a.slot
        );
    }
    for (slot, round) in acked.votes.range(snap + 1..) {
        let got_round = recovered.get(slot);
        assert!(
            got_round == Some(round)
                || (got_round.is_some() && got_round == in_flight_votes.get(slot)),
            "{ctx}: the vote in slot {slot} at round {round} was acknowledged, but {:?} was recovered",
            got_round
        );
    }
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("paxos wal crash test: seed {seed} (reproduce with {SEED_ENV}={seed})");
    let mut rng = SplitMix(seed);
    let exe = std::env::current_exe().expect("path of this test binary");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut model = Model::default();
    let (mut acked_total, mut in_flight_seen, mut snapshots) = (0, 0, 0);

    for iteration in 0..CRASH_ITERATIONS {
        let ctx = format!("seed {seed}, iteration {iteration} (reproduce with {SEED_ENV}={seed})");
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_persister",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(CHILD_SEED_ENV, rng.next_u64().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut transcript = Transcript::default();
        let wait_for = 1 + rng.below(40) as usize;
        while transcript.acked < wait_for {
            match lines.next() {
                Some(Ok(line)) => transcript.read_line(&line, &ctx),
                _ => panic!(
                    "{ctx}: child exited after {} acks, before {wait_for}: {:?}",
                    transcript.acked,
                    child.wait()
                ),
            }
        }
        // Let it run on for a random while, so the kill lands anywhere in append, sync,
        // snapshot, rewrite and print. Half the kills come at once.
        if rng.chance(0.5) {
            std::thread::sleep(Duration::from_micros(rng.below(5_000)));
        }
        child.kill().expect("SIGKILL child");
        for line in lines.map_while(Result::ok) {
            transcript.read_line(&line, &ctx);
        }
        child.wait().expect("reap child");

        for step in &transcript.tried[..transcript.acked] {
            model.apply(step);
            snapshots += usize::from(step.snapshot.is_some());
        }
        acked_total += transcript.acked;
        let got = FileStorage::open(dir.path())
            .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"))
            .load();
        let in_flight = transcript.in_flight();
        check_recovered(&ctx, &got, &model, in_flight);
        let recovered = Model::from_persisted(&got);
        // check_recovered allowed nothing else to differ from what was acknowledged.
        if recovered != model {
            in_flight_seen += 1;
        }
        // What the store holds now, acknowledged or not, is what the next child continues from.
        model = recovered;
    }
    eprintln!(
        "paxos wal crash test: {CRASH_ITERATIONS} kills, {acked_total} persists acknowledged \
         ({snapshots} snapshots), {in_flight_seen} recoveries held part of an unacknowledged \
         persist, {:?}",
        started.elapsed()
    );
}
