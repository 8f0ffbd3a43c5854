//! The page's content, built from a run folder: what the template shows, already in words
//! and drawings. Verdicts and witnesses come from `results.json` as the checkers wrote them
//! (shared/DESIGN.md section 7): this module renders them and never re-derives one. What it
//! adds is context a person needs: when things happened and which faults were active.

use crate::draw::{self, Bar, ElementRow, Flag, Role};
use crate::faults::{self, Faults};
use crate::load::{Results, RunFolder};
use crate::ops::{self, Ops, Outcome};
use crate::plots;
use crate::series;
use crate::style;
use crate::text::{clip, duration, plural, secs, stamp, thousands, CELL_CHARS, SENTENCE_CHARS};
use checkers::linear::{KeyResult, Verdict};
use checkers::set::{ElementAnomaly, SetKeyResult};
use checkers::witness::{describe_view, short_view, LinWitness, OpView};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// Anomalies drawn in full; the rest are listed with their first sentence.
pub const MAX_ANOMALIES: usize = 50;
/// Rows of the per-key table.
pub const MAX_KEY_ROWS: usize = 2_000;
/// Rows of the fault table.
pub const MAX_FAULT_ROWS: usize = 300;
/// Operations drawn in one witness drawing.
pub const MAX_BARS: usize = 60;
/// Elements drawn, and listed, per set anomaly.
pub const MAX_ELEMENTS_DRAWN: usize = 40;
pub const MAX_ELEMENT_ROWS: usize = 200;
/// Sentences of a checker's summary shown in the verdict section.
pub const MAX_SUMMARY: usize = 12;
/// Operations of the longest linearizable prefix listed (its end).
pub const PREFIX_TAIL: usize = 8;

/// Characters that must be encoded in one path segment of a link.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'\\')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\'');

/// One path segment, encoded for an `href`.
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

