//! Multi-Paxos in the seeded simulation of `harness-sim`: the real `Replica` of every server
//! over the simulation's lossy network, crashes and clock jumps, with the safety properties
//! of Paxos ([`Invariants`]) checked after every step, and the clients' history handed to our
//! own linearizability checker. One seed gives one trace, always.

// Shared by several test binaries, each of which uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};

use harness_sim::System;
use history::History;
use paxos::core::{Ballot, Bugs, Config, NodeId, Persist, ReadMode, Role, Slot};
use paxos::replica::Replica;
use paxos::storage::{MemStorage, Storage};

/// The knobs of one simulated run: the simulation's, and Paxos's own.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub sim: harness_sim::SimConfig,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
    pub snapshot_every: u64,
    /// Slots per Accept.
    pub max_batch: usize,
}

impl SimConfig {
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            sim: harness_sim::SimConfig::new(nodes, seed),
            read_mode: ReadMode::Quorum,
            bugs: Bugs::default(),
            snapshot_every: 40,
            max_batch: 8,
        }
    }
}

impl Deref for SimConfig {
    type Target = harness_sim::SimConfig;
    fn deref(&self) -> &harness_sim::SimConfig {
        &self.sim
    }
}

impl DerefMut for SimConfig {
    fn deref_mut(&mut self) -> &mut harness_sim::SimConfig {
        &mut self.sim
    }
}

/// The safety properties, named as failures report them.
pub const ONE_VALUE_PER_SLOT: &str = "one value chosen per slot";
pub const PROMISE_MONOTONE: &str = "promises never decrease";
pub const VOTE_ABOVE_PROMISE: &str = "no vote below the promise";
pub const SAME_SEQUENCE: &str = "every replica executes the same sequence";
pub const LEARNS_CHOSEN: &str = "a replica learns only the chosen value";

/// What the invariants remember across steps and crashes: the whole cluster's votes, the
/// values chosen, each server's highest promise, and the executed sequence.
pub struct Invariants {
    quorum: usize,
    /// (slot, ballot) → value and voters.
    votes: HashMap<(Slot, Ballot), (Vec<u8>, Vec<usize>)>,
    /// Slot → the value a majority voted for (chosen), and at which ballot first.
    chosen: BTreeMap<Slot, (Vec<u8>, Ballot)>,
    /// Each server's highest promise as observed (what it must never fall below).
    promised: Vec<Ballot>,
    /// Each server's promise as observed at its last persist: every promise it had sent
    /// before this persist is at most this, and a vote of this persist below it breaks
    /// phase 2's rule (votes below a promise of the same round are legitimate: they were
    /// cast first).
    vote_floor: Vec<Ballot>,
    /// Executed slot → the hash chain of the sequence up to it, from the first replica there.
    chain: HashMap<Slot, (u64, usize)>,
    pub elections: usize,
    leaders: Vec<Option<Ballot>>,
}

impl Invariants {
    pub fn new(nodes: usize) -> Invariants {
        Invariants {
            quorum: nodes / 2 + 1,
            votes: HashMap::new(),
            chosen: BTreeMap::new(),
            promised: vec![Ballot::ZERO; nodes],
            vote_floor: vec![Ballot::ZERO; nodes],
            chain: HashMap::new(),
            elections: 0,
            leaders: vec![None; nodes],
        }
    }

