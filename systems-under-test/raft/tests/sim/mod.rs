//! A seeded, deterministic simulation of a Raft cluster (in the spirit of turmoil and
//! stateright): the real `Replica` of every server, an in-memory disk that keeps exactly what
//! was persisted, a network that drops, delays, duplicates and reorders messages and can be
//! partitioned, servers that crash and restart, and clients whose operations form a history.
//! One seed gives one trace, always.

// Shared by several test binaries, each of which uses part of it.
#![allow(dead_code)]

pub mod invariants;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use history::{Event, EventType, History, Process};
use node::op::{OpKind, OpRequest, OpResponse, Outcome};
use node::runtime::Core;
use raft::core::{Bugs, Config, Envelope, NodeId, ReadMode};
use raft::replica::Replica;
use raft::storage::{MemStorage, Storage};
use serde_json::{json, Value};

use invariants::Invariants;

/// The knobs of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    pub seed: u64,
    pub ticks: u64,
    pub clients: usize,
    pub keys: usize,
    /// Probability that a message is lost, or delivered twice.
    pub drop: f64,
    pub duplicate: f64,
    /// Messages take 1..=max_delay ticks (so they overtake each other).
    pub max_delay: u64,
    /// Per tick: chance to start (or change) a partition, to heal it, to crash a server.
    pub partition: f64,
    pub heal: f64,
    pub crash: f64,
    /// Ticks a crashed server stays down, at most.
    pub max_down: u64,
    /// Chance per tick that an idle client starts an operation.
    pub op_rate: f64,
    /// Ticks before a client gives up on an operation and records it as `info`.
    pub op_timeout: u64,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
    pub snapshot_every: u64,
    /// Largest wall-clock offset of a server, in ms (0: clocks agree).
    pub clock_skew_ms: i64,
    /// Chance per tick that one server's clock jumps to a new offset within the skew (as the
    /// harness's clock nemesis bumps a node's offset file).
    pub clock_jump: f64,
    /// Entries per AppendEntries.
    pub max_batch: usize,
    /// Aim crashes and isolations at the current leader (as Jepsen's nemeses can).
    pub target_leader: bool,
    /// Pre-vote before each election.
    pub pre_vote: bool,
}

impl SimConfig {
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            ticks: 3_000,
            clients: 6,
            keys: 3,
            drop: 0.05,
            duplicate: 0.02,
            max_delay: 4,
            partition: 0.004,
            heal: 0.01,
            crash: 0.002,
            max_down: 200,
            op_rate: 0.3,
            op_timeout: 80,
            read_mode: ReadMode::ReadIndex,
            bugs: Bugs::default(),
            snapshot_every: 40,
            clock_skew_ms: 0,
            clock_jump: 0.0,
            max_batch: 8,
            target_leader: false,
            pre_vote: true,
        }
    }
}

/// splitmix64, the checker's seeded generator: the same on every machine.
pub use checkers::rng::SplitMix64 as Rng;

struct SimNode {
    replica: Option<Replica>,
    disk: MemStorage,
    down_until: u64,
    clock_offset_ms: i64,
}

struct Outstanding {
    client_id: u64,
    node: usize,
    f: OpKind,
    key: String,
    value: Value,
    deadline: u64,
}

struct Client {
    process: u64,
    outstanding: Option<Outstanding>,
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
    cfg: SimConfig,
    rng: Rng,
    now: u64,
    nodes: Vec<SimNode>,
    /// (deliver at, sequence) → message; the sequence makes ties deterministic.
    network: BinaryHeap<Reverse<(u64, u64, usize)>>,
    in_flight: HashMap<usize, Envelope>,
    seq: u64,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(u64, u64)>,
    clients: Vec<Client>,
    next_process: u64,
    next_client_id: u64,
    by_client_id: HashMap<u64, usize>,
    next_value: i64,
    written: Vec<Vec<i64>>,
    history: History,
    time_ns: u64,
    inv: Invariants,
    violation: Option<String>,
    trace: Vec<String>,
    ops_ok: usize,
}

