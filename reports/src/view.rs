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
use checkers::lin::witness::{describe_view, short_view, LinWitness, OpView};
use checkers::lin::{KeyResult, Verdict};
use checkers::set::{ElementAnomaly, SetAnomalyKind, SetKeyResult};
use checkers::{Anomaly, CheckerResult};
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
    /// False for a checker of a property the system does not promise: shown, never failing
    /// the run.
    pub promised: bool,
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
    /// Whether the system promised what this anomaly breaks (else it is informational).
    pub promised: bool,
    /// The anomaly's operations as bars, and as a table.
    pub bars_svg: Option<String>,
    pub ops: Vec<OpRow>,
    /// Its cycle of dependencies, drawn and listed (from, to, because).
    pub cycle_svg: Option<String>,
    pub cycle: Vec<(String, String, String)>,
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
    /// The operations the anomalies name, by invocation index.
    ops: HashMap<u64, AnomalyOp>,
}

/// The linearizability checker's own view of an invalid key: the window of operations that
/// cannot be linearized together, every order of them, the longest linearizable prefix and
/// where it stops, the cycle of the unique-value path.
fn lin_extra(w: &LinWitness) -> LinView {
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
    lin
}

/// The set checker's own view of one kind of anomaly on one key: a row per element, with its
/// add and the reads that saw or missed it.
fn set_extra(ctx: &Ctx<'_>, total: usize, elements: &[ElementAnomaly]) -> SetView {
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
    SetView {
        svg: (!drawn.is_empty()).then(|| draw::elements(&drawn, ctx.faults, ctx.end_ns)),
        rows,
        note: (!notes.is_empty()).then(|| notes.join(" ")),
    }
}

/// A checker's line in the verdict section.
fn checker_view(c: &CheckerResult) -> CheckerView {
    let keys = c.detail["keys"].as_array().map_or(&[][..], Vec::as_slice);
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
        name: clip(&c.checker, CELL_CHARS),
        verdict: c.verdict.name().to_string(),
        promised: c.promised,
        summary: sentences(c.summary.iter().take(MAX_SUMMARY).map(String::as_str)),
        more: c.summary.len().saturating_sub(MAX_SUMMARY),
        keys: keys_text,
    }
}

/// A linearizability key's row.
fn lin_key(kr: &KeyResult) -> KeyRowDraft {
    KeyRowDraft {
        key: key_name(&kr.key),
        verdict: kr.verdict.name().to_string(),
        ops: thousands(kr.ops as u64),
        method: format!("{:?}", kr.method).to_lowercase(),
        time: duration(kr.check_us * 1_000),
        note: match &kr.verdict {
            Verdict::Invalid { witness } => witness
                .explanation
                .first()
                .map(|s| clip(s, CELL_CHARS))
                .unwrap_or_default(),
            Verdict::Unknown { reason } => clip(reason, SENTENCE_CHARS),
            Verdict::Valid => String::new(),
        },
        ..KeyRowDraft::default()
    }
}

/// A set key's row.
fn set_key(kr: &SetKeyResult) -> KeyRowDraft {
    let c = &kr.counts;
    KeyRowDraft {
        key: key_name(&kr.key),
        verdict: kr.verdict.name().to_string(),
        ops: format!(
            "{} added, {} acknowledged, {} reads",
            thousands(c.attempted as u64),
            thousands(c.acknowledged as u64),
            thousands(c.reads as u64)
        ),
        note: match &kr.verdict {
            Verdict::Invalid { witness } => SetAnomalyKind::ALL
                .into_iter()
                .filter_map(|kind| {
                    let (list, total) = kind.of(witness, c);
                    (total > 0 || !list.is_empty())
                        .then(|| format!("{} {}", thousands(total as u64), kind.name()))
                })
                .collect::<Vec<_>>()
                .join(", "),
            Verdict::Unknown { reason } => clip(reason, SENTENCE_CHARS),
            Verdict::Valid => String::new(),
        },
        ..KeyRowDraft::default()
    }
}

