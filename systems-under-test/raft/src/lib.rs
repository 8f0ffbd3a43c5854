//! A Raft replicated key-value store, the first bundled system under test.
//!
//! Follows Ongaro and Ousterhout, "In Search of an Understandable Consensus Algorithm" (2014),
//! and Ongaro's thesis "Consensus: Bridging Theory and Practice" (2014), with PreVote (thesis
//! 9.6), ReadIndex and leases (thesis 6.4) and snapshots (section 7).
//!
//! - [`core`]: the protocol as a sans-IO state machine;
//! - [`replica`]: the core plus the key-value state machine and client bookkeeping, as the
//!   shared runtime's `node::runtime::Core`;
//! - [`storage`]: the write-ahead log of Raft records and the snapshot file (and an in-memory
//!   twin for tests);
//! - [`server`]: the glue that runs a replica in `node::runtime`, used by the `raft-node`
//!   binary.

pub mod core;
pub mod replica;
pub mod server;
pub mod storage;
