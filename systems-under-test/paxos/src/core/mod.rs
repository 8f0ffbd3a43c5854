//! The Multi-Paxos core: a sans-IO state machine playing the three roles of every server
//! (acceptor, proposer/leader, learner). It takes a tick, a message, a proposal or a read and
//! accumulates what the application must do into a [`Ready`]; it never reads a clock, does
//! I/O or draws ambient randomness, so the simulation of the tests runs what `paxos-node` runs.
//!
//! The protocol, as built here:
//! - **Election by ballot.** A server that has not heard from a leader for a randomised
//!   timeout picks a round above every round it has seen, persists it, and sends
//!   `Prepare(ballot, from)` where `from` is the first slot it does not know chosen. A
//!   refusal (a higher promise) sends it back to follower with a fresh random back-off.
//! - **Phase 1 once for all slots.** An acceptor promises a ballot above its promise (durably,
//!   before the reply) and reports every vote it holds from `from` on. With a majority of
//!   promises the leader re-proposes, in each slot, the value of the highest ballot reported,
//!   and a no-op in every gap up to the highest reported slot. A slot an acceptor already
//!   folded into a snapshot is chosen; the leader fetches it instead of proposing.
//! - **Phase 2 per slot.** `Accept(ballot, slot, value)`, batched; an acceptor votes when the
//!   ballot is at least its promise, durably before `Accepted`. A majority of votes at one
//!   ballot chooses the value; the leader's chosen prefix (`commit`) rides on every Accept
//!   and heartbeat.
//! - **Learning.** A follower knows a slot below `commit` chosen when it voted for it at the
//!   leader's ballot (a leader proposes one value per slot per ballot); for any other slot it
//!   fetches the chosen value, or a snapshot, from the leader. The executor takes slots in
//!   order and never skips a hole.
//! - **Reads.** By default a quorum round: the leader notes the last slot it proposed, sends
//!   a heartbeat round, and serves the read once a majority acknowledged the round at its
//!   ballot (so no higher ballot had a majority of promises) and that slot is executed: the
//!   analogue of Raft's ReadIndex. With [`ReadMode::Lease`], a leader whose majority answered
//!   a round less than a lease ago serves at once; acceptors refuse to promise anyone else
//!   for an election timeout after hearing from a leader, which is what makes the lease hold,
//!   as long as clocks agree.

pub mod types;

use std::collections::{BTreeMap, BTreeSet};

pub use types::*;

/// How linearizable reads are confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// A heartbeat round acknowledged by a majority at the leader's ballot before each batch
    /// of reads.
    #[default]
    Quorum,
    /// Served by the leader while a lease, timed on its wall clock from the start of the last
    /// round a majority acknowledged, has not run out. Unsafe when clocks jump.
    Lease,
}

/// Deliberate mistakes, each a classic of Paxos implementations, for proving that the harness
/// catches them. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// The promise is kept in memory only: a restarted acceptor forgets it and votes in a
    /// ballot below one it promised to ignore.
    pub forget_promise: bool,
    /// Quorums are counted as `acks >= n / 2`, half the cluster rather than a majority.
    pub half_quorum: bool,
    /// A new leader re-proposes its own votes (or no-ops) instead of the highest-ballot values
    /// its promises reported.
    pub ignore_accepted: bool,
    /// The executor skips a slot that is not known chosen after a short timeout, as a no-op.
    pub skip_hole: bool,
    /// The leader answers reads from its own state, without a quorum round or a lease.
    pub stale_read: bool,
}

impl Bugs {
    pub const NAMES: [&'static str; 5] = [
        "forget-promise",
        "half-quorum",
        "ignore-accepted",
        "skip-hole",
        "stale-read",
    ];

    /// The names of the bugs switched on.
    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            self.forget_promise,
            self.half_quorum,
            self.ignore_accepted,
            self.skip_hole,
            self.stale_read,
        ];
        Self::NAMES
            .iter()
            .zip(on)
            .filter_map(|(name, on)| on.then_some(*name))
            .collect()
    }

    /// Switches on the bug called `name`; `Err` lists the valid names.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        match name {
            "forget-promise" => self.forget_promise = true,
            "half-quorum" => self.half_quorum = true,
            "ignore-accepted" => self.ignore_accepted = true,
            "skip-hole" => self.skip_hole = true,
            "stale-read" => self.stale_read = true,
            other => {
                return Err(format!(
                    "unknown bug '{other}'; the bugs are: {}",
                    Self::NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }
}

/// Static configuration of one server.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// Every server of the cluster, this one included.
    pub members: Vec<NodeId>,
    /// The minimum election timeout in ticks; each is drawn from `[min, 2 * min)`.
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    /// Length of a tick in ms of wall time, to size the lease.
    pub tick_ms: u64,
    /// Slots in one Accept or Learn message.
    pub max_batch: usize,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
    pub seed: u64,
}

impl Config {
    pub fn new(id: NodeId, members: Vec<NodeId>) -> Config {
        Config {
            id,
            members,
            election_ticks: 20,
            heartbeat_ticks: 3,
            tick_ms: 10,
            max_batch: 512,
            read_mode: ReadMode::Quorum,
            bugs: Bugs::default(),
            seed: 0,
        }
    }

    /// How many acknowledgements (the leader's own included) make a quorum.
    pub fn quorum(&self) -> usize {
        if self.bugs.half_quorum {
            // The bug: half is not a majority, and two halves need not intersect.
            (self.members.len() / 2).max(1)
        } else {
            self.members.len() / 2 + 1
        }
    }

