//! The Dynamo replica in the shared simulation (`harness_sim`), with the invariants checked
//! after every step and the end state (every replica of every key, every hint) kept for the
//! tests to judge.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dynamo::core::{Bugs, Config, Replica};
use dynamo::object::Object;
use dynamo::storage::MemStorage;
use dynamo::version::Conflict;
use harness_sim::{Mix, System};
use history::{EventType, History};
use node::runtime::NodeId;
use node::storage::Storage;

/// The simulation's knobs for a Dynamo cluster: the eventual mix, a long quiet end for
/// anti-entropy, and the final local reads.
pub fn config(nodes: usize, seed: u64) -> harness_sim::SimConfig {
    let mut cfg = harness_sim::SimConfig::new(nodes, seed);
    cfg.mix = Mix::Eventual;
    cfg.quiet_ticks = Some(QUIET_TICKS);
    cfg.final_local_reads = true;
    cfg
}

/// Ticks of quiet at the end: enough for every hint to be handed back and for anti-entropy
/// (every 50 ticks, one random peer each) to reach every pair of replicas many times.
pub const QUIET_TICKS: u64 = 1_500;

/// A named invariant and what broke it.
pub const DOT_COVERED: &str = "DOT_COVERED";
pub const COUNTER_MONOTONE: &str = "COUNTER_MONOTONE";

pub struct Dynamo {
    pub nodes: usize,
    pub conflict: Conflict,
    pub session: dynamo::core::Session,
    pub bugs: Bugs,
    /// The last counter state seen per (node, key), to check that no entry decreases.
    counters: HashMap<(usize, String), dynamo::crdt::PnCounter>,
    /// At the end: per server (None: down), its objects and hints.
    pub end: Vec<Option<End>>,
    pub boots: usize,
}

#[derive(Clone, Debug)]
pub struct End {
    pub objects: BTreeMap<String, Object>,
    pub hints: usize,
    pub hints_delivered: u64,
    pub ae_repaired: u64,
}

impl Dynamo {
    pub fn new(nodes: usize) -> Dynamo {
        Dynamo {
            nodes,
            conflict: Conflict::Siblings,
            session: dynamo::core::Session::Key,
            bugs: Bugs::default(),
            counters: HashMap::new(),
            end: Vec::new(),
            boots: 0,
        }
    }

    pub fn with_bug(mut self, name: &str) -> Dynamo {
        self.bugs.enable(name).expect("a known bug");
        self
    }
}

impl System for Dynamo {
    type Core = Replica;
    type Disk = MemStorage;

    fn boot(&mut self, node: usize, seed: u64, disk: &MemStorage) -> Replica {
        self.boots += 1;
        let members = (0..self.nodes)
            .map(|i| (NodeId(i as u64), format!("n{i}")))
            .collect();
        let mut cfg = Config::new(NodeId(node as u64), members);
        cfg.conflict = self.conflict;
        cfg.session = self.session;
        cfg.bugs = self.bugs;
        cfg.seed = seed;
        cfg.op_timeout_ticks = 70;
        Replica::new(cfg, disk.load())
    }

    fn check(&mut self, node: usize, core: &Replica, _now: u64) -> Result<(), String> {
        for key in core.keys() {
            match core.object(key) {
                Some(Object::Reg(r)) => {
                    if let Some(s) = r.sibs.iter().find(|s| !r.vv.covers(s.dot)) {
                        return Err(format!(
                            "{DOT_COVERED}: n{node} holds {key} = {} by dot {:?}, which its own \
                             version vector {:?} has not seen",
                            s.value, s.dot, r.vv
                        ));
                    }
                }
                Some(Object::Set(set)) => {
                    for (e, dots) in &set.entries {
                        if let Some(d) = dots.iter().find(|d| !set.vv.covers(**d)) {
                            return Err(format!(
                                "{DOT_COVERED}: n{node} holds element {e} of {key} by dot {d:?}, \
                                 not in its context"
                            ));
                        }
                    }
                }
                Some(Object::Counter(c)) => {
                    let slot = (node, key.clone());
                    if let Some(before) = self.counters.get(&slot) {
                        for (side, old, new) in [("P", &before.p, &c.p), ("N", &before.n, &c.n)] {
                            for (n, v) in old {
                                let now = new.get(n).copied().unwrap_or(0);
                                if now < *v {
                                    return Err(format!(
                                        "{COUNTER_MONOTONE}: n{node}'s {side}[{n}] of {key} went \
                                         from {v} to {now}"
                                    ));
                                }
                            }
                        }
                    }
                    self.counters.insert(slot, c.clone());
                }
                None => {}
            }
        }
        Ok(())
    }

