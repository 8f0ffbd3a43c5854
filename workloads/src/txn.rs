//! What the transactional workloads ([`crate::list_append`], [`crate::rw_register`]) share: a
//! generator of transactions over a pool of active keys that retire, Elle's key lifecycle
//! (Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from Experimental Observations",
//! VLDB 2020; its generator's `key-count`, `max-txn-length` and `max-writes-per-key`): a key
//! takes a bounded number of writes, so every read of it stays short and the checker's version
//! orders stay small, while fresh keys keep the contention going.
//!
//! Each operation is a `txn` of 1 to `--max-txn-length` micro-ops, about half reads
//! (`["r", k, null]`) and half writes (`append` of a unique integer for list-append, `w` of a
//! unique integer for rw-register), each on a key drawn from `--keys` slots. A slot holds one
//! active key at a time; the write that brings its key to `--max-writes-per-key` writes retires
//! it, and the slot takes a key never used before. The count is kept across every worker of
//! the run ([`KeyPool`], shared through [`crate::registry::RunSpec`]), so no key ever gets more
//! writes than that, whoever writes them.
//!
//! Determinism: a generator draws the same numbers for every operation, so the length of each
//! txn, the kind of each micro-op and its slot follow from the seed alone; which key a slot
//! holds at that moment depends on how the workers interleave, as in Jepsen.

use crate::registry::RunSpec;
use crate::rng::SplitMix64;
use crate::{unique_value, Generator, Op};
use history::txn::{self, Mop};
use std::sync::{Arc, Mutex};

/// The longest transaction, when `--max-txn-length` does not say (Elle's default).
pub const DEFAULT_MAX_TXN_LENGTH: usize = 4;

/// Percent of micro-ops that are reads.
pub const READ_PERCENT: u64 = 50;

const PURPOSE_TXN: u64 = 6;

/// The settings only transactional workloads read (`harness run --max-txn-length`,
/// `--max-writes-per-key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnSettings {
    /// Micro-ops per transaction, at most (at least 1).
    pub max_txn_length: usize,
    /// Writes a key takes before it retires; None: the workload's own default.
    pub max_writes_per_key: Option<u64>,
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            max_txn_length: DEFAULT_MAX_TXN_LENGTH,
            max_writes_per_key: None,
        }
    }
}

/// The active keys of a run, one per slot, and how many writes each has had. Shared by every
/// worker of the run.
#[derive(Debug)]
pub struct KeyPool {
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    /// Per slot: its key's number, and the writes handed out on it so far.
    slots: Vec<(u64, u64)>,
    /// The number the next fresh key gets.
    next: u64,
}

impl KeyPool {
    /// `slots` slots (at least one) holding keys 0, 1, ...
    pub fn new(slots: usize) -> KeyPool {
        let slots = slots.max(1);
        KeyPool {
            state: Mutex::new(PoolState {
                slots: (0..slots as u64).map(|k| (k, 0)).collect(),
                next: slots as u64,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panicking generator leaves the counts usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many slots there are.
    pub fn slots(&self) -> usize {
        self.lock().slots.len()
    }

    /// The key slot `slot` holds now (taken modulo the number of slots).
    pub fn read(&self, slot: usize) -> u64 {
        let g = self.lock();
        g.slots[slot % g.slots.len()].0
    }

    /// The key a write on slot `slot` goes to. The write that is the key's `max_writes`-th
    /// retires it: the slot takes a fresh key for what comes after.
    pub fn write(&self, slot: usize, max_writes: u64) -> u64 {
        let mut g = self.lock();
        let i = slot % g.slots.len();
        let (key, writes) = g.slots[i];
        if writes + 1 >= max_writes.max(1) {
            let fresh = g.next;
            g.next += 1;
            g.slots[i] = (fresh, 0);
        } else {
            g.slots[i].1 = writes + 1;
        }
        key
    }

    /// How many keys have been retired so far.
    pub fn retired(&self) -> u64 {
        let g = self.lock();
        g.next - g.slots.len() as u64
    }
}

/// How a transactional workload writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    /// `["append", k, v]`: list-append.
    Append,
    /// `["w", k, v]`: rw-register.
    Register,
}

/// One worker's generator of transactions.
pub struct TxnGen {
    rng: SplitMix64,
    worker: u64,
    run: Arc<RunSpec>,
    writes: Writes,
    /// Keys are `{prefix}{number}`.
    prefix: &'static str,
    max_writes: u64,
    written: u64,
}

impl TxnGen {
    /// Worker `worker`'s generator for the run `run`; keys are named `{prefix}{n}` and retire
    /// after `run.txn.max_writes_per_key` writes, or `default_max_writes` when that is unset.
    pub fn new(
        run: &Arc<RunSpec>,
        worker: u64,
        writes: Writes,
        prefix: &'static str,
        default_max_writes: u64,
    ) -> TxnGen {
        TxnGen {
            rng: SplitMix64::for_stream(run.seed, worker, PURPOSE_TXN),
            worker,
            max_writes: run
                .txn
                .max_writes_per_key
                .unwrap_or(default_max_writes)
                .max(1),
            run: run.clone(),
            writes,
            prefix,
            written: 0,
        }
    }

    fn key(&self, n: u64) -> String {
        format!("{}{n}", self.prefix)
    }

    /// The next transaction's micro-ops.
    pub fn next_mops(&mut self) -> Vec<Mop> {
        let max_len = self.run.txn.max_txn_length.max(1);
        let slots = self.run.key_pool.slots() as u64;
        // 1 + 2 * max_len draws per txn, whatever its length (see the module documentation).
        let len = 1 + self.rng.below(max_len as u64) as usize;
        let mut mops = Vec::with_capacity(len);
        for i in 0..max_len {
            let read = self.rng.below(100) < READ_PERCENT;
            let slot = self.rng.below(slots) as usize;
            if i >= len {
                continue;
            }
            if read {
                mops.push(Mop::read(self.key(self.run.key_pool.read(slot))));
                continue;
            }
            let key = self.key(self.run.key_pool.write(slot, self.max_writes));
            let value = i64::try_from(unique_value(self.worker, self.written))
                .expect("unique values stay far below i64::MAX");
            self.written += 1;
            mops.push(match self.writes {
                Writes::Append => Mop::append(key, value),
                Writes::Register => Mop::write(key, value),
            });
        }
        mops
    }
}

impl Generator for TxnGen {
    fn next_op(&mut self) -> Op {
        Op {
            f: "txn".to_owned(),
            key: None,
            value: txn::to_json(&self.next_mops()),
            local: false,
            context: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_retires_at_its_last_write_and_a_fresh_one_takes_the_slot() {
        let pool = KeyPool::new(2);
        assert_eq!((pool.read(0), pool.read(1)), (0, 1));
        assert_eq!(pool.write(0, 3), 0);
        assert_eq!(pool.write(0, 3), 0);
        assert_eq!(pool.retired(), 0);
        assert_eq!(pool.write(0, 3), 0, "the third write still goes to key 0");
        assert_eq!(pool.retired(), 1);
        assert_eq!(pool.read(0), 2, "then the slot holds a key never used");
        assert_eq!(pool.read(1), 1);
        assert_eq!(pool.write(2, 1), 2, "slots wrap around");
        assert_eq!(pool.read(0), 3);
    }
}
