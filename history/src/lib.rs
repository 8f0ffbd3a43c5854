//! The shared vocabulary of harness: one history event per line, with Jepsen's semantics.
//!
//! A history (shared/DESIGN.md section 2) is the ordered list of what clients and the nemesis
//! did: every client operation is an `invoke` followed by exactly one completion, `ok`
//! (it happened), `fail` (it certainly did not happen) or `info` (unknown: it may take effect at
//! any time after its invocation, or never). This crate holds those types, the streaming JSON
//! Lines reader and writer, the validator that pairs invocations with completions, and importers
//! for Jepsen EDN histories and Porcupine's log formats; the typed nemesis event
//! ([`nemesis`]); and the small utilities every crate shares: the seeded generator ([`rng`])
//! and UTC dates ([`time`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub mod detect;
pub mod edn;
pub mod jsonl;
pub mod nemesis;
pub mod pair;
pub mod porcupine;
pub mod rng;
pub mod time;
pub mod txn;
pub mod units;
pub mod walk;

pub use detect::{detect_format, read_file, read_from, Format, Loaded, STDIN_NAME};
pub use pair::{pair, Op, Paired, Pairing, Step};

/// The UTF-8 byte order mark some editors put at the start of a text file. Every reader (and
/// format detection) drops it from the start of the input.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Drops a leading byte order mark from the first line of an input.
pub(crate) fn strip_bom(first_line: &mut Vec<u8>) {
    if first_line.starts_with(BOM) {
        first_line.drain(..BOM.len());
    }
}

/// A client process id, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.as_u64().map(Process::Client).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "process must be a non-negative integer or \"nemesis\", got {n}"
                ))
            }),
            serde_json::Value::String(s) if s == "nemesis" => Ok(Process::Nemesis),
            other => Err(serde::de::Error::custom(format!(
                "process must be a non-negative integer or \"nemesis\", got {other}"
            ))),
        }
    }
}

/// The four kinds of history event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        })
    }
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub index: u64,
    /// Nanoseconds since the run began, on the harness's monotonic clock.
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// On an invocation: the read asked for the node's own replica, without coordination
    /// (the final per-node convergence reads). Written only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub local: bool,
    /// On an `ok` read: `value` is the list of concurrent versions the store kept (siblings),
    /// not a single value. Written only when true.
    #[serde(default, skip_serializing_if = "is_false")]
    pub siblings: bool,
    /// The system's opaque session context (shared/DESIGN.md section 3): on an invocation, the
    /// one the client sent; on an `ok` completion, the one the system returned. Contexts are per
    /// key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A history error always names the file, the line (1-based) and, where there is one, the field.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("{}:{line}{}: {message}", file.display(), field.as_ref().map(|f| format!(": field `{f}`")).unwrap_or_default())]
pub struct HistoryError {
    pub file: PathBuf,
    /// 1-based line number; 0 when the error concerns the whole file.
    pub line: usize,
    pub field: Option<String>,
    pub message: String,
}

impl HistoryError {
    pub fn new(file: &Path, line: usize, field: Option<&str>, message: impl Into<String>) -> Self {
        HistoryError {
            file: file.to_path_buf(),
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Something worth telling the user that does not stop the check (a truncated last line).
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// A whole history in memory: its events in file order, plus the warnings met while reading.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The file the history was read from (for messages).
    pub file: PathBuf,
    pub events: Vec<Event>,
    /// For each event, the 1-based line of the file it came from.
    pub lines: Vec<usize>,
    pub warnings: Vec<Warning>,
}

impl History {
    /// An empty history read from `file`.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        History {
            file: file.into(),
            ..History::default()
        }
    }

    /// Appends an event read from line `line`.
    pub fn push(&mut self, event: Event, line: usize) {
        self.events.push(event);
        self.lines.push(line);
    }
}
