//! A replica: the Paxos core, the key-value state machine, and the bookkeeping that turns
//! chosen slots and confirmed reads into answers for clients. It is Multi-Paxos's
//! [`node::runtime::Core`], still sans-IO, so the simulation runs what `paxos-node` runs.
//!
//! Every proposed command carries an id (this server, this incarnation, a counter). The
//! executor applies an id at most once: when a command's slot is taken by another value (a
//! new leader filled it with a no-op or with its own), the leader that still leads proposes
//! it again in a fresh slot, and should both ever be chosen the second is skipped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use node::kv::{KvStore, ReadQueue};
use node::op::{OpRequest, OpResponse};
use node::runtime::{Core, NodeId, PeerMessage, Ready, Status};
use serde::{Deserialize, Serialize};

use crate::core::{
    Config, Envelope, Message, NotLeader, Paxos, Persist, Persisted, ReadReady, Role, Slot,
    Snapshot,
};

pub use node::runtime::ClientId;

/// How many ids of applied commands are remembered for deduplication.
const DEDUP_WINDOW: usize = 100_000;
/// How many times a command whose slot was taken is proposed again.
const MAX_ATTEMPTS: u32 = 3;

/// A command id: (server and incarnation, counter).
pub type CommandId = (u64, u64);

/// What one slot holds: a client's operation with its id. A no-op is an empty value.
#[derive(Serialize, Deserialize)]
struct Command {
    id: CommandId,
    op: OpRequest,
}

/// The snapshot's contents: the state machine and what deduplication and the invariants need.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    kv: Vec<u8>,
    applied_ids: Vec<CommandId>,
    chain: u64,
}

#[derive(Clone, Debug)]
struct Pending {
    client: ClientId,
    id: CommandId,
    value: Vec<u8>,
    attempts: u32,
}

/// What one [`Core::ready`] produced.
pub type Output = Ready<Envelope, Persist>;

impl PeerMessage for Envelope {
    fn from(&self) -> NodeId {
        self.from
    }

    fn to(&self) -> NodeId {
        self.to
    }

    fn size_bytes(&self) -> usize {
        64 + match &self.msg {
            Message::Accept { entries, .. } => entries.iter().map(|(_, v)| v.len() + 16).sum(),
            Message::Learn { entries, snapshot } => {
                entries.iter().map(|(_, v)| v.len() + 16).sum::<usize>()
                    + snapshot.as_ref().map_or(0, |s| s.data.len())
            }
            Message::Promise { accepted, .. } => accepted.iter().map(|a| a.value.len() + 32).sum(),
            _ => 0,
        }
    }
}

pub struct Replica {
    paxos: Paxos,
    kv: KvStore,
    applied: Slot,
    /// A hash chain over every executed slot's value: two replicas that executed different
    /// sequences (the `skip-hole` bug) differ here.
    chain: u64,
    applied_ids: HashSet<CommandId>,
    id_order: VecDeque<CommandId>,
    incarnation: u64,
    next_seq: u64,
    pending: BTreeMap<Slot, Pending>,
    reads: HashMap<ClientId, OpRequest>,
    waiting_reads: ReadQueue,
    responses: Vec<(ClientId, OpResponse)>,
    snapshot_every: u64,
    fatal: Option<String>,
}

impl Replica {
    /// Restarts a replica from what it persisted.
    pub fn new(cfg: Config, state: Persisted, snapshot_every: u64) -> Result<Replica, String> {
        let incarnation = (cfg.id.0 << 48) ^ (cfg.seed & 0xffff_ffff_ffff);
        let mut r = Replica {
            kv: KvStore::default(),
            applied: 0,
            chain: 0,
            applied_ids: HashSet::new(),
            id_order: VecDeque::new(),
            incarnation,
            next_seq: 0,
            pending: BTreeMap::new(),
            reads: HashMap::new(),
            waiting_reads: ReadQueue::default(),
            responses: Vec::new(),
            snapshot_every: snapshot_every.max(1),
            fatal: None,
            paxos: Paxos::new(cfg, state),
        };
        // The core starts executing after the snapshot; the state machine starts from it.
        if let Some(s) = r.paxos.snapshot().cloned() {
            r.restore(&s)
                .map_err(|e| format!("snapshot at slot {}: {e}", s.last_slot))?;
        }
        Ok(r)
    }