#[derive(Serialize, Debug, Default)]
pub struct Page {
    pub title: String,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: &'static str,
    /// The verdict as the banner says it: VALID, INVALID, UNKNOWN or NOT CHECKED.
    pub verdict_word: &'static str,
    pub headline: String,
    pub rendered_at: String,
    pub version: &'static str,
    pub run: Vec<(String, String)>,
    pub command: Option<String>,
    pub notices: Vec<String>,
    pub counts: Counts,
    pub checkers: Vec<CheckerView>,
    pub links: Vec<LinkView>,
    pub timeline: String,
    pub fault_legend: Vec<(String, String)>,
    pub faults: Vec<FaultRow>,
    pub faults_total: usize,
    pub charts: Vec<ChartPair>,
    pub bucket: String,
    pub lumped: Option<String>,
    pub keys: Vec<KeyRow>,
    pub keys_total: usize,
    pub keys_checker: String,
    /// Whether the table has the linearizability columns (method, time).
    pub keys_have_method: bool,
    pub anomalies: Vec<AnomalyView>,
    /// Every anomaly in one line each, for the verdict section.
    pub anomaly_index: Vec<AnomalyLine>,
    /// Anomalies beyond [`MAX_ANOMALIES`], one line each.
    pub more_anomalies: Vec<String>,
    pub anomalies_total: usize,
    /// Everything that was summarised rather than drawn op by op.
    pub summarised: Vec<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct AnomalyLine {
    pub id: String,
    pub label: String,
    pub title: String,
    pub when: String,
    pub faults: String,
}

#[derive(Serialize, Debug, Default)]
pub struct Counts {
    pub ok: String,
    pub fail: String,
    pub info: String,
    pub open: usize,
    pub total: String,
    pub unmatched: usize,
    pub nemesis: usize,
}

#[derive(Serialize, Debug)]
pub struct CheckerView {
    pub name: String,
    pub verdict: String,
    pub summary: Vec<Sentence>,
    pub more: usize,
    pub keys: String,
}

#[derive(Serialize, Debug, Clone)]
pub struct Sentence {
    pub text: String,
    pub indent: usize,
}

#[derive(Serialize, Debug)]
pub struct LinkView {
    pub href: String,
    pub label: String,
    pub exists: bool,
}

#[derive(Serialize, Debug)]
pub struct FaultRow {
    pub n: usize,
    pub kind: String,
    pub color: String,
    pub start: String,
    pub stop: String,
    pub length: String,
    pub what: String,
    pub line: usize,
}

#[derive(Serialize, Debug)]
pub struct ChartView {
    pub svg: Option<String>,
    pub note: String,
}

#[derive(Serialize, Debug)]
pub struct ChartPair {
    pub outcome: &'static str,
    pub total: String,
    pub throughput: ChartView,
    pub latency: ChartView,
}

/// A key's row before the anomalies are numbered (`anomaly`: its index in found order).
#[derive(Default)]
struct KeyRowDraft {
    key: String,
    verdict: String,
    ops: String,
    method: String,
    time: String,
    anomaly: Option<usize>,
    note: String,
}

#[derive(Serialize, Debug)]
pub struct KeyRow {
    pub key: String,
    pub verdict: String,
    pub ops: String,
    pub method: String,
    pub time: String,
    /// The id of its (first) anomaly's section.
    pub anomaly: Option<String>,
    pub note: String,
}

#[derive(Serialize, Debug, Default)]
pub struct AnomalyView {
    pub id: String,
    pub label: String,
    pub kind: String,
    pub checker: String,
    pub key: String,
    pub title: String,
    pub when: String,
    pub faults: Vec<String>,
    /// The one sentence that says what is wrong, when the checker wrote one.
    pub lead: Option<String>,
    /// Every sentence of the checker's explanation.
    pub sentences: Vec<Sentence>,
    /// Whether the explanation is shown open (when there is nothing drawn to read instead).
    pub sentences_open: bool,
    pub lin: Option<LinView>,
    pub set: Option<SetView>,
}

#[derive(Serialize, Debug, Default)]
pub struct LinView {
    pub window_svg: Option<String>,
    pub window_note: Option<String>,
    pub window_minimal: bool,
    pub window: Vec<OpRow>,
    pub orders: Vec<String>,
    pub orders_omitted: usize,
    pub prefix_len: Option<usize>,
    /// Why there is no prefix to show, when there is none.
    pub prefix_note: Option<String>,
    pub prefix_state: Option<String>,
    pub prefix_tail: Vec<String>,
    pub stuck: Option<String>,
    pub stuck_svg: Option<String>,
    pub candidates: Vec<CandidateRow>,
    pub cycle_svg: Option<String>,
    pub cycle: Vec<(String, String, String)>,
}

#[derive(Serialize, Debug)]
pub struct OpRow {
    pub process: u64,
    pub action: String,
    pub kind: String,
    pub invoked: String,
    pub completed: String,
    pub lines: String,
}

#[derive(Serialize, Debug)]
pub struct CandidateRow {
    pub op: String,
    pub reaches: String,
    pub note: String,
}

#[derive(Serialize, Debug, Default)]
pub struct SetView {
    pub svg: Option<String>,
    pub rows: Vec<ElementView>,
    pub note: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct ElementView {
    pub element: String,
    pub added: String,
    pub acknowledged: String,
    pub add_outcome: String,
    pub node: String,
    pub faults: String,
    pub reads: String,
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => clip(s, CELL_CHARS),
        Value::Array(a) => clip(
            &a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            CELL_CHARS,
        ),
        other => clip(&other.to_string(), CELL_CHARS),
    }
}

/// Sentences, with the indentation the checkers use for lists ("  - …") kept as a level.
fn sentences<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Sentence> {
    lines
        .into_iter()
        .map(|l| {
            let trimmed = l.trim_start();
            let indent = ((l.len() - trimmed.len()) / 2).min(4);
            // List items are drawn as such: their "- " marker would be shown twice.
            let text = match trimmed.strip_prefix("- ") {
                Some(rest) if indent > 0 => rest,
                _ => trimmed,
            };
            Sentence {
                indent,
                text: clip(text, SENTENCE_CHARS),
            }
        })
        .collect()
}

fn op_rows(ops: &[&OpView]) -> Vec<OpRow> {
    ops.iter()
        .map(|v| OpRow {
            process: v.process,
            action: clip(&v.action, CELL_CHARS),
            kind: v.kind.clone(),
            invoked: secs(v.invoke_time),
            completed: v.complete_time.map_or_else(|| "never".to_string(), secs),
            lines: match v.complete_line {
                Some(c) => format!("{}–{c}", v.line),
                None => v.line.to_string(),
            },
        })
        .collect()
}

fn bar(v: &OpView, role: Role) -> Bar {
    Bar {
        process: v.process,
        label: v.action.clone(),
        title: format!(
            "{}; invoked at {}{}",
            describe_view(v),
            secs(v.invoke_time),
            v.complete_time
                .map(|c| format!(
                    ", completed at {} (took {})",
                    secs(c),
                    duration(c.saturating_sub(v.invoke_time))
                ))
                .unwrap_or_default()
        ),
        start_ns: v.invoke_time,
        end_ns: v.complete_time,
        indeterminate: v.kind == "info",
        role,
        id: None,
    }
}

/// The time span `[first invocation, last completion]` of some operations.
fn span(ops: &[&OpView]) -> Option<(u64, u64)> {
    let lo = ops.iter().map(|v| v.invoke_time).min()?;
    let hi = ops
        .iter()
        .map(|v| v.complete_time.unwrap_or(v.invoke_time))
        .max()?;
    Some((lo, hi.max(lo)))
}

fn when(from: u64, to: u64) -> String {
    if to <= from {
        format!("at {}", secs(from))
    } else {
        format!("from {} to {}", secs(from), secs(to))
    }
}

/// An anomaly and the time span it covers (`None`: no operation to place it by).
type Found = (AnomalyView, Option<(u64, u64)>);

struct Ctx<'a> {
    faults: &'a Faults,
    end_ns: u64,
}