    fn finish(&mut self, cores: &[Option<&Replica>]) {
        self.end = cores
            .iter()
            .map(|c| {
                c.map(|c| {
                    let mut c2_keys: Vec<String> = c.keys().cloned().collect();
                    c2_keys.sort();
                    End {
                        objects: c2_keys
                            .iter()
                            .filter_map(|k| c.object(k).map(|o| (k.clone(), o.clone())))
                            .collect(),
                        hints: c.hints().len(),
                        hints_delivered: c.stats().hints_delivered,
                        ae_repaired: c.stats().ae_repaired,
                    }
                })
            })
            .collect();
    }

    fn trace_state(&self, core: &Replica) -> String {
        format!("keys {} hints {}", core.keys().count(), core.hints().len())
    }
}

/// Who owns `key` in a cluster of `nodes` named n0.. (as the simulated servers are).
pub fn owners(nodes: usize, key: &str) -> Vec<usize> {
    let members: Vec<(NodeId, String)> = (0..nodes)
        .map(|i| (NodeId(i as u64), format!("n{i}")))
        .collect();
    dynamo::ring::Ring::new(&members, 64)
        .preference_list(key, 3)
        .into_iter()
        .map(|n| n.0 as usize)
        .collect()
}

/// What the end state shows against the history: replicas that disagree, acknowledged
/// set elements or increments missing, hints never handed back. Empty: all is well.
pub fn judge(nodes: usize, end: &[Option<End>], history: &History) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for e in end.iter().flatten() {
        keys.extend(e.objects.keys().cloned());
        if e.hints > 0 {
            problems.push(format!(
                "HINT_UNDELIVERED: {} hints still owed at the end",
                e.hints
            ));
        }
    }
    for key in &keys {
        let own = owners(nodes, key);
        let copies: Vec<(usize, Option<&Object>)> = own
            .iter()
            .filter_map(|&o| end[o].as_ref().map(|e| (o, e.objects.get(key))))
            .collect();
        if let Some((first, obj)) = copies.first() {
            for (o, other) in &copies[1..] {
                if other != obj {
                    problems.push(format!(
                        "DIVERGED: {key} differs between its replicas n{first} and n{o}: \
                         {obj:?} vs {other:?}"
                    ));
                }
            }
        }
    }
    // Acknowledged CRDT updates.
    let mut added: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut incr_ok: BTreeMap<String, i64> = BTreeMap::new();
    let mut incr_tried: BTreeMap<String, i64> = BTreeMap::new();
    let mut invoked_incr: HashMap<u64, (String, i64)> = HashMap::new();
    for ev in &history.events {
        let key = ev.key.clone().unwrap_or_default();
        let p = match ev.process {
            history::Process::Client(p) => p,
            _ => continue,
        };
        match (ev.f.as_str(), ev.kind) {
            ("add", EventType::Ok) => {
                added.entry(key).or_default().insert(ev.value.to_string());
            }
            ("incr", EventType::Invoke) => {
                invoked_incr.insert(p, (key, ev.value.as_i64().unwrap_or(0)));
            }
            ("incr", kind) => {
                if let Some((k, v)) = invoked_incr.remove(&p) {
                    if kind != EventType::Fail {
                        *incr_tried.entry(k.clone()).or_default() += v;
                    }
                    if kind == EventType::Ok {
                        *incr_ok.entry(k).or_default() += v;
                    }
                }
            }
            _ => {}
        }
    }
    for (k, v) in invoked_incr.into_values() {
        *incr_tried.entry(k).or_default() += v;
    }
    for (key, want) in &added {
        for o in owners(nodes, key) {
            let Some(e) = &end[o] else { continue };
            let have: BTreeSet<String> = match e.objects.get(key) {
                Some(Object::Set(s)) => s.elements().cloned().collect(),
                _ => BTreeSet::new(),
            };
            let lost: Vec<&String> = want.difference(&have).collect();
            if !lost.is_empty() {
                problems.push(format!(
                    "LOST: n{o}'s replica of {key} lacks acknowledged elements {lost:?}"
                ));
            }
        }
    }
    for (key, ok) in &incr_ok {
        let tried = incr_tried.get(key).copied().unwrap_or(*ok);
        for o in owners(nodes, key) {
            let Some(e) = &end[o] else { continue };
            let v = match e.objects.get(key) {
                Some(Object::Counter(c)) => c.value(),
                _ => 0,
            };
            if v < *ok || v > tried {
                problems.push(format!(
                    "COUNTER: n{o}'s replica of {key} reads {v}, outside [{ok}, {tried}] (acknowledged, \
                     attempted)"
                ));
            }
        }
    }
    problems
}

