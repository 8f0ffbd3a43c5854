//! Figures for the causal checker (printed, not asserted: these machines are shared).
//!
//!     cargo bench -p harness-checkers --bench causal                # 100,000 operations
//!     BENCH_QUICK=1 cargo bench -p harness-checkers --bench causal  # smoke test (10,000)
//!
//! 1. 100,000 register operations by 50 sessions over 100 keys, from a simulated causal store
//!    (synth::large): valid, and with one planted read-your-writes violation. Each is checked
//!    in a fresh process from a JSONL file, as `harness check --checker causal` does it: read
//!    and pair the file (the in-run reference: what any checker of whole histories pays
//!    first), build the events, then CC and CCv (one pass for both, vector clocks over
//!    sessions); the figures are times, the ratio to reading, and the child's peak resident
//!    memory.
//! 2. Causal memory, which is a fixpoint per session over the whole causal order, at growing
//!    sizes and session counts with a 20 s budget: where it is decided and where its budget gives Unknown.

use checkers::causal::{self, synth, Events, Model};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PHASE_ENV: &str = "CAUSAL_BENCH_FILE";

mod common;
use common::peak_rss_mib;

/// In a fresh process: read, pair, build, check CC and CCv (CM with `budget` seconds, 0 for
/// none). Prints: read s, build s, check s, CM s, peak MiB, CC, CCv, CM (1 holds, 0 violated,
/// -1 unknown), anomalies.
fn phase(spec: &str) {
    let (budget, path) = spec.split_once(':').expect("budget:file");
    let budget: u64 = budget.parse().expect("seconds");
    let t = Instant::now();
    let loaded = history::read_file(std::path::Path::new(path), None).expect("reads");
    let paired = history::pair(&loaded.history).expect("pairs");
    let t_read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ev = Events::from_history(&loaded.history, &paired);
    let t_build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // CM's budget of zero stops it at its first round: the figures of CC and CCv alone.
    let f = causal::analyse(&ev, Duration::from_secs(budget));
    let t_check = t.elapsed().as_secs_f64();
    let v = |m: Model| match f.holds.get(&m).copied().flatten() {
        Some(true) => 1,
        Some(false) => 0,
        None => -1,
    };
    println!(
        "{t_read} {t_build} {t_check} {} {} {} {} {}",
        peak_rss_mib(),
        v(Model::Cc),
        v(Model::Ccv),
        v(Model::Cm),
        f.counts.values().sum::<usize>()
    );
}

fn child(budget: u64, file: &std::path::Path) -> Option<Vec<f64>> {
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .env(PHASE_ENV, format!("{budget}:{}", file.display()))
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() == 8 {
        Some(f)
    } else {
        eprintln!(
            "child failed: {line} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        None
    }
}

fn write(h: &history::History, path: &std::path::Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("creates"));
    for e in &h.events {
        serde_json::to_writer(&mut out, e).expect("writes");
        std::io::Write::write_all(&mut out, b"\n").expect("writes");
    }
}

fn verdict(x: f64) -> &'static str {
    match x as i64 {
        1 => "holds",
        0 => "violated",
        _ => "unknown",
    }
}

fn main() {
    if let Ok(spec) = std::env::var(PHASE_ENV) {
        phase(&spec);
        return;
    }
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let n = if quick { 10_000 } else { 100_000 };
    let dir = std::env::temp_dir().join(format!("causal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!("== {n} operations, 50 sessions, 100 keys: CC and CCv (CM not run)");
    for (name, plant) in [("valid", false), ("one planted violation", true)] {
        let h = synth::large(11, n, 50, 100, plant);
        let file = dir.join(format!("{plant}.jsonl"));
        write(&h, &file);
        let Some(f) = child(0, &file) else { continue };
        println!(
            "  {name:<22} read+pair {:.2} s | build {:.2} s | CC+CCv {:.2} s ({:.2}x reading) \
             | peak {:.0} MiB | CC {} CCv {} | {} anomalies",
            f[0],
            f[1],
            f[2],
            f[2] / f[0],
            f[3],
            verdict(f[4]),
            verdict(f[5]),
            f[7]
        );
    }
    println!("== causal memory (CM), budget 20 s");
    let sizes: &[(usize, usize)] = if quick {
        &[(1_000, 50), (10_000, 50)]
    } else {
        &[
            (1_000, 50),
            (10_000, 50),
            (30_000, 50),
            (100_000, 50),
            (100_000, 200),
            (300_000, 200),
        ]
    };
    for &(size, sessions) in sizes {
        let h = synth::large(12, size, sessions, 100, false);
        let file = dir.join(format!("cm-{size}.jsonl"));
        write(&h, &file);
        let Some(f) = child(20, &file) else { continue };
        println!(
            "  {size:>7} operations, {sessions:>3} sessions: CC+CCv+CM {:.2} s | peak {:.0} MiB \
             | CM {}",
            f[2],
            f[3],
            verdict(f[6])
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
