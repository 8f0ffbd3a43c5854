//! A replica: the Raft core, the key-value state machine, and the bookkeeping that turns
//! committed entries and confirmed reads into answers for clients. It is Raft's
//! [`node::runtime::Core`]: still sans-IO, so the seeded simulation of the tests exercises
//! exactly what `raft-node` runs.

use std::collections::{BTreeMap, HashMap};

use node::kv::{KvStore, ReadQueue};
use node::op::{OpKind, OpRequest, OpResponse};
use node::runtime::{Core, NodeId, PeerMessage, Ready, Status};

use crate::core::{
    Config, Envelope, LogIndex, Message, NotLeader, Persist, Persisted, Raft, ReadReady, Role, Term,
};

pub use node::runtime::ClientId;

#[derive(Clone, Debug)]
struct Pending {
    term: Term,
    client: ClientId,
    /// Under the `early-ack` bug: acknowledged as soon as it was on the leader's disk.
    ack_early: bool,
    acked: bool,
}

/// What one [`Core::ready`] produced: write `persist` durably, call `advance`, then send
/// `messages` and give `responses` to the waiting clients.
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
            Message::AppendEntries { entries, .. } => {
                entries.iter().map(|e| e.data.len() + 24).sum()
            }
            Message::InstallSnapshot { snapshot, .. } => snapshot.data.len(),
            _ => 0,
        }
    }
}

pub struct Replica {
    raft: Raft,
    kv: KvStore,
    applied: LogIndex,
    pending: BTreeMap<LogIndex, Pending>,
    /// Reads waiting for leadership to be confirmed, by client.
    reads: HashMap<ClientId, OpRequest>,
    /// Confirmed reads waiting for the state machine to reach their index.
    waiting_reads: ReadQueue,
    responses: Vec<(ClientId, OpResponse)>,
    /// Take a snapshot once this many entries have been applied since the last one.
    snapshot_every: u64,
    /// Set when the replica can no longer go on safely; the runtime must stop.
    fatal: Option<String>,
}

impl Replica {
    /// Restarts a replica from what it persisted.
    pub fn new(cfg: Config, state: Persisted, snapshot_every: u64) -> Result<Replica, String> {
        let (kv, applied) = match &state.snapshot {
            Some(s) => (
                KvStore::restore(&s.data)
                    .map_err(|e| format!("snapshot at index {}: {e}", s.last_index))?,
                s.last_index,
            ),
            None => (KvStore::default(), 0),
        };
        let mut raft = Raft::new(cfg, state);
        // The core hands the restored snapshot back for installing; it is installed already.
        let _ = raft.take_ready();
        raft.advance();
        Ok(Replica {
            raft,
            kv,
            applied,
            pending: BTreeMap::new(),
            reads: HashMap::new(),
            waiting_reads: ReadQueue::default(),
            responses: Vec::new(),
            snapshot_every: snapshot_every.max(1),
            fatal: None,
        })
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    fn apply(&mut self, index: LogIndex, term: Term, data: &[u8]) {
        debug_assert_eq!(index, self.applied + 1, "entries are applied in order");
        self.applied = index;
        let result = if data.is_empty() {
            None
        } else {
            match serde_json::from_slice::<OpRequest>(data) {
                Ok(op) => Some(self.kv.apply(&op)),
                Err(e) => {
                    tracing::error!("entry {index} does not decode ({e}); applied as a no-op");
                    None
                }
            }
        };
        if let Some(p) = self.pending.remove(&index) {
            if p.acked {
                return;
            }
            let response = if p.term != term {
                // Log matching (section 5.3): another entry is committed at this index, so
                // ours never will be.
                OpResponse::fail("superseded: the leader that accepted it lost its leadership")
            } else {
                result.unwrap_or_else(|| OpResponse::info("entry did not decode"))
            };
            self.responses.push((p.client, response));
        }
    }

    fn serve_reads(&mut self) {
        self.waiting_reads
            .serve(self.applied, &self.kv, &mut self.responses);
    }
}

impl Core for Replica {
    type Message = Envelope;
    type Persist = Persist;

    fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    fn tick(&mut self) {
        self.raft.tick();
    }

    fn step(&mut self, env: Envelope) {
        self.raft.step(env);
    }

