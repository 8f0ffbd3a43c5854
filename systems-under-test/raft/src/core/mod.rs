//! The Raft core: a sans-IO state machine (in the style of raft-rs's `RawNode` and
//! openraft's `Engine`). It takes a tick, a message, a proposal or a read, and accumulates what
//! the application must do into a [`Ready`]. It never reads a clock, never does I/O and never
//! draws ambient randomness: ticks, wall time and the seed come in as inputs, so the same code
//! runs in `raft-node` and in the seeded simulation of the tests.
//!
//! References are to Ongaro and Ousterhout, "In Search of an Understandable Consensus
//! Algorithm" (2014), and to Ongaro's thesis "Consensus: Bridging Theory and Practice" (2014).

mod log;
pub mod types;

use std::collections::BTreeMap;

pub use log::Log;
pub use types::*;

/// How linearizable reads are confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Thesis section 6.4: record the commit index, confirm leadership with a heartbeat round
    /// acknowledged by a majority, serve once that index is applied.
    #[default]
    ReadIndex,
    /// Thesis section 6.4.1: serve from the leader while a lease, measured on the leader's
    /// wall clock from the start of the last majority-acknowledged round, has not expired.
    /// Unsafe when clocks jump: the clock nemesis exists to show it.
    Lease,
}

/// Deliberate mistakes, each one real systems have shipped, for proving that the harness
/// catches them. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Any server answers reads from its local state, leader or not, without confirmation.
    pub stale_read: bool,
    /// Entries of earlier terms are committed by counting replicas (the paper's Figure 8).
    pub commit_old_term: bool,
    /// The vote is not persisted, so a restarted server can vote twice in one term.
    pub forget_vote: bool,
    /// A write is acknowledged once the leader has it on disk, before it is committed.
    pub early_ack: bool,
    /// The log is written but never fdatasynced before anything is acknowledged: it survives
    /// a kill -9 (the page cache keeps it) and not a power loss. Acted on by the driver.
    pub no_fsync: bool,
}

impl Bugs {
    pub const NAMES: [&'static str; 5] = [
        "stale-read",
        "commit-old-term",
        "forget-vote",
        "early-ack",
        "no-fsync",
    ];