    /// The lease a majority grants by acknowledging a round: acceptors refuse other
    /// proposers for `election_ticks` after hearing from the leader; two ticks are taken off
    /// for tick phase, then 20% for clock drift (as raft-node's lease).
    pub fn lease_ms(&self) -> i64 {
        (u64::from(self.election_ticks.saturating_sub(2)) * self.tick_ms * 8 / 10) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Probing whether a majority would promise a new ballot.
    PreCandidate,
    /// Phase 1 in progress.
    Candidate,
    Leader,
}

/// The proposal could not be taken here; `leader` is this server's best guess.
pub use node::runtime::NotLeader;

/// What this server knows of one slot.
#[derive(Clone, Debug, Default)]
struct SlotState {
    /// Its latest vote (acceptor state, durable).
    accepted: Option<(Ballot, Vec<u8>)>,
    /// The value known chosen (learner state, in memory).
    chosen: Option<Vec<u8>>,
}

/// A slot the leader is driving through phase 2.
#[derive(Clone, Debug)]
struct Proposal {
    value: Vec<u8>,
    /// Who voted for it at this leader's ballot (itself once its vote is durable).
    acks: BTreeSet<NodeId>,
    /// Ticks since it was last sent.
    age: u32,
}

#[derive(Clone, Debug)]
struct PendingRead {
    ctx: u64,
    slot: Slot,
    /// The heartbeat round that confirms it; `None` until the next round is sent.
    round: Option<u64>,
}

/// One Multi-Paxos server.
pub struct Paxos {
    cfg: Config,
    rng: u64,
    wall_ms: i64,

    // Acceptor (durable).
    promised: Ballot,
    /// The highest round this server has proposed with (durable).
    max_round: u64,
    log: BTreeMap<Slot, SlotState>,
    snapshot: Option<Snapshot>,

    // Learner.
    /// Every slot up to here is known chosen.
    chosen_upto: Slot,
    /// Every slot up to here was handed to the application.
    executed: Slot,
    /// Ticks the executor has waited on the slot after `chosen_upto` (the `skip-hole` bug).
    hole_ticks: u32,
    /// Ticks since the last Fetch.
    fetch_elapsed: u32,
    /// Per peer, the snapshot last sent in answer to its Fetch, and the tick it went out.
    snapshot_sent: BTreeMap<NodeId, (Slot, u64)>,

    // Proposer.
    role: Role,
    /// This server's ballot as candidate or leader.
    ballot: Ballot,
    /// The ballot it probes with, and who would promise it.
    probe_ballot: Ballot,
    probes: BTreeSet<NodeId>,
    leader: Option<NodeId>,
    promises: BTreeMap<NodeId, (Slot, Vec<Accepted>)>,
    /// The leader's own promise is counted once it is durable.
    own_promise_pending: bool,
    proposals: BTreeMap<Slot, Proposal>,
    next_slot: Slot,
    /// Slots up to here were compacted at some promiser: chosen, to be fetched.
    floor: Slot,
    /// New proposals not yet sent.
    unsent: Vec<Slot>,
    /// The last slot phase 1 covered: every slot an earlier leader may have had chosen is
    /// at or below it.
    adopted_upto: Slot,
    /// Own votes (slot, ballot) waiting to be durable before they count.
    own_votes_pending: Vec<(Slot, Ballot)>,

    // Timers.
    /// Ticks since this server started.
    ticks: u64,
    election_elapsed: u32,
    timeout: u32,
    heartbeat_elapsed: u32,
    /// Ticks since this server heard from its leader (a follower) or from a majority (a
    /// leader); an acceptor refuses other proposers while it is below `election_ticks`.
    contact_elapsed: u32,
    /// Peers heard from since the leader's last quorum check.
    active: BTreeSet<NodeId>,
    check_elapsed: u32,

    // Reads.
    hb_round: u64,
    acked_round: BTreeMap<NodeId, u64>,
    /// Wall time at which each unconfirmed round was sent.
    round_sent: BTreeMap<u64, i64>,
    lease_until: i64,
    reads: Vec<PendingRead>,

    // Output.
    msgs: Vec<Envelope>,
    persist: Persist,
    apply_snapshot: Option<Snapshot>,
    ready_reads: Vec<ReadReady>,
    failed_reads: Vec<u64>,
}

impl Paxos {
    /// A server restarted from what it persisted.
    pub fn new(cfg: Config, state: Persisted) -> Paxos {
        let mut log = BTreeMap::new();
        for a in state.accepted {
            log.insert(
                a.slot,
                SlotState {
                    accepted: Some((a.ballot, a.value)),
                    chosen: None,
                },
            );
        }
        let compacted = state.snapshot.as_ref().map_or(0, |s| s.last_slot);
        let mut p = Paxos {
            rng: cfg.seed ^ 0x9e37_79b9_7f4a_7c15 ^ cfg.id.0.wrapping_mul(0x1000_0001),
            wall_ms: 0,
            promised: state.promised,
            max_round: state.round.max(state.promised.round),
            log,
            // The snapshot is installed by the application from `Persisted`, not handed back.
            snapshot: state.snapshot,
            chosen_upto: compacted,
            executed: compacted,
            hole_ticks: 0,
            fetch_elapsed: 0,
            snapshot_sent: BTreeMap::new(),
            role: Role::Follower,
            ballot: Ballot::ZERO,
            probe_ballot: Ballot::ZERO,
            probes: BTreeSet::new(),
            leader: None,
            promises: BTreeMap::new(),
            own_promise_pending: false,
            proposals: BTreeMap::new(),
            next_slot: compacted + 1,
            floor: 0,
            unsent: Vec::new(),
            adopted_upto: 0,
            own_votes_pending: Vec::new(),
            ticks: 0,
            election_elapsed: 0,
            timeout: 0,
            heartbeat_elapsed: 0,
            // A restarted acceptor does not know when it last heard from a leader: it waits a
            // whole timeout before promising anyone, so a lease it acknowledged before the
            // crash still holds.
            contact_elapsed: 0,
            active: BTreeSet::new(),
            check_elapsed: 0,
            hb_round: 0,
            acked_round: BTreeMap::new(),
            round_sent: BTreeMap::new(),
            lease_until: i64::MIN,
            reads: Vec::new(),
            msgs: Vec::new(),
            persist: Persist::default(),
            apply_snapshot: None,
            ready_reads: Vec::new(),
            failed_reads: Vec::new(),
            cfg,
        };
        p.log.retain(|s, _| *s > compacted);
        p.timeout = p.random_timeout();
        p
    }

