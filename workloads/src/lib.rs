//! Workloads: seeded operation generators, the client side of the /op protocol
//! (shared/DESIGN.md section 3) and of the built-in adapters for other systems' protocols
//! (section 5: [`etcd`], [`postgres`]), a recorder that appends every invocation and completion to
//! `history.jsonl` (section 2), and the runner that drives concurrent clients as Jepsen does
//! (Kingsbury, "Jepsen: distributed systems safety research"): each client is a process that
//! has at most one operation outstanding, talks to one node, and after an indeterminate (`info`)
//! completion continues under a fresh process id. [`maelstrom_workloads`] has Maelstrom's
//! workloads, by Maelstrom's names, for nodes written to Maelstrom's protocol.

use serde::{Deserialize, Serialize};

pub mod causal;
pub mod client;
pub mod counter;
pub mod etcd;
pub mod list_append;
pub mod maelstrom;
pub mod maelstrom_workloads;
pub mod postgres;
pub mod recorder;
pub mod register;
pub mod registry;
pub mod rng;
pub mod runner;
pub mod rw_register;
pub mod set;
pub mod txn;

pub use client::{Completion, NodeRole, OpClient, Protocol, UnknownProtocol};
pub use recorder::{Counts, Recorder};
pub use register::RegisterGen;
pub use registry::{RunSpec, Workload, WORKLOADS};
pub use runner::{
    final_reads, run_clients, run_clients_with, FinalReads, RunStats, WorkloadConfig,
};
pub use set::SetGen;
pub use txn::{KeyPool, TxnGen, TxnSettings};

/// One operation as the /op protocol carries it: `{"f","key","value"}`, and the optional
/// `local` and `context` (shared/DESIGN.md section 3), sent only when set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: serde_json::Value,
    /// Read this node's own replica, without coordination (the final per-node reads).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// The session's last context for this key, as the system returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Op {
    /// A read of `key` (its value is null).
    pub fn read(key: impl Into<String>) -> Op {
        Op {
            f: "read".to_owned(),
            key: Some(key.into()),
            value: serde_json::Value::Null,
            local: false,
            context: None,
        }
    }

    /// A read of `key` from the node's own replica (`"local": true`).
    pub fn local_read(key: impl Into<String>) -> Op {
        Op {
            local: true,
            ..Op::read(key)
        }
    }
}

/// A seeded source of operations for one worker.
///
/// A generator draws the same number of random numbers for every operation, so the kinds and
/// keys of its operations are a function of the seed alone; what it is told through
/// [`Generator::observe`] only changes which known value a `cas` expects.
pub trait Generator: Send {
    /// The next operation to invoke.
    fn next_op(&mut self) -> Op;

    /// Tells the generator how an operation it produced completed (a read's value lets later
    /// `cas` operations expect a value that is really there). The default ignores it.
    fn observe(&mut self, _op: &Op, _completion: &Completion) {}

    /// Whether the session sends the last context the system returned whatever its key (a
    /// session context, the `causal` workload), rather than the last one for the operation's
    /// key (shared/DESIGN.md section 3).
    fn session_context(&self) -> bool {
        false
    }
}

/// Worker `worker`'s `n`-th (0-based) written value: unique across the whole run without
/// coordination, as long as no worker writes ten million values.
pub fn unique_value(worker: u64, n: u64) -> u64 {
    worker * VALUES_PER_WORKER + n + 1
}

/// How many unique values each worker owns (see [`unique_value`]).
pub const VALUES_PER_WORKER: u64 = 10_000_000;
