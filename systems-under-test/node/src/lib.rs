//! `harness-node`: what every bundled server (Raft, Paxos, Dynamo-style) shares, so that each
//! store is only its replication protocol.
//!
//! - [`op`]: the /op wire types of DESIGN section 3 (Jepsen's ok / fail / info completions).
//! - [`kv`]: the deterministic key-value state machine that every store replicates
//!   (state machine replication, Raft paper section 5.3).
//! - [`wal`] and [`fsutil`]: a CRC-checked write-ahead log with torn-tail recovery, and atomic
//!   file replacement for snapshots.
//! - [`clock`]: the wall clock the harness skews through an offset file.
//! - [`config`]: the command-line arguments every node takes.
//! - [`server`]: the HTTP routes, graceful shutdown, and forwarding to the leader.
//! - [`logging`]: tracing to stderr, each line tagged with the node id.

#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod fsutil;
pub mod kv;
pub mod logging;
pub mod op;
pub mod server;
pub mod wal;

pub use op::{OpKind, OpRequest, OpResponse, Outcome};