/// A scripted cluster for scenarios the random simulation reaches only by luck: every
/// message delivered at once unless its link is cut, clocks set by hand, crashes where the
/// script says. Ticks are the servers' 10 ms ticks.
pub struct Net {
    pub nodes: Vec<Option<Replica>>,
    disks: Vec<MemStorage>,
    system: Dynamo,
    queue: std::collections::VecDeque<dynamo::core::Message>,
    /// Directed cuts (from, to).
    pub cut: BTreeSet<(usize, usize)>,
    /// Per server, its clock offset in ms.
    pub offsets: Vec<i64>,
    now: u64,
    answers: HashMap<u64, node::op::OpResponse>,
    next_client: u64,
    seed: u64,
}

impl Net {
    pub fn new(system: Dynamo, seed: u64) -> Net {
        let n = system.nodes;
        let mut net = Net {
            nodes: (0..n).map(|_| None).collect(),
            disks: (0..n).map(|_| MemStorage::default()).collect(),
            system,
            queue: Default::default(),
            cut: BTreeSet::new(),
            offsets: vec![0; n],
            now: 0,
            answers: HashMap::new(),
            next_client: 1,
            seed,
        };
        for i in 0..n {
            net.start(i);
        }
        net
    }

    pub fn start(&mut self, i: usize) {
        let seed = self
            .seed
            .wrapping_mul(31)
            .wrapping_add(self.now * 7 + i as u64);
        let core = self.system.boot(i, seed, &self.disks[i]);
        self.nodes[i] = Some(core);
        self.drain(i);
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Cuts every link between `a` and the others, both ways.
    pub fn isolate(&mut self, side: &[usize]) {
        let n = self.nodes.len();
        for &a in side {
            for b in 0..n {
                if !side.contains(&b) {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
        }
    }

    fn drain(&mut self, i: usize) {
        use node::runtime::{Core, PeerMessage};
        loop {
            let Some(core) = self.nodes[i].as_mut() else {
                return;
            };
            if !core.has_ready() {
                return;
            }
            let out = core.ready();
            self.disks[i].persist(&out.persist).expect("memory");
            core.advance();
            for m in out.messages {
                if !self.cut.contains(&(m.from().0 as usize, m.to().0 as usize)) {
                    self.queue.push_back(m);
                }
            }
            for (c, r) in out.responses {
                self.answers.insert(c, r);
            }
        }
    }

    fn deliver(&mut self) {
        use node::runtime::{Core, PeerMessage};
        while let Some(m) = self.queue.pop_front() {
            let to = m.to().0 as usize;
            if let Some(core) = self.nodes[to].as_mut() {
                core.step(m);
                self.drain(to);
            }
        }
    }

    /// `k` ticks of every running server, delivering everything in between.
    pub fn run(&mut self, k: u64) {
        use node::runtime::Core;
        for _ in 0..k {
            self.now += 1;
            for i in 0..self.nodes.len() {
                let wall = self.now as i64 * 10 + self.offsets[i];
                if let Some(core) = self.nodes[i].as_mut() {
                    core.set_wall_ms(wall);
                    core.tick();
                }
                self.drain(i);
            }
            self.deliver();
        }
    }

    /// Submits `op` at server `i` and runs until it is answered (at most 300 ticks).
    pub fn op(&mut self, i: usize, op: node::op::OpRequest) -> node::op::OpResponse {
        use node::runtime::Core;
        let c = self.next_client;
        self.next_client += 1;
        let wall = self.now as i64 * 10 + self.offsets[i];
        let core = self.nodes[i].as_mut().expect("running");
        core.set_wall_ms(wall);
        let _ = core.submit(c, op);
        self.drain(i);
        self.deliver();
        for _ in 0..300 {
            if let Some(r) = self.answers.remove(&c) {
                return r;
            }
            self.run(1);
        }
        node::op::OpResponse::info("no answer in 300 ticks")
    }

    /// Server `i`'s own copy of `key`, read as the final convergence reads read it.
    pub fn local(&mut self, i: usize, key: &str) -> node::op::OpResponse {
        let mut op = node::op::OpRequest::new(node::op::OpKind::Read, key, serde_json::Value::Null);
        op.local = true;
        self.op(i, op)
    }
}

/// The harness's own checkers over the simulated history, as a real run of dynamo-node is
/// checked (its promises: convergent, no-lost-updates): the set and counter checkers in
/// their eventual mode, the sibling checker and the convergence checker over the final local
/// reads. One line per anomaly (or per verdict that is not valid), led by the checker and
/// the anomaly's kind.
pub fn checked(history: &History) -> Vec<String> {
    let mut out = Vec::new();
    // The simulation mixes kinds of keys that a real run keeps to separate workloads: each
    // checker gets the keys of its kind (registers k*, sets s*, counters c*).
    for (checker, prefix) in [
        ("set", Some('s')),
        ("counter", Some('c')),
        ("siblings", Some('k')),
        ("convergence", None),
    ] {
        out.extend(check_one(checker, &only(history, prefix)));
    }
    out
}

/// The events of keys starting with `prefix` (all of them for `None`), numbered afresh.
fn only(history: &History, prefix: Option<char>) -> History {
    let mut h = History::new(history.file.clone());
    for e in &history.events {
        let keep = prefix.is_none_or(|p| e.key.as_deref().is_some_and(|k| k.starts_with(p)));
        if keep {
            let mut e = e.clone();
            e.index = h.events.len() as u64;
            let line = h.events.len() + 1;
            h.push(e, line);
        }
    }
    h
}

fn check_one(checker: &str, history: &History) -> Vec<String> {
    let paired = match history::pair(history) {
        Ok(p) => p,
        Err(e) => return vec![format!("HISTORY: does not pair: {e}")],
    };
    let promises = vec!["convergent".to_string(), "no-lost-updates".to_string()];
    let opts = checkers::Options::new(checkers::ModelKind::CasRegister);
    let results = match checkers::registry::run(&[checker], &promises, history, &paired, &opts) {
        Ok(r) => r,
        Err(e) => return vec![format!("CHECKER: {e}")],
    };
    let mut out = Vec::new();
    for r in results {
        if r.verdict == checkers::Judgement::Valid {
            continue;
        }
        if r.anomalies.is_empty() {
            out.push(format!(
                "{}: {} ({:?})",
                r.checker,
                r.verdict.name(),
                r.summary
            ));
        }
        for a in r.anomalies {
            out.push(format!("{}: {}: {}", r.checker, a.kind, a.title));
        }
    }
    out
}
