//! `harness check`: read histories in any supported format and check them with any checker of
//! the registry (linearizability by default).

use crate::Exit;
use checkers::{ModelKind, Options, Strategy};
use history::units::{parse_duration, parse_memory_limit};
use history::walk::{triage, Found, Triage};
use history::Format;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reports::terminal::{ms, plural, print_file, printable, FileError, FileResult, Style, Summary};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Check recorded histories for linearizability, key by key (or with another checker).
///
/// Reads harness JSONL histories, Jepsen EDN histories (including jepsen.independent
/// [key value] tuples) and Porcupine's etcd logs and key-value files; the format is detected
/// from the content unless --format says otherwise. Given a directory, checks every file in it
/// (recursively, in name order) in one process. Hidden entries (.name) are ignored, symbolic
/// links to directories are not followed, and a file reached twice is checked once. Files that
/// are not histories (a README) are skipped, but a .jsonl, .edn or .log file that cannot be read
/// as a history is an error. Prints a verdict per file and per key with timings, and for every
/// anomaly a witness: the longest linearizable prefix, the operation that could not be placed,
/// and the smallest set of operations that cannot be linearized together.
///
/// Examples:
///   harness check store/latest/history.jsonl
///   harness check ../shared/conformance/porcupine/jepsen --brief
///   harness check c50-bad.txt --model string-kv --time-limit 10s --json
///   harness check store/latest/history.jsonl --checker set
///   harness check elle-history.edn --checker list-append --consistency-model serializable
///   harness check store/latest/history.jsonl --checker causal --consistency-model CM
///
/// Exit status:
///   0  every file checked is valid
///   1  an anomaly was found
///   2  bad usage; a file that could not be read, parsed or checked; or no file checked at all
///      (nothing found, or every file skipped)
///   3  some key could not be decided within the time or memory limit
///   4  the harness itself failed (for instance, it could not write its output)
/// When files differ, the first that applies wins: 1, then 2, then 3, then 0. An anomaly is
/// reported as 1 even if other files could not be read.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct CheckArgs {
    /// History files or directories of history files.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// Which checker: linearizability, set (lost, unexpected and vanished elements of
    /// grow-only sets), counter (every read between what was surely added and what may have
    /// been), list-append or rw-register (transactions: Elle's dependency cycles and the
    /// consistency models they rule out), causal (registers with unique writes: the bad
    /// patterns of CC, CCv and CM, and the four session guarantees by name), convergence or
    /// siblings (eventually consistent stores). Default: list-append or rw-register for a
    /// history of transactions (list-append when it appends), linearizability otherwise.
    /// --model and --strategy are linearizability's; --time-limit and --memory-limit bound
    /// linearizability and the causal checker (causal memory's search, its vector clocks).
    #[arg(long, value_parser = parse_checker, value_name = "NAME")]
    checker: Option<String>,
    /// The consistency model list-append and rw-register check (default strict-serializable):
    /// strict-serializable, serializable, strong-session-serializable, snapshot-isolation,
    /// repeatable-read, read-committed, read-uncommitted, and the others Elle names; causal,
    /// read-atomic and strong-session-read-committed are checked by saturation (AWDIT), as
    /// Biswas and Enea define them, session order included. The verdict lists every anomaly
    /// found and the weakest models it rules out. For the causal checker (registers, not
    /// transactions): CC (causal consistency), CCv (causal convergence, the default) or CM
    /// (causal memory); the output says which of the three hold, and one of these alone picks
    /// the causal checker. For the set and counter checkers: linearizable (the default: every
    /// read must be explained by the updates done before it) or eventual (what a store that
    /// promises no-lost-updates is held to, as in a run: stale and vanished reads are counted
    /// but allowed, only the final reads must hold every acknowledged update).
    #[arg(long, value_parser = parse_consistency_model, value_name = "MODEL")]
    consistency_model: Option<String>,
    /// rw-register: also infer each key's version order from each process's order of
    /// transactions (assumes every key is sequentially consistent; Elle's sequential-keys).
    #[arg(long)]
    sequential_keys: bool,
    /// rw-register: also infer each key's version order from real-time order (assumes every
    /// key is linearizable; Elle's linearizable-keys).
    #[arg(long)]
    linearizable_keys: bool,
    /// rw-register: do not infer that a transaction's write of a key follows the value it
    /// read of that key first (Elle's wfr-keys, on by default here).
    #[arg(long)]
    no_wfr_keys: bool,
    /// Sequential model (linearizability): register, cas-register, string-kv (alias kv) or set.
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
    /// Also print, per key, why the graph path handed the key over to the search (the JSON
    /// output always has it).
    #[arg(long, short)]
    verbose: bool,
    /// Give up on a key (verdict unknown, exit 3) that is not decided within this time; the
    /// limit is per key (e.g. 30s, 500ms, 2m). Default: no limit. Building the witness of an
    /// invalid key has its own budget of 2 s on top.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    time_limit: Option<Duration>,
    /// Memory the search may use for its memo tables (e.g. 512MiB, 2GiB), shared by the keys
    /// checked at once: each key being checked (one per thread) gets an equal share, and never
    /// less than 1 MiB, so the minimum is 1MiB. Files are checked one after another, each with
    /// the whole budget. A key that runs out of it is unknown (exit 3).
    #[arg(long, value_parser = parse_memory_limit, default_value = "1GiB", value_name = "SIZE")]
    memory_limit: usize,
    /// Decision procedure: auto (the polynomial graph path for unique-valued registers, the
    /// search otherwise) or search (always the search).
    #[arg(long, default_value = "auto", value_parser = parse_strategy)]
    strategy: Strategy,
}

