//! Drawings built with the `svg` crate: the fault timeline, a linearizability witness as
//! per-process bars, a set anomaly's elements, and a cycle of "must come before" edges.
//!
//! The `svg` crate escapes text nodes but not quotes inside attribute values, so attributes
//! here only ever hold numbers, colours and identifiers this module makes; everything that
//! comes from a run (node names, actions, keys) goes into `<text>` and `<title>` nodes only,
//! clipped by `text::clip`.

use crate::faults::Faults;
use crate::style;
use crate::text::{clip, label as short, nice_step, LABEL_CHARS};
use svg::node::element::path::Data;
use svg::node::element::{
    Anchor, Circle, Definitions, Group, Line, Marker, Path, Rectangle, Text, Title,
};
use svg::Document;

const FONT: &str = "system-ui, sans-serif";
/// Width of an anomaly's flag on the timeline, and lanes of flags at most.
const FLAG_W: f64 = 30.0;
const MAX_LANES: usize = 4;

/// A horizontal time axis: maps nanoseconds to pixels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axis {
    x0: f64,
    x1: f64,
    t0: u64,
    t1: u64,
}

impl Axis {
    pub(crate) fn new(x0: f64, x1: f64, t0: u64, t1: u64) -> Axis {
        Axis {
            x0,
            x1,
            t0,
            t1: t1.max(t0 + 1),
        }
    }

    pub(crate) fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.t0, self.t1);
        self.x0 + (t - self.t0) as f64 / (self.t1 - self.t0) as f64 * (self.x1 - self.x0)
    }

    /// Tick lines and labels (seconds since the run began) from `top` to `bottom`.
    pub(crate) fn ticks(&self, top: f64, bottom: f64) -> Group {
        let span_s = (self.t1 - self.t0) as f64 / 1e9;
        let step = nice_step(span_s, 8.0);
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        let first = (self.t0 as f64 / 1e9 / step).ceil() * step;
        let mut g = Group::new();
        let mut t = first;
        let mut n = 0;
        while t <= self.t1 as f64 / 1e9 + step * 1e-9 && n < 50 {
            let x = self.x((t * 1e9).round() as u64);
            g = g
                .add(
                    Line::new()
                        .set("x1", x)
                        .set("x2", x)
                        .set("y1", top)
                        .set("y2", bottom)
                        .set("stroke", "#e4e4e4"),
                )
                .add(
                    Text::new(format!("{t:.decimals$} s"))
                        .set("x", x)
                        .set("y", bottom + 13.0)
                        .set("font-size", 11)
                        .set("text-anchor", "middle")
                        .set("fill", "#555"),
                );
            t += step;
            n += 1;
        }
        g
    }
}

pub(crate) fn document(width: f64, height: f64) -> Document {
    Document::new()
        .set("viewBox", (0, 0, width, height))
        .set("width", "100%")
        .set("font-family", FONT)
        .set("role", "img")
}

fn label(text: &str, x: f64, y: f64) -> Text {
    Text::new(short(text, LABEL_CHARS))
        .set("x", x)
        .set("y", y)
        .set("font-size", 12)
        .set("fill", "#222")
}