fn lin_anomaly(ctx: &Ctx<'_>, key: &str, w: &LinWitness) -> Found {
    let by_op: HashMap<usize, &OpView> = w.ops.iter().map(|v| (v.op, v)).collect();
    let window: Vec<&OpView> = w
        .window
        .iter()
        .filter_map(|i| by_op.get(i).copied())
        .collect();
    let stuck = w.stuck.and_then(|i| by_op.get(&i).copied());
    let candidates: Vec<&OpView> = w
        .candidates
        .iter()
        .filter_map(|c| by_op.get(&c.op).copied())
        .collect();
    let mut lin = LinView {
        window_minimal: w.window_minimal,
        orders_omitted: w.orders_omitted,
        ..LinView::default()
    };
    // The window, as bars.
    if !window.is_empty() {
        let drawn: Vec<Bar> = window
            .iter()
            .take(MAX_BARS)
            .map(|v| {
                let role = if Some(v.op) == w.stuck {
                    Role::Stuck
                } else {
                    Role::Window
                };
                bar(v, role)
            })
            .collect();
        if window.len() > MAX_BARS {
            lin.window_note = Some(format!(
                "Showing {} of the {} operations of the set (the first by invocation); all are listed in results.json.",
                MAX_BARS,
                window.len()
            ));
        }
        lin.window_svg = Some(draw::bars(&drawn));
        lin.window = op_rows(&window[..window.len().min(MAX_BARS)]);
    }
    let short = |id: usize| {
        by_op.get(&id).map_or_else(
            || format!("operation #{id}"),
            |v| clip(&short_view(v), CELL_CHARS),
        )
    };
    for o in &w.orders {
        let mut steps: Vec<String> = o
            .steps
            .iter()
            .map(|(op, st)| format!("{} → {}", short(*op), clip(st, 60)))
            .collect();
        if let Some((op, st)) = &o.fails_at {
            steps.push(format!(
                "{} is impossible (the value is {})",
                short(*op),
                clip(st, 60)
            ));
        }
        lin.orders.push(steps.join(", then "));
    }
    // Where the longest linearizable prefix stops.
    if w.prefix.is_none() {
        lin.prefix_note = Some(
            "The longest linearizable prefix was not computed: the checker cut its search short, as the key's history is large."
                .to_string(),
        );
    }
    if let Some(prefix) = &w.prefix {
        lin.prefix_len = Some(prefix.len());
        lin.prefix_state = w.prefix_state.as_deref().map(|s| clip(s, CELL_CHARS));
        lin.prefix_tail = prefix
            .iter()
            .rev()
            .take(PREFIX_TAIL)
            .rev()
            .map(|&i| short(i))
            .collect();
    }
    if let Some(s) = stuck {
        lin.stuck = Some(clip(&describe_view(s), CELL_CHARS));
        let mut drawn: Vec<Bar> = Vec::new();
        if let Some(prefix) = &w.prefix {
            for &i in prefix.iter().rev().take(PREFIX_TAIL).rev() {
                if let Some(v) = by_op.get(&i) {
                    drawn.push(bar(v, Role::Prefix));
                }
            }
        }
        for c in candidates.iter().take(MAX_BARS) {
            if c.op != s.op {
                drawn.push(bar(c, Role::Candidate));
            }
        }
        drawn.push(bar(s, Role::Stuck));
        lin.stuck_svg = Some(draw::bars(&drawn));
    }
    for c in &w.candidates {
        lin.candidates.push(CandidateRow {
            op: short(c.op),
            reaches: c
                .reaches
                .as_deref()
                .map_or_else(|| "impossible".to_string(), |s| clip(s, CELL_CHARS)),
            note: clip(&c.note, SENTENCE_CHARS),
        });
    }
    if !w.cycle.is_empty() {
        let edges: Vec<(String, String)> = w
            .cycle
            .iter()
            .map(|e| (e.from.clone(), e.to.clone()))
            .collect();
        lin.cycle_svg = Some(draw::cycle(&edges));
        lin.cycle = w
            .cycle
            .iter()
            .map(|e| {
                (
                    clip(&e.from, CELL_CHARS),
                    clip(&e.to, CELL_CHARS),
                    clip(&e.because, SENTENCE_CHARS),
                )
            })
            .collect();
    }
    let focus: Vec<&OpView> = if window.is_empty() {
        stuck
            .into_iter()
            .chain(candidates.iter().copied())
            .collect()
    } else {
        window.clone()
    };
    let range = span(&focus);
    let title = if window.is_empty() {
        format!("Key {key} is not linearizable")
    } else if window.len() == 1 {
        format!("Key {key}: an operation that cannot be linearized even on its own")
    } else {
        format!(
            "Key {key}: {} operations that cannot be linearized together",
            window.len()
        )
    };
    let view = AnomalyView {
        kind: "linearizability".into(),
        checker: "linearizability".into(),
        key: key.to_string(),
        title,
        when: range.map(|(a, b)| when(a, b)).unwrap_or_default(),
        faults: range
            .map(|(a, b)| ctx.faults.active(a, b, ctx.end_ns))
            .unwrap_or_default()
            .into_iter()
            .map(|d| clip(&d, SENTENCE_CHARS))
            .collect(),
        lead: w
            .reason
            .as_deref()
            .map(|r| clip(&format!("{r}."), SENTENCE_CHARS)),
        sentences: sentences(w.explanation.iter().map(String::as_str)),
        sentences_open: lin.window_svg.is_none() && lin.stuck_svg.is_none(),
        lin: Some(lin),
        ..AnomalyView::default()
    };
    (view, range)
}