    /// Called with what server `i` is about to persist: its votes. A vote below the promise
    /// it last gave breaks phase 2's rule; a majority of votes for one (slot, ballot)
    /// chooses that value, and no slot may have two values chosen.
    pub fn before_persist(&mut self, i: usize, p: &Persist) -> Result<(), String> {
        for a in &p.accepted {
            if a.ballot < self.vote_floor[i] {
                return Err(format!(
                    "{VOTE_ABOVE_PROMISE}: n{i} voted in slot {} at ballot {} after promising {}",
                    a.slot, a.ballot, self.vote_floor[i]
                ));
            }
            let entry = self
                .votes
                .entry((a.slot, a.ballot))
                .or_insert_with(|| (a.value.clone(), Vec::new()));
            if entry.0 != a.value {
                return Err(format!(
                    "two values proposed in slot {} at one ballot {}",
                    a.slot, a.ballot
                ));
            }
            if !entry.1.contains(&i) {
                entry.1.push(i);
            }
            if entry.1.len() >= self.quorum {
                match self.chosen.get(&a.slot) {
                    Some((v, b)) if *v != a.value => {
                        return Err(format!(
                            "{ONE_VALUE_PER_SLOT}: slot {} was chosen at ballot {b} and another \
                             value at ballot {}",
                            a.slot, a.ballot
                        ))
                    }
                    Some(_) => {}
                    None => {
                        self.chosen.insert(a.slot, (a.value.clone(), a.ballot));
                    }
                }
            }
        }
        if let Some(b) = p.promised {
            self.observe_promise(i, b)?;
        }
        self.vote_floor[i] = self.promised[i];
        Ok(())
    }

    fn observe_promise(&mut self, i: usize, b: Ballot) -> Result<(), String> {
        if b < self.promised[i] {
            return Err(format!(
                "{PROMISE_MONOTONE}: n{i} promised {b} after promising {}",
                self.promised[i]
            ));
        }
        self.promised[i] = b;
        Ok(())
    }

    pub fn check(&mut self, i: usize, r: &Replica) -> Result<(), String> {
        let p = r.paxos();
        self.observe_promise(i, p.promised())?;
        if p.role() == Role::Leader && self.leaders[i] != Some(p.ballot()) {
            self.leaders[i] = Some(p.ballot());
            self.elections += 1;
        }
        // A value this server knows chosen is the value a majority voted for, if the votes
        // seen so far chose one (a slot chosen before any vote was seen cannot exist).
        for slot in p.executed().saturating_sub(4)..=p.chosen_upto() {
            if let (Some(v), Some((cv, b))) = (p.chosen(slot), self.chosen.get(&slot)) {
                if v != cv.as_slice() {
                    return Err(format!(
                        "{LEARNS_CHOSEN}: n{i} learned a value in slot {slot} other than the \
                         one a majority chose at ballot {b}"
                    ));
                }
            }
        }
        let applied = r.applied();
        if applied > 0 {
            match self.chain.get(&applied) {
                Some((h, first)) if *h != r.chain() => {
                    return Err(format!(
                        "{SAME_SEQUENCE}: n{i} and n{first} executed different sequences up to \
                         slot {applied}"
                    ))
                }
                Some(_) => {}
                None => {
                    self.chain.insert(applied, (r.chain(), i));
                }
            }
        }
        Ok(())
    }

    /// A restarted server: its promise must not have fallen below what it gave before.
    pub fn restarted(&mut self, i: usize, r: &Replica) -> Result<(), String> {
        self.leaders[i] = None;
        self.check(i, r)
    }
}

/// Multi-Paxos as the simulation's [`System`].
struct PaxosSystem {
    cfg: SimConfig,
    inv: Invariants,
    /// The first violation seen outside `check` (at boot or before a persist).
    pending_violation: Option<String>,
}

impl System for PaxosSystem {
    type Core = Replica;
    type Disk = MemStorage;

    fn boot(&mut self, i: usize, seed: u64, disk: &MemStorage) -> Replica {
        let mut c = Config::new(
            NodeId(i as u64),
            (0..self.cfg.nodes as u64).map(NodeId).collect(),
        );
        c.election_ticks = 20;
        c.heartbeat_ticks = 3;
        c.tick_ms = 10;
        c.max_batch = self.cfg.max_batch;
        c.read_mode = self.cfg.read_mode;
        c.bugs = self.cfg.bugs;
        c.seed = seed;
        let replica = Replica::new(c, disk.load(), self.cfg.snapshot_every)
            .expect("a simulated disk always holds a decodable snapshot");
        if let Err(e) = self.inv.restarted(i, &replica) {
            self.pending_violation.get_or_insert(e);
        }
        replica
    }

