//! Figures for the transactional checkers (printed, not asserted: these machines are shared).
//!
//!     cargo bench -p harness-checkers --bench txn                   # 1M and 100k transactions
//!     BENCH_QUICK=1 cargo bench -p harness-checkers --bench txn     # smoke test (50k, 10k)
//!     TXN_BENCH_ONLY=causal cargo bench -p harness-checkers --bench txn   # section 3 alone
//!     TXN_BENCH_ONLY=elle cargo bench -p harness-checkers --bench txn     # 1 and 2 alone
//!
//! 1. A valid list-append history of 1,000,000 transactions (about 4 micro-ops each, 50
//!    concurrent processes, keys retiring after 16 appends) checked for strict-serializable:
//!    from the history in memory (typing the transactions, inferring, the graph, its
//!    components), and end to end from a JSONL file as `harness check` does it (streaming
//!    the file into transactions, then checking), in a fresh process with its own peak
//!    resident memory. The in-run reference is reading and pairing the same file as whole
//!    events, which a checker of whole histories pays first; Elle's published rate is
//!    100–160k txn/s.
//! 2. 100,000 transactions with one G2-item planted in the middle: the time to find it, and
//!    its witness, which must name the planted transactions.
//! 3. Transactional causal consistency by saturation (AWDIT): a causal rw-register history of
//!    100,000 transactions (50 processes, about 4 micro-ops each), checked for `causal` in
//!    memory and end to end from a file in a fresh process (time and peak memory), also for
//!    read atomic and read committed; then the same size with one causal violation planted
//!    (read atomic still holds), which must be found and named. Target: under 3 s.

use checkers::txn::{analyse, synth, Kind, TxnOptions, Txns};
use std::time::Instant;

/// The allocator the `harness` binary uses, so the figures are `harness check`'s.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PHASE_ENV: &str = "TXN_BENCH_FILE";

mod common;
use common::peak_rss_mib;

fn opts() -> TxnOptions {
    opts_for("strict-serializable")
}

fn opts_for(model: &str) -> TxnOptions {
    TxnOptions {
        model: Some(model.into()),
        ..TxnOptions::default()
    }
}

/// A phase in a fresh process, so its peak memory is its own: `pair:FILE` reads and pairs
/// the whole history (what any checker of whole histories pays first, the reference);
/// `check:FILE` reads it as a stream of transactions and checks them, as `harness check` does;
/// `causal:FILE` the same for an rw-register history checked for causal.
fn phase(spec: &str) {
    let (what, path) = spec.split_once(':').expect("phase:file");
    let path = std::path::Path::new(path);
    let t0 = Instant::now();
    let bad = if what == "pair" {
        let loaded = history::read_file(path, None).expect("reads");
        history::pair(&loaded.history).expect("pairs");
        0
    } else {
        let (txns, _, _) = Txns::read_jsonl(path).expect("reads");
        let (kind, o) = if what == "causal" {
            (Kind::RwRegister, opts_for("causal"))
        } else {
            (Kind::ListAppend, opts())
        };
        analyse(kind, &txns, &o).expect("checks").forbidden.len()
    };
    println!("{} {} {}", t0.elapsed().as_secs_f64(), peak_rss_mib(), bad);
}

