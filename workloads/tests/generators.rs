//! Generators are deterministic from their seed and write unique values.

use history::txn::{Mop, MopKind, MopValue};
use history::EventType;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use workloads::{Completion, Generator, Op, RegisterGen, RunSpec, SetGen, TxnSettings};

fn take(g: &mut dyn Generator, n: usize) -> Vec<Op> {
    (0..n).map(|_| g.next_op()).collect()
}

fn seed() -> u64 {
    std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED)
}

#[test]
fn same_seed_same_operations() {
    let s = seed();
    for worker in 0..4 {
        let a = take(&mut RegisterGen::new(s, worker, 5), 2_000);
        let b = take(&mut RegisterGen::new(s, worker, 5), 2_000);
        assert_eq!(a, b, "reproduce with SEED={s}");
        let a = take(&mut SetGen::new(s, worker, 3), 2_000);
        let b = take(&mut SetGen::new(s, worker, 3), 2_000);
        assert_eq!(a, b, "reproduce with SEED={s}");
    }
    assert_ne!(
        take(&mut RegisterGen::new(s, 0, 5), 50),
        take(&mut RegisterGen::new(s + 1, 0, 5), 50),
        "another seed, another sequence"
    );
}

#[test]
fn observations_change_only_cas_expectations() {
    let s = seed();
    let mut plain = RegisterGen::new(s, 1, 3);
    let mut told = RegisterGen::new(s, 1, 3);
    for n in 0..1_000u64 {
        let a = plain.next_op();
        let b = told.next_op();
        assert_eq!((&a.f, &a.key), (&b.f, &b.key), "reproduce with SEED={s}");
        if a.f != "cas" {
            assert_eq!(a.value, b.value);
        } else {
            assert_eq!(a.value[1], b.value[1], "the new value is fresh either way");
        }
        if b.f == "read" {
            let c = Completion {
                kind: EventType::Ok,
                value: json!(900_000_000 + n),
                error: None,
                refused: false,
                siblings: false,
                context: None,
            };
            told.observe(&b, &c);
        }
    }
}

#[test]
fn register_mix_keys_and_unique_values() {
    let s = seed();
    let mut written = HashSet::new();
    let (mut reads, mut writes, mut cases) = (0, 0, 0);
    let mut cas_known = 0;
    for worker in 0..8u64 {
        let mut g = RegisterGen::new(s, worker, 4);
        let mut n = 0;
        let mut mine = HashSet::new();
        for op in take(&mut g, 5_000) {
            let key = op.key.as_deref().expect("register ops have keys");
            assert!(["k0", "k1", "k2", "k3"].contains(&key), "{key}");
            let fresh = match op.f.as_str() {
                "read" => {
                    reads += 1;
                    assert_eq!(op.value, json!(null));
                    continue;
                }
                "write" => {
                    writes += 1;
                    op.value.as_u64().expect("integer")
                }
                "cas" => {
                    cases += 1;
                    let from = &op.value[0];
                    if !from.is_null() {
                        assert!(mine.contains(&from.as_u64().expect("integer")));
                        cas_known += 1;
                    }
                    op.value[1].as_u64().expect("integer")
                }
                other => panic!("unexpected f {other}"),
            };
            n += 1;
            assert_eq!(fresh, worker * 10_000_000 + n, "worker's n-th value");
            assert!(written.insert(fresh), "value {fresh} written twice");
            mine.insert(fresh);
        }
    }
    let total = f64::from(reads + writes + cases);
    for (name, count, share) in [
        ("read", reads, 0.4),
        ("write", writes, 0.4),
        ("cas", cases, 0.2),
    ] {
        let got = f64::from(count) / total;
        assert!((got - share).abs() < 0.02, "{name}: {got:.3} vs {share}");
    }
    assert!(
        cas_known > cases / 2,
        "most cas expect a value this worker wrote"
    );
}

#[test]
fn set_adds_unique_elements_and_reads_sometimes() {
    let s = seed();
    let mut seen = HashSet::new();
    let mut reads = 0;
    let mut keys = HashSet::new();
    for worker in 0..8u64 {
        for op in take(&mut SetGen::new(s, worker, 2), 5_000) {
            keys.insert(op.key.clone().expect("set ops have keys"));
            match op.f.as_str() {
                "read" => reads += 1,
                "add" => assert!(seen.insert(op.value.as_u64().expect("integer"))),
                other => panic!("unexpected f {other}"),
            }
        }
    }
    let share = f64::from(reads) / 40_000.0;
    assert!((share - 0.05).abs() < 0.01, "reads {share:.3}");
    assert_eq!(keys, HashSet::from(["s0".to_owned(), "s1".to_owned()]));
    assert_eq!(
        SetGen::key_names(0),
        vec!["s0".to_owned()],
        "at least one key"
    );
}

