//! `harness-sim`: the seeded, deterministic simulation every sans-IO consensus core (Raft,
//! Multi-Paxos, a Dynamo-style replica) is tested in, in the spirit of turmoil and stateright.
//!
//! It runs the real [`Core`] of every server over an in-memory disk that keeps exactly what
//! was persisted, a network that drops, delays, duplicates and reorders messages and can be
//! partitioned, servers that crash and restart, wall clocks that jump, and clients whose
//! operations form a Jepsen history (DESIGN section 2). One seed gives one trace, always.
//!
//! What is particular to a protocol (how a server boots from its disk, the invariants of its
//! paper, how its state reads in a trace) comes in through [`System`]; the protocol's own
//! tests check the invariants after every step and feed the history to a checker.
//!
//! The history is recorded in the harness's own vocabulary (`history::History`), and the one
//! seeded generator is `history::rng`'s: a test library may share the harness's leaf crate,
//! though the servers themselves know nothing of it.
//!
//! [`processes`] is the other half of the test library: a cluster of real server processes
//! on loopback ports, for what only the binaries can show (their command line, fsync, HTTP,
//! SIGKILL).

pub mod bench;
pub mod processes;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use node::op::{OpKind, OpRequest, OpResponse, Outcome};
use node::runtime::{Core, PeerMessage};
use node::storage::Storage;
use serde_json::{json, Value};

pub use history::rng::SplitMix64 as Rng;
use history::{Event, EventType, History, Process};

/// Milliseconds of wall clock per tick.
const TICK_MS: i64 = 10;

/// The knobs of one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Servers in the cluster.
    pub nodes: usize,
    /// The run's seed: everything random is drawn from it.
    pub seed: u64,
    /// Ticks of faults and traffic, before a quiet end.
    pub ticks: u64,
    /// Concurrent clients, each with at most one operation outstanding.
    pub clients: usize,
    /// Registers `k0`, `k1`, ... the clients read, write and cas.
    pub keys: usize,
    /// Probability that a message is lost, or delivered twice.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Messages take 1..=max_delay ticks (so they overtake each other).
    pub max_delay: u64,
    /// Per tick: chance to start (or change) a partition.
    pub partition: f64,
    /// Per tick: chance to heal a partition.
    pub heal: f64,
    /// Per tick and server: chance to crash it.
    pub crash: f64,
    /// Ticks a crashed server stays down, at most.
    pub max_down: u64,
    /// Chance per tick that an idle client starts an operation.
    pub op_rate: f64,
    /// Ticks before a client gives up on an operation and records it as `info`.
    pub op_timeout: u64,
    /// Largest wall-clock offset of a server, in ms (0: clocks agree).
    pub clock_skew_ms: i64,
    /// Chance per tick that one server's clock jumps to a new offset within the skew (as the
    /// harness's clock nemesis bumps a node's offset file).
    pub clock_jump: f64,
    /// Aim crashes and isolations at the current leader (as Jepsen's nemeses can).
    pub target_leader: bool,
    /// What the clients do.
    pub mix: Mix,
    /// Ticks of quiet (network healed, every server up, clients finishing) at the end.
    /// `None`: the client timeout and one tick.
    pub quiet_ticks: Option<u64>,
    /// After the quiet end, read every key from every running server with `"local": true`
    /// (the final per-node convergence reads of DESIGN section 3).
    pub final_local_reads: bool,
}

/// What the simulated clients do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mix {
    /// Registers `k0`.. read, written and cas'ed (40/40/20).
    #[default]
    Registers,
    /// Registers `k0`.. read and written, each write carrying the context the session last
    /// got for the key; sets `s0`.. added to and read; counters `c0`.. incremented and read.
    /// For stores that are not linearizable but converge (Dynamo-style).
    Eventual,
}

impl SimConfig {
    /// Moderate faults of every kind on `nodes` servers.
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
            clock_skew_ms: 0,
            clock_jump: 0.0,
            target_leader: false,
            mix: Mix::Registers,
            quiet_ticks: None,
            final_local_reads: false,
        }
    }
}

/// What the simulation needs of a protocol beyond its [`Core`].
pub trait System {
    /// The protocol.
    type Core: Core;
    /// A server's disk: survives a crash, loses nothing persisted.
    type Disk: Storage<Persist = <Self::Core as Core>::Persist> + Default;

    /// A new incarnation of server `node` from what its disk holds; `seed` is this
    /// incarnation's, drawn from the run's.
    fn boot(&mut self, node: usize, seed: u64, disk: &Self::Disk) -> Self::Core;

    /// Called once at the end of the run with every server (`None`: down), to look at the
    /// state they ended in.
    fn finish(&mut self, _cores: &[Option<&Self::Core>]) {}

