//! Elle's rw-register workload: transactions of reads and writes of unique integers over
//! registers whose keys retire after a number of writes ([`crate::txn`]); checked by the
//! `rw-register` checker.

use crate::registry::Workload;
use crate::txn::{TxnGen, Writes};

/// Writes a key takes before it retires, when `--max-writes-per-key` does not say. A register
/// read shows one version, not the history a list shows, so the checker infers each key's
/// version order from less; fewer writes per key keep those orders short and dense with
/// reads (each version is more likely to be read before it is overwritten), which is what
/// lets the checker order them at all.
pub const MAX_WRITES_PER_KEY: u64 = 16;

/// Key names: `rw0`, `rw1`, ... (no other workload's keys start with `rw`).
pub const KEY_PREFIX: &str = "rw";

pub static WORKLOAD: Workload = Workload {
    name: "rw-register",
    about: "transactions of 1 to --max-txn-length reads and writes of unique integers over \
            --keys active registers, each retired after --max-writes-per-key writes (default \
            16); checked for the isolation anomalies of Elle's rw-register",
    generator: |run, worker| {
        Box::new(TxnGen::new(
            run,
            worker,
            Writes::Register,
            KEY_PREFIX,
            MAX_WRITES_PER_KEY,
        ))
    },
    key_names,
    final_reads: false,
    fixed_keys: false,
    checkers: &["rw-register"],
    maelstrom_promises: &[],
};

/// The keys a run with `keys` active keys starts with (later ones replace them as they retire).
pub fn key_names(keys: usize) -> Vec<String> {
    (0..keys.max(1))
        .map(|k| format!("{KEY_PREFIX}{k}"))
        .collect()
}