fn set_kind_title(kind: &str, n: usize, key: &str) -> String {
    match kind {
        "lost" => format!(
            "Key {key}: {} acknowledged by the system, then missing from a final read",
            plural(n, "element", "elements")
        ),
        "unexpected" => format!(
            "Key {key}: {} that no client ever added, returned by a read",
            plural(n, "element", "elements")
        ),
        "vanished" => format!(
            "Key {key}: {} seen by a read, then missing from a later read",
            plural(n, "element", "elements")
        ),
        _ => format!(
            "Key {key}: {} whose add failed, yet a read returned it",
            plural(n, "element", "elements")
        ),
    }
}

fn set_anomaly(
    ctx: &Ctx<'_>,
    key: &str,
    kind: &str,
    total: usize,
    elements: &[ElementAnomaly],
    sentences_of: Vec<Sentence>,
) -> Found {
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    let mut rows = Vec::new();
    let mut drawn = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        let element = clip(&e.element.to_string(), CELL_CHARS);
        let seen: Vec<u64> = e
            .seen_by
            .iter()
            .chain(e.last_seen.iter())
            .map(|r| r.complete_time)
            .collect();
        let missed: Vec<u64> = e.missed_by.iter().map(|r| r.complete_time).collect();
        let (add_from, add_to) = match &e.add {
            Some(a) => (a.invoke_time, a.complete_time.unwrap_or(ctx.end_ns)),
            None => {
                let first = seen.iter().chain(&missed).copied().min().unwrap_or(0);
                (first, first)
            }
        };
        lo = lo.min(add_from);
        hi = hi.max(add_to);
        for &t in seen.iter().chain(&missed) {
            hi = hi.max(t);
        }
        let reads = {
            let mut parts = Vec::new();
            if e.seen_total > 0 {
                parts.push(format!(
                    "seen by {}{}",
                    plural(e.seen_total, "read", "reads"),
                    e.last_seen
                        .as_ref()
                        .map(|r| format!(", last at {}", secs(r.complete_time)))
                        .unwrap_or_default()
                ));
            }
            if e.missed_total > 0 {
                parts.push(format!(
                    "missing from {}{}",
                    plural(e.missed_total, "read", "reads"),
                    e.missed_by
                        .first()
                        .map(|r| format!(
                            ", the first at {}{}",
                            secs(r.complete_time),
                            r.node
                                .as_deref()
                                .map(|n| format!(" (from {})", clip(n, 40)))
                                .unwrap_or_default()
                        ))
                        .unwrap_or_default()
                ));
            }
            parts.join("; ")
        };
        let active = match &e.add {
            Some(a) => ctx.faults.active(
                a.invoke_time,
                a.complete_time.unwrap_or(a.invoke_time),
                ctx.end_ns,
            ),
            None => Vec::new(),
        };
        let faults = if e.add.is_none() {
            "—".to_string()
        } else if active.is_empty() {
            "none".to_string()
        } else {
            clip(&active.join("; "), SENTENCE_CHARS)
        };
        if i < MAX_ELEMENTS_DRAWN {
            drawn.push(ElementRow {
                label: element.clone(),
                title: format!(
                    "element {element}: {}{}",
                    e.add
                        .as_ref()
                        .map(|a| format!(
                            "added by process {} at {}, {} {}; ",
                            a.process,
                            secs(a.invoke_time),
                            a.kind,
                            a.complete_time
                                .map(secs)
                                .unwrap_or_else(|| "never completed".into())
                        ))
                        .unwrap_or_else(|| "never added; ".into()),
                    reads
                ),
                add: e.add.as_ref().map(|a| (a.invoke_time, a.complete_time)),
                seen: seen.clone(),
                missed,
            });
        }
        if i < MAX_ELEMENT_ROWS {
            rows.push(ElementView {
                element,
                added: e.add.as_ref().map_or_else(
                    || "never".into(),
                    |a| format!("{} by p{}", secs(a.invoke_time), a.process),
                ),
                acknowledged: e.add.as_ref().map_or_else(String::new, |a| {
                    a.complete_time.map(secs).unwrap_or_else(|| "never".into())
                }),
                add_outcome: e.add.as_ref().map_or_else(String::new, |a| a.kind.clone()),
                node: e
                    .add
                    .as_ref()
                    .and_then(|a| a.node.as_deref())
                    .map(|n| clip(n, 60))
                    .unwrap_or_default(),
                faults,
                reads,
            });
        }
    }
    let mut notes = Vec::new();
    if total > elements.len() {
        notes.push(format!(
            "results.json lists {} of the {} elements (the checker caps its lists).",
            thousands(elements.len() as u64),
            thousands(total as u64)
        ));
    }
    if elements.len() > MAX_ELEMENT_ROWS || elements.len() > MAX_ELEMENTS_DRAWN {
        notes.push(format!(
            "Drawing the first {} and listing the first {} of them.",
            elements.len().min(MAX_ELEMENTS_DRAWN),
            elements.len().min(MAX_ELEMENT_ROWS)
        ));
    }
    let range = (lo <= hi).then_some((lo, hi));
    let view = AnomalyView {
        kind: kind.to_string(),
        checker: "set".into(),
        key: key.to_string(),
        title: set_kind_title(kind, total.max(elements.len()), key),
        when: range.map(|(a, b)| when(a, b)).unwrap_or_default(),
        faults: Vec::new(),
        lead: None,
        sentences: sentences_of,
        sentences_open: true,
        lin: None,
        set: Some(SetView {
            svg: (!drawn.is_empty()).then(|| draw::elements(&drawn, ctx.faults, ctx.end_ns)),
            rows,
            note: (!notes.is_empty()).then(|| notes.join(" ")),
        }),
        ..AnomalyView::default()
    };
    (view, range)
}

