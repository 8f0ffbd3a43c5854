//! Maelstrom's `unique-ids` workload: every operation asks a node for a fresh id
//! (`{"f":"generate","value":null}`); the `unique-ids` checker wants every acknowledged id
//! distinct, whichever node made it and whatever the faults (a node must do it without
//! coordination to stay available through partitions). No keys, no final reads.

use crate::registry::Workload;
use crate::{Generator, Op};
use serde_json::Value;

pub static WORKLOAD: Workload = Workload {
    name: "unique-ids",
    about: "Maelstrom's unique-ids workload (for Maelstrom nodes, --system maelstrom:PATH): requests for \
            fresh ids; checked that no two acknowledged ids are the same",
    generator: |_, _| Box::new(UniqueIdsGen),
    key_names: |_| Vec::new(),
    final_reads: false,
    fixed_keys: false,
    checkers: &["unique-ids"],
    maelstrom_promises: &["unique-ids"],
};

/// The generator of any worker: every operation is a generate (it draws no random numbers).
#[derive(Clone, Copy, Debug, Default)]
pub struct UniqueIdsGen;

impl Generator for UniqueIdsGen {
    fn next_op(&mut self) -> Op {
        Op {
            f: "generate".to_owned(),
            key: None,
            value: Value::Null,
            local: false,
            context: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_a_keyless_generate() {
        let op = UniqueIdsGen.next_op();
        assert_eq!(op.f, "generate");
        assert_eq!(op.key, None);
        assert!(op.value.is_null());
    }
}
