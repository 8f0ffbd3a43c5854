//! Maelstrom's workloads (Kingsbury, jepsen-io/maelstrom, doc/workloads.md), for nodes written
//! to Maelstrom's protocol (`--system maelstrom:PATH`): the harness's operations, which
//! the Maelstrom client adapter turns into Maelstrom's messages, under Maelstrom's workload
//! names. Where a harness workload already makes Maelstrom's operations, its generator is
//! reused here with Maelstrom's mix; the rest have a module of their own:
//!
//! | workload | operations | checker | a node is held to |
//! |---|---|---|---|
//! | `echo` | [`echo`]: echo a unique string | `echo` | `echo` |
//! | `unique-ids` | [`unique_ids`]: generate | `unique-ids` | `unique-ids` |
//! | `broadcast`, `g-set` | [`crate::SetGen`], one set, half reads | `set` | `no-lost-updates` |
//! | `g-counter` | [`crate::counter::CounterGen`], one counter, 1 to 5 | `counter` | `no-lost-updates` |
//! | `pn-counter` | the same, -5 to 5 but 0 | `counter` | `no-lost-updates` |
//! | `lin-kv` | [`crate::RegisterGen`]: read, write, cas (never from absent) | `linearizability` | `linearizable` |
//! | `txn-list-append` | the list-append transactions | `list-append` | `strict-serializable` |
//! | `kafka` | [`kafka`]: send, poll, commit and list offsets | `kafka` | `kafka` |
//!
//! Maelstrom's broadcast, g-set and counters are eventually consistent: the set and counter
//! checkers judge them in their eventual mode (what `no-lost-updates` promises): nothing
//! acknowledged lost by the end, no read of what was never attempted.

use crate::counter::{Amounts, CounterGen};
use crate::list_append;
use crate::registry::Workload;
use crate::txn::{TxnGen, Writes};
use crate::{RegisterGen, SetGen};

pub mod echo;
pub mod kafka;
pub mod unique_ids;

/// Percent of reads in Maelstrom's broadcast, g-set and counter workloads: they mix their
/// writes and reads evenly (`gen/mix`).
pub const READ_PERCENT: u64 = 50;

/// Maelstrom has no keys for sets and counters: the one key its adapter ignores.
const ONE_KEY: usize = 1;

pub static BROADCAST: Workload = Workload {
    name: "broadcast",
    about: "Maelstrom's broadcast workload (for Maelstrom nodes, --system maelstrom:PATH): broadcasts of \
            unique messages and reads of all a node has, half and half, then a read from every \
            node; checked as a set that loses nothing acknowledged, with its latency to \
            visibility",
    generator: |run, worker| {
        Box::new(SetGen::with_read_percent(
            run.seed,
            worker,
            ONE_KEY,
            READ_PERCENT,
        ))
    },
    key_names: |_| SetGen::key_names(ONE_KEY),
    final_reads: true,
    fixed_keys: true,
    checkers: &["set"],
    maelstrom_promises: &["no-lost-updates"],
};

pub static G_SET: Workload = Workload {
    name: "g-set",
    about: "Maelstrom's g-set workload (for Maelstrom nodes, --system maelstrom:PATH): adds of unique elements \
            to one grow-only set and reads, half and half, then a read from every node; checked \
            as a set that loses nothing acknowledged",
    generator: |run, worker| {
        Box::new(SetGen::with_read_percent(
            run.seed,
            worker,
            ONE_KEY,
            READ_PERCENT,
        ))
    },
    key_names: |_| SetGen::key_names(ONE_KEY),
    final_reads: true,
    fixed_keys: true,
    checkers: &["set"],
    maelstrom_promises: &["no-lost-updates"],
};

pub static G_COUNTER: Workload = Workload {
    name: "g-counter",
    about: "Maelstrom's g-counter workload (for Maelstrom nodes, --system maelstrom:PATH): adds of 1 to 5 \
            to one counter and reads, half and half, then a read from every node; checked that \
            the final reads count every acknowledged add",
    generator: |run, worker| {
        Box::new(CounterGen::with(
            run.seed,
            worker,
            ONE_KEY,
            Amounts::Positive,
            READ_PERCENT,
        ))
    },
    key_names: |_| CounterGen::key_names(ONE_KEY),
    final_reads: true,
    fixed_keys: true,
    checkers: &["counter"],
    maelstrom_promises: &["no-lost-updates"],
};

pub static PN_COUNTER: Workload = Workload {
    name: "pn-counter",
    about: "Maelstrom's pn-counter workload (for Maelstrom nodes, --system maelstrom:PATH): adds of -5 to \
            5 (never 0) to one counter and reads, half and half, then a read from every node; \
            checked that the final reads count every acknowledged add and decrement",
    generator: |run, worker| {
        Box::new(CounterGen::with(
            run.seed,
            worker,
            ONE_KEY,
            Amounts::Signed,
            READ_PERCENT,
        ))
    },
    key_names: |_| CounterGen::key_names(ONE_KEY),
    final_reads: true,
    fixed_keys: true,
    checkers: &["counter"],
    maelstrom_promises: &["no-lost-updates"],
};

