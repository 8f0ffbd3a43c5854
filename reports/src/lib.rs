//! The HTML report of a harness run, the index of a store of runs, and the read-only server
//! that `harness serve` runs over them (shared/DESIGN.md section 4; issue 5).
//!
//! A report is one self-contained `report.html` per run folder: inline CSS, SVG and a little
//! script, no network. It puts on one page what Jepsen spreads over plots, an EDN map and text
//! files: the verdict first, a fault timeline, throughput and latency with the faults shaded
//! behind them, per-key verdicts, and each anomaly's witness in sentences and drawings, linked
//! to its moment on the timeline. Verdicts and witnesses are rendered as the checkers wrote
//! them into `results.json` (DESIGN section 7), never re-derived.
//!
//! Everything that comes from a run is untrusted (values come from systems we do not control):
//! the page goes through minijinja with HTML auto-escaping, drawings through the `svg` crate
//! and plotters, which escape their text, and every string is clipped in length (`text::clip`).
//! Long runs are summarised (bucketed series, capped lists), and the page says what was.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod compare;
mod draw;
mod faults;
pub mod index;
pub mod load;
mod ops;
mod plots;
mod series;
pub mod serve;
mod style;
pub mod terminal;
mod text;
mod view;

pub use load::{load, Results, RunFolder};

/// The report file of a run folder.
pub const REPORT_FILE: &str = "report.html";

/// Why a report could not be rendered. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: not a run folder (no such directory)", .0.display())]
    NotARunFolder(PathBuf),
    #[error("{}: not a run folder (it has no run.json; a run folder is store/<system>-<workload>-<nemesis>/<UTC time>/)", .0.display())]
    NoRunJson(PathBuf),
    /// The command was used wrongly (a compare of one run).
    #[error("{0}")]
    Usage(String),
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Malformed { file: PathBuf, message: String },
    /// history.jsonl: names the file, the line and the field.
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error("{}: cannot write: {source}", file.display())]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("rendering {}: {message}", file.display())]
    Template { file: PathBuf, message: String },
}

impl ReportError {
    /// Whether the error is about the input (exit status 2) rather than the output (4).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            ReportError::Write { .. } | ReportError::Template { .. }
        )
    }
}

/// What rendering a report did.
#[derive(Debug, Clone)]
pub struct RenderStats {
    pub path: PathBuf,
    pub bytes: u64,
    pub events: usize,
    /// `valid`, `invalid` or `unknown` (also when the run was not checked).
    pub verdict: &'static str,
    pub anomalies: usize,
    /// What the page summarises rather than draws op by op, and what is missing.
    pub notices: Vec<String>,
    pub elapsed: Duration,
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // `.html` templates are auto-escaped (minijinja's default for that extension); the CSS and
    // script are included verbatim and hold no value from a run.
    env.add_template("report.html", include_str!("../templates/report.html"))
        .expect("the report template parses");
    env.add_template("index.html", include_str!("../templates/index.html"))
        .expect("the index template parses");
    env.add_template("dir.html", include_str!("../templates/dir.html"))
        .expect("the directory template parses");
    env.add_template("style.css", include_str!("../templates/style.css"))
        .expect("the style sheet parses");
    env.add_template("compare.html", include_str!("../templates/compare.html"))
        .expect("the comparison template parses");
    env.add_template("report.js", include_str!("../templates/report.js"))
        .expect("the script parses");
    env
}

/// Renders `template` with `ctx`, auto-escaped.
pub(crate) fn render_template<S: serde::Serialize>(
    template: &str,
    ctx: S,
    file: &Path,
) -> Result<String, ReportError> {
    let env = environment();
    let tmpl = env
        .get_template(template)
        .map_err(|e| ReportError::Template {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
    tmpl.render(minijinja::value::Serde(ctx))
        .map_err(|e| ReportError::Template {
            file: file.to_path_buf(),
            message: e.to_string(),
        })
}

/// The report of a loaded run folder, as HTML. `rendered_at` is printed at the bottom of the
/// page (tests pass a fixed one).
pub fn render_html(folder: &RunFolder, rendered_at: &str) -> Result<String, ReportError> {
    let page = view::build(folder, rendered_at.to_string());
    render_template("report.html", &page, &folder.dir.join(REPORT_FILE))
}

/// Reads the run folder `run_dir` and writes its `report.html`, atomically (a temporary file
/// renamed over the old report), so a reader never sees half a page.
pub fn render_run(run_dir: &Path) -> Result<RenderStats, ReportError> {
    let started = Instant::now();
    let folder = load(run_dir)?;
    let page = view::build(&folder, utc_now());
    let out = run_dir.join(REPORT_FILE);
    let html = render_template("report.html", &page, &out)?;
    write_atomically(&out, html.as_bytes())?;
    let mut notices = page.notices.clone();
    notices.extend(page.summarised.iter().cloned());
    Ok(RenderStats {
        path: out,
        bytes: html.len() as u64,
        events: folder.events.len(),
        verdict: page.verdict,
        anomalies: page.anomalies_total,
        notices,
        elapsed: started.elapsed(),
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Write {
            file: path.to_path_buf(),
            source,
        }
    })
}

/// The current UTC time, "2026-11-26 17:25:58 UTC".
pub fn utc_now() -> String {
    history::time::UtcTime::now().readable()
}
