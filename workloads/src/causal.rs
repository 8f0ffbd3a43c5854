//! Causal sessions over registers: each worker is a session that stays on one node (the
//! runner's client `i` always talks to node `i % nodes`), writes unique values and reads, half
//! and half, over `--keys` keys (a few: causality is about what a session saw of *other*
//! keys), and sends the system the last context it got back, whatever its key: a **session
//! context**, which a causally consistent store uses to serve each read at least as new as
//! everything the session has seen (shared/DESIGN.md section 3 has contexts per key; this
//! workload's are per session, see ARCHITECTURE.md). Checked by the `causal` checker: the bad
//! patterns of CC, CCv and CM, and the session guarantees by name.

use crate::registry::Workload;
use crate::rng::SplitMix64;
use crate::{unique_value, Generator, Op};
use serde_json::json;

/// Percent of operations that are reads.
pub const READ_PERCENT: u64 = 50;

const PURPOSE_CAUSAL: u64 = 9;

pub static WORKLOAD: Workload = Workload {
    name: "causal",
    about: "sessions that stay on one node, reading and writing unique values over --keys \
            registers and sending back their session's context; checked for causal \
            consistency (CC, CCv, CM) and the four session guarantees",
    generator: |run, worker| Box::new(CausalGen::new(run.seed, worker, run.keys)),
    key_names: CausalGen::key_names,
    final_reads: false,
    fixed_keys: true,
    checkers: &["causal"],
    maelstrom_promises: &[],
};

/// The generator of one worker (one session, until an indeterminate outcome ends it).
#[derive(Clone, Debug)]
pub struct CausalGen {
    rng: SplitMix64,
    worker: u64,
    keys: usize,
    written: u64,
}

impl CausalGen {
    /// Worker `worker`'s generator over registers "r0".."r{keys-1}" (at least one key).
    pub fn new(seed: u64, worker: u64, keys: usize) -> Self {
        CausalGen {
            rng: SplitMix64::for_stream(seed, worker, PURPOSE_CAUSAL),
            worker,
            keys: keys.max(1),
            written: 0,
        }
    }

    /// The names of the keys of a run with `keys` keys.
    pub fn key_names(keys: usize) -> Vec<String> {
        (0..keys.max(1)).map(|k| format!("r{k}")).collect()
    }
}

impl Generator for CausalGen {
    fn next_op(&mut self) -> Op {
        // Two draws per operation, whatever it is (see the trait's documentation).
        let kind = self.rng.below(100);
        let key = format!("r{}", self.rng.below(self.keys as u64));
        if kind < READ_PERCENT {
            return Op::read(key);
        }
        let v = unique_value(self.worker, self.written);
        self.written += 1;
        Op {
            f: "write".to_owned(),
            key: Some(key),
            value: json!(v),
            local: false,
            context: None,
        }
    }

    fn session_context(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_reads_unique_writes_few_keys() {
        let mut g = CausalGen::new(7, 3, 4);
        let ops: Vec<Op> = (0..2000).map(|_| g.next_op()).collect();
        let reads = ops.iter().filter(|o| o.f == "read").count();
        assert!((800..1200).contains(&reads), "{reads}");
        let mut values: Vec<&serde_json::Value> = ops
            .iter()
            .filter(|o| o.f == "write")
            .map(|o| &o.value)
            .collect();
        let n = values.len();
        values.sort_by_key(|v| v.as_u64());
        values.dedup();
        assert_eq!(values.len(), n, "written values are unique");
        assert!(ops
            .iter()
            .all(|o| CausalGen::key_names(4).contains(o.key.as_ref().expect("keyed"))));
        assert!(g.session_context());
    }
}