    pub fn paxos(&self) -> &Paxos {
        &self.paxos
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    pub fn applied(&self) -> Slot {
        self.applied
    }

    /// The hash chain over the values of every executed slot.
    pub fn chain(&self) -> u64 {
        self.chain
    }

    fn restore(&mut self, s: &Snapshot) -> Result<(), String> {
        let data: SnapshotData =
            postcard::from_bytes(&s.data).map_err(|e| format!("does not decode: {e}"))?;
        self.kv = KvStore::restore(&data.kv).map_err(|e| e.to_string())?;
        self.applied = s.last_slot;
        self.chain = data.chain;
        self.applied_ids = data.applied_ids.iter().copied().collect();
        self.id_order = data.applied_ids.into();
        Ok(())
    }

    fn snapshot_data(&self) -> Vec<u8> {
        let data = SnapshotData {
            kv: self.kv.snapshot(),
            applied_ids: self.id_order.iter().copied().collect(),
            chain: self.chain,
        };
        postcard::to_allocvec(&data).expect("snapshots always serialise")
    }

    fn execute(&mut self, slot: Slot, value: &[u8]) {
        debug_assert_eq!(slot, self.applied + 1, "slots are executed in order");
        self.applied = slot;
        self.chain = chain_step(self.chain, slot, value);
        let mut result = None;
        let mut executed_id = None;
        if !value.is_empty() {
            match serde_json::from_slice::<Command>(value) {
                Ok(cmd) => {
                    executed_id = Some(cmd.id);
                    if self.applied_ids.insert(cmd.id) {
                        self.id_order.push_back(cmd.id);
                        if self.id_order.len() > DEDUP_WINDOW {
                            if let Some(old) = self.id_order.pop_front() {
                                self.applied_ids.remove(&old);
                            }
                        }
                        result = Some(self.kv.apply(&cmd.op));
                    } else {
                        tracing::info!(
                            "slot {slot}: command {:?} was applied before; skipped",
                            cmd.id
                        );
                    }
                }
                Err(e) => tracing::error!("slot {slot} does not decode ({e}); executed as a no-op"),
            }
        }
        let Some(p) = self.pending.remove(&slot) else {
            return;
        };
        if executed_id == Some(p.id) {
            let response =
                result.unwrap_or_else(|| OpResponse::info("applied before, under another slot"));
            self.responses.push((p.client, response));
            return;
        }
        // Another value was chosen here: ours never will be, in this slot.
        if p.attempts < MAX_ATTEMPTS && self.paxos.role() == Role::Leader {
            if let Ok((slot, _)) = self.paxos.propose(p.value.clone()) {
                self.pending.insert(
                    slot,
                    Pending {
                        attempts: p.attempts + 1,
                        ..p
                    },
                );
                return;
            }
        }
        self.responses.push((
            p.client,
            OpResponse::fail("superseded: another value was chosen in its slot"),
        ));
    }

    fn take_reads(&mut self, ready: Vec<ReadReady>, failed: Vec<u64>) {
        for ReadReady { ctx, slot } in ready {
            if let Some(op) = self.reads.remove(&ctx) {
                self.waiting_reads.push(slot, ctx, op);
            }
        }
        for ctx in failed {
            if self.reads.remove(&ctx).is_some() {
                self.responses.push((
                    ctx,
                    OpResponse::fail("not leader: leadership lost before the read was confirmed"),
                ));
            }
        }
        self.serve_reads();
    }

    fn serve_reads(&mut self) {
        self.waiting_reads
            .serve(self.applied, &self.kv, &mut self.responses);
    }
}

/// One step of the executed-sequence hash chain (FNV-1a over the slot and the value).
fn chain_step(prev: u64, slot: Slot, value: &[u8]) -> u64 {
    let mut h = prev ^ 0xcbf2_9ce4_8422_2325;
    for b in slot.to_le_bytes().iter().chain(value) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Core for Replica {
    type Message = Envelope;
    type Persist = Persist;

    fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    fn tick(&mut self) {
        self.paxos.tick();
    }

    fn step(&mut self, env: Envelope) {
        self.paxos.step(env);
    }

    fn set_wall_ms(&mut self, ms: i64) {
        self.paxos.set_wall_ms(ms);
    }

    fn submit(&mut self, client: ClientId, op: OpRequest) -> Result<(), NotLeader> {
        if let Err(e) = op.validate() {
            self.responses
                .push((client, OpResponse::fail(format!("bad request: {e}"))));
            return Ok(());
        }
        if op.is_read_only() {
            self.paxos.read(client)?;
            self.reads.insert(client, op);
            return Ok(());
        }
        self.next_seq += 1;
        let id = (self.incarnation, self.next_seq);
        let value = serde_json::to_vec(&Command { id, op }).expect("a command always serialises");
        let (slot, _) = self.paxos.propose(value.clone())?;
        self.pending.insert(
            slot,
            Pending {
                client,
                id,
                value,
                attempts: 1,
            },
        );
        Ok(())
    }

    fn has_ready(&self) -> bool {
        self.paxos.has_ready() || !self.responses.is_empty()
    }

    fn ready(&mut self) -> Output {
        let rd = self.paxos.take_ready();
        if let Some(snapshot) = rd.apply_snapshot {
            if let Err(e) = self.restore(&snapshot) {
                // Executing later slots on the wrong state would diverge silently: stop.
                self.fatal.get_or_insert(format!(
                    "snapshot at slot {} from a peer does not decode: {e}",
                    snapshot.last_slot
                ));
            }
            let covered: Vec<Slot> = self
                .pending
                .range(..=snapshot.last_slot)
                .map(|(s, _)| *s)
                .collect();
            for slot in covered {
                if let Some(p) = self.pending.remove(&slot) {
                    self.responses.push((
                        p.client,
                        OpResponse::info("outcome unknown: overtaken by a snapshot"),
                    ));
                }
            }
        }
        for (slot, value) in &rd.chosen {
            if *slot > self.applied {
                self.execute(*slot, value);
            }
        }
        self.take_reads(rd.reads, rd.failed_reads);
        if self.applied >= self.paxos.compacted() + self.snapshot_every {
            let data = self.snapshot_data();
            self.paxos.compact(self.applied, data);
        }
        // Retries proposed while executing, and the snapshot just taken, go out with this
        // round: take what they added.
        let more = self.paxos.take_ready();
        let mut persist = rd.persist;
        merge_persist(&mut persist, more.persist);
        let mut messages = rd.messages;
        messages.extend(more.messages);
        debug_assert!(more.chosen.is_empty() && more.apply_snapshot.is_none());
        self.take_reads(more.reads, more.failed_reads);
        Output {
            persist,
            messages,
            responses: std::mem::take(&mut self.responses),
        }
    }

    fn advance(&mut self) {
        self.paxos.advance();
    }

    fn status(&self) -> Status {
        let p = &self.paxos;
        Status {
            role: match p.role() {
                Role::Leader => "leader",
                Role::PreCandidate => "pre-candidate",
                Role::Candidate => "candidate",
                Role::Follower => "follower",
            },
            term: p.promised().round.max(p.ballot().round),
            voted_for: (p.promised().round > 0).then_some(p.promised().node),
            leader: p.leader(),
            commit: p.chosen_upto(),
            applied: self.applied,
            last_index: p.last_slot(),
            snapshot_index: p.compacted(),
            extra: Vec::new(),
        }
    }
}

/// Appends `more` to `into`, keeping the order in which things must reach the disk.
fn merge_persist(into: &mut Persist, more: Persist) {
    if more.promised.is_some() {
        into.promised = more.promised;
    }
    if more.round.is_some() {
        into.round = more.round;
    }
    into.accepted.extend(more.accepted);
    if more.snapshot.is_some() {
        into.snapshot = more.snapshot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::op::OpKind;
    use serde_json::json;

    #[test]
    fn a_command_chosen_in_two_slots_is_applied_once() {
        let cfg = Config::new(NodeId(0), vec![NodeId(0)]);
        let mut r = Replica::new(cfg, Persisted::default(), 1_000).expect("replica");
        let cmd = serde_json::to_vec(&Command {
            id: (7, 1),
            op: OpRequest::new(OpKind::Incr, "c", json!(5)),
        })
        .expect("encode");
        r.execute(1, &cmd);
        r.execute(2, &cmd);
        let read = r.kv().read("c");
        assert_eq!(read.value, Some(json!(5)), "{read:?}");
        assert_eq!(r.applied(), 2);
    }

    #[test]
    fn a_snapshot_keeps_the_ids_and_the_chain() {
        let cfg = Config::new(NodeId(0), vec![NodeId(0)]);
        let mut r = Replica::new(cfg.clone(), Persisted::default(), 1_000).expect("replica");
        let cmd = serde_json::to_vec(&Command {
            id: (7, 1),
            op: OpRequest::new(OpKind::Incr, "c", json!(5)),
        })
        .expect("encode");
        r.execute(1, &cmd);
        let snap = Snapshot {
            last_slot: 1,
            data: r.snapshot_data(),
        };
        let mut back = Replica::new(
            cfg,
            Persisted {
                snapshot: Some(snap),
                ..Persisted::default()
            },
            1_000,
        )
        .expect("restore");
        assert_eq!(back.chain(), r.chain());
        back.execute(2, &cmd);
        assert_eq!(
            back.kv().read("c").value,
            Some(json!(5)),
            "deduplicated after a restore"
        );
    }
}
