//! `harness compare`: runs of different systems under the same seed and fault schedule, side by
//! side on one self-contained page, so the CAP trade-off shows: a consensus system's minority
//! side refuses or times out while a partition lasts (consistent, not available), an
//! eventually consistent one answers there (available, and its checkers say what that cost).
//!
//! Per run the page shows how many client operations invoked while a fault was active completed
//! `ok` (and outside faults, and overall), the latency of the `ok` ones, the same split by the
//! node the client talked to (with the side of each partition the node was on), every checker's
//! verdict, and the operations per second over time with the fault windows shaded, every run on
//! one time axis. Fault windows are the intervals of `faults::intervals`, the ones report.html
//! draws; verdicts are read from results.json, never re-derived.

use crate::draw::{self, Axis};
use crate::faults::{self, Faults};
use crate::load::{self, Results, RunFolder};
use crate::ops::{self, Ops, Outcome};
use crate::series::{self, quantile};
use crate::style;
use crate::text::{clip, duration, plural, secs, stamp, thousands, CELL_CHARS, SENTENCE_CHARS};
use crate::{render_template, write_atomically, ReportError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use svg::node::element::path::Data;
use svg::node::element::{Group, Line, Path as SvgPath, Rectangle, Text, Title};

/// The page's file name when `--out` is not given.
pub const COMPARE_FILE: &str = "compare.html";
/// Runs on one page at most: beyond a dozen columns nothing can be compared by eye.
pub const MAX_RUNS: usize = 12;
/// Nodes listed per run at most (the rest are counted).
pub const MAX_NODES: usize = 32;
/// Fault windows listed per run at most.
pub const MAX_WINDOWS_LISTED: usize = 20;

/// How a set of operations ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Never completed in the history (the run ended first): not in the share.
    pub open: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
            Outcome::Open => self.open += 1,
        }
    }

    pub fn completed(&self) -> usize {
        self.ok + self.fail + self.info
    }

    /// The share of completed operations that completed `ok`; `None` when none completed.
    pub fn ok_share(&self) -> Option<f64> {
        let n = self.completed();
        (n > 0).then(|| self.ok as f64 / n as f64)
    }
}

/// Latency of a set of `ok` operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    pub ops: usize,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl Latency {
    /// `None` for no operation.
    pub fn of(mut latencies_ns: Vec<u64>) -> Option<Latency> {
        if latencies_ns.is_empty() {
            return None;
        }
        latencies_ns.sort_unstable();
        Some(Latency {
            ops: latencies_ns.len(),
            p50_ns: quantile(&latencies_ns, 0.5),
            p99_ns: quantile(&latencies_ns, 0.99),
            max_ns: *latencies_ns.last().expect("not empty"),
        })
    }
}

/// One node's operations: those invoked while a fault was active, and the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeAvailability {
    pub node: String,
    pub during: Tally,
    pub outside: Tally,
    /// What the faults did to it, in order of first appearance: "minority side", "majority
    /// side", "partitioned", "killed", "paused", "clock moved", or another fault's name.
    pub roles: Vec<String>,
}

/// The availability of one run.
#[derive(Clone, Debug, Default)]
pub struct Availability {
    /// When any fault was active: `[start, end)`, sorted, merged where they touch.
    pub windows: Vec<(u64, u64)>,
    pub during: Tally,
    pub outside: Tally,
    pub overall: Tally,
    /// Operations invoked on a node while it was on the minority side of a partition that
    /// split the cluster cleanly; and on the majority side.
    pub minority: Tally,
    pub majority: Tally,
    pub latency_overall: Option<Latency>,
    pub latency_during: Option<Latency>,
    /// The cluster's nodes first (run.json's order), then any other node the history names.
    pub nodes: Vec<NodeAvailability>,
    /// Operations whose events name no node.
    pub without_node: usize,
}