fn parse_checker(s: &str) -> Result<String, String> {
    checkers::registry::find(s).map(|c| c.name().to_owned())
}

/// The modes of the set and counter checkers `--consistency-model` names.
const SET_MODES: [&str; 2] = ["linearizable", "eventual"];

/// A transactional model (list-append, rw-register), a causal one (the causal checker's CC,
/// CCv or CM, any case) or a mode of the set and counter checkers.
fn parse_consistency_model(s: &str) -> Result<String, String> {
    if let Ok(m) = checkers::causal::Model::find(s) {
        return Ok(m.name().to_owned());
    }
    if let Some(m) = SET_MODES.iter().find(|m| m.eq_ignore_ascii_case(s)) {
        return Ok((*m).to_owned());
    }
    checkers::txn::model::find(s)
        .map(str::to_owned)
        .map_err(|e| {
            format!(
                "{e}; for the causal checker: CC, CCv, CM; for set and counter: {}",
                SET_MODES.join(", ")
            )
        })
}

/// The set and counter mode `--consistency-model` named, if it named one.
fn set_mode(args: &CheckArgs) -> Option<&str> {
    args.consistency_model
        .as_deref()
        .filter(|m| SET_MODES.contains(m))
}

/// The causal model `--consistency-model` named, if it named one.
fn causal_model(args: &CheckArgs) -> Option<checkers::causal::Model> {
    args.consistency_model
        .as_deref()
        .and_then(|m| checkers::causal::Model::find(m).ok())
}

