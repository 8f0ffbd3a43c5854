//! Checking a finished run: every checker the workload feeds, through the checkers' registry,
//! each marked promised or informational by the system's `[consistency] promises`
//! (shared/DESIGN.md sections 5 and 7), and the run's verdict from the promised ones.

use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use checkers::{CheckerResult, Judgement};
use history::EventType;

use crate::systems::SystemDef;

/// Throughput and latency of the acknowledged operations.
pub struct Load {
    /// Acknowledged operations per second, from the first invocation to the last completion.
    pub ok_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What checking a run found.
pub struct Checked {
    /// The worst verdict among the promised checkers (valid when none is promised).
    pub verdict: Judgement,
    /// Every checker's result, in the workload's order: results.json.
    pub results: Vec<CheckerResult>,
    /// When the first operation was acknowledged, ns into the history.
    pub first_ok_ns: Option<u64>,
    pub load: Load,
}

/// The time a linearizability check may take per key in a run (`harness check` has no limit
/// unless asked).
const RUN_KEY_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Whether a run of `workload` against `system` ends with a (local) read of every key from
/// every node: when the workload needs them (set, counter), and for any workload whose keys
/// are fixed when the system promises `convergent`, which the convergence checker judges from
/// those reads.
pub fn wants_final_reads(workload: &workloads::Workload, system: &SystemDef) -> bool {
    workload.final_reads
        || (workload.fixed_keys && checkers::registry::promised(&system.promises, "convergent"))
}

/// Reads back the run's history and runs every checker of `workload` over it.
pub fn check_run(
    path: &Path,
    workload: &workloads::Workload,
    system: &SystemDef,
) -> anyhow::Result<Checked> {
    let history = history::read_file(path, None)
        .map_err(|e| anyhow!("cannot read back {}: {e}", path.display()))?
        .history;
    let first_ok_ns = history
        .events
        .iter()
        .find(|e| e.kind == EventType::Ok)
        .map(|e| e.time);
    let paired = history::pair(&history).map_err(|e| anyhow!("{e}"))?;
    let load = load_of(&history, &paired);
    let mut opts = checkers::Options::new(checkers::ModelKind::CasRegister);
    opts.time_limit = Some(RUN_KEY_TIME_LIMIT);
    let results = checkers::registry::run(
        workload.checkers,
        &system.promises,
        &history,
        &paired,
        &opts,
    )
    .map_err(|e| anyhow!(e))?;
    Ok(Checked {
        verdict: verdict(&results),
        results,
        first_ok_ns,
        load,
    })
}

/// The run's verdict: the worst of the promised checkers' verdicts.
pub fn verdict(results: &[CheckerResult]) -> Judgement {
    Judgement::worst(results.iter().filter(|r| r.promised).map(|r| r.verdict))
}

/// Prints each checker's verdict and the first lines of its summary.
pub fn print_results(results: &[CheckerResult]) {
    for c in results {
        let informational = if c.promised {
            ""
        } else {
            " (not promised: informational)"
        };
        println!("  {}: {}{informational}", c.checker, c.verdict);
        for l in c.summary.iter().take(8) {
            println!("    {l}");
        }
    }
}

fn load_of(history: &history::History, paired: &history::Paired) -> Load {
    let mut lat: Vec<u64> = Vec::new();
    let (mut first, mut last) = (u64::MAX, 0);
    for op in &paired.ops {
        let invoked = history.events[op.invoke].time;
        first = first.min(invoked);
        if let (EventType::Ok, Some(c)) = (op.kind, op.complete) {
            let done = history.events[c].time;
            last = last.max(done);
            lat.push(done.saturating_sub(invoked));
        }
    }
    lat.sort_unstable();
    let at = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |ns| *ns as f64 / 1e6)
    };
    let span_s = last.saturating_sub(first) as f64 / 1e9;
    Load {
        ok_per_s: if span_s > 0.0 {
            lat.len() as f64 / span_s
        } else {
            0.0
        },
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: lat.last().map_or(0.0, |ns| *ns as f64 / 1e6),
    }
}