fn txn_run(seed: u64, keys: usize, max_len: usize, max_writes: Option<u64>) -> Arc<RunSpec> {
    Arc::new(RunSpec::new(
        seed,
        keys,
        TxnSettings {
            max_txn_length: max_len,
            max_writes_per_key: max_writes,
        },
    ))
}

fn txn_mops(op: &Op) -> Vec<Mop> {
    assert_eq!(op.f, "txn");
    assert_eq!(op.key, None, "a txn has no key of its own");
    history::txn::parse_mops(&op.value).expect("a txn's value is micro-ops")
}

#[test]
fn txn_workloads_mix_reads_and_unique_writes_of_their_kind() {
    let s = seed();
    for (workload, kind, prefix) in [
        (&workloads::list_append::WORKLOAD, MopKind::Append, "la"),
        (&workloads::rw_register::WORKLOAD, MopKind::Write, "rw"),
    ] {
        let run = txn_run(s, 5, 4, None);
        let mut written = HashSet::new();
        let (mut reads, mut writes) = (0u64, 0u64);
        let mut lengths = BTreeMap::new();
        for worker in 0..4 {
            let mut g = (workload.generator)(&run, worker);
            for op in take(g.as_mut(), 2_000) {
                let mops = txn_mops(&op);
                *lengths.entry(mops.len()).or_insert(0u64) += 1;
                for m in mops {
                    assert!(m.key.starts_with(prefix), "{workload:?}: key {}", m.key);
                    if m.f == MopKind::Read {
                        reads += 1;
                        assert_eq!(m.value, MopValue::Nil, "reads are invoked with null");
                    } else {
                        writes += 1;
                        assert_eq!(m.f, kind, "{workload:?}");
                        let v = m.value.int().expect("writes carry integers");
                        assert!(written.insert(v), "{v} written twice (SEED={s})");
                    }
                }
            }
        }
        assert_eq!(
            lengths.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 4],
            "1 to --max-txn-length micro-ops"
        );
        let share = reads as f64 / (reads + writes) as f64;
        assert!((share - 0.5).abs() < 0.02, "{workload:?}: reads {share:.3}");
    }
}

#[test]
fn keys_retire_after_max_writes_counted_across_all_workers() {
    let s = seed();
    for (workload, default) in [
        (&workloads::list_append::WORKLOAD, 32u64),
        (&workloads::rw_register::WORKLOAD, 16),
    ] {
        for max_writes in [None, Some(3)] {
            let run = txn_run(s, 3, 4, max_writes);
            let mut gens: Vec<_> = (0..6).map(|w| (workload.generator)(&run, w)).collect();
            let mut writes: BTreeMap<String, u64> = BTreeMap::new();
            let mut read_keys = HashSet::new();
            // Workers take turns, as they would interleave in a run.
            for _ in 0..500 {
                for g in gens.iter_mut() {
                    for m in txn_mops(&g.next_op()) {
                        if m.f == MopKind::Read {
                            read_keys.insert(m.key);
                        } else {
                            *writes.entry(m.key).or_default() += 1;
                        }
                    }
                }
            }
            let limit = max_writes.unwrap_or(default);
            assert!(
                writes.values().all(|&n| n <= limit),
                "{workload:?}: a key got more than {limit} writes: {writes:?}"
            );
            let full = writes.values().filter(|&&n| n == limit).count() as u64;
            assert_eq!(
                full,
                run.key_pool.retired(),
                "{workload:?}: every retired key got exactly {limit} writes"
            );
            assert!(
                full as usize + 3 >= writes.len(),
                "{workload:?}: only the active keys are short of {limit} writes"
            );
            assert!(
                read_keys.len() > 3,
                "{workload:?}: reads follow the fresh keys"
            );
        }
    }
}

#[test]
fn txn_generators_replay_from_the_seed() {
    let s = seed();
    for workload in [
        &workloads::list_append::WORKLOAD,
        &workloads::rw_register::WORKLOAD,
    ] {
        let a = take(
            (workload.generator)(&txn_run(s, 4, 6, None), 2).as_mut(),
            1_000,
        );
        let b = take(
            (workload.generator)(&txn_run(s, 4, 6, None), 2).as_mut(),
            1_000,
        );
        assert_eq!(a, b, "reproduce with SEED={s}");
    }
}

#[test]
fn no_two_workloads_share_a_key_name() {
    // A key's name without its number: each workload has a prefix of its own. Maelstrom's
    // workloads are exempt: a Maelstrom node starts empty for each run and serves one workload,
    // so their keys (the same as their harness twins', or none) never meet another's.
    let stem = |k: &str| k.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    let own: Vec<_> = workloads::WORKLOADS
        .iter()
        .filter(|w| w.maelstrom_promises.is_empty())
        .collect();
    for w in &own {
        for key in (w.key_names)(3) {
            if let Some(other) = owner.insert(stem(&key), w.name) {
                assert_eq!(
                    other, w.name,
                    "{} and {} both name keys {key}",
                    other, w.name
                );
            }
        }
    }
    assert_eq!(owner.len(), own.len());
}
