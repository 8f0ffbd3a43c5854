//! A Multi-Paxos replicated key-value store, the second bundled system under test.
//!
//! Follows Lamport, "The Part-Time Parliament" (1998) and "Paxos Made Simple" (2001), in the
//! Multi-Paxos form of van Renesse and Altinbuken, "Paxos Made Moderately Complex" (2015), and
//! Chandra, Griesemer and Redstone, "Paxos Made Live" (2007): a stable leader runs phase 1
//! once for every slot it does not know chosen, then phase 2 per slot.
//!
//! - [`core`]: the protocol as a sans-IO state machine (acceptor, leader, learner);
//! - [`replica`]: the core plus the key-value state machine, client bookkeeping and request
//!   deduplication, as the shared runtime's `node::runtime::Core`;
//! - [`storage`]: the write-ahead log of acceptor records and the snapshot file (and an
//!   in-memory twin for the simulation);
//! - [`server`]: the glue that runs a replica in `node::runtime`, used by `paxos-node`.

pub mod core;
pub mod replica;
pub mod server;
pub mod storage;
