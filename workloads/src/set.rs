//! Grow-only sets (Jepsen's `set` workload, per key): adds of unique integer elements and, one
//! operation in twenty, a read of a whole set. Checked by `checkers::set`.

use crate::registry::Workload;
use crate::rng::SplitMix64;
use crate::{unique_value, Generator, Op};
use serde_json::json;

/// Percent of operations that are reads.
pub const READ_PERCENT: u64 = 5;

const PURPOSE_SET: u64 = 2;

pub static WORKLOAD: Workload = Workload {
    name: "set",
    about: "adds of unique elements to --keys sets (and a few reads), then a read from every \
            node; checked for lost, unexpected and vanished elements",
    generator: |run, worker| Box::new(SetGen::new(run.seed, worker, run.keys)),
    key_names: SetGen::key_names,
    final_reads: true,
    fixed_keys: true,
    checkers: &["set"],
    maelstrom_promises: &[],
};

/// The generator of one worker.
#[derive(Clone, Debug)]
pub struct SetGen {
    rng: SplitMix64,
    worker: u64,
    keys: usize,
    added: u64,
    read_percent: u64,
}

impl SetGen {
    /// Worker `worker`'s generator over set keys "s0".."s{keys-1}" (at least one key), with
    /// [`READ_PERCENT`] reads.
    pub fn new(seed: u64, worker: u64, keys: usize) -> Self {
        SetGen::with_read_percent(seed, worker, keys, READ_PERCENT)
    }

    /// [`SetGen::new`] with `read_percent` percent of reads (at most 100): Maelstrom's
    /// broadcast and g-set workloads read as often as they add.
    pub fn with_read_percent(seed: u64, worker: u64, keys: usize, read_percent: u64) -> Self {
        SetGen {
            rng: SplitMix64::for_stream(seed, worker, PURPOSE_SET),
            worker,
            keys: keys.max(1),
            added: 0,
            read_percent: read_percent.min(100),
        }
    }

    /// The names of the set keys of a run with `keys` keys.
    pub fn key_names(keys: usize) -> Vec<String> {
        (0..keys.max(1)).map(|k| format!("s{k}")).collect()
    }
}

impl Generator for SetGen {
    fn next_op(&mut self) -> Op {
        let kind = self.rng.below(100);
        let key = format!("s{}", self.rng.below(self.keys as u64));
        if kind < self.read_percent {
            Op::read(key)
        } else {
            let element = unique_value(self.worker, self.added);
            self.added += 1;
            Op {
                f: "add".to_owned(),
                key: Some(key),
                value: json!(element),
                local: false,
                context: None,
            }
        }
    }
}
