//! `harness`: the command line over the `harness` library (src/lib.rs).

use clap::{Parser, Subcommand};
use harness::{check, compare, report, run, Exit, STARTED};
use std::process::ExitCode;

/// mimalloc: checking a history allocates and frees millions of small values (JSON parsing,
/// micro-ops), often on another thread than the one that made them; glibc's allocator was
/// three times slower at it (`cargo bench -p harness-checkers --bench txn`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Test distributed systems the way Jepsen does, on one machine.
///
/// Exit status: 0 every check passed; 1 an anomaly was found; 2 bad usage or unreadable input;
/// 3 a checker could not decide within its budget; 4 the harness itself failed.
#[derive(Parser, Debug)]
#[command(name = "harness", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(run::RunArgs),
    Check(check::CheckArgs),
    Report(report::ReportArgs),
    Serve(report::ServeArgs),
    Compare(compare::CompareArgs),
}

fn main() -> ExitCode {
    STARTED.get_or_init(std::time::Instant::now);
    // Die quietly when the reader of our output goes away (`harness check … | head`), as
    // command-line tools do, instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of a signal installs no Rust handler.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Run(args) => harness::start_run(args),
        Command::Report(args) => report::report(args),
        Command::Serve(args) => report::serve(args),
        Command::Compare(args) => compare::compare(args),
    };
    match exit {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("harness: {e:#}");
            ExitCode::from(Exit::Failure as u8)
        }
    }
}