/// `[start, end)` windows, sorted and merged where they overlap or touch.
fn merge(mut windows: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    windows.retain(|(s, e)| e > s);
    windows.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(windows.len());
    for (s, e) in windows {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Whether `t` falls in one of the sorted, disjoint `windows`.
fn inside(windows: &[(u64, u64)], t: u64) -> bool {
    let i = windows.partition_point(|w| w.0 <= t);
    i > 0 && t < windows[i - 1].1
}

/// The windows during which any fault of `faults` was active; a fault never stopped lasts
/// through `end_ns` (the history's last event).
pub fn fault_windows(faults: &Faults, end_ns: u64) -> Vec<(u64, u64)> {
    merge(
        faults
            .intervals
            .iter()
            .map(|iv| (iv.start_ns, iv.end_ns(end_ns.saturating_add(1))))
            .collect(),
    )
}

/// What a fault did to `node`, in a word or two.
fn role(iv: &faults::Interval, node: &str, cluster_size: usize) -> Option<String> {
    if iv.kind == "partition" && !iv.groups.is_empty() {
        let group = iv.groups.iter().find(|g| g.iter().any(|n| n == node))?;
        let size = cluster_size.max(iv.groups.iter().map(Vec::len).sum());
        return Some(if group.len() * 2 > size {
            "majority side".to_string()
        } else {
            "minority side".to_string()
        });
    }
    if !iv.nodes.iter().any(|n| n == node) {
        return None;
    }
    Some(match iv.kind.as_str() {
        "partition" => "partitioned".to_string(),
        "kill" => "killed".to_string(),
        "pause" => "paused".to_string(),
        "clock" => "clock moved".to_string(),
        other => clip(other, 40),
    })
}

/// Availability and latency of the client operations of `ops`, split by whether they were
/// invoked while a fault of `faults` was active, and by node. `cluster`: the run's nodes.
pub fn availability(ops: &Ops, faults: &Faults, end_ns: u64, cluster: &[String]) -> Availability {
    let windows = fault_windows(faults, end_ns);
    // Node names: the cluster's, then the history's.
    let mut names: Vec<String> = cluster.to_vec();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, n) in cluster.iter().enumerate() {
        index.entry(n.as_str()).or_insert(i);
    }
    let mut slot: Vec<usize> = Vec::with_capacity(ops.nodes.len());
    for n in &ops.nodes {
        let i = *index.entry(n.as_str()).or_insert_with(|| {
            names.push(n.clone());
            names.len() - 1
        });
        slot.push(i);
    }
    let cluster_size = cluster.len();
    let mut nodes: Vec<NodeAvailability> = names
        .iter()
        .map(|n| NodeAvailability {
            node: n.clone(),
            during: Tally::default(),
            outside: Tally::default(),
            roles: Vec::new(),
        })
        .collect();
    // Per node, when it was on the minority and on the majority side of a clean partition.
    let mut minority_windows: Vec<Vec<(u64, u64)>> = vec![Vec::new(); names.len()];
    let mut majority_windows: Vec<Vec<(u64, u64)>> = vec![Vec::new(); names.len()];
    for iv in &faults.intervals {
        for (i, node) in nodes.iter_mut().enumerate() {
            let Some(r) = role(iv, &node.node, cluster_size) else {
                continue;
            };
            let w = (iv.start_ns, iv.end_ns(end_ns.saturating_add(1)));
            match r.as_str() {
                "minority side" => minority_windows[i].push(w),
                "majority side" => majority_windows[i].push(w),
                _ => {}
            }
            if !node.roles.contains(&r) {
                node.roles.push(r);
            }
        }
    }
    let minority_windows: Vec<Vec<(u64, u64)>> = minority_windows.into_iter().map(merge).collect();
    let majority_windows: Vec<Vec<(u64, u64)>> = majority_windows.into_iter().map(merge).collect();

    let mut out = Availability::default();
    let mut lat_all: Vec<u64> = Vec::new();
    let mut lat_during: Vec<u64> = Vec::new();
    for op in &ops.ops {
        let during = inside(&windows, op.invoke_ns);
        out.overall.add(op.outcome);
        if during {
            out.during.add(op.outcome);
        } else {
            out.outside.add(op.outcome);
        }
        if let (Outcome::Ok, Some(done)) = (op.outcome, op.complete_ns) {
            let ns = done.saturating_sub(op.invoke_ns);
            lat_all.push(ns);
            if during {
                lat_during.push(ns);
            }
        }
        match op.node {
            Some(n) => {
                let i = slot[n as usize];
                let node = &mut nodes[i];
                if during {
                    node.during.add(op.outcome);
                } else {
                    node.outside.add(op.outcome);
                }
                if inside(&minority_windows[i], op.invoke_ns) {
                    out.minority.add(op.outcome);
                } else if inside(&majority_windows[i], op.invoke_ns) {
                    out.majority.add(op.outcome);
                }
            }
            None => out.without_node += 1,
        }
    }
    out.latency_overall = Latency::of(lat_all);
    out.latency_during = Latency::of(lat_during);
    out.windows = windows;
    out.nodes = nodes;
    out
}

/// One run of the comparison, computed.
struct Run {
    folder: RunFolder,
    label: String,
    ops: Ops,
    faults: Faults,
    end_ns: u64,
    availability: Availability,
}

impl Run {
    fn of(folder: RunFolder) -> Run {
        let ops = ops::pair(&folder.events);
        let faults = faults::intervals(&folder.events, &folder.lines);
        let time_limit_ns = folder.run["time_limit_ms"].as_u64().unwrap_or(0) * 1_000_000;
        let end_ns = if ops.end_ns > 0 {
            ops.end_ns
        } else {
            time_limit_ns.max(1_000_000_000)
        };
        let cluster: Vec<String> = folder.run["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| clip(&show(n), CELL_CHARS))
                    .take(MAX_NODES)
                    .collect()
            })
            .unwrap_or_default();
        let availability = availability(&ops, &faults, end_ns, &cluster);
        Run {
            label: String::new(),
            folder,
            ops,
            faults,
            end_ns,
            availability,
        }
    }

    fn field(&self, key: &str) -> String {
        show(&self.folder.run[key])
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => clip(s, CELL_CHARS),
        Value::Array(a) => clip(
            &a.iter().map(show).collect::<Vec<_>>().join(", "),
            CELL_CHARS,
        ),
        other => clip(&other.to_string(), CELL_CHARS),
    }
}

