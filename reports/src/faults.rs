//! Fault intervals from the nemesis's events in the history (shared/DESIGN.md section 2): each
//! start of a fault opens an interval and the matching stop closes it. The events are read as
//! `history::nemesis::NemesisEvent`s, whose kinds are grouped by family (every clock fault is
//! `clock`).
//!
//! The values the harness writes (nemesis/src/faults/): `start-partition` carries the grudge
//! (`{"n1": ["n2", "n3"]}`: n1 stops hearing n2 and n3), `stop-partition` null; `start-pause`,
//! `stop-pause`, `start-kill`, `stop-kill` and `stop-clock` carry the list of nodes;
//! `start-clock` and `start-clock-strobe` carry `{"nodes": [...], "offset_ms": ..}`;
//! `start-loss` carries `{"percent": ..}`, `start-slow` `{"kbit": ..}` and `start-delay`
//! `{"mean_ms": .., "jitter_ms": ..}`; those hit every link. `start-disk` carries
//! `{"shape": .., "nodes": [...], "lost": {node: {files, bytes, dir_ops, torn}}}` (what a
//! power loss discarded), `stop-disk` the nodes. The crash loop and the election
//! storm write one `start-kill`/`stop-kill` (or `start-pause`/`stop-pause`) pair per node they
//! take, often many a second. A `start-partition` may follow a
//! `stop-partition` within a second (the leader-churn fault re-targets its cut). A new start of
//! a fault on nodes that are already under it replaces the old interval (a partition replaces
//! the previous grudge). Other nemesis events (imported histories) become instants.

use history::nemesis::{NemesisEvent, Phase};
use history::{Event, EventType, Process};
use serde_json::Value;
use std::collections::BTreeSet;

/// Intervals listed and drawn at most (the rest are counted, and the page says so).
pub const MAX_INTERVALS: usize = 2_000;

/// One fault, from its start to its stop.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// `partition`, `pause`, `kill`, `clock`, `loss`, or the verb of another fault.
    pub kind: String,
    pub start_ns: u64,
    /// `None`: never stopped in the history (the run ended or was killed first).
    pub stop_ns: Option<u64>,
    /// The nodes it hits; empty for a fault of the whole cluster (loss).
    pub nodes: Vec<String>,
    /// One phrase per node in `nodes` (or one for the cluster): "does not hear n2, n3".
    pub detail: Vec<(String, String)>,
    /// The fault in a few words, when it has a simple shape ("n4 cut off from n1, n2, n3").
    pub summary: Option<String>,
    /// A partition that splits its nodes cleanly: the groups that hear each other (sorted);
    /// empty for any other fault.
    pub groups: Vec<Vec<String>>,
    /// Line of the start event in history.jsonl.
    pub line: usize,
}

impl Interval {
    pub fn end_ns(&self, run_end_ns: u64) -> u64 {
        self.stop_ns.unwrap_or(run_end_ns).max(self.start_ns)
    }

    /// Whether the fault was active at some point of `[from, to]`.
    pub fn overlaps(&self, from: u64, to: u64, run_end_ns: u64) -> bool {
        self.start_ns <= to && self.end_ns(run_end_ns) >= from
    }

    /// "partition of n1 (does not hear n2, n3) and n2 (…)".
    pub fn describe(&self) -> String {
        if let Some(s) = &self.summary {
            return format!("{}: {s}", self.kind);
        }
        if self.detail.is_empty() {
            return self.kind.clone();
        }
        let parts: Vec<String> = self
            .detail
            .iter()
            .map(|(who, what)| {
                if what.is_empty() {
                    who.clone()
                } else {
                    format!("{who} ({what})")
                }
            })
            .collect();
        format!("{}: {}", self.kind, parts.join("; "))
    }
}

