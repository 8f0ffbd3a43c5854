//! `harness check`'s results as a terminal shows them, and as `--json` writes them: a verdict
//! per file and per key with timings and, for every anomaly, the checker's explanation.

use checkers::lin::{KeyResult, Method};
use checkers::{CheckError, ModelKind, Report, Verdict};
use history::HistoryError;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How much `print_file` says.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// One line per file and per key, without witnesses.
    pub brief: bool,
    /// Also why the graph path handed a key over to the search.
    pub verbose: bool,
}

pub const MAX_LINE_CHARS: usize = 400;

#[derive(Serialize)]
pub struct FileResult {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelKind>,
    /// valid, invalid, unknown, error or skipped.
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FileError>,
    /// Why a skipped file was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub warnings: Vec<String>,
    pub events: usize,
    pub parse_us: u64,
    pub check_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// The result of a checker other than linearizability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<checkers::CheckerResult>,
}

impl FileResult {
    pub fn new(path: &Path) -> Self {
        FileResult {
            file: path.to_path_buf(),
            format: None,
            model: None,
            verdict: "error",
            error: None,
            skipped: None,
            warnings: Vec::new(),
            events: 0,
            parse_us: 0,
            check_us: 0,
            report: None,
            result: None,
        }
    }

    pub fn skipped(path: &Path, reason: impl Into<String>) -> Self {
        FileResult {
            verdict: "skipped",
            skipped: Some(reason.into()),
            ..FileResult::new(path)
        }
    }

    pub fn failed(path: &Path, error: FileError) -> Self {
        FileResult {
            error: Some(error),
            ..FileResult::new(path)
        }
    }
}

/// Why a file could not be checked: a sentence for people (`message`, as printed) and, where
/// known, the 1-based line and the field it concerns.
#[derive(Serialize, Debug)]
pub struct FileError {
    pub message: String,
    pub line: Option<usize>,
    pub field: Option<String>,
}

impl FileError {
    /// An error about `path` as a whole.
    pub fn whole(path: &Path, what: impl std::fmt::Display) -> Self {
        FileError {
            message: format!("{}: {what}", path.display()),
            line: None,
            field: None,
        }
    }
}

impl From<HistoryError> for FileError {
    fn from(e: HistoryError) -> Self {
        let line = (e.line > 0).then_some(e.line);
        let message = match (line, &e.field) {
            (None, None) => format!("{}: {}", e.file.display(), e.message),
            _ => e.to_string(),
        };
        FileError {
            message,
            line,
            field: e.field,
        }
    }
}

impl From<CheckError> for FileError {
    fn from(e: CheckError) -> Self {
        FileError {
            message: e.to_string(),
            line: (e.line > 0).then_some(e.line),
            field: Some(e.field),
        }
    }
}

#[derive(Serialize)]
pub struct Summary {
    pub files: usize,
    pub valid: usize,
    pub invalid: usize,
    pub unknown: usize,
    pub errors: usize,
    pub skipped: usize,
    pub parse_us: u64,
    pub check_us: u64,
    pub exit: u8,
}

pub fn ms(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} ms", us as f64 / 1000.0)
    }
}

/// "1 key", "2 keys".
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `s` with control characters (newlines, terminal escapes) written as escapes, so that text
/// taken from a history cannot start a line of its own or restyle the terminal.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// `line` cut to [`MAX_LINE_CHARS`] characters, saying how much was left out.
pub fn cut(line: &str) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        None => line.into(),
        Some((at, _)) => format!(
            "{}… ({} more characters; see --json)",
            &line[..at],
            line[at..].chars().count()
        )
        .into(),
    }
}

/// Writes `indent` and `text` (made printable) as one line, cut if very long.
pub fn put(out: &mut impl Write, indent: &str, text: &str) -> std::io::Result<()> {
    let line = format!("{indent}{}", printable(text));
    writeln!(out, "{}", cut(&line))
}