fn percent(share: Option<f64>) -> String {
    match share {
        Some(s) => format!("{:.1}%", s * 100.0),
        None => "—".to_string(),
    }
}

// ---- the page ----

#[derive(Serialize, Debug, Default)]
struct Page {
    title: String,
    rendered_at: String,
    version: &'static str,
    /// Why the comparison is not like for like.
    warnings: Vec<String>,
    /// One sentence per run.
    headline: Vec<String>,
    runs: Vec<RunView>,
    settings: Vec<SettingRow>,
    axis_end: String,
    bucket: String,
    fault_legend: Vec<(String, String)>,
}

#[derive(Serialize, Debug)]
struct SettingRow {
    name: &'static str,
    values: Vec<String>,
    differs: bool,
}

#[derive(Serialize, Debug, Default)]
struct TallyView {
    share: String,
    /// 0 to 100, for the bar's width.
    width: f64,
    ok: String,
    fail: String,
    info: String,
    open: usize,
    completed: String,
}

impl TallyView {
    fn of(t: &Tally) -> TallyView {
        TallyView {
            share: percent(t.ok_share()),
            width: (t.ok_share().unwrap_or(0.0) * 1000.0).round() / 10.0,
            ok: thousands(t.ok as u64),
            fail: thousands(t.fail as u64),
            info: thousands(t.info as u64),
            open: t.open,
            completed: thousands(t.completed() as u64),
        }
    }
}

#[derive(Serialize, Debug, Default)]
struct LatencyView {
    ops: String,
    p50: String,
    p99: String,
    max: String,
}

impl LatencyView {
    fn of(l: &Option<Latency>) -> LatencyView {
        match l {
            Some(l) => LatencyView {
                ops: thousands(l.ops as u64),
                p50: duration(l.p50_ns),
                p99: duration(l.p99_ns),
                max: duration(l.max_ns),
            },
            None => LatencyView {
                ops: "0".into(),
                p50: "—".into(),
                p99: "—".into(),
                max: "—".into(),
            },
        }
    }
}

#[derive(Serialize, Debug)]
struct NodeRow {
    node: String,
    roles: String,
    /// Whether a partition put it on the minority side (the row is marked).
    minority: bool,
    during: TallyView,
    outside: TallyView,
}

#[derive(Serialize, Debug)]
struct CheckerRow {
    name: String,
    verdict: String,
    promised: bool,
    summary: String,
    more: usize,
}

#[derive(Serialize, Debug, Default)]
struct RunView {
    n: usize,
    label: String,
    dir: String,
    verdict: &'static str,
    during: TallyView,
    outside: TallyView,
    overall: TallyView,
    minority: Option<TallyView>,
    majority: Option<TallyView>,
    latency_overall: LatencyView,
    latency_during: LatencyView,
    windows: String,
    faults: Vec<String>,
    faults_more: usize,
    nodes: Vec<NodeRow>,
    nodes_note: Option<String>,
    checkers: Vec<CheckerRow>,
    checkers_note: Option<String>,
    timeline: String,
    notices: Vec<String>,
}

/// The worst verdict among the promised checkers (DESIGN section 7), or why there is none.
fn verdict(results: &Results) -> &'static str {
    match results {
        Results::Loaded(rs) => {
            let promised: Vec<&str> = rs
                .iter()
                .filter(|r| r.promised)
                .map(|r| r.verdict.name())
                .collect();
            if promised.contains(&"invalid") {
                "invalid"
            } else if promised.contains(&"unknown") {
                "unknown"
            } else {
                "valid"
            }
        }
        _ => "not checked",
    }
}

