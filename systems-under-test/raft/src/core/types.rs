//! The vocabulary of the Raft core: ids, entries, messages and what a step hands back.

use serde::{Deserialize, Serialize};

/// A server of the cluster: the runtime's member number (the sorted order of the `--peers`
/// ids), so the core, the transport and the simulation share one id type.
pub use node::runtime::NodeId;

/// A Raft term (section 5.1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Term(pub u64);

/// A position in the replicated log; the first entry has index 1, 0 means "before the log".
pub type LogIndex = u64;

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One log entry. `data` is opaque to the core; an empty `data` is the no-op a new leader
/// appends to commit its predecessors' entries (section 5.4.2, thesis section 6.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: LogIndex,
    pub data: Vec<u8>,
}

/// What must be on disk before a server answers anyone (Figure 2, "persistent state").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
}

/// A snapshot of the state machine after applying every entry up to `last_index` (section 7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_index: LogIndex,
    pub last_term: Term,
    pub data: Vec<u8>,
}

/// Messages between servers. `round` numbers the leader's heartbeat rounds; a response echoes
/// it, which is how ReadIndex and the lease learn that a majority still follows (thesis 6.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// RequestVote (Figure 2), or the PreVote probe of thesis section 9.6 when `pre_vote`,
    /// in which case `term` is the term the candidate would campaign in.
    RequestVote {
        term: Term,
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
    },
    RequestVoteResponse {
        term: Term,
        granted: bool,
        pre_vote: bool,
    },
    AppendEntries {
        term: Term,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
        round: u64,
    },
    /// On success `match_index` is the last index known to match the leader. On rejection,
    /// `reject_index` is the `prev_log_index` that did not match and `conflict_*` let the
    /// leader skip a whole term at a time (the optimisation at the end of section 5.3).
    AppendEntriesResponse {
        term: Term,
        success: bool,
        match_index: LogIndex,
        reject_index: LogIndex,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
        round: u64,
    },
    InstallSnapshot {
        term: Term,
        snapshot: Snapshot,
        round: u64,
    },
    InstallSnapshotResponse {
        term: Term,
        last_index: LogIndex,
        round: u64,
    },
}

impl Message {
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. } => *term,
        }
    }
}

/// A message with its sender and receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message,
}

/// What the application must write, durably, before acting on anything else of a `Ready`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    pub hard_state: Option<HardState>,
    /// Delete every stored entry with an index at or above this one, before appending.
    pub truncate_from: Option<LogIndex>,
    pub append: Vec<Entry>,
    /// A snapshot to store; entries up to its `last_index` may then be discarded.
    pub snapshot: Option<Snapshot>,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.truncate_from.is_none()
            && self.append.is_empty()
            && self.snapshot.is_none()
    }
}

/// A read that may be served once the state machine has applied `index` (thesis 6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadReady {
    pub ctx: u64,
    pub index: LogIndex,
}

/// Everything one round of input produced. The application handles it in this order:
/// persist `persist` (with fsync), call `Raft::advance`, send `messages`, install
/// `apply_snapshot`, apply `committed`, then serve `reads` and refuse `failed_reads`.
#[derive(Clone, Debug, Default)]
pub struct Ready {
    pub persist: Persist,
    pub messages: Vec<Envelope>,
    pub apply_snapshot: Option<Snapshot>,
    pub committed: Vec<Entry>,
    pub reads: Vec<ReadReady>,
    /// Reads that cannot be confirmed here (leadership lost); nothing was done for them.
    pub failed_reads: Vec<u64>,
}

/// What a server last persisted, from which it restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, in index order, without gaps.
    pub entries: Vec<Entry>,
}