/// A checker's own data (its `detail`) that the page has extra views for: the per-key table,
/// and for each anomaly, the linearizability witness or the set's elements.
enum Extras {
    Lin(Vec<KeyResult>),
    Set(Vec<SetKeyResult>),
    None,
}

impl Extras {
    /// Reads `c.detail["keys"]`; a key that cannot be read is named in `notices`.
    fn of(c: &CheckerResult, notices: &mut Vec<String>) -> Extras {
        fn keys<T: serde::de::DeserializeOwned>(
            c: &CheckerResult,
            notices: &mut Vec<String>,
        ) -> Vec<T> {
            let all = c.detail["keys"].as_array().map_or(&[][..], Vec::as_slice);
            let mut out = Vec::new();
            for (i, k) in all.iter().enumerate() {
                match serde_json::from_value::<T>(k.clone()) {
                    Ok(kr) => out.push(kr),
                    Err(e) => notices.push(format!(
                        "results.json: the {} result of key #{} cannot be read ({}); only its verdict is shown.",
                        clip(&c.checker, CELL_CHARS),
                        i + 1,
                        clip(&e.to_string(), CELL_CHARS)
                    )),
                }
            }
            out
        }
        match c.checker.as_str() {
            "linearizability" => Extras::Lin(keys(c, notices)),
            "set" => Extras::Set(keys(c, notices)),
            _ => Extras::None,
        }
    }

    /// The per-key table's rows.
    fn rows(&self) -> Vec<KeyRowDraft> {
        match self {
            Extras::Lin(keys) => keys.iter().map(lin_key).collect(),
            Extras::Set(keys) => keys.iter().map(set_key).collect(),
            Extras::None => Vec::new(),
        }
    }

    /// Adds this checker's own view of `a` to `view`; true when that view draws the
    /// anomaly's operations itself (so the plain bars are not needed).
    fn attach(&self, ctx: &Ctx<'_>, a: &Anomaly, view: &mut AnomalyView) -> bool {
        let same_key = |k: &Option<String>| k.as_deref() == a.key.as_deref();
        match self {
            Extras::Lin(keys) => {
                let Some(Verdict::Invalid { witness }) =
                    keys.iter().find(|k| same_key(&k.key)).map(|k| &k.verdict)
                else {
                    return false;
                };
                let lin = lin_extra(witness);
                view.lead = witness
                    .reason
                    .as_deref()
                    .map(|r| clip(&format!("{r}."), SENTENCE_CHARS));
                view.sentences_open = lin.window_svg.is_none() && lin.stuck_svg.is_none();
                view.lin = Some(lin);
                // The window drawing shows these operations better than plain bars.
                true
            }
            Extras::Set(keys) => {
                let (Some(kind), Some(kr)) = (
                    SetAnomalyKind::from_name(&a.kind),
                    keys.iter().find(|k| same_key(&k.key)),
                ) else {
                    return false;
                };
                let Verdict::Invalid { witness } = &kr.verdict else {
                    return false;
                };
                let (list, total) = kind.of(witness, &kr.counts);
                view.set = Some(set_extra(ctx, total, list));
                // The element drawing places every add and read; faults are shaded in it.
                view.faults.clear();
                true
            }
            Extras::None => false,
        }
    }
}