    // ---- accessors (the replica, /health, the simulation's invariants) ----

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn promised(&self) -> Ballot {
        self.promised
    }
    /// The ballot this server leads (or campaigns) with.
    pub fn ballot(&self) -> Ballot {
        self.ballot
    }
    pub fn chosen_upto(&self) -> Slot {
        self.chosen_upto
    }
    pub fn executed(&self) -> Slot {
        self.executed
    }
    /// The latest snapshot, if any (the one it restarted from, or took, or installed).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    pub fn compacted(&self) -> Slot {
        self.snapshot.as_ref().map_or(0, |s| s.last_slot)
    }
    /// The highest slot this server holds a vote or a chosen value for.
    pub fn last_slot(&self) -> Slot {
        self.log
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.compacted())
    }
    /// The value this server knows chosen in `slot`, if it still holds it.
    pub fn chosen(&self, slot: Slot) -> Option<&[u8]> {
        self.log.get(&slot).and_then(|s| s.chosen.as_deref())
    }

    // ---- inputs ----

    pub fn set_wall_ms(&mut self, ms: i64) {
        self.wall_ms = ms;
    }

    pub fn tick(&mut self) {
        self.ticks += 1;
        self.contact_elapsed = self.contact_elapsed.saturating_add(1);
        self.fetch_elapsed = self.fetch_elapsed.saturating_add(1);
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.timeout {
                    self.probe();
                }
            }
        }
        if self.cfg.bugs.skip_hole {
            self.maybe_skip_hole();
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
            self.resend_accepts();
            if self.chosen_upto < self.floor {
                self.fetch_from_peers();
            }
        }
        // The failure detector, from the leader's side: step down when no majority answered
        // for a whole election timeout, so a cut-off leader stops claiming leadership.
        self.check_elapsed += 1;
        if self.check_elapsed >= self.cfg.election_ticks * 2 {
            self.check_elapsed = 0;
            let heard = self.active.len() + 1;
            self.active.clear();
            if heard < self.cfg.quorum() {
                tracing::info!("no majority answered for an election timeout: stepping down");
                self.become_follower(None);
            }
        }
    }

    /// Proposes `value` in the next free slot; returns the slot and the ballot.
    pub fn propose(&mut self, value: Vec<u8>) -> Result<(Slot, Ballot), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader.filter(|l| *l != self.cfg.id),
            });
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        self.start_proposal(slot, value);
        Ok((slot, self.ballot))
    }

    /// Asks for a linearizable read; it comes back in a later `Ready`'s `reads` with the slot
    /// the state machine must have executed first.
    pub fn read(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader.filter(|l| *l != self.cfg.id),
            });
        }
        if self.cfg.bugs.stale_read {
            // The bug: whatever this server has executed, with no check that it still leads.
            self.ready_reads.push(ReadReady {
                ctx,
                slot: self.executed,
            });
            return Ok(());
        }
        // Every write acknowledged before this read was chosen at or below this slot: by an
        // earlier leader (then phase 1 covered it) or by this one (then it is executed here,
        // since acknowledgements follow execution). Writes still in flight need not be waited
        // for: none was acknowledged.
        let slot = self.adopted_upto.max(self.chosen_upto);
        if self.cfg.read_mode == ReadMode::Lease && self.wall_ms < self.lease_until {
            self.ready_reads.push(ReadReady { ctx, slot });
            return Ok(());
        }
        self.reads.push(PendingRead {
            ctx,
            slot,
            round: None,
        });
        Ok(())
    }

    pub fn step(&mut self, env: Envelope) {
        let from = env.from;
        if from == self.cfg.id || !self.cfg.members.contains(&from) {
            return;
        }
        match env.msg {
            Message::Probe { ballot } => {
                let ok = ballot > self.promised && !self.sticky(from);
                self.send(
                    from,
                    Message::ProbeReply {
                        ballot,
                        ok,
                        promised: self.promised,
                    },
                );
            }
            Message::ProbeReply {
                ballot,
                ok,
                promised,
            } => {
                if ok {
                    self.on_probe_ok(from, ballot);
                } else {
                    self.on_refusal(promised);
                }
            }
            Message::Prepare { ballot, from: slot } => self.on_prepare(from, ballot, slot),
            Message::Promise {
                ballot,
                ok,
                promised,
                compacted,
                accepted,
            } => {
                if ok {
                    self.on_promise(from, ballot, compacted, accepted);
                } else {
                    self.on_refusal(promised);
                }
            }
            Message::Accept {
                ballot,
                entries,
                commit,
            } => self.on_accept(from, ballot, entries, commit),
            Message::Accepted {
                ballot,
                ok,
                promised,
                slots,
            } => {
                if ok {
                    self.on_accepted(from, ballot, &slots);
                } else {
                    self.on_refusal(promised);
                }
            }
            Message::Heartbeat {
                ballot,
                commit,
                round,
            } => self.on_heartbeat(from, ballot, commit, round),
            Message::HeartbeatAck {
                ballot,
                ok,
                promised,
                round,
            } => {
                if ok {
                    self.on_heartbeat_ack(from, ballot, round);
                } else {
                    self.on_refusal(promised);
                }
            }
            Message::Fetch { from: slot } => self.on_fetch(from, slot),
            Message::Learn { entries, snapshot } => self.on_learn(entries, snapshot),
        }
        self.advance_chosen();
    }

    // ---- election (phase 1) ----

    /// Asks whether a majority would promise the next ballot, before raising anything.
    fn probe(&mut self) {
        self.fail_reads();
        self.proposals.clear();
        self.unsent.clear();
        self.role = Role::PreCandidate;
        self.leader = None;
        self.probe_ballot = Ballot {
            round: self.max_round.max(self.promised.round) + 1,
            node: self.cfg.id,
        };
        self.probes.clear();
        self.election_elapsed = 0;
        self.timeout = self.random_timeout();
        if self.cfg.quorum() <= 1 {
            self.campaign();
            return;
        }
        for peer in self.peers() {
            self.send(
                peer,
                Message::Probe {
                    ballot: self.probe_ballot,
                },
            );
        }
    }

    fn on_probe_ok(&mut self, from: NodeId, ballot: Ballot) {
        if self.role != Role::PreCandidate || ballot != self.probe_ballot {
            return;
        }
        self.probes.insert(from);
        if self.probes.len() + 1 >= self.cfg.quorum() {
            self.campaign();
        }
    }

    /// While this server hears from a leader (or, leading, from a majority), it promises no
    /// one else. This keeps a live leader in place and is what makes a read lease sound. A
    /// server just restarted counts as having heard from one: it may have acknowledged a lease
    /// before it crashed.
    fn sticky(&self, candidate: NodeId) -> bool {
        self.contact_elapsed < self.cfg.election_ticks && self.leader != Some(candidate)
    }

    fn campaign(&mut self) {
        self.fail_reads();
        self.proposals.clear();
        self.unsent.clear();
        self.role = Role::Candidate;
        self.leader = None;
        self.max_round = self.max_round.max(self.promised.round) + 1;
        self.ballot = Ballot {
            round: self.max_round,
            node: self.cfg.id,
        };
        // The round is durable before any Prepare that uses it leaves, and so is the
        // candidate's promise to itself.
        self.persist.round = Some(self.max_round);
        self.set_promised(self.ballot);
        self.promises.clear();
        self.own_promise_pending = true;
        self.election_elapsed = 0;
        self.timeout = self.random_timeout();
        let from = self.chosen_upto + 1;
        tracing::debug!("campaigning with ballot {} from slot {from}", self.ballot);
        for peer in self.peers() {
            self.send(
                peer,
                Message::Prepare {
                    ballot: self.ballot,
                    from,
                },
            );
        }
    }

    fn on_prepare(&mut self, from: NodeId, ballot: Ballot, slot: Slot) {
        // A live leader keeps its place (see `sticky`).
        if ballot < self.promised || (self.sticky(from) && ballot > self.promised) {
            self.send(
                from,
                Message::Promise {
                    ballot,
                    ok: false,
                    promised: self.promised,
                    compacted: 0,
                    accepted: Vec::new(),
                },
            );
            return;
        }
        if ballot > self.promised {
            self.set_promised(ballot);
        }
        if ballot > self.ballot && self.role != Role::Follower {
            self.become_follower(None);
        }
        self.election_elapsed = 0;
        let accepted = self
            .log
            .range(slot..)
            .filter_map(|(s, st)| {
                st.accepted.as_ref().map(|(b, v)| Accepted {
                    slot: *s,
                    ballot: *b,
                    value: v.clone(),
                })
            })
            .collect();
        self.send(
            from,
            Message::Promise {
                ballot,
                ok: true,
                promised: ballot,
                compacted: self.compacted(),
                accepted,
            },
        );
    }

    fn on_promise(&mut self, from: NodeId, ballot: Ballot, compacted: Slot, acc: Vec<Accepted>) {
        if self.role != Role::Candidate || ballot != self.ballot {
            return;
        }
        self.promises.insert(from, (compacted, acc));
        self.maybe_adopt();
    }

    fn maybe_adopt(&mut self) {
        let own = usize::from(!self.own_promise_pending);
        if self.role != Role::Candidate || self.promises.len() + own < self.cfg.quorum() {
            return;
        }
        // Phase 1 is complete: for every slot not known chosen, the value of the highest
        // ballot any promiser voted for, or a no-op.
        let mut best: BTreeMap<Slot, (Ballot, Vec<u8>)> = BTreeMap::new();
        let mut floor = self.compacted();
        let promises = std::mem::take(&mut self.promises);
        for (compacted, acc) in promises.into_values() {
            floor = floor.max(compacted);
            for a in acc {
                let better = best.get(&a.slot).is_none_or(|(b, _)| a.ballot > *b);
                if better {
                    best.insert(a.slot, (a.ballot, a.value));
                }
            }
        }
        // Its own votes, which it did not send itself.
        for (s, st) in self.log.range(self.chosen_upto + 1..) {
            if let Some((b, v)) = &st.accepted {
                if best.get(s).is_none_or(|(bb, _)| b > bb) {
                    best.insert(*s, (*b, v.clone()));
                }
            }
        }
        if self.cfg.bugs.ignore_accepted {
            // The bug: keep only what this server itself voted for.
            best.retain(
                |s, (b, v)| match self.log.get(s).and_then(|st| st.accepted.as_ref()) {
                    Some((ob, ov)) => {
                        *b = *ob;
                        *v = ov.clone();
                        true
                    }
                    None => false,
                },
            );
        }
        let last = best
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(floor)
            .max(self.chosen_upto);
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.floor = floor;
        self.heartbeat_elapsed = 0;
        self.check_elapsed = 0;
        self.contact_elapsed = 0;
        self.active.clear();
        self.acked_round.clear();
        self.round_sent.clear();
        self.lease_until = i64::MIN;
        self.next_slot = last + 1;
        self.adopted_upto = last;
        tracing::info!(
            "leading with ballot {}: re-proposing slots {}..={last} ({} reported votes)",
            self.ballot,
            self.chosen_upto.max(floor) + 1,
            best.len()
        );
        for slot in self.chosen_upto.max(floor) + 1..=last {
            if let Some(v) = self.log.get(&slot).and_then(|st| st.chosen.clone()) {
                // Known chosen already (learned out of order): the same value, proposed
                // again so that followers learn it from this ballot.
                self.start_proposal(slot, v);
                continue;
            }
            let value = best.remove(&slot).map(|(_, v)| v).unwrap_or_default();
            self.start_proposal(slot, value);
        }
        if self.chosen_upto < floor {
            self.fetch_from_peers();
        }
        self.broadcast_heartbeat();
    }

    fn on_refusal(&mut self, promised: Ballot) {
        if promised.round > self.max_round {
            // Never propose below a round seen: the next campaign goes above it.
            self.max_round = promised.round;
        }
        if self.role != Role::Follower && promised > self.ballot {
            tracing::debug!("ballot {} refused: {} was promised", self.ballot, promised);
            self.become_follower(None);
        }
    }

    fn become_follower(&mut self, leader: Option<NodeId>) {
        if self.role != Role::Follower {
            self.fail_reads();
            self.proposals.clear();
            self.unsent.clear();
            self.promises.clear();
            self.own_promise_pending = false;
        }
        self.role = Role::Follower;
        self.leader = leader;
        // Back off for a fresh random timeout before campaigning again.
        self.election_elapsed = 0;
        self.timeout = self.random_timeout();
    }

    // ---- phase 2 ----

    fn start_proposal(&mut self, slot: Slot, value: Vec<u8>) {
        self.vote_for(slot, self.ballot, value.clone());
        self.own_votes_pending.push((slot, self.ballot));
        self.proposals.insert(
            slot,
            Proposal {
                value,
                acks: BTreeSet::new(),
                age: 0,
            },
        );
        self.unsent.push(slot);
    }

    fn vote_for(&mut self, slot: Slot, ballot: Ballot, value: Vec<u8>) {
        self.persist.accepted.push(Accepted {
            slot,
            ballot,
            value: value.clone(),
        });
        self.log.entry(slot).or_default().accepted = Some((ballot, value));
    }

    fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        entries: Vec<(Slot, Vec<u8>)>,
        commit: Slot,
    ) {
        if ballot < self.promised {
            self.send(
                from,
                Message::Accepted {
                    ballot,
                    ok: false,
                    promised: self.promised,
                    slots: Vec::new(),
                },
            );
            return;
        }
        if ballot > self.promised {
            self.set_promised(ballot);
        }
        self.hear_from_leader(from, ballot);
        let compacted = self.compacted();
        let mut slots = Vec::with_capacity(entries.len());
        for (slot, value) in entries {
            if slot > compacted {
                self.vote_for(slot, ballot, value);
            }
            slots.push(slot);
        }
        self.send(
            from,
            Message::Accepted {
                ballot,
                ok: true,
                promised: ballot,
                slots,
            },
        );
        self.learn_commit(from, ballot, commit);
    }

    fn on_accepted(&mut self, from: NodeId, ballot: Ballot, slots: &[Slot]) {
        if self.role != Role::Leader || ballot != self.ballot {
            return;
        }
        self.active.insert(from);
        for slot in slots {
            self.count_vote(*slot, from);
        }
    }

    fn count_vote(&mut self, slot: Slot, voter: NodeId) {
        let quorum = self.cfg.quorum();
        let Some(p) = self.proposals.get_mut(&slot) else {
            return;
        };
        p.acks.insert(voter);
        if p.acks.len() >= quorum {
            let p = self.proposals.remove(&slot).expect("present");
            self.log.entry(slot).or_default().chosen = Some(p.value);
        }
    }

    fn resend_accepts(&mut self) {
        let mut per_peer: BTreeMap<NodeId, Vec<(Slot, Vec<u8>)>> = BTreeMap::new();
        for (slot, p) in self.proposals.iter_mut() {
            p.age += self.cfg.heartbeat_ticks;
            if p.age < self.cfg.heartbeat_ticks * 2 {
                continue;
            }
            p.age = 0;
            for peer in self.cfg.members.iter().filter(|m| **m != self.cfg.id) {
                let batch = per_peer.entry(*peer).or_default();
                if !p.acks.contains(peer) && batch.len() < self.cfg.max_batch {
                    batch.push((*slot, p.value.clone()));
                }
            }
        }
        for (peer, entries) in per_peer {
            if !entries.is_empty() {
                self.send(
                    peer,
                    Message::Accept {
                        ballot: self.ballot,
                        entries,
                        commit: self.chosen_upto,
                    },
                );
            }
        }
    }

    fn flush_accepts(&mut self) {
        if self.unsent.is_empty() || self.role != Role::Leader {
            self.unsent.clear();
            return;
        }
        let slots = std::mem::take(&mut self.unsent);
        for chunk in slots.chunks(self.cfg.max_batch.max(1)) {
            let entries: Vec<(Slot, Vec<u8>)> = chunk
                .iter()
                .filter_map(|s| self.proposals.get(s).map(|p| (*s, p.value.clone())))
                .collect();
            if entries.is_empty() {
                continue;
            }
            for peer in self.peers() {
                self.send(
                    peer,
                    Message::Accept {
                        ballot: self.ballot,
                        entries: entries.clone(),
                        commit: self.chosen_upto,
                    },
                );
            }
        }
    }

    // ---- heartbeats, learning, catching up ----

    fn broadcast_heartbeat(&mut self) {
        self.hb_round += 1;
        let round = self.hb_round;
        self.round_sent.insert(round, self.wall_ms);
        for r in self.reads.iter_mut().filter(|r| r.round.is_none()) {
            r.round = Some(round);
        }
        for peer in self.peers() {
            self.send(
                peer,
                Message::Heartbeat {
                    ballot: self.ballot,
                    commit: self.chosen_upto,
                    round,
                },
            );
        }
        // A cluster of one is its own majority.
        self.confirm_rounds();
    }

    fn on_heartbeat(&mut self, from: NodeId, ballot: Ballot, commit: Slot, round: u64) {
        if ballot < self.promised {
            self.send(
                from,
                Message::HeartbeatAck {
                    ballot,
                    ok: false,
                    promised: self.promised,
                    round,
                },
            );
            return;
        }
        self.hear_from_leader(from, ballot);
        self.send(
            from,
            Message::HeartbeatAck {
                ballot,
                ok: true,
                promised: ballot,
                round,
            },
        );
        self.learn_commit(from, ballot, commit);
    }

    fn on_heartbeat_ack(&mut self, from: NodeId, ballot: Ballot, round: u64) {
        if self.role != Role::Leader || ballot != self.ballot {
            return;
        }
        self.active.insert(from);
        let r = self.acked_round.entry(from).or_default();
        *r = (*r).max(round);
        self.confirm_rounds();
    }

    /// The highest round a majority (this leader included) acknowledged: reads of that
    /// round or earlier are confirmed, and the lease runs from when it was sent.
    fn confirm_rounds(&mut self) {
        let mut rounds: Vec<u64> = self.acked_round.values().copied().collect();
        rounds.push(self.hb_round);
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&confirmed) = rounds.get(self.cfg.quorum() - 1) else {
            return;
        };
        if let Some(sent) = self.round_sent.get(&confirmed) {
            self.lease_until = self.lease_until.max(sent + self.cfg.lease_ms());
            self.contact_elapsed = 0;
        }
        self.round_sent.retain(|r, _| *r > confirmed);
        let ready = &mut self.ready_reads;
        self.reads.retain(|r| match r.round {
            Some(round) if round <= confirmed => {
                ready.push(ReadReady {
                    ctx: r.ctx,
                    slot: r.slot,
                });
                false
            }
            _ => true,
        });
    }

    fn hear_from_leader(&mut self, from: NodeId, ballot: Ballot) {
        if self.role == Role::PreCandidate || (self.role != Role::Follower && ballot > self.ballot)
        {
            self.become_follower(Some(from));
        }
        if self.role == Role::Follower {
            self.leader = Some(from);
            self.election_elapsed = 0;
            self.contact_elapsed = 0;
        }
    }

    /// Slots up to `commit` are chosen in `ballot`'s leader's view; those this acceptor voted
    /// for in that very ballot hold the chosen value. The first that does not is fetched.
    fn learn_commit(&mut self, from: NodeId, ballot: Ballot, commit: Slot) {
        let mut s = self.chosen_upto + 1;
        while s <= commit {
            let st = self.log.entry(s).or_default();
            if st.chosen.is_none() {
                match &st.accepted {
                    Some((b, v)) if *b == ballot => st.chosen = Some(v.clone()),
                    _ => break,
                }
            }
            s += 1;
        }
        self.advance_chosen();
        if self.chosen_upto < commit && self.fetch_elapsed >= 2 {
            self.fetch_elapsed = 0;
            self.send(
                from,
                Message::Fetch {
                    from: self.chosen_upto + 1,
                },
            );
        }
    }

    fn fetch_from_peers(&mut self) {
        let from = self.chosen_upto + 1;
        for peer in self.peers() {
            self.send(peer, Message::Fetch { from });
        }
    }

    fn on_fetch(&mut self, to: NodeId, from: Slot) {
        if from <= self.compacted() {
            if let Some(s) = self.snapshot.clone() {
                // A laggard fetches at every heartbeat (a leader below its floor) or every
                // Accept, and a snapshot of megabytes takes longer than that to arrive and be
                // installed: answering each Fetch with it again piles copies up in the peer's
                // queue, ahead of the Accepted and heartbeat replies a leader needs within an
                // election timeout. So the same snapshot goes to the same peer at most once per
                // quorum-check period (as raft-node's leader holds a follower in `Snapshot`
                // state until it answers or times out); a lost one is sent again after that.
                let resend_ticks = u64::from(self.cfg.election_ticks) * 2;
                if let Some(&(slot, at)) = self.snapshot_sent.get(&to) {
                    if slot == s.last_slot && self.ticks < at + resend_ticks {
                        return;
                    }
                }
                self.snapshot_sent.insert(to, (s.last_slot, self.ticks));
                self.send(
                    to,
                    Message::Learn {
                        entries: Vec::new(),
                        snapshot: Some(s),
                    },
                );
            }
            return;
        }
        if from > self.chosen_upto {
            return;
        }
        let entries: Vec<(Slot, Vec<u8>)> = self
            .log
            .range(from..=self.chosen_upto)
            .take(self.cfg.max_batch)
            .filter_map(|(s, st)| st.chosen.clone().map(|v| (*s, v)))
            .collect();
        if !entries.is_empty() {
            self.send(
                to,
                Message::Learn {
                    entries,
                    snapshot: None,
                },
            );
        }
    }

    fn on_learn(&mut self, entries: Vec<(Slot, Vec<u8>)>, snapshot: Option<Snapshot>) {
        if let Some(s) = snapshot {
            if s.last_slot > self.chosen_upto {
                self.install_snapshot(s);
            }
        }
        for (slot, value) in entries {
            if slot > self.chosen_upto {
                self.proposals.remove(&slot);
                self.log.entry(slot).or_default().chosen = Some(value);
            }
        }
    }

    fn install_snapshot(&mut self, s: Snapshot) {
        tracing::info!("installing a snapshot up to slot {}", s.last_slot);
        let last = s.last_slot;
        self.log = self.log.split_off(&(last + 1));
        self.proposals = self.proposals.split_off(&(last + 1));
        self.chosen_upto = last;
        self.executed = last;
        self.next_slot = self.next_slot.max(last + 1);
        self.persist.snapshot = Some(s.clone());
        // Votes in the persist queue for covered slots are harmless: storage drops them.
        self.apply_snapshot = Some(s.clone());
        self.snapshot = Some(s);
    }

    fn advance_chosen(&mut self) {
        while let Some(st) = self.log.get(&(self.chosen_upto + 1)) {
            if st.chosen.is_none() {
                break;
            }
            self.chosen_upto += 1;
            self.hole_ticks = 0;
        }
    }

    /// The `skip-hole` bug: an executor tired of waiting on a slot, while later ones are
    /// chosen, executes it as a no-op.
    fn maybe_skip_hole(&mut self) {
        let later_chosen = self
            .log
            .range(self.chosen_upto + 2..)
            .any(|(_, st)| st.chosen.is_some());
        if !later_chosen {
            self.hole_ticks = 0;
            return;
        }
        self.hole_ticks += 1;
        if self.hole_ticks >= self.cfg.heartbeat_ticks * 2 {
            let slot = self.chosen_upto + 1;
            tracing::warn!(
                "skip-hole bug: executing slot {slot} as a no-op without knowing it chosen"
            );
            self.log.entry(slot).or_default().chosen = Some(Vec::new());
            self.proposals.remove(&slot);
            self.advance_chosen();
        }
    }

    // ---- output ----

    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.persist.is_empty()
            || self.apply_snapshot.is_some()
            || self.executed < self.chosen_upto
            || !self.ready_reads.is_empty()
            || !self.failed_reads.is_empty()
            || !self.unsent.is_empty()
            || self.reads.iter().any(|r| r.round.is_none())
    }

    pub fn take_ready(&mut self) -> Ready {
        self.flush_accepts();
        if self.role == Role::Leader && self.reads.iter().any(|r| r.round.is_none()) {
            // Reads waiting for a round get one now rather than at the next heartbeat.
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
        let chosen: Vec<(Slot, Vec<u8>)> = if self.executed < self.chosen_upto {
            self.log
                .range(self.executed + 1..=self.chosen_upto)
                .map(|(s, st)| (*s, st.chosen.clone().unwrap_or_default()))
                .collect()
        } else {
            Vec::new()
        };
        self.executed = self.chosen_upto;
        let mut persist = std::mem::take(&mut self.persist);
        if self.cfg.bugs.forget_promise {
            // The bug: the promise lives in memory only.
            persist.promised = None;
        }
        Ready {
            persist,
            messages: std::mem::take(&mut self.msgs),
            apply_snapshot: self.apply_snapshot.take(),
            chosen,
            reads: std::mem::take(&mut self.ready_reads),
            failed_reads: std::mem::take(&mut self.failed_reads),
        }
    }

    /// What the last `Ready` asked to persist is durable: the leader's own promise and votes
    /// count from now on.
    pub fn advance(&mut self) {
        // Taken first: votes queued by an adoption below are not durable yet.
        let votes = std::mem::take(&mut self.own_votes_pending);
        if self.role == Role::Leader {
            let me = self.cfg.id;
            for (slot, ballot) in votes {
                if ballot == self.ballot {
                    self.count_vote(slot, me);
                }
            }
            self.advance_chosen();
        }
        if self.own_promise_pending && self.role == Role::Candidate {
            self.own_promise_pending = false;
            self.maybe_adopt();
        }
    }

    /// Folds every slot up to `slot` (executed) into `data`, the state machine's snapshot.
    pub fn compact(&mut self, slot: Slot, data: Vec<u8>) {
        if slot <= self.compacted() || slot > self.executed {
            return;
        }
        let s = Snapshot {
            last_slot: slot,
            data,
        };
        self.log = self.log.split_off(&(slot + 1));
        self.persist.snapshot = Some(s.clone());
        self.snapshot = Some(s);
    }

    // ---- helpers ----

    fn set_promised(&mut self, ballot: Ballot) {
        self.promised = ballot;
        self.persist.promised = Some(ballot);
    }

    fn fail_reads(&mut self) {
        self.failed_reads
            .extend(self.reads.drain(..).map(|r| r.ctx));
    }

    fn peers(&self) -> Vec<NodeId> {
        self.cfg
            .members
            .iter()
            .copied()
            .filter(|m| *m != self.cfg.id)
            .collect()
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.msgs.push(Envelope {
            from: self.cfg.id,
            to,
            msg,
        });
    }

    fn random_timeout(&mut self) -> u32 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let base = self.cfg.election_ticks.max(2);
        base + (z % u64::from(base)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: u64, bugs: Bugs) -> Paxos {
        let mut cfg = Config::new(NodeId(id), (0..3).map(NodeId).collect());
        cfg.bugs = bugs;
        Paxos::new(cfg, Persisted::default())
    }

    fn b(round: u64, node: u64) -> Ballot {
        Ballot {
            round,
            node: NodeId(node),
        }
    }

    fn vote(slot: Slot, ballot: Ballot, v: &str) -> Accepted {
        Accepted {
            slot,
            ballot,
            value: v.as_bytes().to_vec(),
        }
    }

    /// Ticks `p` until it probes, grants the probe, persists and advances; returns its
    /// ballot.
    fn campaign(p: &mut Paxos) -> Ballot {
        for _ in 0..100 {
            p.tick();
            if p.role() == Role::PreCandidate {
                break;
            }
        }
        assert_eq!(p.role(), Role::PreCandidate);
        let rd = p.take_ready();
        assert!(rd.persist.is_empty(), "a probe changes nothing durable");
        let ballot = p.probe_ballot;
        p.step(Envelope {
            from: NodeId(1),
            to: NodeId(0),
            msg: Message::ProbeReply {
                ballot,
                ok: true,
                promised: Ballot::ZERO,
            },
        });
        assert_eq!(p.role(), Role::Candidate);
        let rd = p.take_ready();
        assert_eq!(
            rd.persist.round,
            Some(p.ballot().round),
            "the round is durable first"
        );
        assert!(rd
            .messages
            .iter()
            .all(|m| matches!(m.msg, Message::Prepare { .. })));
        p.advance();
        p.ballot()
    }

    /// The values the leader's Accepts carry, by slot.
    fn proposed(p: &mut Paxos) -> BTreeMap<Slot, String> {
        let rd = p.take_ready();
        let mut out = BTreeMap::new();
        for m in rd.messages {
            if let Message::Accept { entries, .. } = m.msg {
                for (s, v) in entries {
                    out.insert(s, String::from_utf8(v).expect("utf8"));
                }
            }
        }
        out
    }

    fn adopt_with(bugs: Bugs) -> BTreeMap<Slot, String> {
        let mut p = server(0, bugs);
        // Its own vote in slot 1, at a low ballot.
        p.log.entry(1).or_default().accepted = Some((b(1, 0), b"own".to_vec()));
        let ballot = campaign(&mut p);
        p.step(Envelope {
            from: NodeId(1),
            to: NodeId(0),
            msg: Message::Promise {
                ballot,
                ok: true,
                promised: ballot,
                compacted: 0,
                accepted: vec![vote(1, b(2, 1), "higher"), vote(3, b(1, 1), "c")],
            },
        });
        assert_eq!(
            p.role(),
            Role::Leader,
            "itself and one promise are a majority of 3"
        );
        proposed(&mut p)
    }

    #[test]
    fn a_new_leader_reproposes_the_highest_ballot_value_and_fills_gaps_with_no_ops() {
        let got = adopt_with(Bugs::default());
        let want: BTreeMap<Slot, String> = [(1, "higher"), (2, ""), (3, "c")]
            .into_iter()
            .map(|(s, v)| (s, v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn ignore_accepted_reproposes_its_own_values_instead() {
        let bugs = Bugs {
            ignore_accepted: true,
            ..Bugs::default()
        };
        let got = adopt_with(bugs);
        assert_eq!(got.get(&1).map(String::as_str), Some("own"));
        assert!(
            !got.contains_key(&3),
            "slot 3's reported value is dropped: {got:?}"
        );
    }

    #[test]
    fn an_acceptor_refuses_a_ballot_below_its_promise_and_says_which() {
        let mut p = server(1, Bugs::default());
        p.contact_elapsed = 1_000;
        p.step(Envelope {
            from: NodeId(2),
            to: NodeId(1),
            msg: Message::Prepare {
                ballot: b(5, 2),
                from: 1,
            },
        });
        let rd = p.take_ready();
        assert_eq!(
            rd.persist.promised,
            Some(b(5, 2)),
            "the promise is durable before the reply"
        );
        p.advance();
        p.step(Envelope {
            from: NodeId(0),
            to: NodeId(1),
            msg: Message::Accept {
                ballot: b(4, 0),
                entries: vec![(1, b"x".to_vec())],
                commit: 0,
            },
        });
        let rd = p.take_ready();
        assert!(rd.persist.accepted.is_empty(), "no vote below the promise");
        assert!(matches!(
            rd.messages[0].msg,
            Message::Accepted { ok: false, promised, .. } if promised == b(5, 2)
        ));
    }

    #[test]
    fn forget_promise_does_not_persist_the_promise() {
        let mut p = server(
            1,
            Bugs {
                forget_promise: true,
                ..Bugs::default()
            },
        );
        p.contact_elapsed = 1_000;
        p.step(Envelope {
            from: NodeId(2),
            to: NodeId(1),
            msg: Message::Prepare {
                ballot: b(5, 2),
                from: 1,
            },
        });
        let rd = p.take_ready();
        assert_eq!(rd.persist.promised, None);
        assert!(matches!(
            rd.messages[0].msg,
            Message::Promise { ok: true, .. }
        ));
    }

    #[test]
    fn half_quorum_is_not_a_majority() {
        let mut cfg = Config::new(NodeId(0), (0..4).map(NodeId).collect());
        assert_eq!(cfg.quorum(), 3);
        cfg.bugs.half_quorum = true;
        assert_eq!(cfg.quorum(), 2);
    }
}
