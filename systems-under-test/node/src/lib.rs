//! `harness-node`: what every bundled server (Raft, Paxos, Dynamo-style) shares, so that each
//! store is only its replication protocol.
//!
//! - [`op`]: the /op wire types of DESIGN section 3 (Jepsen's ok / fail / info completions).
//! - [`kv`]: the deterministic key-value state machine that every store replicates
//!   (state machine replication, Raft paper section 5.3).
//! - [`wal`] and [`fsutil`]: a CRC-checked write-ahead log with torn-tail recovery, and atomic
//!   file replacement for snapshots.
//! - [`storage`]: the [`storage::Storage`] a runtime persists to, and a write-ahead log of
//!   typed records that each protocol's store is built on.
//! - [`runtime`]: what runs a sans-IO replication core ([`runtime::Core`]): the member table,
//!   the batched peer transport, and the driver loop that persists, sends and answers.
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
pub mod runtime;
pub mod server;
pub mod storage;
pub mod wal;

pub use op::{OpKind, OpRequest, OpResponse, Outcome};