/// Runs `phase` in a child: (seconds, peak MiB, forbidden anomalies).
fn child(what: &str, file: &std::path::Path) -> Option<(f64, f64, f64)> {
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .env(PHASE_ENV, format!("{what}:{}", file.display()))
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match f[..] {
        [a, b, c] => Some((a, b, c)),
        _ => {
            eprintln!(
                "{what} failed: {line} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var(PHASE_ENV) {
        phase(&spec);
        return;
    }
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let only = std::env::var("TXN_BENCH_ONLY").unwrap_or_default();
    if only != "causal" {
        elle(quick);
    }
    if only != "elle" {
        causal(quick);
    }
}

/// Sections 1 and 2: list-append, strict-serializable, by Elle's method.
fn elle(quick: bool) {
    let (big, planted) = if quick {
        (50_000, 10_000)
    } else {
        (1_000_000, 100_000)
    };

    println!("== list-append, {big} transactions, 50 processes, strict-serializable");
    let t = Instant::now();
    let large = synth::large(7, big, 50, synth::Planted::None);
    println!("  generated in {:.2} s", t.elapsed().as_secs_f64());
    let h = &large.history;
    let t = Instant::now();
    let paired = history::pair(h).expect("pairs");
    let t_pair = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let txns = Txns::from_history(h, &paired).expect("txns");
    let t_type = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let a = analyse(Kind::ListAppend, &txns, &opts()).expect("checks");
    let t_check = t.elapsed().as_secs_f64();
    let micro: usize = txns.txns.iter().map(|t| t.mops.len()).sum();
    println!(
        "  {} micro-ops; graph: {} transactions, {} edges, largest component {}",
        micro, a.graph_nodes, a.graph_edges, a.largest_scc
    );
    println!(
        "  in memory: typing {t_type:.2} s + checking {t_check:.2} s = {:.2} s ({:.0} txn/s); \
         verdict {}",
        t_type + t_check,
        big as f64 / (t_type + t_check),
        if a.forbidden.is_empty() {
            "valid"
        } else {
            "INVALID (unexpected)"
        }
    );
    println!("  pairing the history alone: {t_pair:.2} s; peak memory so far {:.0} MiB (with the generator's copy)", peak_rss_mib());

    // End to end from a file, in a fresh process so its peak memory is its own.
    let dir = tempdir();
    // TXN_BENCH_KEEP=PATH keeps the history file there (to time `harness check` on it).
    let file = std::env::var("TXN_BENCH_KEEP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.join("history.jsonl"));
    {
        let f = std::fs::File::create(&file).expect("temp file");
        let mut w = std::io::BufWriter::new(f);
        for e in &h.events {
            serde_json::to_writer(&mut w, e).expect("writes");
            std::io::Write::write_all(&mut w, b"\n").expect("writes");
        }
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    drop(txns);
    drop(paired);
    drop(large);
    if let (Some((read, read_rss, _)), Some((total, rss, bad))) =
        (child("pair", &file), child("check", &file))
    {
        println!(
            "  end to end from a {:.0} MiB JSONL file (as `harness check`, streaming): {total:.2} \
             s ({:.0} txn/s), peak memory {rss:.0} MiB, {bad} forbidden anomalies",
            size as f64 / 1048576.0,
            big as f64 / total
        );
        println!(
            "  reference, reading and pairing the whole history as events: {read:.2} s, peak \
             memory {read_rss:.0} MiB: checking everything takes {:.2}× the time and {:.2}× \
             the memory of just reading it",
            total / read,
            rss / read_rss
        );
        println!(
            "  Elle's published rate, 100–160k txn/s on many cores: {:.1}–{:.1}× that",
            big as f64 / total / 160_000.0,
            big as f64 / total / 100_000.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("== list-append, {planted} transactions with one G2-item planted");
    let large = synth::large(11, planted, 50, synth::Planted::G2Item);
    let plant = large.plant.as_ref().expect("planted");
    let paired = history::pair(&large.history).expect("pairs");
    let t = Instant::now();
    let txns = Txns::from_history(&large.history, &paired).expect("txns");
    let a = analyse(Kind::ListAppend, &txns, &opts()).expect("checks");
    let secs = t.elapsed().as_secs_f64();
    let want: Vec<u64> = plant
        .invokes
        .iter()
        .map(|&p| large.history.events[p].index)
        .collect();
    let g2 = a
        .anomalies
        .iter()
        .find(|x| x.kind == "G2-item" && want.iter().all(|i| x.ops.contains(i)));
    println!(
        "  checked in {secs:.2} s; forbidden: {:?}; the planted G2-item (T{} and T{}) {}",
        a.forbidden,
        want[0],
        want[1],
        if g2.is_some() { "found" } else { "NOT FOUND" }
    );
    if let Some(g2) = g2 {
        for s in g2.sentences.iter().take(4) {
            println!("    {s}");
        }
    }
}

fn write_jsonl(h: &history::History, file: &std::path::Path) -> u64 {
    let f = std::fs::File::create(file).expect("temp file");
    let mut w = std::io::BufWriter::new(f);
    for e in &h.events {
        serde_json::to_writer(&mut w, e).expect("writes");
        std::io::Write::write_all(&mut w, b"\n").expect("writes");
    }
    drop(w);
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

/// Section 3: rw-register, the weak levels by saturation.
fn causal(quick: bool) {
    let n = if quick { 20_000 } else { 100_000 };
    println!("== rw-register, {n} transactions, 50 processes, causal (saturation, AWDIT)");
    let t = Instant::now();
    let large = synth::large_register(7, n, 50, false);
    println!("  generated in {:.2} s", t.elapsed().as_secs_f64());
    let paired = history::pair(&large.history).expect("pairs");
    let t = Instant::now();
    let txns = Txns::from_history(&large.history, &paired).expect("txns");
    let t_type = t.elapsed().as_secs_f64();
    let micro: usize = txns.txns.iter().map(|t| t.mops.len()).sum();
    for model in ["causal", "read-atomic", "strong-session-read-committed"] {
        let t = Instant::now();
        let a = analyse(Kind::RwRegister, &txns, &opts_for(model)).expect("checks");
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  {model}: checked in {secs:.2} s in memory (+ {t_type:.2} s typing; {micro} \
             micro-ops, {} transactions, {} edges); verdict {}",
            a.graph_nodes,
            a.graph_edges,
            if a.forbidden.is_empty() {
                "valid".to_string()
            } else {
                format!("INVALID (unexpected): {:?}", a.forbidden)
            }
        );
    }
    let dir = tempdir();
    let file = dir.join("register.jsonl");
    let size = write_jsonl(&large.history, &file);
    drop(txns);
    drop(paired);
    drop(large);
    if let Some((total, rss, bad)) = child("causal", &file) {
        println!(
            "  end to end from a {:.0} MiB JSONL file (as `harness check --checker rw-register \
             --consistency-model causal`, streaming): {total:.2} s ({:.0} txn/s), peak memory \
             {rss:.0} MiB, {bad} forbidden anomalies",
            size as f64 / 1048576.0,
            n as f64 / total
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("== rw-register, {n} transactions with one causal violation planted");
    let large = synth::large_register(11, n, 50, true);
    let plant = large.plant.expect("planted");
    let paired = history::pair(&large.history).expect("pairs");
    let t = Instant::now();
    let txns = Txns::from_history(&large.history, &paired).expect("txns");
    let a = analyse(Kind::RwRegister, &txns, &opts_for("causal")).expect("checks");
    let secs = t.elapsed().as_secs_f64();
    let ra = analyse(Kind::RwRegister, &txns, &opts_for("read-atomic")).expect("checks");
    let want: Vec<u64> = plant.iter().map(|&t| txns.txns[t].index).collect();
    let hit = a
        .anomalies
        .iter()
        .find(|x| x.kind == "causal-violation" && x.ops.contains(&want[0]));
    println!(
        "  typed and checked in {secs:.2} s; forbidden: {:?} (read atomic: {:?}); the planted \
         violation (T{} .. T{}) {}",
        a.forbidden,
        ra.forbidden,
        want[0],
        want[3],
        if hit.is_some() { "found" } else { "NOT FOUND" }
    );
    if let Some(x) = hit {
        println!("    {}", x.title);
        for s in x.sentences.iter().take(3) {
            println!("    {s}");
        }
    }
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("txn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
