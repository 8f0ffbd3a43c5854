//! The vocabulary of the Multi-Paxos core: ballots, slots, messages and what a round of input
//! hands back.

use serde::{Deserialize, Serialize};

/// A server of the cluster: the runtime's member number (the sorted order of the `--peers`
/// ids), shared by the core, the transport and the simulation.
pub use node::runtime::NodeId;

/// A position in the replicated sequence of commands; the first is 1, 0 means "before any".
pub type Slot = u64;

/// A ballot `(round, node)`, compared lexicographically: rounds first, the proposer's id
/// breaks ties, so no two proposers ever use the same ballot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

impl Ballot {
    /// The ballot before every real one (no promise given yet).
    pub const ZERO: Ballot = Ballot {
        round: 0,
        node: NodeId(0),
    };
}

impl Default for Ballot {
    fn default() -> Ballot {
        Ballot::ZERO
    }
}

impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The node is the member number (the sorted `--peers` position), not its name.
        write!(f, "({}, member {})", self.round, self.node.0)
    }
}

/// What an acceptor accepted for one slot: phase 2's vote. An empty `value` is the no-op a
/// new leader proposes to fill a gap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub slot: Slot,
    pub ballot: Ballot,
    pub value: Vec<u8>,
}

/// A snapshot of the state machine after executing every slot up to `last_slot`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_slot: Slot,
    pub data: Vec<u8>,
}

/// Messages between servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Before phase 1: would you promise `ballot`? Changes nothing at the receiver (the
    /// pre-vote of Raft's thesis, section 9.6, for ballots): a server cut off from a live
    /// leader learns it could not win without raising anyone's promise.
    Probe { ballot: Ballot },
    ProbeReply {
        ballot: Ballot,
        ok: bool,
        promised: Ballot,
    },
    /// Phase 1a: promise `ballot` for every slot from `from` on.
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b. When `ok`, `accepted` holds every `(slot, ballot, value)` accepted at or after
    /// the Prepare's `from`, and `compacted` the last slot this acceptor folded into a
    /// snapshot (chosen, its votes gone). When refused, `promised` is the higher promise.
    Promise {
        ballot: Ballot,
        ok: bool,
        promised: Ballot,
        compacted: Slot,
        accepted: Vec<Accepted>,
    },
    /// Phase 2a for a batch of slots; `commit` is the leader's chosen prefix.
    Accept {
        ballot: Ballot,
        entries: Vec<(Slot, Vec<u8>)>,
        commit: Slot,
    },
    /// Phase 2b for the slots of one Accept.
    Accepted {
        ballot: Ballot,
        ok: bool,
        promised: Ballot,
        slots: Vec<Slot>,
    },
    /// The leader is alive; `commit` is its chosen prefix; `round` numbers the heartbeat
    /// rounds, which confirm reads and leases.
    Heartbeat {
        ballot: Ballot,
        commit: Slot,
        round: u64,
    },
    HeartbeatAck {
        ballot: Ballot,
        ok: bool,
        promised: Ballot,
        round: u64,
    },
    /// A laggard asks for chosen values from slot `from` on.
    Fetch { from: Slot },
    /// Chosen values, or a snapshot when the sender compacted what was asked for.
    Learn {
        entries: Vec<(Slot, Vec<u8>)>,
        snapshot: Option<Snapshot>,
    },
}

/// A message with its sender and receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message,
}

/// What must be durable before the messages of the same round leave: an acceptor's promise
/// and votes, and a proposer's highest round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    pub promised: Option<Ballot>,
    /// The highest round this server has used as a proposer.
    pub round: Option<u64>,
    pub accepted: Vec<Accepted>,
    /// A snapshot to store; votes up to its `last_slot` may then be discarded.
    pub snapshot: Option<Snapshot>,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        self.promised.is_none()
            && self.round.is_none()
            && self.accepted.is_empty()
            && self.snapshot.is_none()
    }
}

/// What a server last persisted, from which it restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    pub promised: Ballot,
    pub round: u64,
    pub snapshot: Option<Snapshot>,
    /// The latest vote of each slot after the snapshot, in slot order.
    pub accepted: Vec<Accepted>,
}

/// A read that may be served once the state machine has executed `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadReady {
    pub ctx: u64,
    pub slot: Slot,
}

/// Everything one round of input produced. The application persists `persist`, calls
/// `Paxos::advance`, sends `messages`, installs `apply_snapshot`, executes `chosen` in order,
/// then serves `reads` and refuses `failed_reads`.
#[derive(Clone, Debug, Default)]
pub struct Ready {
    pub persist: Persist,
    pub messages: Vec<Envelope>,
    pub apply_snapshot: Option<Snapshot>,
    pub chosen: Vec<(Slot, Vec<u8>)>,
    pub reads: Vec<ReadReady>,
    pub failed_reads: Vec<u64>,
}