    /// The names of the bugs switched on.
    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            self.stale_read,
            self.commit_old_term,
            self.forget_vote,
            self.early_ack,
            self.no_fsync,
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
            "stale-read" => self.stale_read = true,
            "commit-old-term" => self.commit_old_term = true,
            "forget-vote" => self.forget_vote = true,
            "early-ack" => self.early_ack = true,
            "no-fsync" => self.no_fsync = true,
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
    /// The minimum election timeout, in ticks; each timeout is drawn from `[min, 2 * min)`.
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    /// Length of a tick in milliseconds of wall time, to size the lease.
    pub tick_ms: u64,
    /// Entries in one AppendEntries.
    pub max_batch: usize,
    /// Bytes of entry data in one AppendEntries (at least one entry is always sent).
    pub max_batch_bytes: usize,
    /// Entries sent but not yet acknowledged, per follower, before the leader waits.
    pub max_inflight: u64,
    pub read_mode: ReadMode,
    /// Ask for pre-votes before each election (thesis section 9.6): a server that could not
    /// win does not raise the term. Off, an election timeout starts a new term at once.
    pub pre_vote: bool,
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
            max_batch_bytes: 1 << 20,
            max_inflight: 8192,
            read_mode: ReadMode::ReadIndex,
            pre_vote: true,
            bugs: Bugs::default(),
            seed: 0,
        }
    }

    /// The lease a majority grants by acknowledging a round: the election timeout minus a
    /// margin for clock drift (thesis section 6.4.1 bounds drift; we take 20%).
    ///
    /// Two ticks are taken off first: a follower's tick may fire just after a message arrives
    /// and again just before it votes, so it may vote as early as `election_ticks - 2` tick
    /// lengths after hearing from the leader. `raft-node` refuses a lease with fewer than 10
    /// election ticks, where nothing would be left.
    pub fn lease_ms(&self) -> i64 {
        (u64::from(self.election_ticks.saturating_sub(2)) * self.tick_ms * 8 / 10) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// The proposal could not be accepted here; `leader` is this server's best guess. The
/// runtime's type, so that the driver forwards Raft's refusals as it does any core's.
pub use node::runtime::NotLeader;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProgressState {
    /// Find where the logs agree, one AppendEntries at a time.
    Probe,
    /// Stream entries optimistically (pipelining), up to `max_inflight` unacknowledged.
    Replicate,
    /// An InstallSnapshot is on its way; `ticks` since it was sent.
    Snapshot { ticks: u32 },
}

/// The leader's view of one follower (Figure 2's nextIndex and matchIndex).
#[derive(Clone, Debug)]
struct Progress {
    next: LogIndex,
    matched: LogIndex,
    state: ProgressState,
    /// A probe is outstanding; resent at the next heartbeat.
    probe_sent: bool,
    /// Heard from since the last check-quorum.
    active: bool,
    /// Highest heartbeat round it acknowledged.
    acked_round: u64,
}

#[derive(Clone, Debug)]
struct PendingRead {
    ctx: u64,
    /// The commit index when the read arrived; `None` until this leader has committed an
    /// entry of its own term (before that its commit index may be behind, thesis 6.4 step 1).
    index: Option<LogIndex>,
    /// The heartbeat round that confirms it; `None` until the next round starts.
    round: Option<u64>,
}

/// One Raft server.
pub struct Raft {
    cfg: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: Log,
    commit: LogIndex,
    rng: u64,

    election_elapsed: u32,
    randomized_timeout: u32,
    heartbeat_elapsed: u32,
    /// Ticks since this server last heard from a leader of its term (thesis 4.2.3).
    leader_contact_elapsed: u32,
    votes: BTreeMap<NodeId, bool>,

    progress: BTreeMap<NodeId, Progress>,
    round: u64,
    /// Wall time at which each recent round started, for the lease.
    round_started_ms: BTreeMap<u64, i64>,
    lease_until_ms: i64,
    pending_reads: Vec<PendingRead>,
    start_round: bool,
    need_broadcast: bool,
    wall_ms: i64,

    /// Last index known to be on this server's disk (a leader counts itself only up to it).
    persisted: LogIndex,
    /// Entries at or after this index have not been handed to the application to persist.
    unstable_from: LogIndex,
    /// Everything up to here has been handed to the application to apply.
    handed: LogIndex,
    hard_state_dirty: bool,
    truncate_from: Option<LogIndex>,
    /// The latest snapshot, kept to send to lagging followers.
    snapshot: Option<Snapshot>,
    snapshot_dirty: bool,
    apply_snapshot: Option<Snapshot>,
    messages: Vec<Envelope>,
    reads_ready: Vec<ReadReady>,
    reads_failed: Vec<u64>,
    /// The last index of the most recent `Ready`'s appended entries, for `advance`.
    in_flight_persist: Option<LogIndex>,
}

impl Raft {
    /// A server restarting from what it last persisted (an empty `Persisted` for a new one).
    pub fn new(cfg: Config, state: Persisted) -> Raft {
        assert!(
            cfg.members.contains(&cfg.id),
            "a server is a member of its cluster"
        );
        let log = Log::restore(state.snapshot.as_ref(), state.entries);
        let snapshot_index = log.snapshot_index();
        let last = log.last_index();
        let mut raft = Raft {
            rng: cfg.seed ^ (cfg.id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            cfg,
            term: state.hard_state.term,
            vote: state.hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            commit: snapshot_index,
            election_elapsed: 0,
            randomized_timeout: 0,
            heartbeat_elapsed: 0,
            leader_contact_elapsed: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            round: 0,
            round_started_ms: BTreeMap::new(),
            lease_until_ms: i64::MIN,
            pending_reads: Vec::new(),
            start_round: false,
            need_broadcast: false,
            wall_ms: 0,
            persisted: last,
            unstable_from: last + 1,
            handed: snapshot_index,
            hard_state_dirty: false,
            truncate_from: None,
            snapshot: state.snapshot,
            snapshot_dirty: false,
            apply_snapshot: None,
            messages: Vec::new(),
            reads_ready: Vec::new(),
            reads_failed: Vec::new(),
            in_flight_persist: None,
        };
        raft.apply_snapshot = raft.snapshot.clone();
        if raft.cfg.read_mode != ReadMode::Lease {
            // Only the lease needs a restarted server to wait out a leader it may have promised
            // not to depose (thesis 6.4.1); otherwise it may vote at once.
            raft.leader_contact_elapsed = raft.cfg.election_ticks;
        }
        raft.reset_election_timer();
        raft
    }

    // ----- Accessors (for the application, /health and the invariants of the tests) -----

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }
    pub fn log(&self) -> &Log {
        &self.log
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    /// The last index known to be on this server's disk.
    pub fn persisted_index(&self) -> LogIndex {
        self.persisted
    }

    fn quorum(&self) -> usize {
        self.cfg.members.len() / 2 + 1
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.cfg.id;
        self.cfg.members.iter().copied().filter(move |m| *m != me)
    }

    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Section 5.2: timeouts are chosen randomly from a fixed interval to split votes rarely.
    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let min = self.cfg.election_ticks.max(1);
        self.randomized_timeout = min + (self.next_random() % u64::from(min)) as u32;
    }

    // ----- Inputs -----

    /// The application's wall clock, in milliseconds; used only by the lease.
    pub fn set_wall_ms(&mut self, ms: i64) {
        self.wall_ms = ms;
    }

    /// One tick of logical time.
    pub fn tick(&mut self) {
        self.leader_contact_elapsed = self.leader_contact_elapsed.saturating_add(1);
        match self.role {
            Role::Leader => {
                self.heartbeat_elapsed += 1;
                self.election_elapsed += 1;
                if self.election_elapsed >= self.cfg.election_ticks {
                    self.election_elapsed = 0;
                    self.check_quorum();
                    if self.role != Role::Leader {
                        return;
                    }
                }
                for p in self.progress.values_mut() {
                    if let ProgressState::Snapshot { ticks } = &mut p.state {
                        *ticks += 1;
                    }
                }
                if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                    self.heartbeat_elapsed = 0;
                    self.start_round = true;
                    self.broadcast(true);
                }
            }
            _ => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.randomized_timeout {
                    if self.cfg.pre_vote {
                        self.start_pre_vote();
                    } else {
                        self.start_election();
                    }
                } else if self
                    .election_elapsed
                    .is_multiple_of(self.cfg.heartbeat_ticks.max(1))
                {
                    self.request_votes();
                }
            }
        }
    }

    /// Proposes `data` for the log. On success returns where it will sit if committed: the
    /// entry `(term, index)` is committed only if the entry at `index` is applied with `term`.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(Term, LogIndex), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        let index = self.append_own(data);
        Ok((self.term, index))
    }

    /// Asks to serve a linearizable read tagged `ctx`; it comes back in `Ready::reads` (with
    /// the index to wait for) or `Ready::failed_reads`.
    pub fn read(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.cfg.bugs.stale_read {
            // The bug: whatever this server has applied is good enough.
            self.reads_ready.push(ReadReady { ctx, index: 0 });
            return Ok(());
        }
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.cfg.members.len() == 1 {
            self.pending_reads.push(PendingRead {
                ctx,
                index: None,
                round: Some(0),
            });
            self.release_reads();
            return Ok(());
        }
        let committed_own_term = self.log.term_at(self.commit) == Some(self.term);
        if self.cfg.read_mode == ReadMode::Lease
            && committed_own_term
            && self.wall_ms < self.lease_until_ms
        {
            self.reads_ready.push(ReadReady {
                ctx,
                index: self.commit,
            });
            return Ok(());
        }
        self.pending_reads.push(PendingRead {
            ctx,
            index: committed_own_term.then_some(self.commit),
            round: None,
        });
        self.start_round = true;
        self.need_broadcast = true;
        Ok(())
    }

    /// Handles a message from another server.
    pub fn step(&mut self, env: Envelope) {
        if env.to != self.cfg.id || env.from == self.cfg.id || !self.cfg.members.contains(&env.from)
        {
            return;
        }
        let from = env.from;
        let msg = env.msg;
        let term = msg.term();
        if let Message::RequestVote { pre_vote, .. } = &msg {
            // Thesis 4.2.3: a server that heard from a leader within the minimum election
            // timeout neither grants a vote nor updates its term, so a server returning from a
            // partition cannot depose a healthy leader.
            let in_lease = self.role == Role::Leader
                || (self.leader.is_some() && self.leader_contact_elapsed < self.cfg.election_ticks)
                || (self.cfg.read_mode == ReadMode::Lease
                    && self.leader_contact_elapsed < self.cfg.election_ticks);
            if term > self.term && in_lease {
                let reply = Message::RequestVoteResponse {
                    term: self.term,
                    granted: false,
                    pre_vote: *pre_vote,
                };
                self.send(from, reply);
                return;
            }
        }
        let is_pre_vote = matches!(
            msg,
            Message::RequestVote { pre_vote: true, .. }
                | Message::RequestVoteResponse {
                    pre_vote: true,
                    granted: true,
                    ..
                }
        );
        if term > self.term && !is_pre_vote {
            let leader = match msg {
                Message::AppendEntries { .. } | Message::InstallSnapshot { .. } => Some(from),
                _ => None,
            };
            self.become_follower(term, leader);
        }
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote,
            } => self.on_request_vote(from, term, last_log_index, last_log_term, pre_vote),
            Message::RequestVoteResponse {
                term,
                granted,
                pre_vote,
            } => self.on_vote_response(from, term, granted, pre_vote),
            Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                round,
            } => self.on_append_entries(
                from,
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                round,
            ),
            Message::AppendEntriesResponse {
                term,
                success,
                match_index,
                reject_index,
                conflict_index,
                conflict_term,
                round,
            } => {
                if term == self.term && self.role == Role::Leader {
                    self.on_append_response(
                        from,
                        success,
                        match_index,
                        reject_index,
                        conflict_index,
                        conflict_term,
                        round,
                    );
                }
            }
            Message::InstallSnapshot {
                term,
                snapshot,
                round,
            } => self.on_install_snapshot(from, term, snapshot, round),
            Message::InstallSnapshotResponse {
                term,
                last_index,
                round,
            } => {
                if term == self.term && self.role == Role::Leader {
                    self.on_snapshot_response(from, last_index, round);
                }
            }
        }
    }

    /// Folds every entry up to `index` (which the application has applied) into a snapshot
    /// whose state is `data`, and discards those entries (section 7).
    pub fn compact(&mut self, index: LogIndex, data: Vec<u8>) {
        if index <= self.log.snapshot_index() || index > self.handed {
            return;
        }
        let term = self
            .log
            .term_at(index)
            .expect("an applied entry after the snapshot is in the log");
        self.log.compact(index, term);
        self.snapshot = Some(Snapshot {
            last_index: index,
            last_term: term,
            data,
        });
        self.snapshot_dirty = true;
        if self.unstable_from <= index {
            self.unstable_from = index + 1;
        }
    }

    // ----- Output -----

    /// Whether `take_ready` has anything to hand out.
    pub fn has_ready(&self) -> bool {
        self.hard_state_dirty
            || self.truncate_from.is_some()
            || self.unstable_from <= self.log.last_index()
            || self.snapshot_dirty
            || self.apply_snapshot.is_some()
            || !self.messages.is_empty()
            || self.handed < self.commit
            || !self.reads_ready.is_empty()
            || !self.reads_failed.is_empty()
            || self.need_broadcast
    }

    /// Hands out everything accumulated since the last call. The application must persist
    /// `persist` and then call [`Raft::advance`] before giving the core any other input.
    pub fn take_ready(&mut self) -> Ready {
        if self.need_broadcast {
            self.broadcast(false);
        }
        let mut persist = Persist::default();
        if self.hard_state_dirty {
            self.hard_state_dirty = false;
            let vote = if self.cfg.bugs.forget_vote {
                None
            } else {
                self.vote
            };
            persist.hard_state = Some(HardState {
                term: self.term,
                vote,
            });
        }
        persist.truncate_from = self.truncate_from.take();
        if self.unstable_from <= self.log.last_index() {
            persist.append = self.log.tail(self.unstable_from).to_vec();
            self.unstable_from = self.log.last_index() + 1;
        }
        self.in_flight_persist = persist.append.last().map(|e| e.index);
        if self.snapshot_dirty {
            self.snapshot_dirty = false;
            persist.snapshot = self.snapshot.clone();
        }
        let apply_snapshot = self.apply_snapshot.take();
        let committed = if self.handed < self.commit {
            let from = self.handed + 1;
            self.handed = self.commit;
            self.log.slice(from, self.commit, usize::MAX)
        } else {
            Vec::new()
        };
        Ready {
            persist,
            messages: std::mem::take(&mut self.messages),
            apply_snapshot,
            committed,
            reads: std::mem::take(&mut self.reads_ready),
            failed_reads: std::mem::take(&mut self.reads_failed),
        }
    }

    /// The application has durably written the `persist` of the last `Ready`.
    pub fn advance(&mut self) {
        if let Some(last) = self.in_flight_persist.take() {
            // Only entries still in the log count: a truncation may have followed.
            if self.log.term_at(last).is_some() {
                self.persisted = self.persisted.max(last).min(self.log.last_index());
            }
            if self.role == Role::Leader {
                self.maybe_commit();
            }
        }
    }

    // ----- Elections (section 5.2, thesis 9.6) -----

    fn start_pre_vote(&mut self) {
        self.reset_election_timer();
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        if self.tally() {
            self.start_election();
            return;
        }
        self.request_votes();
    }

    fn start_election(&mut self) {
        self.reset_election_timer();
        self.role = Role::Candidate;
        self.term = Term(self.term.0 + 1);
        self.vote = Some(self.cfg.id);
        self.leader = None;
        self.hard_state_dirty = true;
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        if self.tally() {
            self.become_leader();
            return;
        }
        self.request_votes();
    }

    /// Asks every peer that has not answered yet for its (pre-)vote. Called when the
    /// (pre-)campaign starts and again every heartbeat interval while it lasts: section 5.1
    /// retries RPCs that get no answer, so a voter that was down or cut off when the campaign
    /// began can still be heard before the election times out.
    fn request_votes(&mut self) {
        let pre_vote = match self.role {
            Role::PreCandidate => true,
            Role::Candidate => false,
            _ => return,
        };
        let term = if pre_vote {
            Term(self.term.0 + 1)
        } else {
            self.term
        };
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let silent: Vec<NodeId> = self
            .peers()
            .filter(|p| !self.votes.contains_key(p))
            .collect();
        for peer in silent {
            self.send(
                peer,
                Message::RequestVote {
                    term,
                    last_log_index,
                    last_log_term,
                    pre_vote,
                },
            );
        }
    }

    fn tally(&self) -> bool {
        self.votes.values().filter(|g| **g).count() >= self.quorum()
    }

    /// Section 5.4.1: the candidate's log must be at least as up to date as the voter's.
    fn log_ok(&self, last_log_index: LogIndex, last_log_term: Term) -> bool {
        (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index())
    }

    fn on_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
    ) {
        let granted = if pre_vote {
            term > self.term && self.log_ok(last_log_index, last_log_term)
        } else {
            term == self.term
                && (self.vote.is_none() || self.vote == Some(from))
                && self.log_ok(last_log_index, last_log_term)
        };
        if granted && !pre_vote {
            self.vote = Some(from);
            self.hard_state_dirty = true;
            self.reset_election_timer();
        }
        let reply_term = if pre_vote && granted { term } else { self.term };
        self.send(
            from,
            Message::RequestVoteResponse {
                term: reply_term,
                granted,
                pre_vote,
            },
        );
    }

    fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool, pre_vote: bool) {
        if pre_vote {
            if self.role != Role::PreCandidate || term != Term(self.term.0 + 1) {
                return;
            }
            self.votes.insert(from, granted);
            if self.tally() {
                self.start_election();
            }
        } else {
            if self.role != Role::Candidate || term != self.term {
                return;
            }
            self.votes.insert(from, granted);
            if self.tally() {
                self.become_leader();
            }
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.hard_state_dirty = true;
        }
        if self.role == Role::Leader {
            self.fail_pending_reads();
            self.lease_until_ms = i64::MIN;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.reset_election_timer();
    }

    /// A message of the current term from its leader (there is one per term, section 5.2):
    /// follow it, and a candidate learns it lost.
    fn heard_from_leader(&mut self, term: Term, leader: NodeId) {
        if self.role != Role::Follower || self.leader != Some(leader) {
            self.become_follower(term, Some(leader));
        }
        self.leader_contact_elapsed = 0;
        self.election_elapsed = 0;
    }

    /// The largest value that a majority has reached: this server counts with `own`, each
    /// follower with `of` its progress.
    fn majority_value(&self, own: u64, of: impl Fn(&Progress) -> u64) -> u64 {
        let mut values: Vec<u64> = self.progress.values().map(of).collect();
        values.push(own);
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[self.quorum() - 1]
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.lease_until_ms = i64::MIN;
        let next = self.log.last_index() + 1;
        self.progress = self
            .peers()
            .map(|p| {
                (
                    p,
                    Progress {
                        next,
                        matched: 0,
                        state: ProgressState::Probe,
                        probe_sent: false,
                        active: true,
                        acked_round: 0,
                    },
                )
            })
            .collect();
        // Thesis 6.4: a no-op of the new term lets the leader learn what is committed.
        self.append_own(Vec::new());
        self.start_round = true;
        if self.cfg.members.len() == 1 {
            self.maybe_commit();
        }
    }

    /// Steps down if a majority has not been heard from for an election timeout (thesis 6.2),
    /// so a leader cut off from the cluster stops taking proposals.
    ///
    /// Under a lease the leader trusts its lease instead: it stays leader while the lease,
    /// timed on its wall clock, lasts. With agreeing clocks that is safe (no one else can be
    /// elected before the lease ends); a clock set back stretches it, which is the point.
    fn check_quorum(&mut self) {
        let active = 1 + self.progress.values().filter(|p| p.active).count();
        for p in self.progress.values_mut() {
            p.active = false;
        }
        let lease_holds =
            self.cfg.read_mode == ReadMode::Lease && self.wall_ms < self.lease_until_ms;
        if active < self.quorum() && !lease_holds {
            let term = self.term;
            self.become_follower(term, None);
        }
    }

    // ----- Replication (section 5.3) -----

    fn append_own(&mut self, data: Vec<u8>) -> LogIndex {
        let index = self.log.last_index() + 1;
        self.log.push(Entry {
            term: self.term,
            index,
            data,
        });
        self.need_broadcast = true;
        index
    }

    /// Sends every follower what it is missing; with `heartbeat`, also those that are up to
    /// date (an empty AppendEntries) and those waiting for a probe's answer.
    fn broadcast(&mut self, heartbeat: bool) {
        self.need_broadcast = false;
        if self.role != Role::Leader {
            return;
        }
        // A new round must reach every follower, up to date or not, to be acknowledged.
        let heartbeat = heartbeat || self.start_round;
        if self.start_round {
            self.start_round = false;
            self.round += 1;
            self.round_started_ms.insert(self.round, self.wall_ms);
            for r in &mut self.pending_reads {
                if r.round.is_none() {
                    r.round = Some(self.round);
                }
            }
            // Only the rounds a majority has not yet acknowledged are needed; keep few.
            while self.round_started_ms.len() > 64 {
                self.round_started_ms.pop_first();
            }
        }
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            self.send_append(peer, heartbeat);
        }
    }

    fn send_append(&mut self, peer: NodeId, heartbeat: bool) {
        let last = self.log.last_index();
        let snapshot_index = self.log.snapshot_index();
        let Some(p) = self.progress.get_mut(&peer) else {
            return;
        };
        if matches!(p.state, ProgressState::Snapshot { .. }) && p.next > snapshot_index {
            // Whatever the snapshot was for, the follower is past it now.
            p.state = ProgressState::Probe;
            p.probe_sent = false;
        }
        match p.state {
            ProgressState::Snapshot { ticks } => {
                if !(heartbeat && ticks >= self.cfg.election_ticks) {
                    return;
                }
            }
            ProgressState::Probe => {
                if p.probe_sent && !heartbeat {
                    return;
                }
            }
            ProgressState::Replicate => {
                let inflight = p.next.saturating_sub(p.matched + 1);
                if !heartbeat && (p.next > last || inflight >= self.cfg.max_inflight) {
                    return;
                }
            }
        }
        if p.next <= snapshot_index {
            let Some(snapshot) = self.snapshot.clone() else {
                return;
            };
            p.state = ProgressState::Snapshot { ticks: 0 };
            let msg = Message::InstallSnapshot {
                term: self.term,
                snapshot,
                round: self.round,
            };
            self.send(peer, msg);
            return;
        }
        let prev_log_index = p.next - 1;
        let prev_log_term = self
            .log
            .term_at(prev_log_index)
            .expect("entries after the snapshot are in the log");
        let entries = match p.state {
            ProgressState::Replicate
                if p.next.saturating_sub(p.matched + 1) >= self.cfg.max_inflight =>
            {
                Vec::new()
            }
            _ => self
                .log
                .slice_bytes(p.next, last, self.cfg.max_batch, self.cfg.max_batch_bytes),
        };
        match p.state {
            ProgressState::Replicate => {
                if let Some(e) = entries.last() {
                    p.next = e.index + 1;
                }
            }
            ProgressState::Probe => p.probe_sent = true,
            ProgressState::Snapshot { .. } => {}
        }
        let msg = Message::AppendEntries {
            term: self.term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit,
            round: self.round,
        };
        self.send(peer, msg);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_entries(
        &mut self,
        from: NodeId,
        term: Term,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
        round: u64,
    ) {
        let reject = |raft: &Raft, conflict_index, conflict_term| Message::AppendEntriesResponse {
            term: raft.term,
            success: false,
            match_index: 0,
            reject_index: prev_log_index,
            conflict_index,
            conflict_term,
            round,
        };
        if term < self.term {
            let msg = reject(self, 0, None);
            self.send(from, msg);
            return;
        }
        self.heard_from_leader(term, from);

        let snapshot_index = self.log.snapshot_index();
        let mut prev = prev_log_index;
        let mut prev_term = prev_log_term;
        if prev < snapshot_index {
            // Everything up to the snapshot is committed and matches; skip what it covers.
            let skip = (snapshot_index - prev) as usize;
            if skip > entries.len() {
                let msg = Message::AppendEntriesResponse {
                    term: self.term,
                    success: true,
                    match_index: snapshot_index.min(prev + entries.len() as u64),
                    reject_index: 0,
                    conflict_index: 0,
                    conflict_term: None,
                    round,
                };
                self.send(from, msg);
                return;
            }
            entries.drain(..skip);
            prev = snapshot_index;
            prev_term = self.log.snapshot_term();
        }
        if prev > self.log.last_index() {
            let msg = reject(self, self.log.last_index() + 1, None);
            self.send(from, msg);
            return;
        }
        let have = self.log.term_at(prev).expect("prev is within the log");
        if have != prev_term {
            let first = self.log.first_index_of_term_at(prev);
            let msg = reject(self, first, Some(have));
            self.send(from, msg);
            return;
        }
        let last_new = prev + entries.len() as u64;
        for entry in entries {
            match self.log.term_at(entry.index) {
                Some(t) if t == entry.term => continue,
                Some(_) => {
                    // Section 5.3: a conflicting entry and all that follow it are deleted.
                    self.log.truncate_from(entry.index);
                    self.truncate_from = Some(
                        self.truncate_from
                            .map_or(entry.index, |t| t.min(entry.index)),
                    );
                    self.unstable_from = self.unstable_from.min(entry.index);
                    self.persisted = self.persisted.min(entry.index - 1);
                    self.log.push(entry);
                }
                None => self.log.push(entry),
            }
        }
        let new_commit = leader_commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        let msg = Message::AppendEntriesResponse {
            term: self.term,
            success: true,
            match_index: last_new,
            reject_index: 0,
            conflict_index: 0,
            conflict_term: None,
            round,
        };
        self.send(from, msg);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: LogIndex,
        reject_index: LogIndex,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
        round: u64,
    ) {
        let last = self.log.last_index();
        let snapshot_index = self.log.snapshot_index();
        let last_index_of_conflict = conflict_term.and_then(|t| self.log.last_index_of_term(t));
        let Some(p) = self.progress.get_mut(&from) else {
            return;
        };
        p.active = true;
        p.acked_round = p.acked_round.max(round);
        if success {
            if match_index > p.matched {
                p.matched = match_index;
            }
            p.next = p.next.max(p.matched + 1);
            p.probe_sent = false;
            let past_snapshot = p.matched >= snapshot_index;
            match p.state {
                ProgressState::Probe => p.state = ProgressState::Replicate,
                // A success (late, or duplicated) shows the follower no longer needs the
                // snapshot: stream to it again.
                ProgressState::Snapshot { .. } if past_snapshot => {
                    p.state = ProgressState::Replicate;
                }
                _ => {}
            }
            self.maybe_commit();
        } else {
            let stale = reject_index < p.matched
                || (p.state == ProgressState::Probe && reject_index + 1 != p.next);
            if stale {
                // A rejection of an AppendEntries we have already moved past.
                self.on_round_acked();
                return;
            }
            // Fast backtracking (end of section 5.3): skip the follower's whole conflicting
            // term, or to its end if its log is short.
            let next = match (conflict_term, last_index_of_conflict) {
                (Some(_), Some(i)) => i + 1,
                _ => conflict_index,
            };
            p.next = next.clamp(p.matched + 1, last + 1);
            if p.next <= snapshot_index {
                p.next = snapshot_index; // send the snapshot
            }
            p.state = ProgressState::Probe;
            p.probe_sent = false;
        }
        self.on_round_acked();
        self.send_append(from, false);
    }

    fn on_install_snapshot(&mut self, from: NodeId, term: Term, snapshot: Snapshot, round: u64) {
        if term < self.term {
            let msg = Message::InstallSnapshotResponse {
                term: self.term,
                last_index: 0,
                round,
            };
            self.send(from, msg);
            return;
        }
        self.heard_from_leader(term, from);
        let last_index = snapshot.last_index;
        if last_index > self.commit {
            // Section 7: keep the entries after the snapshot if the log has its last entry.
            if self.log.term_at(last_index) == Some(snapshot.last_term) {
                self.log.compact(last_index, snapshot.last_term);
                self.unstable_from = self.unstable_from.max(last_index + 1);
            } else {
                self.log.reset(last_index, snapshot.last_term);
                // Every stored entry after the snapshot belongs to a log we just discarded.
                self.truncate_from = Some(
                    self.truncate_from
                        .map_or(last_index + 1, |t| t.min(last_index + 1)),
                );
                self.persisted = last_index;
                self.unstable_from = last_index + 1;
            }
            self.commit = last_index;
            self.handed = last_index;
            self.snapshot = Some(snapshot.clone());
            self.snapshot_dirty = true;
            self.apply_snapshot = Some(snapshot);
        }
        let msg = Message::InstallSnapshotResponse {
            term: self.term,
            last_index,
            round,
        };
        self.send(from, msg);
    }

    fn on_snapshot_response(&mut self, from: NodeId, last_index: LogIndex, round: u64) {
        let Some(p) = self.progress.get_mut(&from) else {
            return;
        };
        p.active = true;
        p.acked_round = p.acked_round.max(round);
        p.matched = p.matched.max(last_index);
        p.next = p.matched + 1;
        p.state = ProgressState::Probe;
        p.probe_sent = false;
        self.maybe_commit();
        self.on_round_acked();
        self.send_append(from, false);
    }

    /// Section 5.4.2: the leader commits an entry of its own term once a majority stores it;
    /// earlier entries are committed with it, never by counting replicas on their own
    /// (Figure 8 shows why), unless the `commit-old-term` bug is on.
    fn maybe_commit(&mut self) {
        let candidate = self.majority_value(self.persisted, |p| p.matched);
        if candidate <= self.commit {
            return;
        }
        let allowed =
            self.cfg.bugs.commit_old_term || self.log.term_at(candidate) == Some(self.term);
        if !allowed {
            return;
        }
        self.commit = candidate;
        self.need_broadcast = true;
        self.release_reads();
    }

    // ----- Reads (thesis 6.4) -----

    fn on_round_acked(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let majority_round = self.majority_value(self.round, |p| p.acked_round);
        if let Some(started) = self.round_started_ms.get(&majority_round) {
            self.lease_until_ms = self
                .lease_until_ms
                .max(started.saturating_add(self.cfg.lease_ms()));
        }
        self.release_reads_up_to(majority_round);
    }

    fn release_reads(&mut self) {
        let majority_round = self.majority_value(self.round, |p| p.acked_round);
        self.release_reads_up_to(majority_round);
    }

    fn release_reads_up_to(&mut self, majority_round: u64) {
        let committed_own_term = self.log.term_at(self.commit) == Some(self.term);
        if !committed_own_term {
            return;
        }
        let commit = self.commit;
        let mut ready = Vec::new();
        self.pending_reads.retain_mut(|r| {
            let index = *r.index.get_or_insert(commit);
            match r.round {
                Some(round) if round <= majority_round => {
                    ready.push(ReadReady { ctx: r.ctx, index });
                    false
                }
                _ => true,
            }
        });
        self.reads_ready.extend(ready);
    }

    fn fail_pending_reads(&mut self) {
        let failed = self.pending_reads.drain(..).map(|r| r.ctx);
        self.reads_failed.extend(failed);
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.messages.push(Envelope {
            from: self.cfg.id,
            to,
            msg,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lone follower of three whose election timer runs out.
    fn timed_out(pre_vote: bool) -> Raft {
        let mut cfg = Config::new(NodeId(0), vec![NodeId(0), NodeId(1), NodeId(2)]);
        cfg.pre_vote = pre_vote;
        let mut raft = Raft::new(cfg, Persisted::default());
        for _ in 0..(4 * 20) {
            raft.tick();
        }
        raft
    }

    #[test]
    fn pre_vote_keeps_the_term_until_a_majority_agrees() {
        let raft = timed_out(true);
        assert_eq!(raft.role(), Role::PreCandidate);
        assert_eq!(raft.term(), Term(0));
    }

    #[test]
    fn without_pre_vote_a_timeout_raises_the_term() {
        let raft = timed_out(false);
        assert_eq!(raft.role(), Role::Candidate);
        assert!(raft.term() >= Term(1), "{:?}", raft.term());
    }
}
