//! The one shape every checker's result takes (shared/DESIGN.md section 7): a verdict, whether
//! the system promised the property, a short summary, and anomalies a person can follow, each
//! naming the history indices of its operations, the cycle of edges when there is one, and
//! the time span it covers. `results.json` is a list of these, serialised from the types; the
//! report renders any anomaly from these fields alone, and a checker's own `detail` may add
//! extra views.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A checker's overall verdict.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Judgement {
    /// Every check passed.
    #[default]
    Valid,
    /// The checker could not decide within its budget (or had nothing to decide on).
    Unknown,
    /// An anomaly was found.
    Invalid,
}

impl Judgement {
    pub fn name(self) -> &'static str {
        match self {
            Judgement::Valid => "valid",
            Judgement::Unknown => "unknown",
            Judgement::Invalid => "invalid",
        }
    }

    /// Invalid over unknown over valid: what several verdicts amount to together.
    pub fn worst(verdicts: impl IntoIterator<Item = Judgement>) -> Judgement {
        verdicts.into_iter().max().unwrap_or(Judgement::Valid)
    }
}

impl std::fmt::Display for Judgement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One checker's verdict and witnesses.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckerResult {
    /// The checker's registry name (`linearizability`, `set`, `counter`, ...).
    pub checker: String,
    pub verdict: Judgement,
    /// Whether the system promised this checker's property. An informational result (not
    /// promised) is shown but never fails the run.
    pub promised: bool,
    /// A few sentences for a terminal or the report's verdict section.
    pub summary: Vec<String>,
    pub anomalies: Vec<Anomaly>,
    /// How long the check took.
    #[serde(default)]
    pub elapsed_us: u64,
    /// Checker-specific data for the report's extra views (per-key tables, witnesses).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// Something that broke the checker's rule, in terms a person can follow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// What kind of anomaly, in the checker's own terms (`lost`, `linearizability`, `G-single`).
    pub kind: String,
    pub key: Option<String>,
    /// One line.
    pub title: String,
    /// The explanation, one sentence per line (indented lines, "  - ...", are list items).
    pub sentences: Vec<String>,
    /// History indices of the invocations of the operations involved, in the order the
    /// explanation uses them.
    pub ops: Vec<u64>,
    /// For anomalies that are cycles of dependencies: their edges, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<Edge>,
    /// The time span covered, ns since the run began: `[first invocation, last completion]`.
    pub span_ns: Option<[u64; 2]>,
}

/// One edge of a cycle: `from` must come before `to`, `because` says why ("T2 read T1's append
/// of 3 to x"). `from` and `to` are history indices of the operations' invocations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: u64,
    pub to: u64,
    pub because: String,
}

/// Widens `span` to cover `[from, to]`.
pub fn widen(span: &mut Option<[u64; 2]>, from: u64, to: u64) {
    let to = to.max(from);
    *span = Some(match *span {
        None => [from, to],
        Some([a, b]) => [a.min(from), b.max(to)],
    });
}

/// Orders keys as a person would: "k2" before "k10", keyless operations first.
pub(crate) fn natural_key(k: &Option<String>) -> (bool, String, u64, String) {
    match k {
        None => (false, String::new(), 0, String::new()),
        Some(s) => {
            let digits = s.trim_start_matches(|c: char| !c.is_ascii_digit());
            let prefix = &s[..s.len() - digits.len()];
            match digits.parse::<u64>() {
                Ok(n) => (true, prefix.to_owned(), n, s.clone()),
                Err(_) => (true, s.clone(), 0, s.clone()),
            }
        }
    }
}

/// Nanoseconds as seconds, for sentences.
pub(crate) fn secs(ns: u64) -> String {
    format!("{:.2} s", ns as f64 / 1e9)
}

/// The line of `history`'s file that holds the event at position `pos`.
pub(crate) fn line(history: &history::History, pos: usize) -> usize {
    history.lines.get(pos).copied().unwrap_or(pos + 1)
}

/// A value as a sentence shows it: its JSON, cut at 60 characters.
pub(crate) fn brief(v: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = v.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}...")
    }
}
