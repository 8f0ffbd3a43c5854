//! A Dynamo-style eventually consistent key-value store, the third bundled system under
//! test (DeCandia et al., "Dynamo: Amazon's Highly Available Key-value Store", SOSP 2007).
//!
//! - [`ring`]: consistent hashing with virtual nodes, preference lists;
//! - [`version`]: version vectors, dots and registers with siblings (or last-writer-wins);
//! - [`crdt`]: the PN-counter and the OR-set;
//! - [`object`]: what one key holds, its digest, what a read returns, session contexts;
//! - [`merkle`]: the Merkle trees anti-entropy compares;
//! - [`core`]: the replica as a sans-IO state machine (coordination, sloppy quorum, hinted
//!   handoff, read repair, anti-entropy, gossip and failure detection), the shared runtime's
//!   `node::runtime::Core`;
//! - [`storage`]: the write-ahead log of objects and hints;
//! - [`server`]: the glue that runs a replica in `node::runtime`, used by `dynamo-node`.

pub mod core;
pub mod crdt;
pub mod merkle;
pub mod object;
pub mod ring;
pub mod server;
pub mod storage;
pub mod version;
