//! `harness compare RUN_DIR RUN_DIR...`: glue over `reports::compare`.

use std::path::PathBuf;

use crate::Exit;

/// Put runs of different systems under the same seed and faults side by side, on one page.
///
/// Writes one self-contained HTML page (no network, like report.html) that makes the CAP
/// trade-off visible. For each run it shows:
///   - the system, workload, nemesis, seed, time limit, nodes and the planned fault schedule;
///     a warning at the top when the runs differ in seed, workload, nemesis, time limit,
///     nodes or fault schedule (the comparison is then not like for like);
///   - availability during faults: of the client operations invoked while any fault was
///     active (between a fault's start and stop in history.jsonl), the share that completed
///     ok, with the ok/fail/info counts; the same on the minority and the majority side of a
///     partition, outside faults, and overall;
///   - latency of the ok operations (p50, p99, max), overall and during faults;
///   - per node (the history's `node`): ok/fail/info during and outside faults, and what the
///     faults did to it (minority side, killed, ...): a consistent system's minority side
///     refuses or times out, an available one answers;
///   - every checker's verdict from results.json, promised or informational, with its summary;
///   - operations per second (ok, fail, info) over time with the faults shaded, every run on
///     the same time axis.
///
/// Example:
///   harness run --system raft  --workload register --nemesis partition --seed 7 --store s
///   harness run --system paxos --workload register --nemesis partition --seed 7 --store s
///   harness compare s/raft-register-partition/* s/paxos-register-partition/* --out cap.html
///
/// Exit status: 0 written; 2 fewer than two runs, or a folder that is not a run folder, or
/// whose run.json or history.jsonl is missing or malformed (the message names the folder, the
/// file and the line); 4 the page could not be written.
#[derive(clap::Args, Debug, Clone)]
#[command(verbatim_doc_comment)]
pub struct CompareArgs {
    /// Two or more run folders: store/<system>-<workload>-<nemesis>/<UTC time>/.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub run_dirs: Vec<PathBuf>,
    /// Where to write the page.
    #[arg(long, default_value = reports::compare::COMPARE_FILE)]
    pub out: PathBuf,
}

pub fn compare(args: CompareArgs) -> anyhow::Result<Exit> {
    match reports::compare::render_compare(&args.run_dirs, &args.out) {
        Ok(stats) => {
            for w in &stats.warnings {
                eprintln!("harness: warning: not like for like: {w}");
            }
            println!(
                "{}: {} runs compared ({}), {:.1} KiB",
                stats.path.display(),
                stats.runs.len(),
                stats.runs.join(", "),
                stats.bytes as f64 / 1024.0
            );
            Ok(Exit::Valid)
        }
        Err(e) => {
            eprintln!("harness: {e}");
            Ok(if e.is_input() {
                Exit::BadInput
            } else {
                Exit::Failure
            })
        }
    }
}
