//! `harness check`: read histories in any supported format and check them for linearizability.

use crate::units::{parse_bytes, parse_duration};
use crate::Exit;
use checkers::linear::{KeyResult, Method};
use checkers::{ModelKind, Options, Report, Strategy, Verdict};
use history::{Format, HistoryError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Check recorded histories for linearizability, key by key.
///
/// Reads harness JSONL histories, Jepsen EDN histories (including jepsen.independent
/// [key value] tuples) and Porcupine's etcd logs and key-value files; the format is detected
/// from the content unless --format says otherwise. Given a directory, checks every file in it
/// (recursively) in one process. Prints a verdict per file and per key with timings, and for
/// every anomaly a witness: the longest linearizable prefix, the operation that could not be
/// placed, and the smallest set of operations that cannot be linearized together.
///
/// Examples:
///   harness check store/latest/history.jsonl
///   harness check ../shared/conformance/porcupine/jepsen --brief
///   harness check c50-bad.txt --model string-kv --time-limit 10s --json
///
/// Exit status: 0 all valid; 1 an anomaly was found; 2 unreadable input or bad usage;
/// 3 some key could not be decided within the time or memory limit.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct CheckArgs {
    /// History files or directories of history files.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// Sequential model: register, cas-register, string-kv (alias kv) or set.
    /// Default: cas-register for Porcupine etcd logs, string-kv for Porcupine kv files,
    /// otherwise guessed from the operations in the history.
    #[arg(long, value_parser = parse_model)]
    model: Option<ModelKind>,
    /// Input format: jsonl, edn, porcupine-log or porcupine-kv. Default: detected from content.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Print the results as one JSON document (for scripts) instead of text.
    #[arg(long)]
    json: bool,
    /// One line per file and per key, without witnesses.
    #[arg(long)]
    brief: bool,
    /// Give up on a key (verdict unknown, exit 3) that is not decided within this time. Building
    /// the witness of an invalid key has its own budget of 2 s on top.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    time_limit: Option<Duration>,
    /// Memory the search may use for its memo tables, per file (e.g. 512MiB, 2GiB).
    #[arg(long, value_parser = parse_bytes, default_value = "1GiB", value_name = "SIZE")]
    memory_limit: usize,
    /// Decision procedure: auto (the polynomial graph path for unique-valued registers, the
    /// search otherwise) or search (always the search).
    #[arg(long, default_value = "auto", value_parser = parse_strategy)]
    strategy: Strategy,
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    s.parse()
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: <Format as std::str::FromStr>::Err| e.to_string())
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    match s {
        "auto" => Ok(Strategy::Auto),
        "search" => Ok(Strategy::Search),
        other => Err(format!("unknown strategy `{other}`; use auto or search")),
    }
}

#[derive(Serialize)]
struct FileResult {
    file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<ModelKind>,
    /// valid, invalid, unknown, error or skipped.
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    warnings: Vec<String>,
    events: usize,
    parse_us: u64,
    check_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Report>,
}

#[derive(Serialize)]
struct Summary {
    files: usize,
    valid: usize,
    invalid: usize,
    unknown: usize,
    errors: usize,
    skipped: usize,
    parse_us: u64,
    check_us: u64,
    exit: u8,
}

pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    let mut inputs: Vec<(PathBuf, bool)> = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            let mut found = Vec::new();
            collect_dir(p, &mut found)?;
            found.sort();
            inputs.extend(found.into_iter().map(|f| (f, true)));
        } else {
            inputs.push((p.clone(), false));
        }
    }
    let mut results = Vec::with_capacity(inputs.len());
    for (path, from_dir) in &inputs {
        let r = check_file(path, *from_dir, &args);
        if !args.json {
            print_file(&r, args.brief, inputs.len() > 1);
        }
        results.push(r);
    }
    let count = |v: &str| results.iter().filter(|r| r.verdict == v).count();
    let exit = if count("invalid") > 0 {
        Exit::Anomaly
    } else if count("error") > 0 || (results.is_empty()) {
        Exit::BadInput
    } else if count("unknown") > 0 {
        Exit::Unknown
    } else {
        Exit::Valid
    };
    let summary = Summary {
        files: results.len(),
        valid: count("valid"),
        invalid: count("invalid"),
        unknown: count("unknown"),
        errors: count("error"),
        skipped: count("skipped"),
        parse_us: results.iter().map(|r| r.parse_us).sum(),
        check_us: results.iter().map(|r| r.check_us).sum(),
        exit: exit as u8,
    };
    if args.json {
        let doc = serde_json::json!({ "files": results, "summary": summary });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        if results.is_empty() {
            eprintln!("harness: no history files found in {:?}", args.paths);
        }
        if results.len() > 1 {
            println!(
                "\n{} files: {} valid, {} invalid, {} unknown, {} unreadable, {} skipped. Parsing {}, checking {}.",
                summary.files,
                summary.valid,
                summary.invalid,
                summary.unknown,
                summary.errors,
                summary.skipped,
                ms(summary.parse_us),
                ms(summary.check_us)
            );
        }
    }
    Ok(exit)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn check_file(path: &Path, from_dir: bool, args: &CheckArgs) -> FileResult {
    let mut r = FileResult {
        file: path.to_path_buf(),
        format: None,
        model: None,
        verdict: "error",
        error: None,
        warnings: Vec::new(),
        events: 0,
        parse_us: 0,
        check_us: 0,
        report: None,
    };
    let t0 = Instant::now();
    let fail = |mut r: FileResult, e: HistoryError| {
        r.error = Some(e.to_string());
        r
    };
    // In a directory, files that are not histories at all (a README) are skipped, not errors.
    if from_dir && args.format.is_none() {
        if let Err(e) = history::detect_format(path) {
            if !e.message.contains("empty") {
                r.verdict = "skipped";
                r.error = Some(e.to_string());
                return r;
            }
        }
    }
    let loaded = match history::read_file(path, args.format) {
        Ok(l) => l,
        Err(e) => return fail(r, e),
    };
    r.format = Some(loaded.format.name());
    r.events = loaded.history.events.len();
    r.warnings = loaded
        .history
        .warnings
        .iter()
        .map(|w| w.to_string())
        .collect();
    let paired = match history::pair(&loaded.history) {
        Ok(p) => p,
        Err(e) => return fail(r, e),
    };
    r.parse_us = t0.elapsed().as_micros() as u64;
    let model =
        match args.model {
            Some(m) => m,
            None => match loaded.format {
                Format::PorcupineLog => ModelKind::CasRegister,
                Format::PorcupineKv => ModelKind::StringKv,
                _ => match ModelKind::infer(paired.ops.iter().map(|o| o.f.as_str())) {
                    Some(m) => m,
                    None => {
                        let mut fs: Vec<&str> = paired.ops.iter().map(|o| o.f.as_str()).collect();
                        fs.sort_unstable();
                        fs.dedup();
                        r.error =
                            Some(format!(
                        "{}: cannot guess the model from the operations ({}); pass --model {}",
                        path.display(),
                        if fs.is_empty() { "none".to_owned() } else { fs.join(", ") },
                        ModelKind::ALL.map(|m| m.name()).join("|")
                    ));
                        return r;
                    }
                },
            },
        };
    r.model = Some(model);
    let progress = KeyProgress::new(path, !args.json);
    let opts = Options {
        time_limit: args.time_limit,
        memory_limit_bytes: args.memory_limit,
        strategy: args.strategy,
        progress: Some(progress.callback()),
        ..Options::new(model)
    };
    let t1 = Instant::now();
    let checked = checkers::check(&loaded.history, &paired, &opts);
    progress.clear();
    match checked {
        Ok(report) => {
            r.check_us = t1.elapsed().as_micros() as u64;
            r.verdict = report.verdict;
            r.report = Some(report);
        }
        Err(e) => r.error = Some(e.to_string()),
    }
    r
}