    /// Called with what server `node` is about to persist (to mirror its log, say).
    fn before_persist(&mut self, _node: usize, _persist: &<Self::Core as Core>::Persist) {}

    /// The protocol's invariants, checked after server `node` handled an input at tick `now`.
    fn check(&mut self, _node: usize, _core: &Self::Core, _now: u64) -> Result<(), String> {
        Ok(())
    }

    /// A trace line for what a server persists, or `None` for nothing worth a line.
    fn trace_persist(&self, _persist: &<Self::Core as Core>::Persist) -> Option<String> {
        None
    }

    /// A trace line for a server's state after an input.
    fn trace_state(&self, core: &Self::Core) -> String {
        let s = core.status();
        format!(
            "{} term {} commit {} last {} applied {}",
            s.role, s.term, s.commit, s.last_index, s.applied
        )
    }
}

struct SimNode<S: System> {
    core: Option<S::Core>,
    disk: S::Disk,
    down_until: u64,
    clock_offset_ms: i64,
}

struct Outstanding {
    client_id: u64,
    node: usize,
    f: OpKind,
    key: String,
    value: Value,
    local: bool,
    deadline: u64,
}

/// One history event as [`Sim::record`] takes it.
struct Record<'a> {
    process: u64,
    kind: EventType,
    f: OpKind,
    key: &'a str,
    value: Value,
    node: Option<usize>,
    error: Option<String>,
    local: bool,
    siblings: bool,
    context: Option<String>,
}

struct Client {
    process: u64,
    outstanding: Option<Outstanding>,
    /// Per key, the context the session last got (DESIGN section 3).
    contexts: HashMap<String, String>,
}

/// What a simulated run produced.
pub struct SimResult<S> {
    /// The first invariant broken, with the seed and the tick it broke at.
    pub violation: Option<String>,
    /// The clients' history.
    pub history: History,
    /// Every event of the run, for comparing two runs of one seed.
    pub trace: Vec<String>,
    /// Operations that completed `ok`, `fail`, `info`.
    pub ops_ok: usize,
    /// See `ops_ok`.
    pub ops_fail: usize,
    /// See `ops_ok`.
    pub ops_info: usize,
    /// The system, with whatever it observed (elections, snapshots, ...).
    pub system: S,
}

/// One simulated run of a cluster of `S::Core`s.
pub struct Sim<S: System> {
    cfg: SimConfig,
    system: S,
    rng: Rng,
    now: u64,
    nodes: Vec<SimNode<S>>,
    /// (deliver at, sequence) → message; the sequence makes ties deterministic.
    network: BinaryHeap<Reverse<(u64, u64, usize)>>,
    in_flight: HashMap<usize, <S::Core as Core>::Message>,
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
    violation: Option<String>,
    trace: Vec<String>,
    ops_ok: usize,
}