/// A place of an anomaly on the timeline.
#[derive(Clone, Debug)]
pub struct Flag {
    /// The anomaly's element id (its section); the marker gets `tl-<id>`.
    pub id: String,
    /// Short label drawn on the marker ("A1").
    pub label: String,
    pub title: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The fault timeline: a row per node (and one for faults of the whole cluster), each fault
/// interval a bar over the run's time axis, each anomaly a flag linking to its section.
pub fn timeline(nodes: &[String], faults: &Faults, end_ns: u64, markers: &[Flag]) -> String {
    let mut rows: Vec<String> = nodes.to_vec();
    for iv in &faults.intervals {
        for n in &iv.nodes {
            if !rows.contains(n) {
                rows.push(n.clone());
            }
        }
    }
    let cluster_row =
        faults.intervals.iter().any(|iv| iv.nodes.is_empty()) || !faults.instants.is_empty();
    let row_h = 24.0;
    let top = 8.0;
    let width = 1200.0;
    let label_w = 110.0;
    let mut y = top;
    let mut row_y: Vec<(String, f64)> = Vec::new();
    for r in &rows {
        row_y.push((r.clone(), y));
        y += row_h;
    }
    let cluster_y = if cluster_row {
        let at = y;
        y += row_h;
        Some(at)
    } else {
        None
    };
    // Flags that would overlap go to lanes below each other.
    let axis_for_lanes = Axis::new(label_w, width - 30.0, 0, end_ns);
    let mut lane_end: Vec<f64> = Vec::new();
    let mut lanes: Vec<usize> = Vec::with_capacity(markers.len());
    let mut order: Vec<usize> = (0..markers.len()).collect();
    order.sort_by_key(|&i| markers[i].start_ns);
    let mut lane_of = vec![0usize; markers.len()];
    for &i in &order {
        let x = axis_for_lanes.x(markers[i].start_ns);
        let lane = match lane_end.iter().position(|&end| end + 2.0 <= x) {
            Some(l) if l < MAX_LANES => l,
            _ if lane_end.len() < MAX_LANES => {
                lane_end.push(f64::MIN);
                lane_end.len() - 1
            }
            _ => lane_end.len() - 1,
        };
        lane_end[lane] = x + FLAG_W;
        lane_of[i] = lane;
    }
    lanes.extend(lane_of);
    let anomaly_y = if markers.is_empty() {
        None
    } else {
        let at = y;
        y += row_h * lane_end.len().max(1) as f64 + 4.0;
        Some(at)
    };
    let bottom = y;
    let height = bottom + 22.0;
    let axis = Axis::new(label_w, width - 30.0, 0, end_ns);
    let mut doc = document(width, height).set("id", "timeline-svg");
    // Row backgrounds and names.
    for (i, (name, ry)) in row_y.iter().enumerate() {
        if i % 2 == 0 {
            doc = doc.add(
                Rectangle::new()
                    .set("x", label_w)
                    .set("y", *ry)
                    .set("width", axis.x1 - label_w)
                    .set("height", row_h)
                    .set("fill", "#f7f7f7"),
            );
        }
        doc = doc.add(label(name, 6.0, ry + 16.0));
    }
    if let Some(cy) = cluster_y {
        doc = doc.add(label("whole cluster", 6.0, cy + 16.0));
    }
    if let Some(ay) = anomaly_y {
        doc = doc.add(
            label("anomalies", 6.0, ay + 16.0)
                .set("fill", style::ANOMALY)
                .set("font-weight", "bold"),
        );
    }
    doc = doc.add(axis.ticks(top, bottom));
    // Anomaly bands behind the faults, across every row.
    for m in markers {
        let (x0, x1) = (axis.x(m.start_ns), axis.x(m.end_ns));
        doc = doc.add(
            Rectangle::new()
                .set("x", x0 - 1.0)
                .set("y", top)
                .set("width", (x1 - x0).max(2.0) + 2.0)
                .set("height", bottom - top)
                .set("fill", style::ANOMALY)
                .set("fill-opacity", 0.07)
                .set("stroke", style::ANOMALY)
                .set("stroke-opacity", 0.5)
                .set("stroke-width", 1),
        );
    }
    for (i, iv) in faults.intervals.iter().enumerate() {
        let color = style::css(style::fault_rgb(&iv.kind));
        let (x0, x1) = (axis.x(iv.start_ns), axis.x(iv.end_ns(end_ns)));
        let when = match iv.stop_ns {
            Some(s) => format!("{:.3}–{:.3} s", iv.start_ns as f64 / 1e9, s as f64 / 1e9),
            None => format!(
                "from {:.3} s, never stopped in the history",
                iv.start_ns as f64 / 1e9
            ),
        };
        let mut group = Group::new().set("id", format!("fault-{}", i + 1));
        let targets: Vec<(f64, String)> = if iv.nodes.is_empty() {
            cluster_y
                .map(|cy| vec![(cy, iv.describe())])
                .unwrap_or_default()
        } else {
            iv.detail
                .iter()
                .filter_map(|(n, what)| {
                    row_y.iter().find(|(r, _)| r == n).map(|(_, ry)| {
                        let d = if what.is_empty() {
                            format!("{} {n}", iv.kind)
                        } else {
                            format!("{} {n}: {what}", iv.kind)
                        };
                        (*ry, d)
                    })
                })
                .collect()
        };
        for (ry, d) in targets {
            let mut rect = Rectangle::new()
                .set("x", x0)
                .set("y", ry + 4.0)
                .set("width", (x1 - x0).max(2.0))
                .set("height", row_h - 8.0)
                .set("rx", 2)
                .set("fill", color.clone())
                .set("fill-opacity", 0.85);
            if iv.stop_ns.is_none() {
                rect = rect
                    .set("stroke", "#000")
                    .set("stroke-dasharray", "3 2")
                    .set("fill-opacity", 0.5);
            }
            let title = format!(
                "fault {}: {} ({when}; history.jsonl line {})",
                i + 1,
                clip(&d, 300),
                iv.line
            );
            rect = rect.add(Title::new(title.clone()));
            group = group.add(rect);
            // Say on the bar what the fault did, where there is room.
            let room = ((x1 - x0 - 8.0) / 6.4) as usize;
            // What it did, or else its kind, or else nothing (a cut word helps nobody; the
            // colour and the tooltip still say it).
            let what = what_of(&d, &iv.kind);
            let what = if what.chars().count() <= room {
                Some(what)
            } else if iv.kind.chars().count() <= room {
                Some(iv.kind.clone())
            } else {
                None
            };
            if let Some(what) = what {
                group = group.add(
                    Text::new(what)
                        .set("x", x0 + 4.0)
                        .set("y", ry + 16.0)
                        .set("font-size", 11)
                        .set("fill", "#fff")
                        .set("pointer-events", "none"),
                );
            }
        }
        doc = doc.add(group);
    }
    if let Some(cy) = cluster_y {
        for inst in &faults.instants {
            let x = axis.x(inst.time_ns);
            doc = doc.add(
                Line::new()
                    .set("x1", x)
                    .set("x2", x)
                    .set("y1", cy + 3.0)
                    .set("y2", cy + row_h - 3.0)
                    .set("stroke", "#555")
                    .set("stroke-width", 2)
                    .add(Title::new(format!(
                        "nemesis {} at {:.3} s (line {})",
                        clip(&inst.f, 80),
                        inst.time_ns as f64 / 1e9,
                        inst.line
                    ))),
            );
        }
    }
    if let Some(ay) = anomaly_y {
        for (m, lane) in markers.iter().zip(&lanes) {
            let x = axis.x(m.start_ns);
            let ay = ay + row_h * *lane as f64;
            let flag = Group::new()
                .set("id", format!("tl-{}", m.id))
                .set("class", "tl-marker")
                .add(Title::new(clip(&m.title, 400)))
                .add(
                    Rectangle::new()
                        .set("x", x - 1.0)
                        .set("y", ay + 3.0)
                        .set("width", FLAG_W)
                        .set("height", row_h - 6.0)
                        .set("rx", 3)
                        .set("fill", style::ANOMALY),
                )
                .add(
                    Text::new(clip(&m.label, 6))
                        .set("x", x - 1.0 + FLAG_W / 2.0)
                        .set("y", ay + 16.0)
                        .set("font-size", 11)
                        .set("font-weight", "bold")
                        .set("text-anchor", "middle")
                        .set("fill", "#fff"),
                );
            doc = doc.add(Anchor::new().set("href", format!("#{}", m.id)).add(flag));
        }
    }
    doc.to_string()
}

/// The words drawn on a fault's bar: what it did to the node ("does not hear n2, n3"), or its
/// kind when there is nothing more to say.
fn what_of(detail: &str, kind: &str) -> String {
    match detail.split_once(": ") {
        Some((_, what)) if !what.is_empty() => what.to_string(),
        _ => kind.to_string(),
    }
}

/// What an operation is in a witness drawing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// In the longest linearizable prefix (context).
    Prefix,
    /// In the set that cannot be linearized together.
    Window,
    /// Had to be placed next after the prefix and could not be.
    Stuck,
    /// Could have been placed next after the prefix (and each fails).
    Candidate,
}