fn members(n: usize) -> Vec<NodeId> {
    (0..n as u64).map(NodeId).collect()
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        let mut rng = Rng(cfg.seed);
        let nodes = (0..cfg.nodes)
            .map(|_| SimNode {
                replica: None,
                disk: MemStorage::default(),
                down_until: 0,
                clock_offset_ms: if cfg.clock_skew_ms > 0 {
                    rng.below(2 * cfg.clock_skew_ms as u64 + 1) as i64 - cfg.clock_skew_ms
                } else {
                    0
                },
            })
            .collect();
        let clients = (0..cfg.clients)
            .map(|i| Client {
                process: i as u64,
                outstanding: None,
            })
            .collect();
        let keys = cfg.keys;
        let mut sim = Sim {
            next_process: cfg.clients as u64,
            rng,
            now: 0,
            nodes,
            network: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            clients,
            next_client_id: 1,
            by_client_id: HashMap::new(),
            next_value: 1,
            written: vec![Vec::new(); keys],
            history: History::new(format!("simulation seed {}", cfg.seed)),
            time_ns: 0,
            inv: Invariants::new(cfg.nodes),
            violation: None,
            trace: Vec::new(),
            ops_ok: 0,
            cfg,
        };
        for i in 0..sim.cfg.nodes {
            sim.start(i);
        }
        sim
    }

    fn config_for(&self, i: usize) -> Config {
        let mut c = Config::new(NodeId(i as u64), members(self.cfg.nodes));
        c.election_ticks = 20;
        c.heartbeat_ticks = 3;
        c.tick_ms = 10;
        c.max_batch = self.cfg.max_batch;
        c.max_inflight = 32;
        c.read_mode = self.cfg.read_mode;
        c.bugs = self.cfg.bugs;
        c.pre_vote = self.cfg.pre_vote;
        // A fresh seed per incarnation, drawn from the run's seed.
        c.seed = self
            .cfg
            .seed
            .wrapping_mul(31)
            .wrapping_add(self.now * 7 + i as u64);
        c
    }

    fn start(&mut self, i: usize) {
        let cfg = self.config_for(i);
        let state = self.nodes[i].disk.load();
        let replica = Replica::new(cfg, state, self.cfg.snapshot_every)
            .expect("a simulated disk always holds a decodable snapshot");
        self.inv.restarted(i, &replica);
        self.nodes[i].replica = Some(replica);
        self.trace.push(format!("{} start n{i}", self.now));
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].replica = None;
        self.nodes[i].down_until = self.now + 1 + self.rng.below(self.cfg.max_down);
        self.trace.push(format!("{} crash n{i}", self.now));
    }

    /// Runs the whole simulation.
    pub fn run(mut self) -> SimResult {
        while self.now < self.cfg.ticks && self.violation.is_none() {
            self.step_tick();
        }
        // Let every outstanding operation finish or time out, with the network healed, so
        // the history ends quietly.
        self.cut.clear();
        let end = self.now + self.cfg.op_timeout + 1;
        while self.now < end && self.violation.is_none() {
            self.step_tick_quiet();
        }
        for c in 0..self.clients.len() {
            if self.clients[c].outstanding.is_some() {
                self.complete(c, OpResponse::info("simulation ended"));
            }
        }
        let (ops_fail, ops_info) = (self.count(EventType::Fail), self.count(EventType::Info));
        SimResult {
            violation: self.violation,
            history: self.history,
            trace: self.trace,
            ops_ok: self.ops_ok,
            ops_fail,
            ops_info,
            elections: self.inv.elections(),
            snapshots_installed: self.inv.snapshots_installed(),
        }
    }

    fn count(&self, kind: EventType) -> usize {
        self.history
            .events
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    fn step_tick(&mut self) {
        self.now += 1;
        self.nemesis();
        self.advance_time();
        self.clients_act(true);
    }

    fn step_tick_quiet(&mut self) {
        self.now += 1;
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.is_none() {
                self.start(i);
            }
        }
        self.advance_time();
        self.clients_act(false);
    }

    fn nemesis(&mut self) {
        let n = self.nodes.len() as u64;
        if self.rng.chance(self.cfg.partition) {
            self.cut.clear();
            // Random halves, an isolated server, or a one-way cut.
            match self.rng.below(3) {
                0 => {
                    let side: Vec<bool> = (0..n).map(|_| self.rng.chance(0.5)).collect();
                    for a in 0..n {
                        for b in 0..n {
                            if side[a as usize] != side[b as usize] {
                                self.cut.insert((a, b));
                            }
                        }
                    }
                }
                1 => {
                    let x = match self.leader() {
                        Some(l) if self.cfg.target_leader => l as u64,
                        _ => self.rng.below(n),
                    };
                    for b in 0..n {
                        if b != x {
                            self.cut.insert((x, b));
                            self.cut.insert((b, x));
                        }
                    }
                }
                _ => {
                    let a = self.rng.below(n);
                    let b = self.rng.below(n);
                    if a != b {
                        self.cut.insert((a, b));
                    }
                }
            }
            self.trace
                .push(format!("{} partition {:?}", self.now, self.cut));
        } else if !self.cut.is_empty() && self.rng.chance(self.cfg.heal) {
            self.cut.clear();
            self.trace.push(format!("{} heal", self.now));
        }
        if self.cfg.target_leader && self.rng.chance(self.cfg.crash) {
            if let Some(l) = self.leader() {
                self.crash(l);
            }
        }
        if self.cfg.clock_skew_ms > 0 && self.rng.chance(self.cfg.clock_jump) {
            let i = self.rng.below(n) as usize;
            let skew = self.cfg.clock_skew_ms;
            let offset = self.rng.below(2 * skew as u64 + 1) as i64 - skew;
            self.nodes[i].clock_offset_ms = offset;
            self.trace
                .push(format!("{} clock n{i} {offset:+} ms", self.now));
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.is_some() {
                if self.rng.chance(self.cfg.crash) {
                    self.crash(i);
                }
            } else if self.now >= self.nodes[i].down_until {
                self.start(i);
            }
        }
    }

    /// The running server that believes itself leader of the highest term, if any.
    fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let r = self.nodes[i].replica.as_ref()?;
                (r.raft().role() == raft::core::Role::Leader).then_some((r.raft().term(), i))
            })
            .max()
            .map(|(_, i)| i)
    }

    fn advance_time(&mut self) {
        for i in 0..self.nodes.len() {
            let wall = self.now as i64 * 10 + self.nodes[i].clock_offset_ms;
            if let Some(r) = self.nodes[i].replica.as_mut() {
                r.set_wall_ms(wall);
                r.tick();
                self.process(i);
            }
        }
        while let Some(Reverse((at, _, id))) = self.network.peek().copied() {
            if at > self.now || self.violation.is_some() {
                break;
            }
            self.network.pop();
            let Some(env) = self.in_flight.remove(&id) else {
                continue;
            };
            let to = env.to.0 as usize;
            if self.cut.contains(&(env.from.0, env.to.0)) {
                continue;
            }
            let wall = self.now as i64 * 10 + self.nodes[to].clock_offset_ms;
            if let Some(r) = self.nodes[to].replica.as_mut() {
                self.trace.push(format!("{} deliver {env:?}", self.now));
                r.set_wall_ms(wall);
                r.step(env);
                self.process(to);
            }
        }
    }

    /// Handles everything a server has to do after an input, as `raft-node` does: persist,
    /// advance, send, answer clients. Then checks the invariants.
    fn process(&mut self, i: usize) {
        loop {
            let Some(r) = self.nodes[i].replica.as_mut() else {
                return;
            };
            if !r.has_ready() {
                break;
            }
            let out = r.ready();
            if !out.persist.is_empty() {
                let p = &out.persist;
                self.trace.push(format!(
                    "{} n{i} persist hs={:?} trunc={:?} append={:?} snap={:?}",
                    self.now,
                    p.hard_state,
                    p.truncate_from,
                    p.append
                        .iter()
                        .map(|e| (e.index, e.term.0))
                        .collect::<Vec<_>>(),
                    p.snapshot.as_ref().map(|s| (s.last_index, s.last_term.0))
                ));
            }
            self.inv.before_persist(i, &out.persist);
            self.nodes[i]
                .disk
                .persist(&out.persist)
                .expect("the simulated disk never fails");
            let r = self.nodes[i].replica.as_mut().expect("still running");
            r.advance();
            for env in out.messages {
                self.send(env);
            }
            for (client_id, resp) in out.responses {
                if let Some(c) = self.by_client_id.remove(&client_id) {
                    self.complete(c, resp);
                }
            }
        }
        if let Some(r) = self.nodes[i].replica.as_ref() {
            let raft = r.raft();
            self.trace.push(format!(
                "{} n{i} {:?} term {} commit {} last {} applied {}",
                self.now,
                raft.role(),
                raft.term(),
                raft.commit_index(),
                raft.log().last_index(),
                r.applied()
            ));
            if let Err(v) = self.inv.check(i, r, self.now) {
                self.violation
                    .get_or_insert(format!("seed {} tick {}: {v}", self.cfg.seed, self.now));
            }
        }
    }

    fn send(&mut self, env: Envelope) {
        if self.cut.contains(&(env.from.0, env.to.0)) || self.rng.chance(self.cfg.drop) {
            return;
        }
        let copies = if self.rng.chance(self.cfg.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + 1 + self.rng.below(self.cfg.max_delay);
            let id = self.seq as usize;
            self.seq += 1;
            self.in_flight.insert(id, env.clone());
            self.network.push(Reverse((at, self.seq, id)));
        }
    }

    fn clients_act(&mut self, new_ops: bool) {
        for c in 0..self.clients.len() {
            let timed_out = self.clients[c]
                .outstanding
                .as_ref()
                .is_some_and(|o| o.deadline <= self.now);
            if timed_out {
                self.complete(c, OpResponse::info("timed out"));
            }
            if new_ops && self.clients[c].outstanding.is_none() && self.rng.chance(self.cfg.op_rate)
            {
                self.invoke(c);
            }
        }
    }

    fn invoke(&mut self, c: usize) {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].replica.is_some())
            .collect();
        if up.is_empty() {
            return;
        }
        let node = up[self.rng.below(up.len() as u64) as usize];
        let k = self.rng.below(self.cfg.keys as u64) as usize;
        let key = format!("k{k}");
        let roll = self.rng.below(10);
        let (f, value) = if roll < 4 {
            (OpKind::Read, Value::Null)
        } else if roll < 8 || self.written[k].is_empty() {
            let v = self.next_value;
            self.next_value += 1;
            self.written[k].push(v);
            (OpKind::Write, json!(v))
        } else {
            let recent = &self.written[k];
            let from =
                recent[recent.len() - 1 - self.rng.below(recent.len().min(3) as u64) as usize];
            let to = self.next_value;
            self.next_value += 1;
            self.written[k].push(to);
            (OpKind::Cas, json!([from, to]))
        };
        let op = OpRequest {
            f,
            key: Some(key.clone()),
            value: value.clone(),
        };
        let process = self.clients[c].process;
        self.record(
            process,
            EventType::Invoke,
            f,
            &key,
            value.clone(),
            Some(node),
            None,
        );
        let client_id = self.next_client_id;
        self.next_client_id += 1;
        self.clients[c].outstanding = Some(Outstanding {
            client_id,
            node,
            f,
            key: key.clone(),
            value,
            deadline: self.now + self.cfg.op_timeout,
        });
        self.by_client_id.insert(client_id, c);
        self.trace
            .push(format!("{} invoke p{process} {op:?} at n{node}", self.now));
        let r = self.nodes[node]
            .replica
            .as_mut()
            .expect("chosen among running servers");
        let mut serving = node;
        if let Err(not_leader) = r.submit(client_id, op.clone()) {
            // As raft-node does: forward to the leader it knows, if it knows one that is
            // reachable; otherwise nothing was proposed and the answer is `fail`.
            let leader = not_leader.leader.map(|l| l.0 as usize).filter(|l| {
                !self.cut.contains(&(node as u64, *l as u64)) && self.nodes[*l].replica.is_some()
            });
            let forwarded = leader.is_some_and(|l| {
                let r = self.nodes[l].replica.as_mut().expect("checked running");
                r.submit(client_id, op).is_ok()
            });
            if !forwarded {
                self.by_client_id.remove(&client_id);
                self.complete(c, OpResponse::fail("not leader"));
                return;
            }
            serving = leader.expect("forwarded to it");
        }
        self.process(serving);
    }

    fn complete(&mut self, c: usize, resp: OpResponse) {
        let Some(o) = self.clients[c].outstanding.take() else {
            return;
        };
        self.by_client_id.remove(&o.client_id);
        let process = self.clients[c].process;
        let key = o.key.clone();
        let (kind, value) = match resp.kind {
            Outcome::Ok => {
                self.ops_ok += 1;
                let v = if o.f == OpKind::Read {
                    resp.value.clone().unwrap_or(Value::Null)
                } else {
                    o.value.clone()
                };
                (EventType::Ok, v)
            }
            Outcome::Fail => (EventType::Fail, o.value.clone()),
            Outcome::Info => (EventType::Info, o.value.clone()),
        };
        self.trace
            .push(format!("{} complete p{process} {resp:?}", self.now));
        self.record(
            process,
            kind,
            o.f,
            &key,
            value,
            Some(o.node),
            resp.error.clone(),
        );
        if kind == EventType::Info {
            // DESIGN section 2: an `info` retires the process id.
            self.clients[c].process = self.next_process;
            self.next_process += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        process: u64,
        kind: EventType,
        f: OpKind,
        key: &str,
        value: Value,
        node: Option<usize>,
        error: Option<String>,
    ) {
        self.time_ns += 1_000;
        let f = serde_json::to_value(f)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let index = self.history.events.len() as u64;
        let line = self.history.events.len() + 1;
        self.history.push(
            Event {
                index,
                time: self.now * 1_000_000 + self.time_ns % 1_000_000,
                process: Process::Client(process),
                kind,
                f,
                key: Some(key.to_string()),
                value,
                node: node.map(|n| format!("n{n}")),
                error: error.map(Value::String),
            },
            line,
        );
    }
}

/// Checks a simulated history for linearizability, per key, with our own checker.
pub fn check_history(history: &History) -> Result<(), String> {
    let paired = history::pair(history).map_err(|e| format!("history does not pair: {e}"))?;
    let opts = checkers::linear::Options::new(checkers::ModelKind::CasRegister);
    let report = checkers::linear::check(history, &paired, &opts)
        .map_err(|e| format!("checker failed: {e}"))?;
    match report.verdict {
        "valid" => Ok(()),
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

/// Seeds to run: `SEED=n` replays one, `SEEDS=n` sets how many.
pub fn seeds(default_count: u64, salt: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("SEED") {
        return vec![s.parse().expect("SEED is a number")];
    }
    let count =
        std::env::var("SEEDS").map_or(default_count, |c| c.parse().expect("SEEDS is a number"));
    (0..count).map(|i| salt * 1_000_003 + i).collect()
}
