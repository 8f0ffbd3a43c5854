//! The list of workloads. A workload is one module that defines a [`Workload`] plus one line in
//! [`WORKLOADS`]: its generator, its keys, whether it ends with final reads, and the checkers
//! its history feeds. `harness run --workload` and its help text come from this list.
//!
//! A run creates one [`RunSpec`] and gives it to every worker's generator: the run's settings,
//! and the state its workers share (the transactional workloads' active keys, whose writes
//! are counted across all workers).

use crate::txn::{KeyPool, TxnSettings};
use crate::Generator;
use std::sync::Arc;

/// What a run tells its workload: created once by the runner, shared by the generators of all
/// its workers.
#[derive(Debug)]
pub struct RunSpec {
    pub seed: u64,
    /// `--keys`: the keys (for transactional workloads, the keys active at any one time).
    pub keys: usize,
    /// `--max-txn-length` and `--max-writes-per-key`, read by transactional workloads only.
    pub txn: TxnSettings,
    /// The transactional workloads' active keys and their write counts, one pool per run
    /// ([`crate::txn`]); other workloads leave it alone.
    pub key_pool: KeyPool,
}

impl RunSpec {
    pub fn new(seed: u64, keys: usize, txn: TxnSettings) -> RunSpec {
        let keys = keys.max(1);
        RunSpec {
            seed,
            keys,
            txn,
            key_pool: KeyPool::new(keys),
        }
    }
}

/// What `harness run` needs to know of a workload.
pub struct Workload {
    /// The name `--workload` takes.
    pub name: &'static str,
    /// One line for `--help` and error messages.
    pub about: &'static str,
    /// Worker `worker`'s seeded generator, for the run `run` (the same value for every worker
    /// of a run).
    pub generator: fn(run: &Arc<RunSpec>, worker: u64) -> Box<dyn Generator>,
    /// The names of the keys of a run with `keys` keys (for the transactional workloads, whose
    /// keys retire, the ones a run starts with; they have no final reads).
    pub key_names: fn(keys: usize) -> Vec<String>,
    /// Whether the run ends with a read of every key from every node, after every fault is
    /// healed and the clients have stopped for the recovery period (what a set or a counter
    /// needs to tell lost from not-yet-visible).
    pub final_reads: bool,
    /// Whether its keys are the same all run long (`key_names` names them all), so that they
    /// can be read from every node at the end: what a convergence check needs of any workload
    /// when the system promises `convergent`. The transactional workloads' keys retire.
    pub fixed_keys: bool,
    /// The checkers (by registry name) its histories are checked with.
    pub checkers: &'static [&'static str],
    /// For Maelstrom's workloads (`--system maelstrom:PATH`): the promises a node serving
    /// it is held to, since a Maelstrom node has no definition file to say
    /// ([`crate::maelstrom::promises`]). Empty for the harness's own workloads, whose
    /// system definitions say what they promise.
    pub maelstrom_promises: &'static [&'static str],
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Workload {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl serde::Serialize for Workload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

/// Every workload, by name.
pub static WORKLOADS: &[&Workload] = &[
    &crate::register::WORKLOAD,
    &crate::set::WORKLOAD,
    &crate::counter::WORKLOAD,
    &crate::list_append::WORKLOAD,
    &crate::rw_register::WORKLOAD,
    &crate::causal::WORKLOAD,
    &crate::maelstrom_workloads::echo::WORKLOAD,
    &crate::maelstrom_workloads::unique_ids::WORKLOAD,
    &crate::maelstrom_workloads::BROADCAST,
    &crate::maelstrom_workloads::G_SET,
    &crate::maelstrom_workloads::G_COUNTER,
    &crate::maelstrom_workloads::PN_COUNTER,
    &crate::maelstrom_workloads::LIN_KV,
    &crate::maelstrom_workloads::TXN_LIST_APPEND,
    &crate::maelstrom_workloads::kafka::WORKLOAD,
];

/// The workload called `name`; an unknown name is answered with the valid ones.
pub fn find(name: &str) -> Result<&'static Workload, String> {
    WORKLOADS
        .iter()
        .copied()
        .find(|w| w.name == name)
        .ok_or_else(|| {
            format!(
                "unknown workload '{name}'; the workloads are: {}",
                names().join(", ")
            )
        })
}

pub fn names() -> Vec<&'static str> {
    WORKLOADS.iter().map(|w| w.name).collect()
}

/// `--workload`'s help: every workload with its line.
pub fn help() -> String {
    let each: Vec<String> = WORKLOADS
        .iter()
        .map(|w| format!("{} ({})", w.name, w.about))
        .collect();
    format!("The workload: {}.", each.join("; or "))
}