impl Role {
    fn color(self) -> &'static str {
        match self {
            Role::Prefix => style::PREFIX,
            Role::Window => style::WINDOW,
            Role::Stuck => style::STUCK,
            Role::Candidate => style::CANDIDATE,
        }
    }
}

/// An operation drawn as a bar.
#[derive(Clone, Debug)]
pub struct Bar {
    pub process: u64,
    pub label: String,
    pub title: String,
    pub start_ns: u64,
    /// `None`: never completed (drawn to the right edge, open).
    pub end_ns: Option<u64>,
    /// `info`: its outcome is unknown.
    pub indeterminate: bool,
    pub role: Role,
    /// Its element id, for links from the tables.
    pub id: Option<String>,
}

/// Operations as bars, one row per process, on a time axis spanning them.
pub fn bars(ops: &[Bar]) -> String {
    let width = 1100.0;
    let label_w = 60.0;
    let row_h = 34.0;
    let t0 = ops.iter().map(|b| b.start_ns).min().unwrap_or(0);
    let t_last = ops
        .iter()
        .map(|b| b.end_ns.unwrap_or(b.start_ns))
        .max()
        .unwrap_or(t0);
    // Some room on the right for open bars and labels.
    let pad = ((t_last - t0) / 12).max(1_000);
    let t1 = t_last + pad;
    let mut processes: Vec<u64> = Vec::new();
    for b in ops {
        if !processes.contains(&b.process) {
            processes.push(b.process);
        }
    }
    let top = 6.0;
    let bottom = top + row_h * processes.len() as f64;
    let axis = Axis::new(label_w, width - 30.0, t0, t1);
    let mut doc = document(width, bottom + 22.0);
    for (i, p) in processes.iter().enumerate() {
        let y = top + row_h * i as f64;
        if i % 2 == 0 {
            doc = doc.add(
                Rectangle::new()
                    .set("x", label_w)
                    .set("y", y)
                    .set("width", axis.x1 - label_w)
                    .set("height", row_h)
                    .set("fill", "#f7f7f7"),
            );
        }
        doc = doc.add(label(&format!("p{p}"), 6.0, y + 24.0));
    }
    doc = doc.add(axis.ticks(top, bottom));
    // Labels go where they do not overlap another on the same row, the most telling first
    // (the operation that cannot be placed, then candidates, the set, the prefix); the rest
    // keep their tooltip.
    let mut by_priority: Vec<usize> = (0..ops.len()).collect();
    by_priority.sort_by_key(|&i| match ops[i].role {
        Role::Stuck => 0,
        Role::Candidate => 1,
        Role::Window => 2,
        Role::Prefix => 3,
    });
    let mut taken: Vec<Vec<(f64, f64)>> = vec![Vec::new(); processes.len()];
    let mut label_at: Vec<Option<(f64, bool)>> = vec![None; ops.len()];
    for &i in &by_priority {
        let b = &ops[i];
        let row = processes.iter().position(|p| *p == b.process).unwrap_or(0);
        let text_w = short(&b.label, 30).chars().count() as f64 * 6.2;
        let x0 = axis.x(b.start_ns);
        // Right-aligned at the bar's start when it would run off the drawing.
        let (from, to, end_anchor) = if x0 + text_w > width - 4.0 {
            (x0 - text_w, x0, true)
        } else {
            (x0, x0 + text_w, false)
        };
        if taken[row]
            .iter()
            .all(|&(a, z)| to + 4.0 <= a || from >= z + 4.0)
        {
            taken[row].push((from, to));
            label_at[i] = Some((x0, end_anchor));
        }
    }
    for (i, b) in ops.iter().enumerate() {
        let row = processes.iter().position(|p| *p == b.process).unwrap_or(0);
        let y = top + row_h * row as f64;
        let x0 = axis.x(b.start_ns);
        let x1 = b.end_ns.map_or(axis.x1, |e| axis.x(e));
        let mut rect = Rectangle::new()
            .set("x", x0)
            .set("y", y + 17.0)
            .set("width", (x1 - x0).max(3.0))
            .set("height", 12)
            .set("rx", 2)
            .set("fill", b.role.color());
        if b.indeterminate || b.end_ns.is_none() {
            rect = rect
                .set("fill-opacity", 0.45)
                .set("stroke", b.role.color())
                .set("stroke-dasharray", "4 2");
        }
        let mut g = Group::new().add(Title::new(clip(&b.title, 600))).add(rect);
        if let Some((x, end_anchor)) = label_at[i] {
            g = g.add(
                Text::new(short(&b.label, 30))
                    .set("x", x)
                    .set("y", y + 13.0)
                    .set("font-size", 11)
                    .set("text-anchor", if end_anchor { "end" } else { "start" })
                    .set("fill", "#222"),
            );
        }
        if let Some(id) = &b.id {
            g = g.set("id", id.clone());
        }
        doc = doc.add(g);
    }
    doc.to_string()
}