/// A progress bar over the keys of one file, on stderr, shown only when stderr is a terminal
/// and the check has already taken a moment (short checks print nothing extra).
struct KeyProgress {
    bar: Arc<OnceLock<ProgressBar>>,
    started: Instant,
    label: String,
    enabled: bool,
}

impl KeyProgress {
    fn new(path: &Path, wanted: bool) -> Self {
        KeyProgress {
            bar: Arc::new(OnceLock::new()),
            started: Instant::now(),
            label: path.display().to_string(),
            enabled: wanted && std::io::stderr().is_terminal(),
        }
    }

    fn callback(&self) -> checkers::linear::Progress {
        let (bar, started, label, enabled) = (
            self.bar.clone(),
            self.started,
            self.label.clone(),
            self.enabled,
        );
        Arc::new(move |done, total| {
            if !enabled || (bar.get().is_none() && started.elapsed() < Duration::from_millis(300)) {
                return;
            }
            let b = bar.get_or_init(|| {
                let b =
                    ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                b.set_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} keys, {elapsed}")
                        .expect("a valid template")
                        .progress_chars("=> "),
                );
                b.set_message(label.clone());
                b
            });
            b.set_position(done as u64);
        })
    }

    fn clear(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

fn ms(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} ms", us as f64 / 1000.0)
    }
}

fn print_file(r: &FileResult, brief: bool, many: bool) {
    let name = r.file.display();
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    let Some(report) = &r.report else {
        let what = if r.verdict == "skipped" {
            "SKIPPED (not a history)"
        } else {
            "ERROR"
        };
        println!("{name}: {what}");
        if let Some(e) = &r.error {
            println!("  {e}");
        }
        return;
    };
    let keyed = report.keys.iter().any(|k| k.key.is_some());
    let ops: usize = report.keys.iter().map(|k| k.ops).sum();
    println!(
        "{name}: {}  ({}, {}, {} events, {} ops{}, parse {}, check {})",
        r.verdict.to_uppercase(),
        report.model,
        r.format.unwrap_or("?"),
        r.events,
        ops,
        if keyed {
            format!(
                ", {} keys: {} valid, {} invalid, {} unknown",
                report.keys.len(),
                report.count("valid"),
                report.count("invalid"),
                report.count("unknown")
            )
        } else {
            String::new()
        },
        ms(r.parse_us),
        ms(r.check_us),
    );
    // Keys sorted bad first.
    let mut keys: Vec<&KeyResult> = report.keys.iter().collect();
    keys.sort_by_key(|k| match k.verdict {
        Verdict::Invalid { .. } => 0,
        Verdict::Unknown { .. } => 1,
        Verdict::Valid => 2,
    });
    for k in keys {
        let show_line = keyed || !many || !brief;
        if show_line {
            println!(
                "  {}: {}  ({} ops, {}, {}{}{})",
                k.key
                    .as_deref()
                    .map_or("(no key)".to_owned(), |s| format!("key {s}")),
                k.verdict.name(),
                k.ops,
                match k.method {
                    Method::Trivial => "nothing to check",
                    Method::Graph => "graph path",
                    Method::Search => "search",
                },
                ms(k.check_us),
                if k.witness_us > 0 {
                    format!(" + witness {}", ms(k.witness_us))
                } else {
                    String::new()
                },
                if k.configurations > 0 {
                    format!(", {} configurations", k.configurations)
                } else {
                    String::new()
                }
            );
        }
        if brief {
            continue;
        }
        if let Some(note) = &k.note {
            println!("    note: {note}");
        }
        match &k.verdict {
            Verdict::Invalid { witness } => {
                for s in &witness.explanation {
                    println!("    {s}");
                }
            }
            Verdict::Unknown { reason } => println!("    {reason}"),
            Verdict::Valid => {}
        }
    }
}