/// Any checker's anomaly, drawn from the shared fields alone (shared/DESIGN.md section 7): its
/// sentences, its operations as bars, its cycle, the faults active in its span.
fn anomaly_view(ctx: &Ctx<'_>, c: &CheckerResult, a: &Anomaly) -> Found {
    let range = a.span_ns.map(|[x, y]| (x, y.max(x)));
    let mut view = AnomalyView {
        kind: clip(&a.kind, 60),
        checker: clip(&c.checker, 60),
        promised: c.promised,
        key: a
            .key
            .as_deref()
            .map(|k| clip(k, CELL_CHARS))
            .unwrap_or_default(),
        title: clip(&a.title, SENTENCE_CHARS),
        when: range.map(|(x, y)| when(x, y)).unwrap_or_default(),
        faults: range
            .map(|(x, y)| ctx.faults.active(x, y, ctx.end_ns))
            .unwrap_or_default()
            .into_iter()
            .map(|d| clip(&d, SENTENCE_CHARS))
            .collect(),
        sentences: sentences(a.sentences.iter().map(String::as_str)),
        sentences_open: true,
        ..AnomalyView::default()
    };
    if !a.cycle.is_empty() {
        let label = |i: &u64| {
            ctx.ops
                .get(i)
                .map_or_else(|| format!("#{i}"), |o| format!("{} (#{i})", o.label))
        };
        let edges: Vec<(String, String)> = a
            .cycle
            .iter()
            .map(|e| (label(&e.from), label(&e.to)))
            .collect();
        view.cycle_svg = Some(draw::cycle(&edges));
        view.cycle = a
            .cycle
            .iter()
            .map(|e| {
                (
                    clip(&label(&e.from), CELL_CHARS),
                    clip(&label(&e.to), CELL_CHARS),
                    clip(&e.because, SENTENCE_CHARS),
                )
            })
            .collect();
    }
    (view, range)
}

/// The anomaly's operations as bars and as a table, for checkers without a view of their own.
fn draw_ops(ctx: &Ctx<'_>, a: &Anomaly, view: &mut AnomalyView) {
    let found: Vec<&AnomalyOp> = a
        .ops
        .iter()
        .take(MAX_BARS)
        .filter_map(|i| ctx.ops.get(i))
        .collect();
    if found.is_empty() {
        return;
    }
    let bars: Vec<Bar> = found.iter().map(|o| o.bar()).collect();
    view.bars_svg = Some(draw::bars(&bars));
    view.ops = found.iter().map(|o| o.row()).collect();
}

/// An operation of some anomaly, found in the history by its invocation's index.
pub struct AnomalyOp {
    process: u64,
    label: String,
    outcome: &'static str,
    invoke_ns: u64,
    complete_ns: Option<u64>,
    lines: String,
}

impl AnomalyOp {
    fn bar(&self) -> Bar {
        Bar {
            process: self.process,
            label: self.label.clone(),
            title: format!(
                "{} by process {}, {}; invoked at {}{}",
                self.label,
                self.process,
                self.outcome,
                secs(self.invoke_ns),
                self.complete_ns
                    .map(|c| format!(", completed at {}", secs(c)))
                    .unwrap_or_default()
            ),
            start_ns: self.invoke_ns,
            end_ns: self.complete_ns,
            indeterminate: self.outcome == "info",
            role: Role::Window,
            id: None,
        }
    }

    fn row(&self) -> OpRow {
        OpRow {
            process: self.process,
            action: clip(&self.label, CELL_CHARS),
            kind: self.outcome.to_string(),
            invoked: secs(self.invoke_ns),
            completed: self.complete_ns.map_or_else(|| "never".to_string(), secs),
            lines: self.lines.clone(),
        }
    }
}