/// `--consistency-model` must be one the chosen checker checks.
fn model_fits(args: &CheckArgs) -> Result<(), String> {
    let Some(model) = args.consistency_model.as_deref() else {
        return Ok(());
    };
    let causal = causal_model(args).is_some();
    let set_mode = set_mode(args).is_some();
    match args.checker.as_deref() {
        Some("set" | "counter") if set_mode => Ok(()),
        _ if set_mode => Err(format!(
            "--consistency-model {model}: a mode of the set and counter checkers; name one \
             with --checker set or --checker counter"
        )),
        Some(c @ ("set" | "counter")) => Err(format!(
            "--consistency-model {model}: the {c} checker checks {}",
            SET_MODES.join(" or ")
        )),
        Some("causal") if !causal => Err(format!(
            "--consistency-model {model}: the causal checker checks CC, CCv or CM"
        )),
        Some(c @ ("list-append" | "rw-register")) if causal => Err(format!(
            "--consistency-model {model}: a causal model, for --checker causal; {c} checks \
             transactional models ({})",
            checkers::txn::model::names().join(", ")
        )),
        Some(c) if !matches!(c, "causal" | "list-append" | "rw-register") => Err(format!(
            "--consistency-model is for the list-append, rw-register, causal, set and counter \
             checkers, not {c}"
        )),
        _ => Ok(()),
    }
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

/// Printed lines longer than this (witness sentences quoting a huge value) are cut.
pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    if let Err(e) = model_fits(&args) {
        eprintln!("error: {e}");
        return Ok(Exit::BadInput);
    }
    let inputs = history::walk::walk(&args.paths);
    let many = inputs.len() > 1;
    let mut out = std::io::stdout().lock();
    let write_failed = |e: std::io::Error| anyhow::anyhow!("cannot write the output: {e}");
    let mut results = Vec::with_capacity(inputs.len());
    for input in inputs {
        let r = match input {
            Found::File { path, from_dir } => check_file(&path, from_dir, &args),
            Found::Skipped { path, reason } => FileResult::skipped(&path, reason),
            Found::Error(e) => FileResult::failed(&e.file.clone(), e.into()),
        };
        if !args.json {
            print_file(
                &mut out,
                &r,
                Style {
                    brief: args.brief,
                    verbose: args.verbose,
                },
                many,
            )
            .map_err(write_failed)?;
        }
        results.push(r);
    }
    let count = |v: &str| results.iter().filter(|r| r.verdict == v).count();
    let checked = count("valid") + count("invalid") + count("unknown");
    let exit = if count("invalid") > 0 {
        Exit::Anomaly
    } else if count("error") > 0 || checked == 0 {
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
    let paths = args
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let note = if results.is_empty() {
        Some(format!("no history files found in {paths}"))
    } else if checked == 0 {
        let mut why = Vec::new();
        if summary.errors > 0 {
            why.push(plural(summary.errors as u64, "error"));
        }
        if summary.skipped > 0 {
            why.push(format!("{} skipped", summary.skipped));
        }
        Some(format!(
            "no history was checked in {paths} ({})",
            why.join(", ")
        ))
    } else {
        None
    };
    if args.json {
        let mut doc = serde_json::json!({ "files": results, "summary": summary });
        if let Some(note) = &note {
            doc["note"] = note.clone().into();
        }
        let text = serde_json::to_string_pretty(&doc)?;
        writeln!(out, "{text}").map_err(write_failed)?;
    } else {
        if results.len() > 1 {
            writeln!(
                out,
                "\n{}: {} valid, {} invalid, {} unknown, {}, {} skipped. Parsing {}, checking {}.",
                plural(summary.files as u64, "file"),
                summary.valid,
                summary.invalid,
                summary.unknown,
                plural(summary.errors as u64, "error"),
                summary.skipped,
                ms(summary.parse_us),
                ms(summary.check_us)
            )
            .map_err(write_failed)?;
        }
        out.flush().map_err(write_failed)?;
        if let Some(note) = &note {
            eprintln!("harness: {}", printable(note));
        }
    }
    Ok(exit)
}

fn check_file(path: &Path, from_dir: bool, args: &CheckArgs) -> FileResult {
    let mut r = FileResult::new(path);
    let t0 = Instant::now();
    // In a directory, files that are not histories at all (a README) are skipped, not errors.
    let fail = |mut r: FileResult, e: FileError| {
        r.error = Some(e);
        r
    };
    if from_dir && args.format.is_none() {
        match triage(path) {
            Triage::History => {}
            Triage::NotHistory => return FileResult::skipped(path, "not a history"),
            Triage::Unusable(e) => return fail(r, e.into()),
        }
    }
    if let Some(streamed) = stream(path, args) {
        return match streamed {
            Ok(s) => {
                r.format = Some(Format::Jsonl.name());
                r.events = s.events;
                r.warnings = s.warnings.iter().map(|w| w.to_string()).collect();
                r.parse_us = s.read_us;
                r.check_us = s.result.elapsed_us.saturating_sub(s.read_us);
                r.verdict = s.result.verdict.name();
                r.result = Some(s.result);
                r
            }
            Err(e) => fail(r, e.into()),
        };
    }
    let loaded = match history::read_file(path, args.format) {
        Ok(l) => l,
        Err(e) => return fail(r, e.into()),
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
        Err(e) => return fail(r, e.into()),
    };
    r.parse_us = t0.elapsed().as_micros() as u64;
    let name = args.checker.as_deref().unwrap_or_else(|| {
        if causal_model(args).is_some() {
            "causal"
        } else {
            default_checker(&paired)
        }
    });
    if name == "linearizability" {
        if let Some(m) = &args.consistency_model {
            return fail(
                r,
                FileError::whole(
                    path,
                    format!(
                        "--consistency-model {m}: this history has no transactions, so it is \
                         checked for linearizability, which takes no model; for registers, \
                         --consistency-model CC, CCv or CM checks causal consistency"
                    ),
                ),
            );
        }
    }
    let checker = checkers::registry::find(name).ok();
    if let Some(checker) = checker.filter(|c| c.name() != "linearizability") {
        let t1 = Instant::now();
        let opts = options(args, ModelKind::CasRegister);
        match checker.check(&loaded.history, &paired, &opts) {
            Ok(result) => {
                r.check_us = t1.elapsed().as_micros() as u64;
                r.verdict = result.verdict.name();
                r.result = Some(result);
            }
            Err(e) => r.error = Some(e.into()),
        }
        return r;
    }
    let model = match args.model {
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
                    let what = format!(
                        "cannot guess the model from the operations ({}); pass --model {}",
                        if fs.is_empty() {
                            "none".to_owned()
                        } else {
                            fs.join(", ")
                        },
                        ModelKind::ALL.map(|m| m.name()).join("|")
                    );
                    return fail(r, FileError::whole(path, what));
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
        Err(e) => r.error = Some(e.into()),
    }
    r
}

/// The checker for a history when none is named: a history of transactions gets the
/// transactional checker its micro-ops call for, anything else linearizability.
fn default_checker(paired: &history::Paired) -> &'static str {
    txn_checker(paired.ops.iter().map(|o| (o.f.as_str(), &o.input))).unwrap_or("linearizability")
}