/// One anomalous element of a set, drawn on the run's time axis.
#[derive(Clone, Debug)]
pub struct ElementRow {
    pub label: String,
    pub title: String,
    /// The add: invoked, and completed (`None`: never, or no add at all).
    pub add: Option<(u64, Option<u64>)>,
    /// Reads that contained the element (completion times).
    pub seen: Vec<u64>,
    /// Reads that did not (completion times).
    pub missed: Vec<u64>,
}

/// Set elements, one row each: the add as a bar, reads that saw it as green dots and reads
/// that missed it as red crosses, over the run with its faults shaded.
pub fn elements(rows: &[ElementRow], faults: &Faults, end_ns: u64) -> String {
    let width = 1100.0;
    let label_w = 150.0;
    let row_h = 22.0;
    let top = 6.0;
    let bottom = top + row_h * rows.len() as f64;
    let axis = Axis::new(label_w, width - 30.0, 0, end_ns);
    let mut doc = document(width, bottom + 22.0);
    for iv in &faults.intervals {
        let (x0, x1) = (axis.x(iv.start_ns), axis.x(iv.end_ns(end_ns)));
        doc = doc.add(
            Rectangle::new()
                .set("x", x0)
                .set("y", top)
                .set("width", (x1 - x0).max(1.0))
                .set("height", bottom - top)
                .set("fill", style::css(style::fault_rgb(&iv.kind)))
                .set("fill-opacity", 0.15)
                .add(Title::new(clip(&iv.describe(), 300))),
        );
    }
    doc = doc.add(axis.ticks(top, bottom));
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let mid = y + row_h / 2.0;
        let mut g =
            Group::new()
                .add(Title::new(clip(&r.title, 600)))
                .add(label(&r.label, 6.0, y + 15.0));
        if let Some((start, end)) = r.add {
            let x0 = axis.x(start);
            let x1 = end.map_or(axis.x1, |e| axis.x(e));
            g = g.add(
                Rectangle::new()
                    .set("x", x0)
                    .set("y", mid - 5.0)
                    .set("width", (x1 - x0).max(3.0))
                    .set("height", 10)
                    .set("fill", style::WINDOW),
            );
        }
        for &t in &r.seen {
            g = g.add(
                Circle::new()
                    .set("cx", axis.x(t))
                    .set("cy", mid)
                    .set("r", 4)
                    .set("fill", style::SEEN),
            );
        }
        for &t in &r.missed {
            let x = axis.x(t);
            let d = Data::new()
                .move_to((x - 4.0, mid - 4.0))
                .line_to((x + 4.0, mid + 4.0))
                .move_to((x - 4.0, mid + 4.0))
                .line_to((x + 4.0, mid - 4.0));
            g = g.add(
                Path::new()
                    .set("d", d)
                    .set("stroke", style::ANOMALY)
                    .set("stroke-width", 2.5),
            );
        }
        doc = doc.add(g);
    }
    doc.to_string()
}