/// The operations every anomaly of `results` names, from one pass over the history.
fn anomaly_ops(folder: &RunFolder, results: &[CheckerResult]) -> HashMap<u64, AnomalyOp> {
    let wanted: std::collections::HashSet<u64> = results
        .iter()
        .flat_map(|c| &c.anomalies)
        .flat_map(|a| {
            a.ops
                .iter()
                .take(MAX_BARS)
                .chain(a.cycle.iter().flat_map(|e| [&e.from, &e.to]))
        })
        .copied()
        .collect();
    let mut found: HashMap<u64, AnomalyOp> = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    // Per process, the wanted invocation it has outstanding.
    let mut open: HashMap<u64, u64> = HashMap::new();
    for (e, line) in folder.events.iter().zip(&folder.lines) {
        let history::Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == history::EventType::Invoke {
            open.remove(&p);
            if wanted.contains(&e.index) {
                open.insert(p, e.index);
                found.insert(
                    e.index,
                    AnomalyOp {
                        process: p,
                        label: match &e.key {
                            Some(k) => format!("{} {}", e.f, k),
                            None => e.f.clone(),
                        },
                        outcome: "open",
                        invoke_ns: e.time,
                        complete_ns: None,
                        lines: line.to_string(),
                    },
                );
            }
        } else if let Some(op) = open.remove(&p).and_then(|i| found.get_mut(&i)) {
            op.outcome = match e.kind {
                history::EventType::Ok => "ok",
                history::EventType::Fail => "fail",
                _ => "info",
            };
            op.complete_ns = Some(e.time);
            op.lines = format!("{}–{line}", op.lines);
        }
    }
    found
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
        ops: match &folder.results {
            Results::Loaded(results) => anomaly_ops(folder, results),
            _ => HashMap::new(),
        },
    };
    let mut page = Page {
        rendered_at,
        version: env!("CARGO_PKG_VERSION"),
        ..Page::default()
    };
    run_info(&mut page, run);
    notices(&mut page, folder, &ops);
    let nodes = links(&mut page, folder);
    let (verdict, anomalies, key_rows) = verdicts(&mut page, folder, &ctx);
    page.verdict = verdict;
    page.verdict_word = match (verdict, &folder.results) {
        (_, Results::Missing | Results::Unreadable(_)) => "NOT CHECKED",
        ("valid", _) => "VALID",
        ("invalid", _) => "INVALID",
        _ => "UNKNOWN",
    };
    let (flags, number) = number_anomalies(&mut page, anomalies);
    key_table(&mut page, key_rows, &number);
    page.headline = headline(&page, verdict, &folder.results, &ops);
    fault_table(&mut page, &nodes, &faults, end_ns, &flags);
    charts(&mut page, &ops, &faults);
    page
}

/// The run's settings, from run.json.
fn run_info(page: &mut Page, run: &Value) {
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
        ("topology", label("topology")),
        ("maelstrom network", maelstrom_figures(&run["maelstrom"])),
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
}

/// A Maelstrom run's network figures (run.json `maelstrom`), in a line; empty for other runs.
fn maelstrom_figures(m: &Value) -> String {
    if m.is_null() {
        return String::new();
    }
    let n = |k: &str| m[k].as_u64().unwrap_or(0);
    format!(
        "{} messages between nodes ({} per client operation), {} service requests; dropped {} \
         by partitions, {} by loss, {} to or from nodes that were down",
        n("between_nodes"),
        show(&m["messages_per_op"]),
        n("service_requests"),
        n("dropped_partition"),
        n("dropped_loss"),
        n("dropped_down")
    )
}

