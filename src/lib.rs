//! The `harness` library: what a run is made of, as calls into the crates below (shared/DESIGN.md
//! section 1). Cluster bring-up (`cluster`), system definitions (`systems`), the run loop
//! (`run`), checking a run (`checking`), and the `check`, `report`, `serve` and `compare`
//! commands. The binary (`main.rs`) is only the command line over these.

pub mod check;
pub mod checking;
pub mod cluster;
pub mod compare;
pub mod report;
pub mod run;
pub mod systems;

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
pub fn start_run(args: run::RunArgs) -> anyhow::Result<Exit> {
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
