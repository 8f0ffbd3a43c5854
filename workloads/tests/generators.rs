//! Generators are deterministic from their seed and write unique values.

use history::EventType;
use serde_json::json;
use std::collections::HashSet;
use workloads::{Completion, Generator, Op, RegisterGen, SetGen};

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
