//! `harness report RUN_DIR` and `harness serve`: glue over the `reports` crate.

use std::path::PathBuf;

use crate::Exit;

/// Re-render the report of a run folder (also of a run killed half-way).
///
/// Reads RUN_DIR/run.json, history.jsonl and, if the run got that far, results.json, and
/// writes RUN_DIR/report.html (replacing the old one in one step). A run without
/// results.json was not checked: its report draws the history and says the verdict is unknown.
///
/// Example:
///   harness report store/latest
///
/// Exit status: 0 written; 2 RUN_DIR, run.json or history.jsonl is missing or malformed (the
/// message names the file, and the line for the history); 4 the report could not be written.
#[derive(clap::Args, Debug, Clone)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    /// The run folder: store/<system>-<workload>-<nemesis>/<UTC time>/ (or store/latest).
    pub run_dir: PathBuf,
}

pub fn report(args: ReportArgs) -> anyhow::Result<Exit> {
    match reports::render_run(&args.run_dir) {
        Ok(stats) => {
            println!(
                "{}: {} ({} events, {} anomal{}, {:.1} KiB, {} ms)",
                stats.path.display(),
                stats.verdict,
                stats.events,
                stats.anomalies,
                if stats.anomalies == 1 { "y" } else { "ies" },
                stats.bytes as f64 / 1024.0,
                stats.elapsed.as_millis()
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

/// Browse the runs of a store and their reports in a web browser.
///
/// Serves an index of the runs (newest first, with their verdicts) and the files of the store,
/// read-only, on http://127.0.0.1:PORT/ only; paths that lead out of the store (.., absolute
/// paths, symbolic links out) are refused. Stop it with Ctrl-C.
///
/// Example:
///   harness serve --store store --port 8080
#[derive(clap::Args, Debug, Clone)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// The store of runs (the --store of harness run).
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The port on 127.0.0.1 (0: any free port, printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    if !args.store.is_dir() {
        eprintln!(
            "harness: --store {}: no such directory",
            args.store.display()
        );
        return Ok(Exit::BadInput);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = match reports::serve::bind(args.port).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("harness: cannot listen on 127.0.0.1:{}: {e}", args.port);
                return Ok(Exit::Failure);
            }
        };
        let addr = listener.local_addr()?;
        println!(
            "harness: serving {} at http://{addr}/ (Ctrl-C to stop)",
            args.store.display()
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        reports::serve::serve(listener, &args.store, shutdown).await?;
        Ok(Exit::Valid)
    })
}
