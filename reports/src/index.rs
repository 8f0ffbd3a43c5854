//! The index of a store: every run folder (`<store>/<system>-<workload>-<nemesis>/<UTC time>/`,
//! shared/DESIGN.md section 4), newest first, with its verdict from `results.json`.

use crate::text::{clip, thousands, CELL_CHARS};
use crate::view::encode_segment;
use crate::ReportError;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Runs listed at most (the newest).
pub const MAX_RUNS: usize = 2_000;

/// One run folder of the store.
#[derive(Clone, Debug, Serialize)]
pub struct RunEntry {
    /// The folder, relative to the store, as `/`-separated segments.
    pub segments: Vec<String>,
    /// The same, encoded for links ("label/stamp").
    pub href: String,
    pub system: String,
    pub workload: String,
    pub nemesis: String,
    pub bug: String,
    pub seed: String,
    /// When the run started (from run.json, else the folder name).
    pub started: String,
    /// `valid`, `invalid`, `unknown` or `not checked`.
    pub verdict: String,
    pub counts: String,
    pub has_report: bool,
    pub has_results: bool,
    pub latest: bool,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => clip(s, CELL_CHARS),
        Value::Array(a) => clip(
            &a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("+"),
            CELL_CHARS,
        ),
        other => clip(&other.to_string(), CELL_CHARS),
    }
}

fn entry(dir: &Path, segments: Vec<String>, latest: Option<&Path>) -> RunEntry {
    let run: Value = std::fs::read(dir.join("run.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    // run.json holds the verdict and the counts once the run is checked; results.json (every
    // witness, possibly large) is only looked for.
    let has_results = dir.join("results.json").is_file();
    let verdict = match run["verdict"].as_str() {
        _ if !has_results => "not checked".to_string(),
        Some(v @ ("valid" | "invalid" | "unknown")) => v.to_string(),
        _ => "unknown".to_string(),
    };
    let c = &run["stats"]["counts"];
    let counts = if c.is_object() {
        format!(
            "{} ok, {} fail, {} info",
            thousands(c["ok"].as_u64().unwrap_or(0)),
            thousands(c["fail"].as_u64().unwrap_or(0)),
            thousands(c["info"].as_u64().unwrap_or(0))
        )
    } else {
        String::new()
    };
    let started = match run["started_at"].as_str() {
        Some(s) => crate::text::stamp(&clip(s, 40)),
        None => crate::text::stamp(&segments.last().cloned().unwrap_or_default()),
    };
    let canonical = dir.canonicalize().ok();
    RunEntry {
        href: segments
            .iter()
            .map(|s| encode_segment(s))
            .collect::<Vec<_>>()
            .join("/"),
        system: text(&run["system"]),
        workload: text(&run["workload"]),
        nemesis: {
            let n = text(&run["nemesis"]);
            if n.is_empty() && run.is_object() {
                "none".into()
            } else {
                n
            }
        },
        bug: text(&run["bug"]),
        seed: text(&run["seed"]),
        started,
        verdict,
        counts,
        has_report: dir.join(crate::REPORT_FILE).is_file(),
        has_results,
        latest: canonical.is_some() && canonical.as_deref() == latest,
        segments: segments.iter().map(|s| clip(s, CELL_CHARS)).collect(),
    }
}

fn is_run(dir: &Path) -> bool {
    dir.join("run.json").is_file() || dir.join("history.jsonl").is_file()
}

/// Every run folder of `store`, newest first. Hidden entries and symbolic links (such as
/// `latest`) are not walked; the run `latest` points at is marked.
pub fn scan(store: &Path) -> Result<Vec<RunEntry>, ReportError> {
    let read = |dir: &Path| -> Result<Vec<(String, PathBuf)>, ReportError> {
        let rd = std::fs::read_dir(dir).map_err(|source| ReportError::Read {
            file: dir.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(ft) = e.file_type() else { continue };
            if name.starts_with('.') || !ft.is_dir() {
                continue;
            }
            out.push((name, e.path()));
        }
        Ok(out)
    };
    let latest = store.join("latest").canonicalize().ok();
    let mut runs = Vec::new();
    for (label, path) in read(store)? {
        if is_run(&path) {
            runs.push(entry(&path, vec![label], latest.as_deref()));
            continue;
        }
        let Ok(children) = read(&path) else { continue };
        for (stamp, child) in children {
            if is_run(&child) {
                runs.push(entry(&child, vec![label.clone(), stamp], latest.as_deref()));
            }
        }
    }
    // Newest first: the UTC stamps sort as text.
    runs.sort_by(|a, b| (b.started.as_str(), &b.segments).cmp(&(a.started.as_str(), &a.segments)));
    runs.truncate(MAX_RUNS);
    Ok(runs)
}

#[derive(Serialize)]
struct IndexPage<'a> {
    store: String,
    runs: &'a [RunEntry],
    max: usize,
    rendered_at: String,
}

/// The index page of `store`.
pub fn render_index(store: &Path) -> Result<String, ReportError> {
    let runs = scan(store)?;
    crate::render_template(
        "index.html",
        IndexPage {
            store: clip(&store.display().to_string(), CELL_CHARS),
            runs: &runs,
            max: MAX_RUNS,
            rendered_at: crate::utc_now(),
        },
        &store.join("index.html"),
    )
}