    fn before_persist(&mut self, i: usize, p: &Persist) {
        if let Err(e) = self.inv.before_persist(i, p) {
            self.pending_violation.get_or_insert(e);
        }
    }

    fn check(&mut self, i: usize, r: &Replica, _now: u64) -> Result<(), String> {
        if let Some(v) = self.pending_violation.take() {
            return Err(v);
        }
        self.inv.check(i, r)
    }

    fn trace_persist(&self, p: &Persist) -> Option<String> {
        (!p.is_empty()).then(|| {
            format!(
                "persist promised={:?} round={:?} votes={:?} snap={:?}",
                p.promised.map(|b| b.to_string()),
                p.round,
                p.accepted
                    .iter()
                    .map(|a| (a.slot, a.ballot.round, a.ballot.node.0))
                    .collect::<Vec<_>>(),
                p.snapshot.as_ref().map(|s| s.last_slot)
            )
        })
    }

    fn trace_state(&self, r: &Replica) -> String {
        let p = r.paxos();
        format!(
            "{:?} ballot {} promised {} chosen {} executed {} applied {}",
            p.role(),
            p.ballot(),
            p.promised(),
            p.chosen_upto(),
            p.executed(),
            r.applied()
        )
    }
}

/// What a simulated run produced.
pub struct SimResult {
    /// The first invariant broken, with the tick it broke at.
    pub violation: Option<String>,
    pub history: History,
    pub trace: Vec<String>,
    pub ops_ok: usize,
    pub ops_fail: usize,
    pub ops_info: usize,
    pub elections: usize,
    /// Slots known chosen by a majority's votes.
    pub slots_chosen: usize,
}

pub struct Sim {
    sim: harness_sim::Sim<PaxosSystem>,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let system = PaxosSystem {
            inv: Invariants::new(cfg.nodes),
            cfg: cfg.clone(),
            pending_violation: None,
        };
        Sim {
            sim: harness_sim::Sim::new(cfg.sim, system),
        }
    }

    pub fn run(self) -> SimResult {
        let r = self.sim.run();
        SimResult {
            violation: r.violation,
            history: r.history,
            trace: r.trace,
            ops_ok: r.ops_ok,
            ops_fail: r.ops_fail,
            ops_info: r.ops_info,
            elections: r.system.inv.elections,
            slots_chosen: r.system.inv.chosen.len(),
        }
    }
}

/// Checks a simulated history for linearizability, per key, with our own checker.
pub fn check_history(history: &History) -> Result<(), String> {
    let keys = invalid_keys(history)?;
    let paired = history::pair(history).map_err(|e| format!("history does not pair: {e}"))?;
    let opts = checkers::lin::Options::new(checkers::ModelKind::CasRegister);
    let report = checkers::lin::check(history, &paired, &opts)
        .map_err(|e| format!("checker failed: {e}"))?;
    match report.verdict {
        "valid" => Ok(()),
        other => Err(format!("history is {other}: invalid keys {keys:?}")),
    }
}

/// The keys whose histories our checker proves not linearizable.
pub fn invalid_keys(history: &History) -> Result<Vec<String>, String> {
    let paired = history::pair(history).map_err(|e| format!("history does not pair: {e}"))?;
    let opts = checkers::lin::Options::new(checkers::ModelKind::CasRegister);
    let report = checkers::lin::check(history, &paired, &opts)
        .map_err(|e| format!("checker failed: {e}"))?;
    Ok(report
        .keys
        .iter()
        .filter(|k| k.verdict.name() == "invalid")
        .map(|k| k.key.clone().unwrap_or_default())
        .collect())
}

/// Seeds to run: `SEED=n` replays one, `SEEDS=n` sets how many.
pub fn seeds(default_count: u64, salt: u64) -> Vec<u64> {
    harness_sim::seeds(default_count, salt).unwrap_or_else(|e| panic!("{e}"))
}