/// A checker's line in the verdict section.
fn checker_view(c: &Value) -> CheckerView {
    let summary: Vec<&str> = c["summary"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys = c["report"]["keys"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let mut by_verdict: HashMap<String, usize> = HashMap::new();
    for k in keys {
        *by_verdict.entry(show(&k["verdict"])).or_default() += 1;
    }
    let keys_text = if keys.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = ["invalid", "unknown", "valid"]
            .iter()
            .filter_map(|v| {
                by_verdict
                    .get(*v)
                    .map(|n| format!("{} {v}", thousands(*n as u64)))
            })
            .collect();
        format!(
            "{} of {}",
            parts.join(", "),
            plural(keys.len(), "key", "keys")
        )
    };
    CheckerView {
        name: show(&c["name"]),
        verdict: show(&c["verdict"]),
        summary: sentences(summary.iter().take(MAX_SUMMARY).copied()),
        more: summary.len().saturating_sub(MAX_SUMMARY),
        keys: keys_text,
    }
}

/// A linearizability key's row; its anomaly, if invalid, goes to `anomalies`.
fn lin_key(ctx: &Ctx<'_>, kr: &KeyResult, anomalies: &mut Vec<Found>) -> KeyRowDraft {
    let key = key_name(&kr.key);
    let mut row = KeyRowDraft {
        key: key.clone(),
        verdict: kr.verdict.name().to_string(),
        ops: thousands(kr.ops as u64),
        method: format!("{:?}", kr.method).to_lowercase(),
        time: duration(kr.check_us * 1_000),
        ..KeyRowDraft::default()
    };
    match &kr.verdict {
        Verdict::Invalid { witness } => {
            row.anomaly = Some(anomalies.len());
            row.note = witness
                .explanation
                .first()
                .map(|s| clip(s, CELL_CHARS))
                .unwrap_or_default();
            anomalies.push(lin_anomaly(ctx, &key, witness));
        }
        Verdict::Unknown { reason } => row.note = clip(reason, SENTENCE_CHARS),
        Verdict::Valid => {}
    }
    row
}

/// A set key's row; each kind of anomaly it has goes to `anomalies`.
fn set_key(ctx: &Ctx<'_>, kr: &SetKeyResult, anomalies: &mut Vec<Found>) -> KeyRowDraft {
    let key = key_name(&kr.key);
    let c = &kr.counts;
    let mut row = KeyRowDraft {
        key: key.clone(),
        verdict: kr.verdict.name().to_string(),
        ops: format!(
            "{} added, {} acknowledged, {} reads",
            thousands(c.attempted as u64),
            thousands(c.acknowledged as u64),
            thousands(c.reads as u64)
        ),
        ..KeyRowDraft::default()
    };
    match &kr.verdict {
        Verdict::Invalid { witness } => {
            let kinds: [(&'static str, &Vec<ElementAnomaly>, usize); 4] = [
                ("lost", &witness.lost, c.lost),
                ("unexpected", &witness.unexpected, c.unexpected),
                ("vanished", &witness.vanished, c.vanished),
                (
                    "failed-but-present",
                    &witness.failed_but_present,
                    c.failed_but_present,
                ),
            ];
            let layout: Vec<(&'static str, usize, usize)> =
                kinds.iter().map(|(k, l, t)| (*k, l.len(), *t)).collect();
            let mut said = split_set_sentences(&witness.sentences, &layout);
            let mut notes = Vec::new();
            for (kind, list, total) in kinds {
                if list.is_empty() && total == 0 {
                    continue;
                }
                if row.anomaly.is_none() {
                    row.anomaly = Some(anomalies.len());
                }
                notes.push(format!("{} {kind}", thousands(total as u64)));
                let own = said.remove(kind).unwrap_or_default();
                anomalies.push(set_anomaly(
                    ctx,
                    &key,
                    kind,
                    total,
                    list,
                    sentences(own.iter().map(String::as_str)),
                ));
            }
            row.note = notes.join(", ");
        }
        Verdict::Unknown { reason } => row.note = clip(reason, SENTENCE_CHARS),
        Verdict::Valid => {}
    }
    row
}

fn key_name(k: &Option<String>) -> String {
    k.as_deref()
        .map_or_else(|| "(no key)".to_string(), |k| clip(k, CELL_CHARS))
}

fn verdict_rank(v: &str) -> u8 {
    match v {
        "invalid" => 0,
        "unknown" => 1,
        _ => 2,
    }
}

/// Builds the page for `folder`. `rendered_at` is shown at the bottom.
pub fn build(folder: &RunFolder, rendered_at: String) -> Page {
    let run = &folder.run;
    let ops: Ops = ops::pair(&folder.events);
    let faults = faults::intervals(&folder.events, &folder.lines);
    let time_limit_ns = run["time_limit_ms"].as_u64().unwrap_or(0) * 1_000_000;
    let end_ns = if ops.end_ns > 0 {
        ops.end_ns
    } else {
        time_limit_ns.max(1_000_000_000)
    };
    let ctx = Ctx {
        faults: &faults,
        end_ns,
    };
    let mut page = Page {
        rendered_at,
        version: env!("CARGO_PKG_VERSION"),
        ..Page::default()
    };
    let label = |k: &str| show(&run[k]);
    page.title = format!(
        "{} · {} · {}",
        label("system"),
        label("workload"),
        label("nemesis")
    );
    let mut info = vec![
        ("system", label("system")),
        ("workload", label("workload")),
        ("nemesis", {
            let n = label("nemesis");
            if n.is_empty() {
                "none".into()
            } else {
                n
            }
        }),
        ("seed", label("seed")),
        ("nodes", label("nodes")),
        ("clients", label("concurrency")),
        (
            "rate",
            match run["rate"].as_f64() {
                Some(r) if r > 0.0 => format!("{r} ops/s"),
                Some(_) => "as fast as the clients can".to_string(),
                None => String::new(),
            },
        ),
        ("started (UTC)", stamp(&label("started_at"))),
        ("bug planted", label("bug")),
        ("network faults by", show(&run["network"]["mechanism"])),
    ];
    if let Some(ms) = run["elapsed_ms"].as_u64() {
        info.push(("took", duration(ms * 1_000_000)));
    }
    if let Some(ms) = run["time_limit_ms"].as_u64() {
        info.push(("time limit", duration(ms * 1_000_000)));
    }
    page.run = info
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    page.command = run["command"].as_str().map(|c| clip(c, 4_000));

    // Notices: what is missing or odd.
    page.notices
        .extend(folder.warnings.iter().map(|w| clip(w, SENTENCE_CHARS)));
    if run["interrupted"].as_bool() == Some(true) {
        page.notices.push(
            "The run was interrupted: the history is a prefix of the planned run.".to_string(),
        );
    }
    if folder.events.is_empty() {
        page.notices
            .push("history.jsonl holds no event: the run recorded nothing.".to_string());
    }
    let open = ops.count(Outcome::Open);
    if open > 0 {
        page.notices.push(format!(
            "{} never completed in the history (the run ended or was killed first); they are not in the charts.",
            plural(open, "operation", "operations")
        ));
    }
    if ops.unmatched > 0 {
        page.notices.push(format!(
            "{} in history.jsonl have no invocation before them; they are not drawn.",
            plural(ops.unmatched, "completion", "completions")
        ));
    }

    // Counts, from the history itself (the charts show the same operations).
    let nemesis_events = folder
        .events
        .iter()
        .filter(|e| e.process == history::Process::Nemesis)
        .count();
    page.counts = Counts {
        ok: thousands(ops.count(Outcome::Ok) as u64),
        fail: thousands(ops.count(Outcome::Fail) as u64),
        info: thousands(ops.count(Outcome::Info) as u64),
        open,
        total: thousands(ops.ops.len() as u64),
        unmatched: ops.unmatched,
        nemesis: nemesis_events,
    };

    // Links to the files of the run folder.
    let dir = &folder.dir;
    for (f, what) in [
        ("history.jsonl", "the history (one event per line)"),
        ("results.json", "every checker's verdict and witness"),
        ("run.json", "the configuration, seed and fault schedule"),
    ] {
        page.links.push(LinkView {
            href: f.to_string(),
            label: format!("{f}: {what}"),
            exists: dir.join(f).is_file(),
        });
    }
    let mut nodes: Vec<String> = run["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Ok(rd) = std::fs::read_dir(dir.join("nodes")) {
        let mut extra: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| !nodes.contains(n))
            .collect();
        extra.sort();
        nodes.extend(extra);
    }
    for n in nodes.iter().take(200) {
        let rel = dir.join("nodes").join(n).join("node.log");
        page.links.push(LinkView {
            href: format!("nodes/{}/node.log", encode_segment(n)),
            label: format!("{}'s log", clip(n, 60)),
            exists: rel.is_file(),
        });
    }

    // Verdicts and anomalies.
    let mut verdict: &'static str = "unknown";
    let mut anomalies: Vec<Found> = Vec::new();
    let mut key_rows: Vec<(u8, KeyRowDraft)> = Vec::new();
    let mut checker_names: Vec<String> = Vec::new();
    match &folder.results {
        Results::Missing => {
            page.notices.insert(
                0,
                "Not checked: results.json is missing, so the run ended (or was killed) before its history was checked. \
                 What the history shows is drawn below; `harness check history.jsonl` checks it."
                    .to_string(),
            );
        }
        Results::Unreadable(why) => {
            page.notices
                .insert(0, format!("Not checked: {}", clip(why, SENTENCE_CHARS)));
        }
        Results::Loaded(results) => {
            verdict = match results["verdict"].as_str() {
                Some("valid") => "valid",
                Some("invalid") => "invalid",
                _ => "unknown",
            };
            let empty = Vec::new();
            for c in results["checkers"].as_array().unwrap_or(&empty) {
                let name = show(&c["name"]);
                page.checkers.push(checker_view(c));
                let keys = c["report"]["keys"].as_array().unwrap_or(&empty);
                if !keys.is_empty() && !checker_names.contains(&name) {
                    checker_names.push(name.clone());
                }
                for (i, k) in keys.iter().enumerate() {
                    let row = match name.as_str() {
                        "linearizability" => serde_json::from_value::<KeyResult>(k.clone())
                            .map(|kr| lin_key(&ctx, &kr, &mut anomalies)),
                        "set" => serde_json::from_value::<SetKeyResult>(k.clone())
                            .map(|kr| set_key(&ctx, &kr, &mut anomalies)),
                        _ => continue,
                    };
                    let row = row.unwrap_or_else(|e| {
                        page.notices.push(format!(
                            "results.json: the {name} result of key #{} cannot be read ({}); only its verdict is shown.",
                            i + 1,
                            clip(&e.to_string(), CELL_CHARS)
                        ));
                        KeyRowDraft {
                            key: show(&k["key"]),
                            verdict: show(&k["verdict"]),
                            ..KeyRowDraft::default()
                        }
                    });
                    key_rows.push((verdict_rank(&row.verdict), row));
                }
            }
            if results["interrupted"].as_bool() == Some(true)
                && run["interrupted"].as_bool() != Some(true)
            {
                page.notices.push(
                    "The run was interrupted: the history is a prefix of the planned run."
                        .to_string(),
                );
            }
        }
    }
    page.verdict = verdict;
    page.verdict_word = match (verdict, &folder.results) {
        (_, Results::Missing | Results::Unreadable(_)) => "NOT CHECKED",
        ("valid", _) => "VALID",
        ("invalid", _) => "INVALID",
        _ => "UNKNOWN",
    };

    // Anomalies: in the order they happened, numbered, flagged on the timeline, the first
    // MAX_ANOMALIES in full.
    page.anomalies_total = anomalies.len();
    let mut order: Vec<usize> = (0..anomalies.len()).collect();
    order.sort_by_key(|&i| (anomalies[i].1.map_or(u64::MAX, |r| r.0), i));
    let mut number = vec![0usize; anomalies.len()];
    for (n, &i) in order.iter().enumerate() {
        number[i] = n;
    }
    let mut sorted: Vec<Option<Found>> = anomalies.into_iter().map(Some).collect();
    let anomalies: Vec<Found> = order.iter().filter_map(|&i| sorted[i].take()).collect();
    let mut flags = Vec::new();
    for (i, (mut a, range)) in anomalies.into_iter().enumerate() {
        a.id = format!("anomaly-{}", i + 1);
        a.label = format!("A{}", i + 1);
        if a.faults.is_empty() && a.lin.is_some() {
            a.faults.push("none".into());
        }
        page.anomaly_index.push(AnomalyLine {
            id: a.id.clone(),
            label: a.label.clone(),
            title: a.title.clone(),
            when: a.when.clone(),
            faults: a.faults.join("; "),
        });
        if i < MAX_ANOMALIES {
            if let Some((from, to)) = range {
                flags.push(Flag {
                    id: a.id.clone(),
                    label: a.label.clone(),
                    title: format!("{}: {} ({})", a.label, a.title, a.when),
                    start_ns: from,
                    end_ns: to,
                });
            }
            page.anomalies.push(a);
        } else {
            page.more_anomalies
                .push(format!("{}: {} ({})", a.label, a.title, a.when));
        }
    }
    if page.anomalies_total > MAX_ANOMALIES {
        page.summarised.push(format!(
            "Anomalies: {} of {} are shown in full; the rest are listed by their title at the end of the anomalies section.",
            MAX_ANOMALIES, page.anomalies_total
        ));
    }

    // Per-key verdicts, bad first.
    key_rows.sort_by_key(|(rank, _)| *rank);
    page.keys_total = key_rows.len();
    page.keys_checker = checker_names.join(", ");
    page.keys_have_method = key_rows.iter().any(|(_, r)| !r.method.is_empty());
    if key_rows.len() > MAX_KEY_ROWS {
        page.summarised.push(format!(
            "Per-key verdicts: showing {} of {} keys (every invalid and unknown key comes first).",
            MAX_KEY_ROWS,
            key_rows.len()
        ));
    }
    page.keys = key_rows
        .into_iter()
        .take(MAX_KEY_ROWS)
        .map(|(_, r)| KeyRow {
            key: r.key,
            verdict: r.verdict,
            ops: r.ops,
            method: r.method,
            time: r.time,
            anomaly: r.anomaly.map(|i| format!("anomaly-{}", number[i] + 1)),
            note: match r.anomaly {
                Some(i) => format!("A{}: {}", number[i] + 1, r.note),
                None => r.note,
            },
        })
        .collect();

    // The headline.
    page.headline = match (verdict, &folder.results) {
        (_, Results::Missing) | (_, Results::Unreadable(_)) => {
            "Not checked: the verdict is unknown.".to_string()
        }
        ("valid", _) => format!(
            "Valid: every check passed over {}.",
            plural(ops.ops.len(), "operation", "operations")
        ),
        ("invalid", _) => match (page.anomalies.first(), page.anomalies_total) {
            (Some(a), 1) => format!("Invalid: {} ({}).", a.title, a.when),
            (Some(a), n) => format!(
                "Invalid: {} anomalies. The first: {} ({}).",
                thousands(n as u64),
                a.title,
                a.when
            ),
            (None, _) => "Invalid: see the checkers' summaries below.".to_string(),
        },
        _ => "Unknown: a checker could not decide within its budget.".to_string(),
    };

    // The fault timeline and table.
    page.timeline = draw::timeline(&nodes, &faults, end_ns, &flags);
    let mut kinds: Vec<String> = Vec::new();
    for iv in &faults.intervals {
        if !kinds.contains(&iv.kind) {
            kinds.push(iv.kind.clone());
        }
    }
    page.fault_legend = kinds
        .iter()
        .map(|k| (clip(k, 40), style::css(style::fault_rgb(k))))
        .collect();
    page.faults_total = faults.intervals.len() + faults.dropped;
    for (i, iv) in faults.intervals.iter().enumerate().take(MAX_FAULT_ROWS) {
        page.faults.push(FaultRow {
            n: i + 1,
            kind: clip(&iv.kind, 40),
            color: style::css(style::fault_rgb(&iv.kind)),
            start: secs(iv.start_ns),
            stop: iv.stop_ns.map_or_else(|| "never stopped".to_string(), secs),
            length: duration(iv.end_ns(end_ns) - iv.start_ns),
            what: clip(
                &iv.summary.clone().unwrap_or_else(|| {
                    iv.detail
                        .iter()
                        .map(|(who, what)| {
                            if what.is_empty() {
                                who.clone()
                            } else {
                                format!("{who}: {what}")
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                }),
                SENTENCE_CHARS,
            ),
            line: iv.line,
        });
    }
    if page.faults_total > page.faults.len() {
        page.summarised.push(format!(
            "Faults: the table lists {} of {} fault intervals{}.",
            page.faults.len(),
            page.faults_total,
            if faults.dropped > 0 {
                format!("; the timeline draws {}", faults.intervals.len())
            } else {
                "; the timeline draws them all".to_string()
            }
        ));
    }

    // Throughput and latency.
    let s = series::compute(&ops);
    page.bucket = duration(s.bucket_ns);
    page.summarised.push(format!(
        "Throughput and latency: {} completed operations are summarised in {} buckets of {} each (by completion time); latency lines are each bucket's median, dashed lines its 99th percentile.",
        thousands((ops.ops.len() - open) as u64),
        s.buckets,
        duration(s.bucket_ns)
    ));
    if !s.lumped.is_empty() {
        page.lumped = Some(format!(
            "{} less frequent operation names are drawn together as \"other\": {}.",
            s.lumped.len(),
            clip(&s.lumped.join(", "), SENTENCE_CHARS)
        ));
    }
    let names: Vec<String> = ops.fs.clone();
    for panel in &s.panels {
        let tp = plots::throughput(panel, &s, &faults, &names);
        let lt = plots::latency(panel, &s, &faults, &names);
        page.charts.push(ChartPair {
            outcome: panel.outcome.name(),
            total: thousands(panel.total as u64),
            throughput: ChartView {
                svg: tp.svg,
                note: tp.empty_note,
            },
            latency: ChartView {
                svg: lt.svg,
                note: lt.empty_note,
            },
        });
    }
    page
}

/// The set checker's sentences, split by anomaly kind. The checker writes, kind by kind (lost,
/// unexpected, vanished, failed-but-present), one sentence per listed element up to
/// `MAX_SENTENCES` and then one "... and N more" line when there are more; when the sentences do
/// not add up to that layout, each goes by the words the checker uses for its kind.
fn split_set_sentences(
    all: &[String],
    kinds: &[(&'static str, usize, usize)],
) -> HashMap<&'static str, Vec<String>> {
    let mut out: HashMap<&'static str, Vec<String>> = HashMap::new();
    let layout: Vec<(&'static str, usize)> = kinds
        .iter()
        .map(|&(kind, listed, total)| {
            let shown = listed.min(checkers::set::MAX_SENTENCES);
            (kind, shown + usize::from(total > shown))
        })
        .collect();
    if layout.iter().map(|(_, n)| n).sum::<usize>() == all.len() {
        let mut at = 0;
        for (kind, n) in layout {
            out.insert(kind, all[at..at + n].to_vec());
            at += n;
        }
        return out;
    }
    for s in all {
        let kind = if s.contains("a promise that it would never take effect")
            || s.contains("more failed-but-present")
        {
            "failed-but-present"
        } else if s.contains("no process ever tried to add it") || s.contains("more unexpected") {
            "unexpected"
        } else if s.contains("a linearizable set never loses") || s.contains("vanished") {
            "vanished"
        } else {
            "lost"
        };
        out.entry(kind).or_default().push(s.clone());
    }
    out
}
