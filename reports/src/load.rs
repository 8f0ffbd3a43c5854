//! Reading a run folder (shared/DESIGN.md section 4): `run.json` and `history.jsonl` must be
//! there; `results.json` may not be (a run killed before its check), and then the report says
//! the run was not checked. A history cut off mid-line (a run killed while writing) is read up
//! to its last whole line, as `harness check` does.

use crate::ReportError;
use history::jsonl::JsonlReader;
use history::Event;
use serde_json::Value;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// What `results.json` held.
#[derive(Debug, Clone)]
pub enum Results {
    /// No `results.json`: the run was not checked (killed, or still running).
    Missing,
    /// There is one, but it cannot be read (cut short, not JSON): shown, not fatal.
    Unreadable(String),
    /// Every checker's result (shared/DESIGN.md section 7).
    Loaded(Vec<checkers::CheckerResult>),
}

/// A run folder, read.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// `run.json`, an object.
    pub run: Value,
    /// The history's events, in file order; client events without their `value` and `error`
    /// (the report does not show them), nemesis events whole.
    pub events: Vec<Event>,
    /// For each event, the line of `history.jsonl` it came from.
    pub lines: Vec<usize>,
    /// Things the reader noticed (a truncated last line), as sentences.
    pub warnings: Vec<String>,
    pub results: Results,
}

/// Reads `dir`'s run.json, history.jsonl and (if present) results.json.
pub fn load(dir: &Path) -> Result<RunFolder, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::NotARunFolder(dir.to_path_buf()));
    }
    let run_path = dir.join("run.json");
    if !run_path.exists() && !dir.join("history.jsonl").exists() {
        return Err(ReportError::NoRunJson(dir.to_path_buf()));
    }
    let run = read_json(&run_path)?;
    if !run.is_object() {
        return Err(ReportError::Malformed {
            file: run_path,
            message: "expected a JSON object".into(),
        });
    }
    let history_path = dir.join("history.jsonl");
    let file = File::open(&history_path).map_err(|source| ReportError::Read {
        file: history_path.clone(),
        source,
    })?;
    let mut reader = JsonlReader::new(BufReader::with_capacity(1 << 20, file), &history_path);
    let mut events = Vec::new();
    let mut lines = Vec::new();
    for item in &mut reader {
        let (mut event, line) = item?;
        if event.process != history::Process::Nemesis {
            // The page draws client operations by time and outcome; their values (a read of a
            // whole set can be megabytes) are in results.json's witnesses where they matter.
            // Dropping them here keeps memory to one line at a time.
            event.value = Value::Null;
            event.error = None;
        }
        events.push(event);
        lines.push(line);
    }
    let warnings: Vec<String> = reader
        .take_warnings()
        .iter()
        .map(|w| {
            if w.line > 0 {
                format!("history.jsonl, line {}: {}", w.line, w.message)
            } else {
                format!("history.jsonl: {}", w.message)
            }
        })
        .collect();
    let results_path = dir.join("results.json");
    let mut warnings = warnings;
    let results = match std::fs::read(&results_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Results::Missing,
        Err(e) => Results::Unreadable(format!("results.json cannot be read: {e}")),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Array(entries)) => {
                let mut results = Vec::new();
                for (i, entry) in entries.into_iter().enumerate() {
                    match serde_json::from_value::<checkers::CheckerResult>(entry) {
                        Ok(r) => results.push(r),
                        // One bad entry does not hide the others.
                        Err(e) => warnings.push(format!(
                            "results.json, checker result #{}: cannot be read ({e}); not shown",
                            i + 1
                        )),
                    }
                }
                Results::Loaded(results)
            }
            Ok(Value::Object(_)) => Results::Unreadable(
                "results.json is in the form of an older harness (an object, not the list of \
                 checker results); `harness check history.jsonl` checks the history again"
                    .into(),
            ),
            Ok(_) => Results::Unreadable("results.json is not a list of checker results".into()),
            Err(e) => Results::Unreadable(format!(
                "results.json cannot be read: line {}, column {}: {e}",
                e.line(),
                e.column()
            )),
        },
    };
    Ok(RunFolder {
        dir: dir.to_path_buf(),
        run,
        events,
        lines,
        warnings,
        results,
    })
}

/// Reads a JSON file, with errors that name it (and the line, for bad JSON).
pub fn read_json(path: &Path) -> Result<Value, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Malformed {
        file: path.to_path_buf(),
        message: format!("line {}, column {}: {e}", e.line(), e.column()),
    })
}