    fn set_wall_ms(&mut self, ms: i64) {
        self.raft.set_wall_ms(ms);
    }

    fn submit(&mut self, client: ClientId, op: OpRequest) -> Result<(), NotLeader> {
        if let Err(e) = op.validate() {
            self.responses
                .push((client, OpResponse::fail(format!("bad request: {e}"))));
            return Ok(());
        }
        // Reads, and txns that only read, are served by ReadIndex (or a lease), not logged.
        if op.is_read_only() {
            self.raft.read(client)?;
            self.reads.insert(client, op);
            return Ok(());
        }
        let ack_early = self.raft.config().bugs.early_ack
            && matches!(
                op.f,
                OpKind::Write | OpKind::Add | OpKind::Append | OpKind::Incr
            );
        let data = serde_json::to_vec(&op).expect("an OpRequest always serialises");
        let (term, index) = self.raft.propose(data)?;
        if let Some(old) = self.pending.remove(&index) {
            // This index was ours before, in an earlier term, and was truncated away: that
            // entry can never be committed.
            if !old.acked && old.term != term {
                self.responses.push((
                    old.client,
                    OpResponse::fail("superseded: the leader that accepted it lost its leadership"),
                ));
            }
        }
        self.pending.insert(
            index,
            Pending {
                term,
                client,
                ack_early,
                acked: false,
            },
        );
        Ok(())
    }

    fn has_ready(&self) -> bool {
        self.raft.has_ready() || !self.responses.is_empty()
    }

    fn ready(&mut self) -> Output {
        let rd = self.raft.take_ready();
        if let Some(snapshot) = rd.apply_snapshot {
            match KvStore::restore(&snapshot.data) {
                Ok(kv) => {
                    self.kv = kv;
                    self.applied = snapshot.last_index;
                }
                Err(e) => {
                    // Applying later entries to the wrong state would diverge silently: stop.
                    self.fatal.get_or_insert(format!(
                        "snapshot at index {} from the leader does not decode: {e}",
                        snapshot.last_index
                    ));
                }
            }
            // Whatever these were, the snapshot folded them in without saying which.
            let covered: Vec<LogIndex> = self
                .pending
                .range(..=snapshot.last_index)
                .map(|(i, _)| *i)
                .collect();
            for index in covered {
                if let Some(p) = self.pending.remove(&index) {
                    if !p.acked {
                        self.responses.push((
                            p.client,
                            OpResponse::info("outcome unknown: overtaken by a snapshot"),
                        ));
                    }
                }
            }
        }
        for entry in rd.committed {
            self.apply(entry.index, entry.term, &entry.data);
        }
        for ReadReady { ctx, index } in rd.reads {
            if let Some(key) = self.reads.remove(&ctx) {
                self.waiting_reads.push(index, ctx, key);
            }
        }
        for ctx in rd.failed_reads {
            if self.reads.remove(&ctx).is_some() {
                self.responses.push((
                    ctx,
                    OpResponse::fail("not leader: leadership lost before the read was confirmed"),
                ));
            }
        }
        self.serve_reads();
        if self.applied >= self.raft.log().snapshot_index() + self.snapshot_every {
            self.raft.compact(self.applied, self.kv.snapshot());
        }
        Output {
            persist: rd.persist,
            messages: rd.messages,
            responses: std::mem::take(&mut self.responses),
        }
    }

    fn advance(&mut self) {
        self.raft.advance();
        let on_disk = self.raft.persisted_index();
        for p in self.pending.range_mut(..=on_disk).map(|(_, p)| p) {
            if p.ack_early && !p.acked && p.term == self.raft.term() {
                // The `early-ack` bug: on the leader's disk is not committed.
                p.acked = true;
                self.responses.push((p.client, OpResponse::ok()));
            }
        }
    }

    fn status(&self) -> Status {
        let raft = &self.raft;
        Status {
            role: match raft.role() {
                Role::Leader => "leader",
                Role::Candidate => "candidate",
                Role::PreCandidate => "pre-candidate",
                Role::Follower => "follower",
            },
            term: raft.term().0,
            voted_for: raft.vote(),
            leader: raft.leader(),
            commit: raft.commit_index(),
            applied: self.applied,
            last_index: raft.log().last_index(),
            snapshot_index: raft.log().snapshot_index(),
            extra: Vec::new(),
        }
    }
}