/// How a key is named in the text output: plain when it is made of [A-Za-z0-9_.-], quoted
/// (with escapes) otherwise, so that no key can pass for something else.
pub fn key_label(key: Option<&str>) -> String {
    match key {
        None => "(no key)".to_owned(),
        Some(k)
            if !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
        {
            format!("key {k}")
        }
        Some(k) => format!("key {k:?}"),
    }
}

pub fn print_file(
    out: &mut impl Write,
    r: &FileResult,
    style: Style,
    many: bool,
) -> std::io::Result<()> {
    let name = r.file.display().to_string();
    let name = printable(&name);
    let mut stderr = std::io::stderr().lock();
    for w in &r.warnings {
        // A lost warning is no reason to stop.
        let _ = put(&mut stderr, "warning: ", w);
    }
    drop(stderr);
    if let Some(reason) = &r.skipped {
        return put(out, "", &format!("{name}: skipped ({reason})"));
    }
    if let Some(result) = &r.result {
        return print_result(out, r, result, &name, style);
    }
    let Some(report) = &r.report else {
        writeln!(out, "{}: ERROR", cut(&name))?;
        if let Some(e) = &r.error {
            put(out, "  ", &e.message)?;
        }
        return Ok(());
    };
    let keyed = report.keys.iter().any(|k| k.key.is_some());
    let ops: usize = report.keys.iter().map(|k| k.ops).sum();
    let header = format!(
        "{name}: {}  ({}, {}, {}, {}{}, parse {}, check {})",
        r.verdict.to_uppercase(),
        report.model,
        r.format.unwrap_or("?"),
        plural(r.events as u64, "event"),
        plural(ops as u64, "op"),
        if keyed {
            format!(
                ", {}: {} valid, {} invalid, {} unknown",
                plural(report.keys.len() as u64, "key"),
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
    writeln!(out, "{}", cut(&header))?;
    // Keys sorted bad first.
    let mut keys: Vec<&KeyResult> = report.keys.iter().collect();
    keys.sort_by_key(|k| match k.verdict {
        Verdict::Invalid { .. } => 0,
        Verdict::Unknown { .. } => 1,
        Verdict::Valid => 2,
    });
    for k in keys {
        let show_line = keyed || !many || !style.brief;
        if show_line {
            let line = format!(
                "  {}: {}  ({}, {}, {}{}{})",
                key_label(k.key.as_deref()),
                k.verdict.name(),
                plural(k.ops as u64, "op"),
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
                    format!(", {}", plural(k.configurations, "configuration"))
                } else {
                    String::new()
                }
            );
            writeln!(out, "{}", cut(&line))?;
        }
        if style.brief {
            continue;
        }
        if let Some(note) = k.note.as_deref().filter(|_| style.verbose) {
            put(out, "    note: ", note)?;
        }
        match &k.verdict {
            Verdict::Invalid { witness } => {
                for s in &witness.explanation {
                    put(out, "    ", s)?;
                }
            }
            Verdict::Unknown { reason } => put(out, "    ", reason)?,
            Verdict::Valid => {}
        }
    }
    Ok(())
}

/// A checker other than linearizability: its verdict, summary and anomalies.
pub fn print_result(
    out: &mut impl Write,
    r: &FileResult,
    result: &checkers::CheckerResult,
    name: &str,
    style: Style,
) -> std::io::Result<()> {
    let header = format!(
        "{name}: {}  ({}, {}, {}, {}, parse {}, check {})",
        r.verdict.to_uppercase(),
        result.checker,
        r.format.unwrap_or("?"),
        plural(r.events as u64, "event"),
        match result.anomalies.len() {
            1 => "1 anomaly".to_owned(),
            n => format!("{n} anomalies"),
        },
        ms(r.parse_us),
        ms(r.check_us),
    );
    writeln!(out, "{}", cut(&header))?;
    for s in &result.summary {
        put(out, "  ", s)?;
    }
    if style.brief {
        return Ok(());
    }
    for a in &result.anomalies {
        if a.title.starts_with(&a.kind) {
            put(out, "  ", &a.title)?;
        } else {
            put(out, "  ", &format!("{} ({})", a.title, a.kind))?;
        }
        for s in &a.sentences {
            put(out, "    ", s)?;
        }
    }
    Ok(())
}
