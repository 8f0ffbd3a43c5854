//! Counters (Jepsen's `counter` workload, per key): increments by small random amounts (1 to
//! 5) and, one operation in four, a read; after the faults heal, a read of every counter from
//! every node. Checked by the `counter` checker: every read lies between the sum of the
//! increments surely done before it and the sum of those that may have been.

use crate::registry::Workload;
use crate::rng::SplitMix64;
use crate::{Generator, Op};
use serde_json::json;

/// Percent of operations that are reads.
pub const READ_PERCENT: u64 = 25;
/// Increments add 1 to this much.
pub const MAX_INCREMENT: u64 = 5;

const PURPOSE_COUNTER: u64 = 5;

pub static WORKLOAD: Workload = Workload {
    name: "counter",
    about: "increments by 1 to 5 and reads of --keys counters, then a read from every node; \
            checked that every read lies between what was surely added and what may have been",
    generator: |run, worker| Box::new(CounterGen::new(run.seed, worker, run.keys)),
    key_names: CounterGen::key_names,
    final_reads: true,
    fixed_keys: true,
    checkers: &["counter"],
    maelstrom_promises: &[],
};

/// Which amounts a counter's increments add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amounts {
    /// 1 to [`MAX_INCREMENT`] (a grow-only counter).
    Positive,
    /// -[`MAX_INCREMENT`] to [`MAX_INCREMENT`], never 0 (a PN-counter's increments and
    /// decrements, as Maelstrom's pn-counter workload makes them).
    Signed,
}

/// The generator of one worker.
#[derive(Clone, Debug)]
pub struct CounterGen {
    rng: SplitMix64,
    keys: usize,
    amounts: Amounts,
    read_percent: u64,
}

impl CounterGen {
    /// Worker `worker`'s generator over counters "c0".."c{keys-1}" (at least one key):
    /// positive increments, [`READ_PERCENT`] reads.
    pub fn new(seed: u64, worker: u64, keys: usize) -> Self {
        CounterGen::with(seed, worker, keys, Amounts::Positive, READ_PERCENT)
    }

    /// [`CounterGen::new`] with increments of `amounts` and `read_percent` percent of reads (at
    /// most 100).
    pub fn with(seed: u64, worker: u64, keys: usize, amounts: Amounts, read_percent: u64) -> Self {
        CounterGen {
            rng: SplitMix64::for_stream(seed, worker, PURPOSE_COUNTER),
            keys: keys.max(1),
            amounts,
            read_percent: read_percent.min(100),
        }
    }

    /// The names of the counter keys of a run with `keys` keys.
    pub fn key_names(keys: usize) -> Vec<String> {
        (0..keys.max(1)).map(|k| format!("c{k}")).collect()
    }
}

impl Generator for CounterGen {
    fn next_op(&mut self) -> Op {
        // Three draws per operation, whatever it is or its amounts (see the trait's
        // documentation).
        let kind = self.rng.below(100);
        let key = format!("c{}", self.rng.below(self.keys as u64));
        let max = MAX_INCREMENT as i64;
        let amount = match self.amounts {
            Amounts::Positive => 1 + self.rng.below(MAX_INCREMENT) as i64,
            // 0..max -> -1..=-max, max..2*max -> 1..=max.
            Amounts::Signed => match self.rng.below(2 * MAX_INCREMENT) as i64 {
                d if d < max => -(d + 1),
                d => d - max + 1,
            },
        };
        if kind < self.read_percent {
            Op::read(key)
        } else {
            Op {
                f: "incr".to_owned(),
                key: Some(key),
                value: json!(amount),
                local: false,
                context: None,
            }
        }
    }
}