/// A nemesis event that is not part of an interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Instant {
    pub f: String,
    pub time_ns: u64,
    pub line: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub intervals: Vec<Interval>,
    pub instants: Vec<Instant>,
    /// Intervals (and instants) beyond [`MAX_INTERVALS`], not kept.
    pub dropped: usize,
}

impl Faults {
    /// The faults active at some point of `[from, to]`, described.
    pub fn active(&self, from: u64, to: u64, run_end_ns: u64) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for iv in &self.intervals {
            if iv.overlaps(from, to, run_end_ns) {
                let d = iv.describe();
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The nodes an event's value names, with a phrase for each.
fn targets(kind: &str, value: &Value) -> Vec<(String, String)> {
    match value {
        Value::Array(_) => strings(value)
            .into_iter()
            .map(|n| (n, String::new()))
            .collect(),
        Value::Object(m) if m.contains_key("nodes") => {
            let what = match (m.get("offset_ms"), m.get("period_ms")) {
                (Some(o), Some(p)) => format!("clock flips between 0 and {o} ms every {p} ms"),
                (Some(o), None) => format!("clock moved by {o} ms"),
                _ => String::new(),
            };
            strings(&m["nodes"])
                .into_iter()
                .map(|n| {
                    let what = match m.get("shape").and_then(Value::as_str) {
                        Some(shape) => disk_phrase(shape, m.get("lost").and_then(|l| l.get(&n))),
                        None => what.clone(),
                    };
                    (n, what)
                })
                .collect()
        }
        Value::Object(m) if kind == "partition" => {
            // A grudge: each key stops hearing the nodes listed. Every node in it is hit.
            let mut nodes: BTreeSet<String> = BTreeSet::new();
            for (k, v) in m {
                nodes.insert(k.clone());
                nodes.extend(strings(v));
            }
            nodes
                .into_iter()
                .map(|n| {
                    let deaf = m.get(&n).map(strings).unwrap_or_default();
                    let what = if deaf.is_empty() {
                        "others do not hear it".to_string()
                    } else {
                        format!("does not hear {}", deaf.join(", "))
                    };
                    (n, what)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// A disk fault on one node, in words (`start-disk` carries `{"shape", "nodes", "lost"}`).
fn disk_phrase(shape: &str, lost: Option<&Value>) -> String {
    match shape {
        "fsync-error" => "fsync fails with EIO".into(),
        "slow" => "every fsync is slow".into(),
        _ => {
            let n = |k: &str| {
                lost.and_then(|l| l.get(k))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            let mut s = format!(
                "power lost: {} unsynced bytes in {} files discarded, {} directory operations \
                 undone",
                n("bytes"),
                n("files"),
                n("dir_ops")
            );
            if shape == "torn" {
                s.push_str(&format!(", {} last writes torn", n("torn")));
            }
            s
        }
    }
}

/// The groups a grudge splits its nodes into, each hearing itself and nothing of the others;
/// `None` when the cuts are one-way or do not form clean groups (a bridge, a ring), or when
/// nothing is split.
pub fn partition_groups(grudge: &serde_json::Map<String, Value>) -> Option<Vec<Vec<String>>> {
    let mut nodes: BTreeSet<String> = BTreeSet::new();
    for (k, v) in grudge {
        nodes.insert(k.clone());
        nodes.extend(strings(v));
    }
    let cut = |a: &str, b: &str| {
        grudge
            .get(a)
            .map(|v| strings(v).iter().any(|x| x == b))
            .unwrap_or(false)
    };
    let nodes: Vec<String> = nodes.into_iter().collect();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for n in &nodes {
        match groups.iter_mut().find(|g| !cut(n, &g[0]) && !cut(&g[0], n)) {
            Some(g) => g.push(n.clone()),
            None => groups.push(vec![n.clone()]),
        }
    }
    // Clean: within a group nobody is cut, across groups every link is cut both ways.
    for (i, g) in groups.iter().enumerate() {
        for a in g {
            for (j, h) in groups.iter().enumerate() {
                for b in h {
                    let (ab, ba) = (cut(a, b), cut(b, a));
                    let clean = if i == j { !ab && !ba } else { ab && ba };
                    if a != b && !clean {
                        return None;
                    }
                }
            }
        }
    }
    (groups.len() > 1).then_some(groups)
}

/// A grudge that splits its nodes into groups ([`partition_groups`]), in words: "n4 cut off
/// from n1, n2, n3, n5", or "n1, n2 | n3, n4, n5".
fn partition_summary(grudge: &serde_json::Map<String, Value>) -> Option<String> {
    let groups = partition_groups(grudge)?;
    match groups.len() {
        2 if (groups[0].len() == 1) != (groups[1].len() == 1) => {
            let (alone, rest) = if groups[0].len() == 1 {
                (&groups[0], &groups[1])
            } else {
                (&groups[1], &groups[0])
            };
            Some(format!("{} cut off from {}", alone[0], rest.join(", ")))
        }
        _ => Some(
            groups
                .iter()
                .map(|g| g.join(", "))
                .collect::<Vec<_>>()
                .join(" | "),
        ),
    }
}

/// Cluster-wide phrase for faults without nodes.
fn cluster_detail(kind: &str, value: &Value) -> Vec<(String, String)> {
    match (kind, value) {
        ("loss", Value::Object(m)) => match m.get("percent") {
            Some(p) => vec![("all links".into(), format!("{p}% of packets dropped"))],
            None => Vec::new(),
        },
        ("partition", Value::Object(m)) if m.is_empty() => {
            vec![("no link".into(), "the grudge was empty".into())]
        }
        _ => Vec::new(),
    }
}

/// Intervals from the nemesis events of `events` (`lines`: each event's line).
pub fn intervals(events: &[Event], lines: &[usize]) -> Faults {
    let mut out = Faults::default();
    // Indices into out.intervals of the open intervals.
    let mut open: Vec<usize> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.process != Process::Nemesis || e.kind == EventType::Invoke {
            continue;
        }
        let line = lines.get(i).copied().unwrap_or(i + 1);
        let Some(ev) = NemesisEvent::from_event(e) else {
            if out.instants.len() >= MAX_INTERVALS {
                out.dropped += 1;
                continue;
            }
            out.instants.push(Instant {
                f: e.f.clone(),
                time_ns: e.time,
                line,
            });
            continue;
        };
        let kind = ev.kind.family().to_string();
        match ev.phase {
            Phase::Start => {
                let detail = targets(&kind, &ev.value);
                let nodes: Vec<String> = detail.iter().map(|(n, _)| n.clone()).collect();
                // The same fault started again on nodes it already holds replaces it.
                open.retain(|&j| {
                    let iv: &mut Interval = &mut out.intervals[j];
                    let replaced = iv.kind == kind
                        && (nodes.is_empty()
                            || iv.nodes.is_empty()
                            || iv.nodes.iter().any(|n| nodes.contains(n)));
                    if replaced {
                        iv.stop_ns = Some(e.time);
                    }
                    !replaced
                });
                if out.intervals.len() >= MAX_INTERVALS {
                    out.dropped += 1;
                    continue;
                }
                let detail = if detail.is_empty() {
                    cluster_detail(&kind, &ev.value)
                } else {
                    detail
                };
                let (summary, groups) = match (&ev.value, kind.as_str()) {
                    (Value::Object(m), "partition") => (
                        partition_summary(m),
                        partition_groups(m).unwrap_or_default(),
                    ),
                    _ => (None, Vec::new()),
                };
                open.push(out.intervals.len());
                out.intervals.push(Interval {
                    kind,
                    start_ns: e.time,
                    stop_ns: None,
                    nodes,
                    detail,
                    summary,
                    groups,
                    line,
                });
            }
            Phase::Stop => {
                let nodes = match &ev.value {
                    Value::Array(_) => strings(&ev.value),
                    _ => Vec::new(),
                };
                let matches = |iv: &Interval| {
                    iv.kind == kind
                        && (nodes.is_empty() || iv.nodes.iter().any(|n| nodes.contains(n)))
                };
                // A stop naming nodes none of the open intervals hold closes them all.
                let any = open.iter().any(|&j| matches(&out.intervals[j]));
                open.retain(|&j| {
                    let iv = &mut out.intervals[j];
                    let close = iv.kind == kind && (!any || matches(iv));
                    if close {
                        iv.stop_ns = Some(e.time);
                    }
                    !close
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nem(time: u64, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
            local: false,
            siblings: false,
            context: None,
        }
    }

    #[test]
    fn starts_and_stops_pair_up_by_fault_and_node() {
        let events = vec![
            nem(10, "start-partition", json!({"n1": ["n2"], "n2": ["n1"]})),
            nem(20, "stop-partition", Value::Null),
            nem(21, "start-partition", json!({"n3": ["n1"]})),
            nem(30, "start-kill", json!(["n2"])),
            nem(
                35,
                "start-clock-strobe",
                json!({"nodes": ["n4"], "offset_ms": 500, "period_ms": 100}),
            ),
            nem(40, "stop-kill", json!(["n2"])),
            nem(45, "stop-clock", json!(["n4"])),
            nem(50, "start-loss", json!({"percent": 20})),
            nem(60, "hiccup", Value::Null),
        ];
        let lines: Vec<usize> = (1..=events.len()).collect();
        let f = intervals(&events, &lines);
        let iv = &f.intervals;
        assert_eq!(iv.len(), 5);
        assert_eq!((iv[0].start_ns, iv[0].stop_ns), (10, Some(20)));
        assert_eq!(iv[0].nodes, vec!["n1", "n2"]);
        assert_eq!(iv[0].detail[0].1, "does not hear n2");
        assert_eq!(iv[0].describe(), "partition: n1 | n2");
        // The second partition is never stopped: open to the end.
        assert_eq!(iv[1].stop_ns, None);
        assert_eq!(iv[1].nodes, vec!["n1", "n3"]);
        assert_eq!((iv[2].kind.as_str(), iv[2].stop_ns), ("kill", Some(40)));
        assert_eq!((iv[3].kind.as_str(), iv[3].stop_ns), ("clock", Some(45)));
        assert!(iv[3].detail[0].1.contains("every 100 ms"));
        assert!(iv[4].nodes.is_empty() && iv[4].describe().contains("20%"));
        assert_eq!(f.instants.len(), 1);
        assert_eq!(f.active(36, 37, 100).len(), 3);
    }

    #[test]
    fn partitions_are_summarised_when_they_split_cleanly() {
        let grudge = |v: Value| match v {
            Value::Object(m) => partition_summary(&m),
            _ => None,
        };
        assert_eq!(
            grudge(json!({"n1": ["n3"], "n2": ["n3"], "n3": ["n1", "n2"]})).as_deref(),
            Some("n3 cut off from n1, n2")
        );
        assert_eq!(
            grudge(json!({"n1": ["n3", "n4"], "n2": ["n3", "n4"], "n3": ["n1", "n2"], "n4": ["n1", "n2"]})).as_deref(),
            Some("n1, n2 | n3, n4")
        );
        // One-way: no clean groups.
        assert_eq!(grudge(json!({"n1": ["n2"]})), None);
    }

    #[test]
    fn a_new_partition_replaces_the_open_one() {
        let events = vec![
            nem(10, "start-partition", json!({"n1": ["n2"]})),
            nem(15, "start-partition", json!({"n2": ["n1"]})),
            nem(20, "stop-partition", Value::Null),
        ];
        let f = intervals(&events, &[1, 2, 3]);
        assert_eq!(f.intervals[0].stop_ns, Some(15));
        assert_eq!(f.intervals[1].stop_ns, Some(20));
    }
}
