//! Maelstrom's `echo` workload: each operation asks a node to echo a string no other operation
//! sends (`{"f":"echo","value":"echo-<n>"}`), and the `echo` checker wants exactly that string
//! back. The first thing a Maelstrom node learns to do; no keys, no final reads.

use crate::registry::Workload;
use crate::{unique_value, Generator, Op};
use serde_json::json;

pub static WORKLOAD: Workload = Workload {
    name: "echo",
    about: "Maelstrom's echo workload (for Maelstrom nodes, --system maelstrom:PATH): echoes of unique strings; \
            checked that every acknowledged echo returned exactly what it sent",
    generator: |_, worker| Box::new(EchoGen::new(worker)),
    key_names: |_| Vec::new(),
    final_reads: false,
    fixed_keys: false,
    checkers: &["echo"],
    maelstrom_promises: &["echo"],
};

/// The generator of one worker. It draws no random numbers: every operation is an echo, and
/// its string is the worker's next unique value.
#[derive(Clone, Debug)]
pub struct EchoGen {
    worker: u64,
    sent: u64,
}

impl EchoGen {
    pub fn new(worker: u64) -> Self {
        EchoGen { worker, sent: 0 }
    }
}

impl Generator for EchoGen {
    fn next_op(&mut self) -> Op {
        let v = unique_value(self.worker, self.sent);
        self.sent += 1;
        Op {
            f: "echo".to_owned(),
            key: None,
            value: json!(format!("echo-{v}")),
            local: false,
            context: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_echo_sends_a_string_no_other_worker_sends() {
        let mut seen = HashSet::new();
        for worker in 0..4 {
            let mut g = EchoGen::new(worker);
            for _ in 0..1_000 {
                let op = g.next_op();
                assert_eq!((op.f.as_str(), op.key.as_deref()), ("echo", None));
                let s = op.value.as_str().expect("a string").to_owned();
                assert!(seen.insert(s), "unique");
            }
        }
    }
}
