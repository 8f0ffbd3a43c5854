//! Maelstrom's protocol as a second way into the harness (jepsen-io/maelstrom,
//! `doc/protocol.md`): node processes that read and write one JSON message per line on stdin
//! and stdout, the network between them that the harness is ([`net`]), the services nodes may
//! call ([`services`]), broadcast's topologies ([`topology`]) and the messages themselves
//! ([`msg`]). The workload side (turning the harness's operations into Maelstrom requests) is in
//! the workloads crate, which calls [`net::Net::call`].

pub mod msg;
pub mod net;
pub mod services;
pub mod topology;

pub use msg::{ErrorCode, Message};
pub use net::{CallError, Net, Options, Stats};
pub use topology::Topology;