/// list-append or rw-register for operations that are all transactions (list-append when
/// one appends); `None` otherwise.
fn txn_checker<'a>(
    ops: impl Iterator<Item = (&'a str, &'a serde_json::Value)>,
) -> Option<&'static str> {
    let (mut any, mut appends) = (false, false);
    for (f, value) in ops {
        if f != "txn" {
            return None;
        }
        any = true;
        appends |= value.as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m.get(0).and_then(|f| f.as_str()) == Some("append"))
        });
    }
    any.then_some(if appends {
        "list-append"
    } else {
        "rw-register"
    })
}

/// Checks a JSON Lines file as it is read, when the checker can: a named one, or the
/// transactional checker the first thousand client events call for.
fn stream(
    path: &Path,
    args: &CheckArgs,
) -> Option<Result<checkers::registry::Streamed, checkers::CheckError>> {
    if path.as_os_str() == "-" || !matches!(args.format, None | Some(Format::Jsonl)) {
        return None;
    }
    if args.format.is_none() && history::detect_format(path).ok()? != Format::Jsonl {
        return None;
    }
    let name = match args.checker.as_deref() {
        Some(n) => n,
        None if causal_model(args).is_some() => return None,
        None => {
            let f = std::fs::File::open(path).ok()?;
            let head: Vec<history::Event> =
                history::jsonl::JsonlReader::new(std::io::BufReader::new(f), path)
                    .take(1000)
                    .map_while(Result::ok)
                    .map(|(e, _)| e)
                    .filter(|e| e.process != history::Process::Nemesis)
                    .collect();
            txn_checker(head.iter().map(|e| (e.f.as_str(), &e.value)))?
        }
    };
    checkers::registry::find(name)
        .ok()?
        .check_jsonl(path, &options(args, ModelKind::CasRegister))
}

/// The options every checker but linearizability takes from the command line.
fn options(args: &CheckArgs, model: ModelKind) -> Options {
    let mut opts = Options::new(model);
    opts.time_limit = args.time_limit;
    opts.memory_limit_bytes = args.memory_limit;
    opts.causal = causal_model(args);
    opts.eventual = set_mode(args) == Some("eventual");
    opts.txn = checkers::txn::TxnOptions {
        model: args
            .consistency_model
            .clone()
            .filter(|_| opts.causal.is_none() && set_mode(args).is_none()),
        sequential_keys: args.sequential_keys,
        linearizable_keys: args.linearizable_keys,
        wfr_keys: !args.no_wfr_keys,
        ..Default::default()
    };
    opts
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
            label: printable(&path.display().to_string()).into_owned(),
            enabled: wanted && std::io::stderr().is_terminal(),
        }
    }

    fn callback(&self) -> checkers::lin::Progress {
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
