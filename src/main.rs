//! `harness`: the command line. Glue over the `history`, `checkers`, `workloads`, `nemesis`
//! and `reports` crates.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod check;
mod checking;
mod cluster;
mod report;
mod run;
mod systems;
mod units;

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
}

/// Exit codes of shared/DESIGN.md section 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Valid = 0,
    Anomaly = 1,
    BadInput = 2,
    Unknown = 3,
    Failure = 4,
}

impl Exit {
    /// The exit status of a verdict.
    pub fn of(verdict: checkers::Judgement) -> Exit {
        match verdict {
            checkers::Judgement::Valid => Exit::Valid,
            checkers::Judgement::Invalid => Exit::Anomaly,
            checkers::Judgement::Unknown => Exit::Unknown,
        }
    }
}

/// `harness run`: checks what can be checked outside, then enters the sandbox (which must
/// happen while this process has a single thread) and runs there.
fn start_run(args: run::RunArgs) -> anyhow::Result<Exit> {
    let prepared = match run::prepare(args) {
        Ok(p) => p,
        Err((code, message)) => {
            eprintln!("harness: {message}");
            return Ok(code);
        }
    };
    match nemesis::sandbox::enter() {
        Ok(nemesis::sandbox::Entered::Inside) => run::run_inside(prepared),
        Ok(nemesis::sandbox::Entered::ParentDone(code)) => {
            std::process::exit(code);
        }
        Err(e) => {
            eprintln!("harness: cannot create the sandbox: {e}");
            Ok(Exit::Failure)
        }
    }
}

/// When this process started, for measuring how long a run takes to serve its first operation.
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

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
        Command::Run(args) => start_run(args),
        Command::Report(args) => report::report(args),
        Command::Serve(args) => report::serve(args),
    };
    match exit {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("harness: {e:#}");
            ExitCode::from(Exit::Failure as u8)
        }
    }
}
