//! The simulation on its own, with a core that is not a consensus protocol at all: server 0
//! always leads, applies each operation at once and persists it, the others refuse and name
//! it. Small enough that what the simulation must guarantee is plain to see: one seed is one
//! trace, a crash keeps exactly what was persisted, refusals are forwarded to the leader,
//! and the history is well formed.

use history::EventType;
use node::kv::KvStore;
use node::op::{OpKind, OpRequest, OpResponse};
use node::runtime::{ClientId, Core, NodeId, NotLeader, PeerMessage, Ready, Status};
use node::storage::{Storage, StorageError};
use serde::{Deserialize, Serialize};
use sim::{Sim, SimConfig, System};

/// The leader's heartbeat, so the network has something to carry.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Beat {
    from: NodeId,
    to: NodeId,
}

impl PeerMessage for Beat {
    fn from(&self) -> NodeId {
        self.from
    }
    fn to(&self) -> NodeId {
        self.to
    }
    fn size_bytes(&self) -> usize {
        16
    }
}

struct FixedLeader {
    id: NodeId,
    nodes: u64,
    kv: KvStore,
    applied: u64,
    beats_heard: u64,
    persist: Vec<OpRequest>,
    messages: Vec<Beat>,
    responses: Vec<(ClientId, OpResponse)>,
}

impl Core for FixedLeader {
    type Message = Beat;
    type Persist = Vec<OpRequest>;

    fn set_wall_ms(&mut self, _ms: i64) {}

    fn tick(&mut self) {
        if self.id == NodeId(0) {
            self.messages.extend((1..self.nodes).map(|n| Beat {
                from: self.id,
                to: NodeId(n),
            }));
        }
    }

    fn step(&mut self, _msg: Beat) {
        self.beats_heard += 1;
    }

    fn submit(&mut self, client: ClientId, op: OpRequest) -> Result<(), NotLeader> {
        if self.id != NodeId(0) {
            return Err(NotLeader {
                leader: Some(NodeId(0)),
            });
        }
        self.responses.push((client, self.kv.apply(&op)));
        self.applied += 1;
        self.persist.push(op);
        Ok(())
    }

    fn has_ready(&self) -> bool {
        !(self.persist.is_empty() && self.messages.is_empty() && self.responses.is_empty())
    }

    fn ready(&mut self) -> Ready<Beat, Vec<OpRequest>> {
        Ready {
            persist: std::mem::take(&mut self.persist),
            messages: std::mem::take(&mut self.messages),
            responses: std::mem::take(&mut self.responses),
        }
    }

    fn advance(&mut self) {}

    fn fatal(&self) -> Option<&str> {
        None
    }

    fn status(&self) -> Status {
        Status {
            role: if self.id == NodeId(0) {
                "leader"
            } else {
                "follower"
            },
            leader: Some(NodeId(0)),
            applied: self.applied,
            ..Status::default()
        }
    }
}

#[derive(Default)]
struct Disk(Vec<OpRequest>);

impl Storage for Disk {
    type Persist = Vec<OpRequest>;
    type State = Vec<OpRequest>;
    fn persist(&mut self, p: &Vec<OpRequest>) -> Result<(), StorageError> {
        self.0.extend(p.iter().cloned());
        Ok(())
    }
    fn load(&self) -> Vec<OpRequest> {
        self.0.clone()
    }
}

struct Fixed {
    nodes: u64,
    boots: u64,
}

impl System for Fixed {
    type Core = FixedLeader;
    type Disk = Disk;

    fn boot(&mut self, node: usize, _seed: u64, disk: &Disk) -> FixedLeader {
        self.boots += 1;
        let mut kv = KvStore::new();
        for op in disk.load() {
            kv.apply(&op);
        }
        FixedLeader {
            id: NodeId(node as u64),
            nodes: self.nodes,
            kv,
            applied: disk.0.len() as u64,
            beats_heard: 0,
            persist: Vec::new(),
            messages: Vec::new(),
            responses: Vec::new(),
        }
    }

    fn check(&mut self, _node: usize, core: &FixedLeader, _now: u64) -> Result<(), String> {
        // The network must deliver each message to its addressee: the leader sends heartbeats
        // and is sent none.
        if core.id == NodeId(0) && core.beats_heard > 0 {
            return Err("the leader heard a heartbeat; only followers should".into());
        }
        Ok(())
    }
}

fn run(seed: u64, crash: f64, partition: f64) -> sim::SimResult<Fixed> {
    let mut cfg = SimConfig::new(3, seed);
    cfg.ticks = 600;
    cfg.crash = crash;
    cfg.partition = partition;
    Sim::new(cfg, Fixed { nodes: 3, boots: 0 }).run()
}

#[test]
fn a_seed_replays_exactly() {
    let (a, b, c) = (run(7, 0.01, 0.01), run(7, 0.01, 0.01), run(8, 0.01, 0.01));
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.history.events, b.history.events);
    assert_ne!(a.trace, c.trace, "different seeds give different runs");
}

#[test]
fn the_history_is_well_formed_and_refusals_are_forwarded() {
    let r = run(3, 0.0, 0.0);
    assert!(r.violation.is_none(), "{:?}", r.violation);
    assert!(r.ops_ok > 100, "{} ok", r.ops_ok);
    // Clients talk to every server; with no partition the followers' refusals reach the
    // leader, so only a cas whose precondition does not hold fails, and, with no crash,
    // nothing is left unknown.
    assert_eq!(r.ops_info, 0);
    assert!(r.ops_fail > 0);
    assert!(r
        .history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Fail)
        .all(|e| e.f == OpKind::Cas.as_str()));
    let mut open = std::collections::HashMap::new();
    for (i, e) in r.history.events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
        match e.kind {
            EventType::Invoke => assert!(open.insert(e.process, &e.f).is_none(), "{e:?}"),
            _ => assert_eq!(open.remove(&e.process), Some(&e.f), "{e:?}"),
        }
    }
    assert!(r.history.events.iter().any(|e| e.f == OpKind::Cas.as_str()));
}

#[test]
fn crashes_restart_from_what_was_persisted() {
    let r = run(5, 0.02, 0.004);
    assert!(
        r.system.boots > 3,
        "no crash happened: {} boots",
        r.system.boots
    );
    assert!(r.violation.is_none(), "{:?}", r.violation);
    // The leader's state survives its crashes: every read after a write sees some write.
    let reads_after_writes = r
        .history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == OpKind::Read.as_str() && !e.value.is_null())
        .count();
    assert!(reads_after_writes > 0);
}

#[test]
fn seeds_come_from_the_environment_or_the_salt() {
    // Neither SEED nor SEEDS is set by `cargo test` itself.
    if std::env::var("SEED").is_err() && std::env::var("SEEDS").is_err() {
        assert_eq!(sim::seeds(3, 2), Ok(vec![2_000_006, 2_000_007, 2_000_008]));
    }
}