impl<S: System> Sim<S> {
    /// A cluster of `cfg.nodes` servers of `system`, all started.
    pub fn new(cfg: SimConfig, system: S) -> Sim<S> {
        let mut rng = Rng(cfg.seed);
        let nodes = (0..cfg.nodes)
            .map(|_| SimNode {
                core: None,
                disk: S::Disk::default(),
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
                contexts: HashMap::new(),
            })
            .collect();
        let keys = cfg.keys;
        let mut sim = Sim {
            system,
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

    fn start(&mut self, i: usize) {
        // A fresh seed per incarnation, drawn from the run's seed.
        let seed = self
            .cfg
            .seed
            .wrapping_mul(31)
            .wrapping_add(self.now * 7 + i as u64);
        let core = self.system.boot(i, seed, &self.nodes[i].disk);
        self.nodes[i].core = Some(core);
        self.trace.push(format!("{} start n{i}", self.now));
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].core = None;
        self.nodes[i].down_until = self.now + 1 + self.rng.below(self.cfg.max_down);
        self.trace.push(format!("{} crash n{i}", self.now));
    }

    /// Runs the whole simulation.
    pub fn run(mut self) -> SimResult<S> {
        while self.now < self.cfg.ticks && self.violation.is_none() {
            self.step_tick();
        }
        // Let every outstanding operation finish or time out, with the network healed, so
        // the history ends quietly.
        self.cut.clear();
        let end = self.now + self.cfg.quiet_ticks.unwrap_or(self.cfg.op_timeout + 1);
        while self.now < end && self.violation.is_none() {
            self.step_tick_quiet();
        }
        for c in 0..self.clients.len() {
            if self.clients[c].outstanding.is_some() {
                self.complete(c, OpResponse::info("simulation ended"));
            }
        }
        if self.cfg.final_local_reads {
            self.final_local_reads();
        }
        let cores: Vec<Option<&S::Core>> = self.nodes.iter().map(|n| n.core.as_ref()).collect();
        self.system.finish(&cores);
        let (ops_fail, ops_info) = (self.count(EventType::Fail), self.count(EventType::Info));
        SimResult {
            violation: self.violation,
            history: self.history,
            trace: self.trace,
            ops_ok: self.ops_ok,
            ops_fail,
            ops_info,
            system: self.system,
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
            if self.nodes[i].core.is_none() {
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
            if self.nodes[i].core.is_some() {
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
                let s = self.nodes[i].core.as_ref()?.status();
                (s.role == "leader").then_some((s.term, i))
            })
            .max()
            .map(|(_, i)| i)
    }

    fn wall_ms(&self, i: usize) -> i64 {
        self.now as i64 * TICK_MS + self.nodes[i].clock_offset_ms
    }

    fn advance_time(&mut self) {
        for i in 0..self.nodes.len() {
            let wall = self.wall_ms(i);
            if let Some(r) = self.nodes[i].core.as_mut() {
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
            let Some(msg) = self.in_flight.remove(&id) else {
                continue;
            };
            let (from, to) = (msg.from().0, msg.to().0);
            if self.cut.contains(&(from, to)) {
                continue;
            }
            let to = to as usize;
            let wall = self.wall_ms(to);
            if let Some(r) = self.nodes[to].core.as_mut() {
                self.trace.push(format!("{} deliver {msg:?}", self.now));
                r.set_wall_ms(wall);
                r.step(msg);
                self.process(to);
            }
        }
    }

    /// Handles everything a server has to do after an input, as the runtime's driver does:
    /// persist, advance, send, answer clients. Then checks the invariants.
    fn process(&mut self, i: usize) {
        loop {
            let Some(r) = self.nodes[i].core.as_mut() else {
                return;
            };
            if !r.has_ready() {
                break;
            }
            let out = r.ready();
            if let Some(line) = self.system.trace_persist(&out.persist) {
                self.trace.push(format!("{} n{i} {line}", self.now));
            }
            self.system.before_persist(i, &out.persist);
            self.nodes[i]
                .disk
                .persist(&out.persist)
                .expect("the simulated disk never fails");
            let r = self.nodes[i].core.as_mut().expect("still running");
            r.advance();
            for msg in out.messages {
                self.send(msg);
            }
            for (client_id, resp) in out.responses {
                if let Some(c) = self.by_client_id.remove(&client_id) {
                    self.complete(c, resp);
                }
            }
        }
        if let Some(r) = self.nodes[i].core.as_ref() {
            let line = self.system.trace_state(r);
            self.trace.push(format!("{} n{i} {line}", self.now));
            if let Err(v) = self.system.check(i, r, self.now) {
                self.violation
                    .get_or_insert(format!("seed {} tick {}: {v}", self.cfg.seed, self.now));
            }
        }
    }

    fn send(&mut self, msg: <S::Core as Core>::Message) {
        if self.cut.contains(&(msg.from().0, msg.to().0)) || self.rng.chance(self.cfg.drop) {
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
            self.in_flight.insert(id, msg.clone());
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

    /// Every key, every running server, `"local": true`, each read as a fresh process.
    fn final_local_reads(&mut self) {
        let keys: Vec<String> = match self.cfg.mix {
            Mix::Registers => (0..self.cfg.keys).map(|k| format!("k{k}")).collect(),
            Mix::Eventual => (0..self.cfg.keys)
                .flat_map(|k| [format!("k{k}"), format!("s{k}"), format!("c{k}")])
                .collect(),
        };
        for key in keys {
            for node in 0..self.nodes.len() {
                if self.nodes[node].core.is_none() {
                    continue;
                }
                let c = self.clients.len();
                self.clients.push(Client {
                    process: self.next_process,
                    outstanding: None,
                    contexts: HashMap::new(),
                });
                self.next_process += 1;
                let mut op = OpRequest::new(OpKind::Read, key.clone(), Value::Null);
                op.local = true;
                self.submit(c, node, op);
                let r = self.nodes[node].core.as_mut().expect("running");
                r.tick();
                self.process(node);
                if self.clients[c].outstanding.is_some() {
                    self.complete(c, OpResponse::info("no answer to a local read"));
                }
            }
        }
    }

    /// The next operation of the eventual mix on key index `k`, and its value.
    fn eventual_op(&mut self, c: usize, k: usize) -> OpRequest {
        let kind = self.rng.below(3);
        let roll = self.rng.below(10);
        let v = self.next_value;
        self.next_value += 1;
        match kind {
            0 => {
                let key = format!("k{k}");
                let mut op = if roll < 4 {
                    OpRequest::new(OpKind::Read, key.clone(), Value::Null)
                } else {
                    OpRequest::new(OpKind::Write, key.clone(), json!(v))
                };
                op.context = self.clients[c].contexts.get(&key).cloned();
                op
            }
            1 if roll < 6 => OpRequest::new(OpKind::Add, format!("s{k}"), json!(v)),
            1 => OpRequest::new(OpKind::Read, format!("s{k}"), Value::Null),
            _ if roll < 6 => OpRequest::new(OpKind::Incr, format!("c{k}"), json!(1 + v % 5)),
            _ => OpRequest::new(OpKind::Read, format!("c{k}"), Value::Null),
        }
    }

    fn invoke(&mut self, c: usize) {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].core.is_some())
            .collect();
        if up.is_empty() {
            return;
        }
        let node = up[self.rng.below(up.len() as u64) as usize];
        let k = self.rng.below(self.cfg.keys as u64) as usize;
        let op = match self.cfg.mix {
            Mix::Registers => self.register_op(k),
            Mix::Eventual => self.eventual_op(c, k),
        };
        self.submit(c, node, op);
    }

    /// The next operation of the register mix on key index `k`.
    fn register_op(&mut self, k: usize) -> OpRequest {
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
        OpRequest::new(f, key, value)
    }

    /// Records client `c` invoking `op` at server `node` and hands it over.
    fn submit(&mut self, c: usize, node: usize, op: OpRequest) {
        let (f, key, value) = (op.f, op.key.clone().unwrap_or_default(), op.value.clone());
        let process = self.clients[c].process;
        self.record(Record {
            process,
            kind: EventType::Invoke,
            f,
            key: &key,
            value: value.clone(),
            node: Some(node),
            error: None,
            local: op.local,
            siblings: false,
            context: op.context.clone(),
        });
        let client_id = self.next_client_id;
        self.next_client_id += 1;
        self.clients[c].outstanding = Some(Outstanding {
            client_id,
            node,
            f,
            key: key.clone(),
            value,
            local: op.local,
            deadline: self.now + self.cfg.op_timeout,
        });
        self.by_client_id.insert(client_id, c);
        self.trace
            .push(format!("{} invoke p{process} {op:?} at n{node}", self.now));
        let r = self.nodes[node]
            .core
            .as_mut()
            .expect("chosen among running servers");
        let mut serving = node;
        if let Err(not_leader) = r.submit(client_id, op.clone()) {
            // As the runtime does: forward to the leader it knows, if it knows one that is
            // reachable; otherwise nothing was proposed and the answer is `fail`.
            let leader = not_leader.leader.map(|l| l.0 as usize).filter(|l| {
                !self.cut.contains(&(node as u64, *l as u64))
                    && self.nodes.get(*l).is_some_and(|n| n.core.is_some())
            });
            let forwarded = leader.is_some_and(|l| {
                let r = self.nodes[l].core.as_mut().expect("checked running");
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
        let context = (kind == EventType::Ok)
            .then(|| resp.context.clone())
            .flatten();
        if let Some(ctx) = &context {
            self.clients[c].contexts.insert(key.clone(), ctx.clone());
        }
        self.record(Record {
            process,
            kind,
            f: o.f,
            key: &key,
            value,
            node: Some(o.node),
            error: resp.error.clone(),
            local: o.local,
            siblings: kind == EventType::Ok && resp.siblings,
            context,
        });
        if kind == EventType::Info {
            // DESIGN section 2: an `info` retires the process id, and its session with it.
            self.clients[c].process = self.next_process;
            self.next_process += 1;
            self.clients[c].contexts.clear();
        }
    }

    fn record(&mut self, r: Record<'_>) {
        self.time_ns += 1_000;
        let index = self.history.events.len();
        self.history.push(
            Event {
                index: index as u64,
                time: self.now * 1_000_000 + self.time_ns % 1_000_000,
                process: Process::Client(r.process),
                kind: r.kind,
                f: r.f.as_str().to_string(),
                key: Some(r.key.to_string()),
                value: r.value,
                node: r.node.map(|n| format!("n{n}")),
                error: r.error.map(Value::String),
                local: r.local,
                siblings: r.siblings,
                context: r.context,
            },
            index + 1,
        );
    }
}

/// Seeds to run: `SEED=n` replays one, `SEEDS=n` sets how many (default `default_count`),
/// numbered from `salt * 1_000_003` so each test walks its own seeds.
pub fn seeds(default_count: u64, salt: u64) -> Result<Vec<u64>, String> {
    let number = |name: &str, v: String| {
        v.parse::<u64>()
            .map_err(|e| format!("{name}={v:?} is not a number: {e}"))
    };
    if let Ok(s) = std::env::var("SEED") {
        return Ok(vec![number("SEED", s)?]);
    }
    let count = match std::env::var("SEEDS") {
        Ok(c) => number("SEEDS", c)?,
        Err(_) => default_count,
    };
    Ok((0..count).map(|i| salt * 1_000_003 + i).collect())
}