/// A cycle of "must come before" edges: its nodes on a circle, each edge an arrow numbered as
/// in the sentences under the drawing.
pub fn cycle(edges: &[(String, String)]) -> String {
    let mut names: Vec<String> = Vec::new();
    for (a, b) in edges {
        for n in [a, b] {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let n = names.len().max(1) as f64;
    let (width, height) = (1100.0, 300.0);
    let (cx, cy, rx, ry) = (width / 2.0, height / 2.0, 300.0, 110.0);
    let pos = |i: usize| {
        let a = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n;
        (cx + rx * a.cos(), cy + ry * a.sin())
    };
    let arrow = Marker::new()
        .set("id", "arrowhead")
        .set("viewBox", (0, 0, 10, 10))
        .set("refX", 9)
        .set("refY", 5)
        .set("markerWidth", 7)
        .set("markerHeight", 7)
        .set("orient", "auto-start-reverse")
        .add(
            Path::new()
                .set(
                    "d",
                    Data::new()
                        .move_to((0, 0))
                        .line_to((10, 5))
                        .line_to((0, 10))
                        .close(),
                )
                .set("fill", style::ANOMALY),
        );
    let mut doc = document(width, height).add(Definitions::new().add(arrow));
    for (k, (a, b)) in edges.iter().enumerate() {
        let ia = names.iter().position(|x| x == a).unwrap_or(0);
        let ib = names.iter().position(|x| x == b).unwrap_or(0);
        let (p, q) = (pos(ia), pos(ib));
        // Bend each edge to its left, so the two edges of a two-cycle do not overlap.
        let (mx, my) = ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0);
        let (dx, dy) = (q.0 - p.0, q.1 - p.1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let bend = 45.0;
        let ctrl = (mx - dy / len * bend, my + dx / len * bend);
        // Stop short of the node boxes.
        let shorten = |from: (f64, f64), to: (f64, f64), by: f64| {
            let (ux, uy) = (to.0 - from.0, to.1 - from.1);
            let l = (ux * ux + uy * uy).sqrt().max(1.0);
            (from.0 + ux / l * by, from.1 + uy / l * by)
        };
        let start = shorten(p, ctrl, 18.0);
        let end = shorten(q, ctrl, 18.0);
        let d = Data::new()
            .move_to(start)
            .quadratic_curve_to((ctrl.0, ctrl.1, end.0, end.1));
        doc = doc
            .add(
                Path::new()
                    .set("d", d)
                    .set("fill", "none")
                    .set("stroke", style::ANOMALY)
                    .set("stroke-width", 2)
                    .set("marker-end", "url(#arrowhead)"),
            )
            .add(
                Circle::new()
                    .set("cx", ctrl.0)
                    .set("cy", ctrl.1)
                    .set("r", 10)
                    .set("fill", "#fff")
                    .set("stroke", style::ANOMALY),
            )
            .add(
                Text::new(format!("{}", k + 1))
                    .set("x", ctrl.0)
                    .set("y", ctrl.1 + 4.0)
                    .set("font-size", 12)
                    .set("text-anchor", "middle")
                    .set("fill", style::ANOMALY),
            );
    }
    for (i, name) in names.iter().enumerate() {
        let (x, y) = pos(i);
        let text = short(name, 60);
        let w = (text.chars().count() as f64 * 6.6 + 16.0).min(420.0);
        doc = doc.add(
            Group::new()
                .add(Title::new(clip(name, 600)))
                .add(
                    Rectangle::new()
                        .set("x", x - w / 2.0)
                        .set("y", y - 14.0)
                        .set("width", w)
                        .set("height", 28)
                        .set("rx", 6)
                        .set("fill", "#fff")
                        .set("stroke", "#333"),
                )
                .add(
                    Text::new(text)
                        .set("x", x)
                        .set("y", y + 4.0)
                        .set("font-size", 12)
                        .set("text-anchor", "middle")
                        .set("fill", "#222"),
                ),
        );
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Interval;

    #[test]
    fn text_from_a_run_is_escaped_in_drawings() {
        let faults = Faults {
            intervals: vec![Interval {
                kind: "partition".into(),
                start_ns: 10,
                stop_ns: Some(20),
                nodes: vec!["<script>n1</script>".into()],
                detail: vec![("<script>n1</script>".into(), "\"quoted\" & <b>".into())],
                summary: None,
                groups: Vec::new(),
                line: 3,
            }],
            ..Faults::default()
        };
        let svg = timeline(&["n2".into()], &faults, 100, &[]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;n1&lt;/script&gt;"));
        let svg = bars(&[Bar {
            process: 1,
            label: "read <img src=x onerror=alert(1)>".into(),
            title: "\"><script>alert(1)</script>".into(),
            start_ns: 5,
            end_ns: None,
            indeterminate: true,
            role: Role::Stuck,
            id: None,
        }]);
        assert!(!svg.contains("<img") && !svg.contains("<script>"), "{svg}");
    }

    #[test]
    fn markers_link_to_their_anomaly() {
        let svg = timeline(
            &["n1".into()],
            &Faults::default(),
            1_000_000_000,
            &[Flag {
                id: "anomaly-1".into(),
                label: "A1".into(),
                title: "key k1".into(),
                start_ns: 500_000_000,
                end_ns: 600_000_000,
            }],
        );
        assert!(svg.contains(r##"href="#anomaly-1""##), "{svg}");
        assert!(svg.contains(r#"id="tl-anomaly-1""#), "{svg}");
    }
}
