//! Raft in the seeded simulation of `harness-sim`: the real `Replica` of every server over
//! the simulation's lossy network, crashes and clock jumps, with the paper's invariants
//! ([`invariants`]) checked after every step, and the clients' history handed to our own
//! linearizability checker. One seed gives one trace, always.

// Shared by several test binaries, each of which uses part of it.
#![allow(dead_code)]

pub mod invariants;

use std::ops::{Deref, DerefMut};

use harness_sim::System;
use history::History;
use raft::core::{Bugs, Config, NodeId, Persist, ReadMode};
use raft::replica::Replica;
use raft::storage::{MemStorage, Storage};

use invariants::Invariants;

/// The knobs of one simulated run: the simulation's, and Raft's own.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub sim: harness_sim::SimConfig,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
    pub snapshot_every: u64,
    /// Entries per AppendEntries.
    pub max_batch: usize,
    /// Pre-vote before each election.
    pub pre_vote: bool,
}

impl SimConfig {
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            sim: harness_sim::SimConfig::new(nodes, seed),
            read_mode: ReadMode::ReadIndex,
            bugs: Bugs::default(),
            snapshot_every: 40,
            max_batch: 8,
            pre_vote: true,
        }
    }
}

// The simulation's knobs read as this config's own (`cfg.drop = 0.1`).
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

/// Raft as the simulation's [`System`]: how a server boots, and the invariants.
struct RaftSystem {
    cfg: SimConfig,
    inv: Invariants,
}

impl System for RaftSystem {
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
        c.max_inflight = 32;
        c.read_mode = self.cfg.read_mode;
        c.bugs = self.cfg.bugs;
        c.pre_vote = self.cfg.pre_vote;
        c.seed = seed;
        let replica = Replica::new(c, disk.load(), self.cfg.snapshot_every)
            .expect("a simulated disk always holds a decodable snapshot");
        self.inv.restarted(i, &replica);
        replica
    }

    fn before_persist(&mut self, i: usize, p: &Persist) {
        self.inv.before_persist(i, p);
    }

    fn check(&mut self, i: usize, r: &Replica, now: u64) -> Result<(), String> {
        self.inv.check(i, r, now)
    }

    fn trace_persist(&self, p: &Persist) -> Option<String> {
        (!p.is_empty()).then(|| {
            format!(
                "persist hs={:?} trunc={:?} append={:?} snap={:?}",
                p.hard_state,
                p.truncate_from,
                p.append
                    .iter()
                    .map(|e| (e.index, e.term.0))
                    .collect::<Vec<_>>(),
                p.snapshot.as_ref().map(|s| (s.last_index, s.last_term.0))
            )
        })
    }

    fn trace_state(&self, r: &Replica) -> String {
        let raft = r.raft();
        format!(
            "{:?} term {} commit {} last {} applied {}",
            raft.role(),
            raft.term(),
            raft.commit_index(),
            raft.log().last_index(),
            r.applied()
        )
    }
}

/// What a simulated run produced.
pub struct SimResult {
    /// The first invariant broken, with the tick it broke at.
    pub violation: Option<String>,
    pub history: History,
    /// Every event of the run, for comparing two runs of one seed.
    pub trace: Vec<String>,
    pub ops_ok: usize,
    pub ops_fail: usize,
    pub ops_info: usize,
    pub elections: usize,
    pub snapshots_installed: usize,
}

pub struct Sim {
    sim: harness_sim::Sim<RaftSystem>,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let system = RaftSystem {
            inv: Invariants::new(cfg.nodes),
            cfg: cfg.clone(),
        };
        Sim {
            sim: harness_sim::Sim::new(cfg.sim, system),
        }
    }

    /// Runs the whole simulation.
    pub fn run(self) -> SimResult {
        let r = self.sim.run();
        SimResult {
            violation: r.violation,
            history: r.history,
            trace: r.trace,
            ops_ok: r.ops_ok,
            ops_fail: r.ops_fail,
            ops_info: r.ops_info,
            elections: r.system.inv.elections(),
            snapshots_installed: r.system.inv.snapshots_installed(),
        }
    }
}

/// Checks a simulated history for linearizability, per key, with our own checker.
pub fn check_history(history: &History) -> Result<(), String> {
    let paired = history::pair(history).map_err(|e| format!("history does not pair: {e}"))?;
    let opts = checkers::lin::Options::new(checkers::ModelKind::CasRegister);
    let report = checkers::lin::check(history, &paired, &opts)
        .map_err(|e| format!("checker failed: {e}"))?;
    match report.verdict {
        "valid" => causal(history, &paired),
        other => {
            let bad: Vec<String> = report
                .keys
                .iter()
                .filter(|k| k.verdict.name() != "valid")
                .map(|k| format!("{:?}: {}", k.key, k.verdict.name()))
                .collect();
            Err(format!("history is {other}: {}", bad.join(", ")))
        }
    }
}

/// Linearizable implies causal: the causal checker must find CC, CCv and CM all hold (and the
/// four session guarantees with them).
fn causal(history: &History, paired: &history::Paired) -> Result<(), String> {
    use checkers::causal::{analyse, Events, Model};
    let ev = Events::from_history(history, paired);
    if let Some(why) = &ev.unusable {
        return Err(format!("causal checker cannot judge the history: {why}"));
    }
    if !ev.events.iter().any(|e| !e.write) {
        return Err("the causal checker found no read to judge".into());
    }
    let f = analyse(&ev, std::time::Duration::from_secs(60));
    for m in Model::ALL {
        if f.holds.get(&m).copied().flatten() != Some(true) {
            return Err(format!(
                "linearizable but {} does not hold: {:?}; {:?}",
                m.name(),
                f.counts,
                f.anomalies.first().map(|a| &a.sentences)
            ));
        }
    }
    Ok(())
}

/// The keys whose histories our checker proves not linearizable (an `unknown` verdict is
/// not proof, and is left out).
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
