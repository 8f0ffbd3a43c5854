//! The runtime every replicated store shares: a sans-IO [`Core`] (Raft, Multi-Paxos, a
//! Dynamo-style replica) driven by one thread that owns it and its [`Storage`], with the
//! cluster's [`Members`], a batched peer transport, and the /op and /health routes.
//!
//! The shape follows raft-rs's `RawNode`: the runtime feeds the core inputs (a peer message,
//! a client operation, a tick, the wall clock's reading), then takes a [`Ready`] (records to
//! persist, messages to send, replies to give), makes the records durable, calls
//! [`Core::advance`], and only then sends and replies. A core never does I/O, reads a clock or
//! draws ambient randomness, so the seeded simulation (the `sim` crate) runs exactly what the
//! server runs.
//!
//! [`Storage`]: crate::storage::Storage

mod driver;
mod members;
mod transport;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::op::{OpRequest, OpResponse};

pub use driver::{boot_seed, main, run, RunError, Runtime};
pub use members::{Members, NodeId};
pub use transport::{MAX_PEER_BATCH_BYTES, MAX_PEER_BODY_BYTES};

/// Tags one client operation inside a core; the runtime picks them and keeps them unique.
pub type ClientId = u64;

/// A message between cores, as the transport carries it.
pub trait PeerMessage: Serialize + DeserializeOwned + Clone + Debug + Send + 'static {
    /// The sender.
    fn from(&self) -> NodeId;
    /// The receiver.
    fn to(&self) -> NodeId;
    /// Roughly how many bytes it takes on the wire, so that one peer request stays bounded
    /// (entries and snapshots dominate; headers need not be exact).
    fn size_bytes(&self) -> usize;
}

/// The operation was not taken here, and nothing was proposed: the caller may forward it to
/// `leader` (this server's best guess) or answer `fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLeader {
    /// Whom this server believes leads, if anyone.
    pub leader: Option<NodeId>,
}

/// What one [`Core::ready`] produced. Write `persist` durably, call [`Core::advance`], then
/// send `messages` and give `responses` to the waiting clients: in that order, because a
/// message or a reply may promise what `persist` records.
#[derive(Debug, Default)]
pub struct Ready<M, P> {
    /// Records for the storage, written (and synced) before anything else happens.
    pub persist: P,
    /// Messages to peers; any of them may be lost.
    pub messages: Vec<M>,
    /// Completed client operations.
    pub responses: Vec<(ClientId, OpResponse)>,
}

/// What `/health` shows of a core (DESIGN section 3): the fields the harness's leader- and
/// vote-aimed faults read. A core fills what it has; the rest stays zero or `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `leader`, `follower`, `candidate`, `pre-candidate`, or `none`.
    pub role: &'static str,
    /// The Raft term, or the Paxos ballot round.
    pub term: u64,
    /// Whom this server voted for (or promised) in `term`.
    pub voted_for: Option<NodeId>,
    /// Whom this server believes leads.
    pub leader: Option<NodeId>,
    /// The highest index known committed (chosen).
    pub commit: u64,
    /// The highest index applied to the state machine.
    pub applied: u64,
    /// The last index of the log.
    pub last_index: u64,
    /// The last index a snapshot covers.
    pub snapshot_index: u64,
    /// Further figures for `/health`, by name (a Dynamo-style replica's hints pending, the
    /// peers it believes up, the bytes its anti-entropy exchanged).
    pub extra: Vec<(&'static str, u64)>,
}

/// A sans-IO replication protocol: inputs in, a [`Ready`] out. Every method is
/// deterministic given the inputs, so one seed replays one run.
pub trait Core: Send + 'static {
    /// What cores send each other.
    type Message: PeerMessage;
    /// What one `Ready` asks the storage to write.
    type Persist: Debug + Send + 'static;

    /// The wall clock's reading in ms (skewable by the harness), for anything timed on it
    /// such as a read lease. Given before the inputs of each round.
    fn set_wall_ms(&mut self, ms: i64);
    /// One tick of logical time has passed (elections, heartbeats, retries).
    fn tick(&mut self);
    /// A message from a peer.
    fn step(&mut self, msg: Self::Message);
    /// A client operation. `Ok` means its answer will come in a later `Ready`'s responses
    /// (or never, if this server loses its role first: the runtime times it out as `info`).
    fn submit(&mut self, client: ClientId, op: OpRequest) -> Result<(), NotLeader>;
    /// Whether [`Core::ready`] has anything to hand out.
    fn has_ready(&self) -> bool;
    /// Takes what the inputs so far produced.
    fn ready(&mut self) -> Ready<Self::Message, Self::Persist>;
    /// The `persist` of the last `Ready` is durable.
    fn advance(&mut self);
    /// Why this core can no longer go on safely, if so: the runtime stops (fail-stop).
    fn fatal(&self) -> Option<&str>;
    /// What `/health` and the node log show.
    fn status(&self) -> Status;
}
