//! Differential: random small histories (up to 7 transactions over 2–3 keys, with `fail`,
//! `info` and unfinished transactions, valid and corrupted), checked for serializable and
//! strict-serializable by the checkers and by the brute-force oracle that tries every serial
//! order. SEEDS=N checks N seeds per workload (default 3000); FIRST_SEED=S starts elsewhere.
//! A disagreement prints the seed and the history.
//!
//! list-append must agree exactly: every read shows the whole list, so the version order is
//! known and a history is serializable exactly when its dependency graph has no cycle. The
//! rw-register inference is Elle's, which is sound but not complete (a register's read shows
//! only its latest version, so some orders cannot be inferred): every history it rejects the
//! oracle must reject too, and the share of the oracle's rejections it finds is printed.

use checkers::txn::oracle::{self, Workload};
use checkers::txn::{analyse, synth, Kind, TxnOptions, Txns};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn show(h: &history::History) -> String {
    h.events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// (histories, oracle rejections, checker rejections, disagreements as messages)
fn compare(workload: Workload, kind: Kind, exact: bool) -> (u64, u64, u64, Vec<String>) {
    let (first, n) = (env("FIRST_SEED", 0), env("SEEDS", 3000));
    let (mut rejected, mut caught, mut bad) = (0, 0, Vec::new());
    for seed in first..first + n {
        let h = synth::random_small(seed, workload);
        let p = history::pair(&h).expect("generated histories pair");
        let txns = Txns::from_history(&h, &p).expect("generated histories are txns");
        for (model, strict) in [("serializable", false), ("strict-serializable", true)] {
            let want = oracle::serializable(&h, &p, workload, strict)
                .expect("small enough for the oracle")
                .is_some();
            let opts = TxnOptions {
                model: Some(model.into()),
                ..TxnOptions::default()
            };
            let a = analyse(kind, &txns, &opts).expect("checks");
            let got = a.forbidden.is_empty();
            rejected += !want as u64;
            caught += (!want && !got) as u64;
            let wrong = if exact { got != want } else { want && !got };
            if wrong && bad.len() < 5 {
                let kinds: Vec<&str> = a.anomalies.iter().map(|x| x.kind.as_str()).collect();
                bad.push(format!(
                    "seed {seed}, {model}: oracle says {}, checker says {} ({kinds:?})\n{}",
                    if want { "valid" } else { "invalid" },
                    if got { "valid" } else { "invalid" },
                    show(&h)
                ));
            }
        }
    }
    (n, rejected, caught, bad)
}

#[test]
fn list_append_agrees_with_the_oracle() {
    let (n, rejected, caught, bad) = compare(Workload::ListAppend, Kind::ListAppend, true);
    println!("list-append: {n} histories × 2 models, oracle rejects {rejected}, checker {caught}");
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
    assert!(
        rejected > n / 4,
        "the generator should make invalid histories too"
    );
}

#[test]
fn rw_register_is_sound_against_the_oracle() {
    let (n, rejected, caught, bad) = compare(Workload::RwRegister, Kind::RwRegister, false);
    println!(
        "rw-register: {n} histories × 2 models, oracle rejects {rejected}, checker catches \
         {caught} ({:.0}%)",
        100.0 * caught as f64 / rejected.max(1) as f64
    );
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
    assert!(
        caught > rejected / 2,
        "the inference should catch most anomalies"
    );
}