/// What is missing or odd, and the counts of operations.
fn notices(page: &mut Page, folder: &RunFolder, ops: &Ops) {
    let run = &folder.run;
    // Notices: what is missing or odd.
    page.notices
        .extend(folder.warnings.iter().map(|w| clip(w, SENTENCE_CHARS)));
    if run["interrupted"].as_bool() == Some(true) {
        page.notices.push(
            "The run was interrupted: the history is a prefix of the planned run.".to_string(),
        );
    }
    let malformed: u64 = run["maelstrom"]["malformed"]
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    if malformed > 0 {
        page.notices.push(format!(
            "The nodes wrote {} that could not be routed ({}): each is in messages.jsonl with \
             its node and line number.",
            plural(malformed as usize, "line", "lines"),
            clip(&run["maelstrom"]["malformed"].to_string(), SENTENCE_CHARS)
        ));
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
}

/// Links to the files of the run folder; returns the nodes' names.
fn links(page: &mut Page, folder: &RunFolder) -> Vec<String> {
    let run = &folder.run;
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

    nodes
}

/// Every checker's line and anomalies, and the per-key rows of those that have them. The
/// verdict is the worst of the promised checkers'.
fn verdicts(
    page: &mut Page,
    folder: &RunFolder,
    ctx: &Ctx<'_>,
) -> (&'static str, Vec<Found>, Vec<(u8, KeyRowDraft)>) {
    let mut anomalies: Vec<Found> = Vec::new();
    let mut key_rows: Vec<(u8, KeyRowDraft)> = Vec::new();
    let mut checker_names: Vec<String> = Vec::new();
    let results = match &folder.results {
        Results::Missing => {
            page.notices.insert(
                0,
                "Not checked: results.json is missing, so the run ended (or was killed) before its history was checked. \
                 What the history shows is drawn below; `harness check history.jsonl` checks it."
                    .to_string(),
            );
            return ("unknown", anomalies, key_rows);
        }
        Results::Unreadable(why) => {
            page.notices
                .insert(0, format!("Not checked: {}", clip(why, SENTENCE_CHARS)));
            return ("unknown", anomalies, key_rows);
        }
        Results::Loaded(results) => results,
    };
    for c in results {
        page.checkers.push(checker_view(c));
        let extras = Extras::of(c, &mut page.notices);
        let first = anomalies.len();
        for a in &c.anomalies {
            let (mut view, range) = anomaly_view(ctx, c, a);
            if !extras.attach(ctx, a, &mut view) {
                draw_ops(ctx, a, &mut view);
            }
            anomalies.push((view, range));
        }
        let rows = extras.rows();
        if !rows.is_empty() && !checker_names.contains(&c.checker) {
            checker_names.push(clip(&c.checker, CELL_CHARS));
        }
        for mut row in rows {
            // A key's row links to its first anomaly.
            row.anomaly = (first..anomalies.len()).find(|&i| anomalies[i].0.key == row.key);
            key_rows.push((verdict_rank(&row.verdict), row));
        }
    }
    page.keys_checker = checker_names.join(", ");
    let verdict =
        checkers::Judgement::worst(results.iter().filter(|c| c.promised).map(|c| c.verdict));
    (verdict.name(), anomalies, key_rows)
}

/// Numbers the anomalies in the order they happened, keeps the first [`MAX_ANOMALIES`] in
/// full; returns their timeline flags and, for each anomaly in found order, its number.
fn number_anomalies(page: &mut Page, anomalies: Vec<Found>) -> (Vec<Flag>, Vec<usize>) {
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

    (flags, number)
}

/// The per-key verdicts, bad first.
fn key_table(page: &mut Page, mut key_rows: Vec<(u8, KeyRowDraft)>, number: &[usize]) {
    // Per-key verdicts, bad first.
    key_rows.sort_by_key(|(rank, _)| *rank);
    page.keys_total = key_rows.len();

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
}

fn headline(page: &Page, verdict: &str, results: &Results, ops: &Ops) -> String {
    // The headline.
    match (verdict, results) {
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
    }
}

/// The fault timeline and table.
fn fault_table(page: &mut Page, nodes: &[String], faults: &Faults, end_ns: u64, flags: &[Flag]) {
    // The fault timeline and table.
    page.timeline = draw::timeline(nodes, faults, end_ns, flags);
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
}

/// Throughput and latency.
fn charts(page: &mut Page, ops: &Ops, faults: &Faults) {
    // Throughput and latency.
    let s = series::compute(ops);
    page.bucket = duration(s.bucket_ns);
    page.summarised.push(format!(
        "Throughput and latency: {} completed operations are summarised in {} buckets of {} each (by completion time); latency lines are each bucket's median, dashed lines its 99th percentile.",
        thousands((ops.ops.len() - ops.count(Outcome::Open)) as u64),
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
        let tp = plots::throughput(panel, &s, faults, &names);
        let lt = plots::latency(panel, &s, faults, &names);
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
}
