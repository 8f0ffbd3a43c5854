//! Elle's list-append workload: transactions of reads and appends of unique integers over
//! lists whose keys retire after a number of appends ([`crate::txn`]). A read returns the
//! whole list, so the order of every key's appends can be read off the longest read of it;
//! checked by the `list-append` checker.

use crate::registry::Workload;
use crate::txn::{TxnGen, Writes};

/// Appends a key takes before it retires, when `--max-writes-per-key` does not say. Every read
/// of a list returns all of it, so this bounds the length of what a read records and the
/// checker walks; 32 still gives each key a long version order (and many chances to see it
/// out of order) before it retires. (Jepsen's append tests use 16 to 1024.)
pub const MAX_WRITES_PER_KEY: u64 = 32;

/// Key names: `la0`, `la1`, ... (no other workload's keys start with `la`).
pub const KEY_PREFIX: &str = "la";

pub static WORKLOAD: Workload = Workload {
    name: "list-append",
    about: "transactions of 1 to --max-txn-length reads and appends of unique integers over \
            --keys active lists, each retired after --max-writes-per-key appends (default 32); \
            checked for the isolation anomalies of Elle's list-append",
    generator: |run, worker| {
        Box::new(TxnGen::new(
            run,
            worker,
            Writes::Append,
            KEY_PREFIX,
            MAX_WRITES_PER_KEY,
        ))
    },
    key_names,
    final_reads: false,
    fixed_keys: false,
    checkers: &["list-append"],
    maelstrom_promises: &[],
};

/// The keys a run with `keys` active keys starts with (later ones replace them as they retire).
pub fn key_names(keys: usize) -> Vec<String> {
    (0..keys.max(1))
        .map(|k| format!("{KEY_PREFIX}{k}"))
        .collect()
}