pub static LIN_KV: Workload = Workload {
    name: "lin-kv",
    about: "Maelstrom's lin-kv workload (for Maelstrom nodes, --system maelstrom:PATH): reads, writes and \
            compare-and-sets of unique values over --keys registers; checked for \
            linearizability per key",
    generator: |run, worker| {
        Box::new(RegisterGen::with_cas_from_absent(
            run.seed, worker, run.keys, false,
        ))
    },
    key_names: RegisterGen::key_names,
    final_reads: false,
    fixed_keys: true,
    checkers: &["linearizability"],
    maelstrom_promises: &["linearizable"],
};

pub static TXN_LIST_APPEND: Workload = Workload {
    name: "txn-list-append",
    about: "Maelstrom's txn-list-append workload (for Maelstrom nodes, --system maelstrom:PATH): \
            transactions of reads and appends of unique integers over --keys active lists; \
            checked for the isolation anomalies of Elle's list-append",
    generator: |run, worker| {
        Box::new(TxnGen::new(
            run,
            worker,
            Writes::Append,
            list_append::KEY_PREFIX,
            list_append::MAX_WRITES_PER_KEY,
        ))
    },
    key_names: list_append::key_names,
    final_reads: false,
    fixed_keys: false,
    checkers: &["list-append"],
    maelstrom_promises: &["strict-serializable"],
};

#[cfg(test)]
mod tests {
    use crate::registry::{find, RunSpec};
    use crate::txn::TxnSettings;
    use crate::Op;
    use std::sync::Arc;

    const MAELSTROM: [&str; 9] = [
        "echo",
        "unique-ids",
        "broadcast",
        "g-set",
        "g-counter",
        "pn-counter",
        "lin-kv",
        "txn-list-append",
        "kafka",
    ];

    #[test]
    fn every_maelstrom_workload_is_registered_with_its_checkers_and_promises() {
        let expect: [(&str, &[&str], &[&str]); 9] = [
            ("echo", &["echo"], &["echo"]),
            ("unique-ids", &["unique-ids"], &["unique-ids"]),
            ("broadcast", &["set"], &["no-lost-updates"]),
            ("g-set", &["set"], &["no-lost-updates"]),
            ("g-counter", &["counter"], &["no-lost-updates"]),
            ("pn-counter", &["counter"], &["no-lost-updates"]),
            ("lin-kv", &["linearizability"], &["linearizable"]),
            (
                "txn-list-append",
                &["list-append"],
                &["strict-serializable"],
            ),
            ("kafka", &["kafka"], &["kafka"]),
        ];
        for (name, checkers, promises) in expect {
            let w = find(name).expect("registered");
            assert_eq!(w.checkers, checkers, "{name}");
            assert_eq!(
                crate::maelstrom::promises(name).unwrap_or_default(),
                promises,
                "{name}"
            );
            assert!(w.about.starts_with("Maelstrom's"), "{name}");
            assert!(w.about.contains("--system maelstrom:PATH"), "{name}");
        }
        // The harness's own workloads, and unknown names, promise nothing here.
        assert!(crate::maelstrom::promises("set").is_none());
        assert!(crate::maelstrom::promises("no-such-workload").is_none());
        for w in crate::WORKLOADS {
            assert_eq!(
                MAELSTROM.contains(&w.name),
                !w.maelstrom_promises.is_empty(),
                "{}",
                w.name
            );
        }
    }

    fn ops(name: &str, keys: usize, worker: u64, n: usize) -> Vec<Op> {
        let run = Arc::new(RunSpec::new(7, keys, TxnSettings::default()));
        let mut g = (find(name).expect("registered").generator)(&run, worker);
        (0..n).map(|_| g.next_op()).collect()
    }

    #[test]
    fn sets_and_counters_use_one_key_and_read_half_the_time() {
        for name in ["broadcast", "g-set", "g-counter", "pn-counter"] {
            let w = find(name).expect("registered");
            assert_eq!((w.key_names)(10).len(), 1, "{name}");
            let ops = ops(name, 10, 2, 4_000);
            let keys: std::collections::HashSet<_> = ops.iter().map(|o| o.key.clone()).collect();
            assert_eq!(keys.len(), 1, "{name}: {keys:?}");
            let reads = ops.iter().filter(|o| o.f == "read").count();
            assert!((1_800..2_200).contains(&reads), "{name}: {reads}");
            assert!(w.final_reads, "{name}");
        }
    }

    #[test]
    fn lin_kv_never_expects_a_key_absent() {
        // Maelstrom fails a cas on a missing key; the register model would let [null, x] in.
        let ops = ops("lin-kv", 3, 1, 2_000);
        let cas: Vec<_> = ops.iter().filter(|o| o.f == "cas").collect();
        assert!(cas.len() > 200, "{}", cas.len());
        assert!(cas.iter().all(|o| !o.value[0].is_null()), "{cas:?}");
        let register = self::ops("register", 3, 1, 2_000);
        assert!(register
            .iter()
            .any(|o| o.f == "cas" && o.value[0].is_null()));
    }

    #[test]
    fn pn_counter_adds_both_signs_never_zero_g_counter_only_positive() {
        let amounts = |name| -> Vec<i64> {
            ops(name, 1, 0, 4_000)
                .iter()
                .filter(|o| o.f == "incr")
                .map(|o| o.value.as_i64().expect("integer"))
                .collect()
        };
        let pn = amounts("pn-counter");
        for a in -5..=5i64 {
            assert_eq!(pn.contains(&a), a != 0, "{a}");
        }
        let g = amounts("g-counter");
        assert!(g.iter().all(|a| (1..=5).contains(a)));
    }
}