/// "partition (isolate one node) 5.0–10.0 s" per step of run.json's schedule.
fn describe_schedule(schedule: &Value) -> Vec<String> {
    schedule["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    let mut what = show(&s["fault"]);
                    let shape = show(&s["shape"]);
                    if !shape.is_empty() {
                        what = format!("{what} ({shape})");
                    }
                    match (s["start_ms"].as_u64(), s["end_ms"].as_u64()) {
                        (Some(a), Some(b)) => {
                            format!("{what} {:.1}–{:.1} s", a as f64 / 1e3, b as f64 / 1e3)
                        }
                        _ => what,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sentences saying where the runs are not like for like; empty when they are.
fn differences(runs: &[Run]) -> Vec<String> {
    let mut out = Vec::new();
    let each = |values: &[String]| -> String {
        runs.iter()
            .zip(values)
            .map(|(r, v)| {
                format!(
                    "{} for {}",
                    if v.is_empty() { "none" } else { v.as_str() },
                    r.label
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (key, name) in [
        ("seed", "seed"),
        ("workload", "workload"),
        ("nemesis", "nemesis"),
        ("time_limit_ms", "time limit (ms)"),
    ] {
        let values: Vec<String> = runs.iter().map(|r| r.field(key)).collect();
        if values.iter().any(|v| v != &values[0]) {
            out.push(format!("The runs differ in {name}: {}.", each(&values)));
        }
    }
    let sizes: Vec<String> = runs
        .iter()
        .map(|r| {
            r.folder.run["nodes"]
                .as_array()
                .map_or_else(String::new, |a| a.len().to_string())
        })
        .collect();
    if sizes.iter().any(|v| v != &sizes[0]) {
        out.push(format!(
            "The runs differ in the number of nodes: {}.",
            each(&sizes)
        ));
    }
    // The planned schedule (run.json), then the faults as the history recorded them.
    let schedules: Vec<&Value> = runs.iter().map(|r| &r.folder.run["schedule"]).collect();
    if schedules.iter().any(|s| *s != schedules[0]) {
        let described: Vec<String> = schedules
            .iter()
            .map(|s| {
                let steps = describe_schedule(s);
                if steps.is_empty() {
                    "no steps".to_string()
                } else {
                    steps.join("; ")
                }
            })
            .collect();
        let detail = if described.iter().all(|d| d == &described[0]) {
            format!(
                "the same steps ({}), different in detail (targets or timing)",
                described[0]
            )
        } else {
            each(&described)
        };
        out.push(clip(
            &format!("The planned fault schedules (run.json) differ: {detail}."),
            SENTENCE_CHARS,
        ));
    } else if let Some(d) = injected_difference(runs) {
        out.push(d);
    }
    out
}

/// How the faults the histories recorded differ from the first run's, if they do: in kind,
/// target or order, or by more than a second in when they started.
fn injected_difference(runs: &[Run]) -> Option<String> {
    let first = &runs[0];
    for r in &runs[1..] {
        let (a, b) = (&first.faults.intervals, &r.faults.intervals);
        if a.len() != b.len() {
            return Some(format!(
                "The planned schedules agree, but the histories record different faults (a fault \
                 aimed at the leader, or a storm, follows the system): {} for {}, {} for {}.",
                plural(a.len(), "fault window", "fault windows"),
                first.label,
                plural(b.len(), "fault window", "fault windows"),
                r.label
            ));
        }
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let (dx, dy) = (x.describe(), y.describe());
            if dx != dy {
                return Some(clip(
                    &format!(
                        "The planned schedules agree, but the histories record different faults: \
                         fault {} is \"{dx}\" for {} and \"{dy}\" for {}.",
                        i + 1,
                        first.label,
                        r.label
                    ),
                    SENTENCE_CHARS,
                ));
            }
            if x.start_ns.abs_diff(y.start_ns) > 1_000_000_000 {
                return Some(format!(
                    "The histories record fault {} ({}) starting at {} for {} and at {} for {}.",
                    i + 1,
                    clip(&x.kind, 40),
                    secs(x.start_ns),
                    first.label,
                    secs(y.start_ns),
                    r.label
                ));
            }
        }
    }
    None
}

/// Outcomes per bucket (by completion time): `[ok, fail, info]`.
fn buckets(ops: &Ops, bucket_ns: u64, n: usize) -> [Vec<u32>; 3] {
    let mut out = [vec![0u32; n], vec![0u32; n], vec![0u32; n]];
    for op in &ops.ops {
        let Some(t) = op.complete_ns else { continue };
        let row = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
            Outcome::Open => continue,
        };
        let b = ((t / bucket_ns) as usize).min(n - 1);
        out[row][b] += 1;
    }
    out
}

/// The colours of ok, fail and info, as the report's counts show them.
const OUTCOME_COLOURS: [&str; 3] = ["#228833", "#aa3377", "#cc7700"];

/// One run's operations per second, ok / fail / info, over the shared time axis `[0, end_ns]`,
/// with its fault intervals shaded.
fn timeline(run: &Run, counts: &[Vec<u32>; 3], bucket_ns: u64, end_ns: u64, y_max: f64) -> String {
    let (width, height) = (1000.0, 150.0);
    let (left, right, top, bottom) = (56.0, 990.0, 8.0, 124.0);
    let axis = Axis::new(left, right, 0, end_ns);
    // A short last bucket's rate may pass the shared top: drawn at the top.
    let y = |v: f64| bottom - v.min(y_max) / y_max.max(1.0) * (bottom - top);
    let per_s = 1e9 / bucket_ns as f64;
    let mut doc = draw::document(width, height);
    let mut bands = Group::new().set("class", "faults");
    for iv in &run.faults.intervals {
        let (x0, x1) = (axis.x(iv.start_ns), axis.x(iv.end_ns(run.end_ns)));
        bands = bands.add(
            Rectangle::new()
                .set("x", x0)
                .set("y", top)
                .set("width", (x1 - x0).max(1.0))
                .set("height", bottom - top)
                .set("fill", style::css(style::fault_rgb(&iv.kind)))
                .set("fill-opacity", 0.18)
                .add(Title::new(clip(
                    &format!(
                        "{} · {} to {}",
                        iv.describe(),
                        secs(iv.start_ns),
                        iv.stop_ns.map_or_else(|| "the end".to_string(), secs)
                    ),
                    SENTENCE_CHARS,
                ))),
        );
    }
    doc = doc.add(bands).add(axis.ticks(top, bottom));
    // The y axis: 0, half and the top, in operations per second.
    for v in [0.0, y_max / 2.0, y_max] {
        doc = doc
            .add(
                Line::new()
                    .set("x1", left)
                    .set("x2", right)
                    .set("y1", y(v))
                    .set("y2", y(v))
                    .set("stroke", "#eee"),
            )
            .add(
                Text::new(format!("{v:.0}/s"))
                    .set("x", left - 6.0)
                    .set("y", y(v) + 4.0)
                    .set("font-size", 11)
                    .set("text-anchor", "end")
                    .set("fill", "#555"),
            );
    }
    for (row, colour) in counts.iter().zip(OUTCOME_COLOURS) {
        if row.iter().all(|&c| c == 0) {
            continue;
        }
        let mut data = Data::new();
        for (i, &c) in row.iter().enumerate() {
            let from = i as u64 * bucket_ns;
            if from >= run.end_ns && i > 0 {
                break;
            }
            // The run's last bucket may be cut short by its end: a rate over what it covers.
            let covered_ns = bucket_ns.min(run.end_ns.saturating_sub(from)).max(1);
            let rate = if covered_ns < bucket_ns / 10 {
                c as f64 * per_s
            } else {
                c as f64 * 1e9 / covered_ns as f64
            };
            let x = axis.x((from + covered_ns / 2).min(end_ns));
            let point = (x, y(rate));
            data = if i == 0 {
                data.move_to(point)
            } else {
                data.line_to(point)
            };
        }
        doc = doc.add(
            SvgPath::new()
                .set("d", data)
                .set("fill", "none")
                .set("stroke", colour)
                .set("stroke-width", 1.6),
        );
    }
    doc.to_string()
}

fn run_view(run: &Run, n: usize, timeline: String) -> RunView {
    let a = &run.availability;
    let total_window_ns: u64 = a.windows.iter().map(|(s, e)| e - s).sum();
    let windows = if a.windows.is_empty() {
        "no fault was active".to_string()
    } else {
        format!(
            "{} active for {} in all",
            plural(run.faults.intervals.len(), "fault", "faults"),
            duration(total_window_ns)
        )
    };
    let faults: Vec<String> = run
        .faults
        .intervals
        .iter()
        .take(MAX_WINDOWS_LISTED)
        .map(|iv| {
            clip(
                &format!(
                    "{}–{}: {}",
                    secs(iv.start_ns),
                    iv.stop_ns.map_or_else(|| "end".to_string(), secs),
                    iv.describe()
                ),
                SENTENCE_CHARS,
            )
        })
        .collect();
    let nodes: Vec<NodeRow> = a
        .nodes
        .iter()
        .take(MAX_NODES)
        .map(|nd| NodeRow {
            node: clip(&nd.node, CELL_CHARS),
            roles: nd.roles.join(", "),
            minority: nd.roles.iter().any(|r| r == "minority side"),
            during: TallyView::of(&nd.during),
            outside: TallyView::of(&nd.outside),
        })
        .collect();
    let mut notes = Vec::new();
    if a.nodes.len() > MAX_NODES {
        notes.push(format!(
            "{} more nodes are not listed.",
            a.nodes.len() - MAX_NODES
        ));
    }
    if a.without_node > 0 {
        notes.push(format!(
            "{} name no node in the history and are counted in the totals only.",
            plural(a.without_node, "operation", "operations")
        ));
    }
    let (checkers, checkers_note) = match &run.folder.results {
        Results::Loaded(rs) => (
            rs.iter()
                .map(|c| CheckerRow {
                    name: clip(&c.checker, CELL_CHARS),
                    verdict: c.verdict.name().to_string(),
                    promised: c.promised,
                    summary: match c.summary.first() {
                        Some(s) => clip(s.trim(), SENTENCE_CHARS),
                        None if c.verdict.name() == "valid" => "Nothing wrong.".to_string(),
                        None => String::new(),
                    },
                    more: c.summary.len().saturating_sub(1),
                })
                .collect(),
            None,
        ),
        Results::Missing => (
            Vec::new(),
            Some("Not checked: the run folder has no results.json.".to_string()),
        ),
        Results::Unreadable(why) => (Vec::new(), Some(clip(why, SENTENCE_CHARS))),
    };
    let mut notices: Vec<String> = run
        .folder
        .warnings
        .iter()
        .map(|w| clip(w, SENTENCE_CHARS))
        .collect();
    if run.folder.run["interrupted"].as_bool() == Some(true) {
        notices.push("The run was interrupted: its history is a prefix of the plan.".into());
    }
    if run.ops.unmatched > 0 {
        notices.push(format!(
            "{} have no invocation before them and are not counted.",
            plural(run.ops.unmatched, "completion", "completions")
        ));
    }
    let some = |t: &Tally| (t.completed() + t.open > 0).then(|| TallyView::of(t));
    RunView {
        n,
        label: run.label.clone(),
        dir: clip(&run.folder.dir.display().to_string(), SENTENCE_CHARS),
        verdict: verdict(&run.folder.results),
        during: TallyView::of(&a.during),
        outside: TallyView::of(&a.outside),
        overall: TallyView::of(&a.overall),
        minority: some(&a.minority),
        majority: some(&a.majority),
        latency_overall: LatencyView::of(&a.latency_overall),
        latency_during: LatencyView::of(&a.latency_during),
        windows,
        faults,
        faults_more: run
            .faults
            .intervals
            .len()
            .saturating_sub(MAX_WINDOWS_LISTED)
            + run.faults.dropped,
        nodes,
        nodes_note: (!notes.is_empty()).then(|| notes.join(" ")),
        checkers,
        checkers_note,
        timeline,
        notices,
    }
}

/// "raft: 61.2% of operations invoked during faults completed ok (99.8% outside them); on the
/// minority side of a partition 0.0% (n4)".
fn headline(run: &Run) -> String {
    let a = &run.availability;
    if a.windows.is_empty() {
        return format!(
            "{}: no fault was active; {} of all operations completed ok.",
            run.label,
            percent(a.overall.ok_share())
        );
    }
    let mut s = format!(
        "{}: {} of the operations invoked during faults completed ok ({} outside them)",
        run.label,
        percent(a.during.ok_share()),
        percent(a.outside.ok_share())
    );
    if a.minority.completed() > 0 {
        let minority: Vec<&str> = a
            .nodes
            .iter()
            .filter(|n| n.roles.iter().any(|r| r == "minority side"))
            .map(|n| n.node.as_str())
            .collect();
        s.push_str(&format!(
            "; on the minority side of a partition ({}) {}",
            clip(&minority.join(", "), CELL_CHARS),
            percent(a.minority.ok_share())
        ));
        if a.majority.completed() > 0 {
            s.push_str(&format!(
                ", on the majority side {}",
                percent(a.majority.ok_share())
            ));
        }
    }
    s.push('.');
    s
}

fn labels(runs: &mut [Run]) {
    let systems: Vec<String> = runs
        .iter()
        .map(|r| {
            let s = r.field("system");
            if s.is_empty() {
                "run".to_string()
            } else {
                s
            }
        })
        .collect();
    for (i, r) in runs.iter_mut().enumerate() {
        let same = systems.iter().filter(|s| **s == systems[i]).count();
        r.label = if same > 1 {
            format!("{} #{}", systems[i], i + 1)
        } else {
            systems[i].clone()
        };
    }
}

/// The rows of the settings table.
const SETTINGS: [&str; 9] = [
    "system",
    "workload",
    "nemesis",
    "seed",
    "time limit",
    "nodes",
    "fault schedule",
    "started (UTC)",
    "verdict",
];

/// A run's value of one of [`SETTINGS`].
fn setting(name: &str, r: &Run) -> String {
    match name {
        "time limit" => r.folder.run["time_limit_ms"]
            .as_u64()
            .map_or_else(String::new, |ms| duration(ms * 1_000_000)),
        "fault schedule" => {
            let steps = describe_schedule(&r.folder.run["schedule"]);
            if steps.is_empty() {
                "none in run.json".to_string()
            } else {
                clip(&steps.join("; "), SENTENCE_CHARS)
            }
        }
        "started (UTC)" => stamp(&r.field("started_at")),
        "verdict" => verdict(&r.folder.results).to_string(),
        other => r.field(other),
    }
}

fn build(folders: Vec<RunFolder>, rendered_at: String) -> Page {
    let mut runs: Vec<Run> = folders.into_iter().map(Run::of).collect();
    labels(&mut runs);
    let end_ns = runs.iter().map(|r| r.end_ns).max().unwrap_or(1).max(1);
    let bucket_ns = series::bucket_width(end_ns).max(1_000_000_000);
    let n_buckets = (end_ns / bucket_ns + 1) as usize;
    let counts: Vec<[Vec<u32>; 3]> = runs
        .iter()
        .map(|r| buckets(&r.ops, bucket_ns, n_buckets))
        .collect();
    let per_s = 1e9 / bucket_ns as f64;
    let peak = counts
        .iter()
        .flat_map(|c| c.iter().flatten())
        .copied()
        .max()
        .unwrap_or(0) as f64
        * per_s;
    let y_max = crate::text::nice_step(peak.max(1.0), 1.0).max(peak);
    let mut page = Page {
        title: runs
            .iter()
            .map(|r| r.label.clone())
            .collect::<Vec<_>>()
            .join(" vs "),
        rendered_at,
        version: env!("CARGO_PKG_VERSION"),
        warnings: differences(&runs),
        axis_end: secs(end_ns),
        bucket: duration(bucket_ns),
        ..Page::default()
    };
    for name in SETTINGS {
        let values: Vec<String> = runs.iter().map(|r| setting(name, r)).collect();
        let differs = values.iter().any(|v| v != &values[0]);
        page.settings.push(SettingRow {
            name,
            values,
            differs: differs && !matches!(name, "system" | "started (UTC)" | "verdict"),
        });
    }
    let mut kinds: Vec<String> = Vec::new();
    for r in &runs {
        for iv in &r.faults.intervals {
            if !kinds.contains(&iv.kind) {
                kinds.push(iv.kind.clone());
            }
        }
    }
    page.fault_legend = kinds
        .iter()
        .map(|k| (clip(k, 40), style::css(style::fault_rgb(k))))
        .collect();
    for (i, (run, c)) in runs.iter().zip(&counts).enumerate() {
        page.headline.push(headline(run));
        let svg = timeline(run, c, bucket_ns, end_ns, y_max);
        page.runs.push(run_view(run, i + 1, svg));
    }
    page
}

/// The comparison page of loaded run folders, as HTML. At least two, at most [`MAX_RUNS`].
pub fn compare_html(
    folders: Vec<RunFolder>,
    rendered_at: &str,
    out: &Path,
) -> Result<String, ReportError> {
    check_count(folders.len())?;
    let page = build(folders, rendered_at.to_string());
    render_template("compare.html", &page, out)
}

fn check_count(n: usize) -> Result<(), ReportError> {
    if n < 2 {
        return Err(ReportError::Usage(format!(
            "harness compare needs at least two run folders to put side by side (got {n})"
        )));
    }
    if n > MAX_RUNS {
        return Err(ReportError::Usage(format!(
            "harness compare puts at most {MAX_RUNS} runs side by side (got {n})"
        )));
    }
    Ok(())
}

/// What writing a comparison did.
#[derive(Debug, Clone)]
pub struct CompareStats {
    pub path: PathBuf,
    pub bytes: u64,
    pub runs: Vec<String>,
    /// Why the runs are not like for like (also at the top of the page).
    pub warnings: Vec<String>,
}

/// Reads the run folders `dirs` and writes the comparison page to `out`, atomically.
pub fn render_compare(dirs: &[PathBuf], out: &Path) -> Result<CompareStats, ReportError> {
    check_count(dirs.len())?;
    let folders = dirs
        .iter()
        .map(|d| load::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let page = build(folders, crate::utc_now());
    let html = render_template("compare.html", &page, out)?;
    write_atomically(out, html.as_bytes())?;
    Ok(CompareStats {
        path: out.to_path_buf(),
        bytes: html.len() as u64,
        runs: page.runs.iter().map(|r| r.label.clone()).collect(),
        warnings: page.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::{Event, EventType, Process};
    use serde_json::json;

    fn ev(time: u64, process: Process, kind: EventType, f: &str, node: Option<&str>) -> Event {
        Event {
            index: 0,
            time,
            process,
            kind,
            f: f.into(),
            key: Some("k".into()),
            value: Value::Null,
            node: node.map(String::from),
            error: None,
            local: false,
            siblings: false,
            context: None,
        }
    }

    /// An operation of process `p` on `node`, invoked at `at` s and completed 10 ms later.
    fn op(p: u64, at: f64, outcome: EventType, node: &str) -> [Event; 2] {
        let t = (at * 1e9) as u64;
        [
            ev(t, Process::Client(p), EventType::Invoke, "read", Some(node)),
            ev(
                t + 10_000_000,
                Process::Client(p),
                outcome,
                "read",
                Some(node),
            ),
        ]
    }

    fn nemesis(at: f64, f: &str, value: Value) -> Event {
        let mut e = ev(
            (at * 1e9) as u64,
            Process::Nemesis,
            EventType::Info,
            f,
            None,
        );
        e.value = value;
        e.key = None;
        e
    }

    fn cut_off_n3() -> Value {
        json!({"n1": ["n3"], "n2": ["n3"], "n3": ["n1", "n2"]})
    }

    fn compute(events: &[Event]) -> Availability {
        let ops = ops::pair(events);
        let lines: Vec<usize> = (1..=events.len()).collect();
        let faults = faults::intervals(events, &lines);
        let cluster: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        availability(&ops, &faults, ops.end_ns, &cluster)
    }

    #[test]
    fn an_operation_invoked_inside_a_fault_window_counts_there() {
        let mut events = Vec::new();
        events.extend(op(1, 1.0, EventType::Ok, "n1"));
        events.push(nemesis(2.0, "start-partition", cut_off_n3()));
        // Invoked inside, completed after the stop: still during the fault.
        events.extend(op(2, 3.995, EventType::Ok, "n1"));
        events.push(nemesis(4.0, "stop-partition", Value::Null));
        events.extend(op(3, 5.0, EventType::Ok, "n2"));
        let a = compute(&events);
        assert_eq!(a.windows, vec![(2_000_000_000, 4_000_000_000)]);
        assert_eq!((a.during.ok, a.outside.ok, a.overall.ok), (1, 2, 3));
        assert_eq!(a.during.ok_share(), Some(1.0));
        // An operation invoked exactly at the stop is outside.
        assert!(!inside(&a.windows, 4_000_000_000));
        assert!(inside(&a.windows, 2_000_000_000));
    }

    #[test]
    fn info_and_fail_are_not_ok_and_open_is_not_in_the_share() {
        let mut events = vec![nemesis(0.5, "start-kill", json!(["n3"]))];
        events.extend(op(1, 1.0, EventType::Ok, "n1"));
        events.extend(op(2, 1.1, EventType::Fail, "n3"));
        events.extend(op(3, 1.2, EventType::Info, "n3"));
        events.extend(op(4, 1.3, EventType::Info, "n2"));
        // Never completed.
        events.push(ev(
            1_400_000_000,
            Process::Client(5),
            EventType::Invoke,
            "read",
            Some("n1"),
        ));
        let a = compute(&events);
        assert_eq!(
            a.during,
            Tally {
                ok: 1,
                fail: 1,
                info: 2,
                open: 1
            }
        );
        assert_eq!(a.during.ok_share(), Some(0.25));
        assert_eq!(a.outside.ok_share(), None);
        let n3 = &a.nodes[2];
        assert_eq!(
            (n3.node.as_str(), n3.roles.clone()),
            ("n3", vec!["killed".to_string()])
        );
        assert_eq!((n3.during.fail, n3.during.info, n3.during.ok), (1, 1, 0));
    }

    #[test]
    fn the_minority_side_is_split_out_by_node() {
        let mut events = Vec::new();
        events.extend(op(1, 0.5, EventType::Ok, "n3"));
        events.push(nemesis(1.0, "start-partition", cut_off_n3()));
        events.extend(op(2, 1.5, EventType::Ok, "n1"));
        events.extend(op(3, 1.6, EventType::Ok, "n2"));
        events.extend(op(4, 1.7, EventType::Info, "n3"));
        events.extend(op(5, 1.8, EventType::Fail, "n3"));
        events.push(nemesis(3.0, "stop-partition", Value::Null));
        events.extend(op(6, 3.5, EventType::Ok, "n3"));
        let a = compute(&events);
        let by = |n: &str| a.nodes.iter().find(|x| x.node == n).expect("node").clone();
        assert_eq!(by("n3").roles, vec!["minority side"]);
        assert_eq!(by("n1").roles, vec!["majority side"]);
        assert_eq!(by("n3").during.ok_share(), Some(0.0));
        assert_eq!(by("n3").outside.ok_share(), Some(1.0));
        assert_eq!(by("n1").during.ok_share(), Some(1.0));
        assert_eq!((a.minority.completed(), a.minority.ok), (2, 0));
        assert_eq!((a.majority.completed(), a.majority.ok), (2, 2));
        assert_eq!(a.during.ok_share(), Some(0.5));
    }

    #[test]
    fn latency_is_of_ok_operations_overall_and_during_faults() {
        let mut events = Vec::new();
        // 10 ms each (op()), and one slow ok during the fault.
        events.extend(op(1, 0.1, EventType::Ok, "n1"));
        events.push(nemesis(1.0, "start-pause", json!(["n2"])));
        events.push(ev(
            1_100_000_000,
            Process::Client(2),
            EventType::Invoke,
            "read",
            Some("n1"),
        ));
        events.push(ev(
            1_600_000_000,
            Process::Client(2),
            EventType::Ok,
            "read",
            Some("n1"),
        ));
        events.extend(op(3, 1.7, EventType::Info, "n2"));
        events.push(nemesis(2.0, "stop-pause", json!(["n2"])));
        let a = compute(&events);
        let during = a.latency_during.expect("one ok during");
        assert_eq!(
            (during.ops, during.p50_ns, during.max_ns),
            (1, 500_000_000, 500_000_000)
        );
        let all = a.latency_overall.expect("two ok");
        assert_eq!((all.ops, all.max_ns), (2, 500_000_000));
        assert_eq!(Latency::of(Vec::new()), None);
    }

    #[test]
    fn fault_windows_merge_and_unstopped_faults_last_to_the_end() {
        let events = vec![
            nemesis(1.0, "start-kill", json!(["n1"])),
            nemesis(2.0, "start-pause", json!(["n2"])),
            nemesis(3.0, "stop-kill", json!(["n1"])),
            nemesis(4.0, "stop-pause", json!(["n2"])),
            nemesis(6.0, "start-partition", cut_off_n3()),
        ];
        let lines: Vec<usize> = (1..=events.len()).collect();
        let f = faults::intervals(&events, &lines);
        assert_eq!(
            fault_windows(&f, 9_000_000_000),
            vec![
                (1_000_000_000, 4_000_000_000),
                (6_000_000_000, 9_000_000_001)
            ]
        );
    }
}
