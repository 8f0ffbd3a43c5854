//! The set checker: Jepsen's `set-full` checker (jepsen.checker/set-full, Kingsbury) adapted to
//! histories of `add` and `read` operations on set keys, key by key.
//!
//! Definitions, per key (positions are positions in the history, so "after" is the order the
//! harness observed):
//!
//! - An element is **attempted** when some `add` of it was invoked, **acknowledged** when some
//!   add of it completed `ok`, **failed** when every add of it completed `fail`, and
//!   **indeterminate** otherwise (an add completed `info` or never completed).
//! - The **final reads** are the `ok` reads of the key invoked after the completion of every add
//!   of that key that has a completion. An add that never completed imposes no bound: it may take
//!   effect after any read, and its element can never be lost. A key with no final read gets
//!   `Unknown` ("no final read"), unless it shows an anomaly anyway.
//!
//! Anomalies (each makes the key `Invalid`):
//!
//! - **lost**: an acknowledged element that some final read does not contain. Every final read
//!   began after the add returned `ok`, so a set that keeps what it acknowledges must show it.
//! - **unexpected**: a read returned an element no add ever attempted.
//! - **vanished**: an `ok` read R1 contained the element and a later `ok` read R2, invoked after
//!   R1 completed, did not. A linearizable grow-only set never loses an element. A lost element
//!   is reported as lost only (its record says where it was last seen).
//! - **failed-but-present**: every add of the element completed `fail`, a promise that it would
//!   never take effect (shared/DESIGN.md section 3), yet a read returned it.
//!
//! An indeterminate element that a read returns is fine: it is counted as **recovered**.
//!
//! **Stable latency** (set-full's `stable-latencies`; what Maelstrom's broadcast challenge
//! reports as latency to visibility): for each acknowledged element that is not lost and that
//! some read returned, the time from the invocation of its first add until the invocation of
//! the last `ok` read (on any node, final reads included) that did not contain it, or 0 when
//! no read invoked after the add missed it. From then on every read contained it, so this is
//! a lower bound on how long the element took to be visible everywhere. Each key's median, 95th
//! percentile and maximum are in its `stable_latency`, all keys' together in the report's, and
//! the summary says them.
//!
//! **Eventual mode** (`Options::eventual`, chosen when the system promises `no-lost-updates`
//! but not linearizability): a replica may be stale, so a vanished element is counted and
//! noted as allowed, not a violation; lost, unexpected and failed-but-present still are. The
//! final reads of a key that has local final reads (one per node, after recovery) are those
//! alone: a client's read during the run may come from a replica that has not caught up yet.

use crate::lin::Verdict;
use crate::registry::Checker;
use crate::result::{natural_key, secs, widen, Anomaly, CheckerResult, Judgement};
use history::{EventType, History, Paired};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Reads listed per anomalous element (the rest are counted).
pub const MAX_READS_LISTED: usize = 10;
/// Elements listed per anomaly kind per key (the rest are counted).
pub const MAX_ELEMENTS_LISTED: usize = 1000;
/// Sentences per anomaly kind per key.
pub const MAX_SENTENCES: usize = 20;

#[derive(Clone, Debug, Serialize)]
pub struct SetReport {
    pub checker: &'static str,
    /// `linearizable` or `eventual` (see the module documentation).
    pub mode: &'static str,
    /// `invalid` when any key is, else `unknown` when any key is (or there is no set operation
    /// at all), else `valid`.
    pub verdict: &'static str,
    pub keys: Vec<SetKeyResult>,
    /// Every key's stable latencies together (see the module documentation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_latency: Option<Latencies>,
    pub elapsed_us: u64,
}

/// Quantiles of the stable latencies of some elements, in nanoseconds (nearest rank).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// How many elements were measured.
    pub count: usize,
    pub median_ns: u64,
    pub p95_ns: u64,
    pub max_ns: u64,
    /// The element that took longest (per key only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowest: Option<Value>,
}

impl Latencies {
    /// The quantiles of `ns` (sorted here); `None` when it is empty.
    pub fn of(ns: &mut [u64]) -> Option<Latencies> {
        ns.sort_unstable();
        let n = ns.len();
        let rank = |q: f64| ns[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        (n > 0).then(|| Latencies {
            count: n,
            median_ns: rank(0.5),
            p95_ns: rank(0.95),
            max_ns: ns[n - 1],
            slowest: None,
        })
    }

    /// "median 12.0 ms, p95 40.3 ms, max 95.1 ms over 812 elements".
    pub fn sentence(&self) -> String {
        let ms = |ns: u64| format!("{:.1} ms", ns as f64 / 1e6);
        format!(
            "median {}, p95 {}, max {} over {} elements",
            ms(self.median_ns),
            ms(self.p95_ns),
            ms(self.max_ns),
            self.count
        )
    }
}

impl SetReport {
    pub fn count(&self, verdict: &str) -> usize {
        self.keys
            .iter()
            .filter(|k| k.verdict.name() == verdict)
            .count()
    }

    /// Every key's sentences.
    pub fn sentences(&self) -> Vec<String> {
        self.keys.iter().flat_map(|k| k.sentences()).collect()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetKeyResult {
    /// The key; `None` for operations without one (a single set).
    pub key: Option<String>,
    pub counts: SetCounts,
    /// Things worth knowing that are not anomalies (reads that returned no array).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(flatten)]
    pub verdict: Verdict<SetWitness>,
    /// The stable latencies of this key's elements (see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_latency: Option<Latencies>,
    /// Each measured element's stable latency, for the report's overall quantiles.
    #[serde(skip)]
    pub stable_latencies_ns: Vec<u64>,
    /// The key's anomalies in the shared shape, one per kind (results.json has them in the
    /// checker's `anomalies`, not in its detail).
    #[serde(skip)]
    pub anomalies: Vec<Anomaly>,
}

impl SetKeyResult {
    /// What a person should read about this key: the anomalies' sentences, or why it is unknown.
    pub fn sentences(&self) -> Vec<String> {
        match &self.verdict {
            Verdict::Valid => Vec::new(),
            Verdict::Invalid { witness } => witness.sentences.clone(),
            Verdict::Unknown { reason } => vec![format!("{}: {reason}", show_key(&self.key))],
        }
    }
}

/// Element and read counts of one key. Element counts are exact even where lists are cut.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetCounts {
    /// Distinct elements with an add invoked.
    pub attempted: usize,
    /// Distinct elements with an add that completed `ok`.
    pub acknowledged: usize,
    /// Distinct elements whose every add completed `fail`.
    pub failed: usize,
    /// Distinct elements with an `info` or unfinished add and no `ok` one.
    pub indeterminate: usize,
    /// `ok` reads.
    pub reads: usize,
    /// Final reads (see the module documentation).
    pub read_final: usize,
    /// Acknowledged elements that every final read contains.
    pub stable: usize,
    /// Indeterminate elements some read returned.
    pub recovered: usize,
    /// Acknowledged elements no read returned (all of them lost, if there are final reads).
    pub never_read: usize,
    pub lost: usize,
    pub unexpected: usize,
    pub vanished: usize,
    pub failed_but_present: usize,
}

/// Why a key is invalid: every anomalous element (up to [`MAX_ELEMENTS_LISTED`] per kind).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SetWitness {
    pub lost: Vec<ElementAnomaly>,
    pub unexpected: Vec<ElementAnomaly>,
    pub vanished: Vec<ElementAnomaly>,
    pub failed_but_present: Vec<ElementAnomaly>,
    /// One sentence per anomalous element (up to [`MAX_SENTENCES`] per kind).
    pub sentences: Vec<String>,
}

/// One anomalous element, with the operations that show the anomaly.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ElementAnomaly {
    pub element: Value,
    /// The add that matters: the first to complete `ok` (lost), the first to fail
    /// (failed-but-present), the first invoked (vanished); `None` when there was none.
    pub add: Option<AddView>,
    /// Lost: the final reads that did not contain it. Vanished: the reads that did not contain
    /// it though invoked after a read that did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed_by: Vec<ReadView>,
    pub missed_total: usize,
    /// Reads that contained it, first completed first (vanished: the first is R1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen_by: Vec<ReadView>,
    pub seen_total: usize,
    /// Lost: the read that contained it and completed last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<ReadView>,
}

/// An add operation, as witnesses show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddView {
    pub process: u64,
    pub node: Option<String>,
    /// `ok`, `fail` or `info` (also for an add that never completed).
    pub kind: String,
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
    /// Nanoseconds since the run began.
    pub invoke_time: u64,
    pub complete_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// An `ok` read, as witnesses show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadView {
    pub process: u64,
    pub node: Option<String>,
    pub invoke_index: u64,
    pub complete_index: u64,
    pub invoke_time: u64,
    pub complete_time: u64,
}

/// Checks every key's `add` and `read` operations (other operations are ignored), in full.
pub fn check(history: &History, paired: &Paired) -> SetReport {
    check_mode(history, paired, false)
}

/// [`check`], in the eventual mode when `eventual` (see the module documentation).
pub fn check_mode(history: &History, paired: &Paired, eventual: bool) -> SetReport {
    let started = Instant::now();
    let mut by_key: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, op) in paired.ops.iter().enumerate() {
        if op.f == "add" || op.f == "read" {
            by_key.entry(op.key.as_deref()).or_default().push(i);
        }
    }
    let mut keys: Vec<SetKeyResult> = by_key
        .into_iter()
        .map(|(key, ids)| check_key(history, paired, key, &ids, eventual))
        .collect();
    keys.sort_by_cached_key(|k| natural_key(&k.key));
    let verdict = if keys
        .iter()
        .any(|k| matches!(k.verdict, Verdict::Invalid { .. }))
    {
        "invalid"
    } else if keys.is_empty()
        || keys
            .iter()
            .any(|k| matches!(k.verdict, Verdict::Unknown { .. }))
    {
        "unknown"
    } else {
        "valid"
    };
    let mut all: Vec<u64> = keys
        .iter()
        .flat_map(|k| k.stable_latencies_ns.iter().copied())
        .collect();
    SetReport {
        checker: "set",
        mode: if eventual { "eventual" } else { "linearizable" },
        verdict,
        keys,
        stable_latency: Latencies::of(&mut all),
        elapsed_us: started.elapsed().as_micros() as u64,
    }
}

/// What the adds of one element say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// No add attempted it.
    Unattempted,
    Acknowledged,
    Indeterminate,
    Failed,
}

struct Elem {
    value: Value,
    /// Op ids of the adds of this element.
    adds: Vec<usize>,
    status: Status,
    /// Reads (indexes into `reads`, in completion order) that contained it: the first few.
    seen: Vec<u32>,
    seen_total: usize,
    /// The read that contained it and completed last.
    last_seen: Option<u32>,
    /// Final reads that missed it (indexes into `reads`).
    missed_final: Vec<u32>,
    missed_final_total: usize,
    /// Reads that missed it after an earlier read showed it.
    vanished_in: Vec<u32>,
    vanished_total: usize,
}

struct Read {
    op: usize,
    invoke: usize,
    complete: usize,
    /// A read of the node's own replica (a final per-node read).
    local: bool,
    /// Element ids, sorted, without duplicates.
    elems: Vec<u32>,
}

fn check_key(
    history: &History,
    paired: &Paired,
    key: Option<&str>,
    ids: &[usize],
    eventual: bool,
) -> SetKeyResult {
    let mut elems: Vec<Elem> = Vec::new();
    // Integers (what the workloads write) are interned by value, anything else by its JSON text.
    let mut ints: HashMap<i64, u32> = HashMap::new();
    let mut others: HashMap<String, u32> = HashMap::new();
    let mut intern = |v: &Value, elems: &mut Vec<Elem>| -> u32 {
        let fresh = |elems: &mut Vec<Elem>| {
            elems.push(Elem {
                value: v.clone(),
                adds: Vec::new(),
                status: Status::Unattempted,
                seen: Vec::new(),
                seen_total: 0,
                last_seen: None,
                missed_final: Vec::new(),
                missed_final_total: 0,
                vanished_in: Vec::new(),
                vanished_total: 0,
            });
            u32::try_from(elems.len() - 1).expect("fewer than 2^32 elements per key")
        };
        match v.as_i64() {
            Some(i) => *ints.entry(i).or_insert_with(|| fresh(elems)),
            None => *others.entry(v.to_string()).or_insert_with(|| fresh(elems)),
        }
    };
    let mut notes = Vec::new();
    let mut malformed = 0usize;
    let mut reads: Vec<Read> = Vec::new();
    // The bound final reads must be invoked after: the last completion of an add.
    let mut last_add_complete: Option<usize> = None;
    for &id in ids {
        let op = &paired.ops[id];
        if op.f == "add" {
            let e = intern(&op.input, &mut elems);
            elems[e as usize].adds.push(id);
            if let Some(c) = op.complete {
                last_add_complete = Some(last_add_complete.map_or(c, |l| l.max(c)));
            }
        } else if op.kind == EventType::Ok {
            let Some(complete) = op.complete else {
                continue;
            };
            let items: &[Value] = match &op.output {
                Value::Array(items) => items,
                // An absent set reads as null: the empty set.
                Value::Null => &[],
                other => {
                    malformed += 1;
                    if malformed <= 3 {
                        notes.push(format!(
                            "the read by process {} at event {} returned {}, not an array; \
                             ignored",
                            op.process,
                            history.events[complete].index,
                            brief(other)
                        ));
                    }
                    continue;
                }
            };
            let mut set: Vec<u32> = items.iter().map(|v| intern(v, &mut elems)).collect();
            set.sort_unstable();
            set.dedup();
            reads.push(Read {
                op: id,
                invoke: op.invoke,
                complete,
                local: history.events[op.invoke].local,
                elems: set,
            });
        }
    }
    if malformed > 3 {
        notes.push(format!(
            "{} more reads returned something other than an array",
            malformed - 3
        ));
    }

    let mut counts = SetCounts {
        reads: reads.len(),
        ..SetCounts::default()
    };
    for e in &mut elems {
        if e.adds.is_empty() {
            continue;
        }
        counts.attempted += 1;
        let kinds = e.adds.iter().map(|&a| paired.ops[a].kind);
        e.status = if kinds.clone().any(|k| k == EventType::Ok) {
            counts.acknowledged += 1;
            Status::Acknowledged
        } else if kinds.clone().all(|k| k == EventType::Fail) {
            counts.failed += 1;
            Status::Failed
        } else {
            counts.indeterminate += 1;
            Status::Indeterminate
        };
    }

    // Who saw what, reads taken in completion order so the first seen is the earliest.
    reads.sort_by_key(|r| r.complete);
    // For each element, the completion position of the first read that contained it.
    let mut first_seen: Vec<Option<usize>> = vec![None; elems.len()];
    for (ri, r) in reads.iter().enumerate() {
        for &e in &r.elems {
            let el = &mut elems[e as usize];
            el.seen_total += 1;
            if el.seen.len() < MAX_READS_LISTED {
                el.seen.push(ri as u32);
            }
            el.last_seen = Some(ri as u32);
            first_seen[e as usize].get_or_insert(r.complete);
        }
    }

    // Lost: acknowledged elements missing from a final read.
    let only_local = eventual && reads.iter().any(|r| r.local);
    let is_final =
        |r: &Read| (r.local || !only_local) && last_add_complete.is_none_or(|b| r.invoke > b);
    let acked: Vec<u32> = (0..elems.len() as u32)
        .filter(|&e| elems[e as usize].status == Status::Acknowledged)
        .collect();
    for (ri, r) in reads.iter().enumerate() {
        if !is_final(r) {
            continue;
        }
        counts.read_final += 1;
        let present = r
            .elems
            .iter()
            .filter(|&&e| elems[e as usize].status == Status::Acknowledged)
            .count();
        if present == acked.len() {
            continue;
        }
        for &e in &acked {
            if r.elems.binary_search(&e).is_err() {
                let el = &mut elems[e as usize];
                el.missed_final_total += 1;
                if el.missed_final.len() < MAX_READS_LISTED {
                    el.missed_final.push(ri as u32);
                }
            }
        }
    }

    // Vanished: in invocation order, every element some read showed before this read began
    // must be in it. `must` grows along the elements sorted by when they were first seen.
    let mut by_first_seen: Vec<(usize, u32)> = first_seen
        .iter()
        .enumerate()
        .filter_map(|(e, s)| s.map(|s| (s, e as u32)))
        .collect();
    by_first_seen.sort_unstable();
    let mut in_must = vec![false; elems.len()];
    let mut must = 0usize;
    let mut order: Vec<usize> = (0..reads.len()).collect();
    order.sort_by_key(|&ri| reads[ri].invoke);
    for ri in order {
        let r = &reads[ri];
        while must < by_first_seen.len() && by_first_seen[must].0 < r.invoke {
            in_must[by_first_seen[must].1 as usize] = true;
            must += 1;
        }
        let present = r.elems.iter().filter(|&&e| in_must[e as usize]).count();
        if present == must {
            continue;
        }
        for &(_, e) in &by_first_seen[..must] {
            if r.elems.binary_search(&e).is_err() {
                let el = &mut elems[e as usize];
                el.vanished_total += 1;
                if el.vanished_in.len() < MAX_READS_LISTED {
                    el.vanished_in.push(ri as u32);
                }
            }
        }
    }

    let (stable_latency, stable_latencies_ns) = stable_latencies(history, paired, &elems, &reads);

    let ctx = Ctx {
        history,
        paired,
        reads: &reads,
        key,
    };
    let mut w = SetWitness::default();
    let mut more = [0usize; 4];
    for el in &elems {
        let seen = el.seen_total > 0;
        match el.status {
            Status::Acknowledged if el.missed_final_total > 0 => {
                counts.lost += 1;
                push_listed(&mut w.lost, &mut more[0], || ctx.lost(el));
            }
            Status::Acknowledged if counts.read_final > 0 => counts.stable += 1,
            Status::Unattempted if seen => {
                counts.unexpected += 1;
                push_listed(&mut w.unexpected, &mut more[1], || ctx.anomaly(el, None));
            }
            Status::Failed if seen => {
                counts.failed_but_present += 1;
                push_listed(&mut w.failed_but_present, &mut more[3], || {
                    ctx.anomaly(el, ctx.first_add(el, Some(EventType::Fail)))
                });
            }
            Status::Indeterminate if seen => counts.recovered += 1,
            _ => {}
        }
        if el.status == Status::Acknowledged && !seen {
            counts.never_read += 1;
        }
        let lost = el.status == Status::Acknowledged && el.missed_final_total > 0;
        if el.vanished_total > 0 && !lost {
            counts.vanished += 1;
            push_listed(&mut w.vanished, &mut more[2], || ctx.vanished(el));
        }
    }
    sort_anomalies(&mut w);
    let by_kind = ctx.sentences(&w, &counts);
    // Eventual mode: a stale replica may miss what another showed; counted, not a violation.
    let allowed = |kind: &SetAnomalyKind| eventual && *kind == SetAnomalyKind::Vanished;
    if eventual && counts.vanished > 0 {
        notes.push(format!(
            "{} elements vanished from a later read after an earlier one showed them: allowed \
             here (eventual consistency: a replica may be stale), not a violation",
            counts.vanished
        ));
    }
    let by_kind: Vec<_> = by_kind.into_iter().filter(|(k, _)| !allowed(k)).collect();
    let anomalies = by_kind
        .iter()
        .filter_map(|(kind, lines)| {
            let (list, total) = kind.of(&w, &counts);
            (total > 0).then(|| kind.anomaly(key, list, total, lines.clone()))
        })
        .collect();
    w.sentences = by_kind.into_iter().flat_map(|(_, lines)| lines).collect();

    let vanished = if eventual { 0 } else { counts.vanished };
    let any = counts.lost + counts.unexpected + vanished + counts.failed_but_present;
    let verdict = if any > 0 {
        Verdict::Invalid { witness: w }
    } else if counts.read_final == 0 {
        let reason = match last_add_complete {
            Some(b) => format!(
                "no final read: no ok read began after the last add completed (at {})",
                secs(history.events[b].time)
            ),
            None => "no final read: there is no ok read".to_owned(),
        };
        Verdict::Unknown { reason }
    } else if malformed > 0 {
        Verdict::Unknown {
            reason: format!("{malformed} ok reads returned something other than an array"),
        }
    } else {
        Verdict::Valid
    };
    SetKeyResult {
        key: key.map(str::to_owned),
        counts,
        notes,
        verdict,
        stable_latency,
        stable_latencies_ns,
        anomalies,
    }
}

/// Each acknowledged, not lost, seen element's stable latency (see the module documentation),
/// and their quantiles with the slowest element. One pass over the reads from the last invoked
/// back: `streak` holds the elements every read so far (every later one) contained, and the
/// first read that lacks one is the last that missed it. Each read costs its own size plus the
/// streak's, which is at most the size of the read after it.
fn stable_latencies(
    history: &History,
    paired: &Paired,
    elems: &[Elem],
    reads: &[Read],
) -> (Option<Latencies>, Vec<u64>) {
    let mut by_invoke: Vec<usize> = (0..reads.len()).collect();
    by_invoke.sort_by_key(|&ri| reads[ri].invoke);
    let mut last_absent: Vec<Option<usize>> = vec![None; elems.len()];
    let mut stamp = vec![usize::MAX; elems.len()];
    let mut streak: Vec<u32> = (0..elems.len() as u32).collect();
    for &ri in by_invoke.iter().rev() {
        let r = &reads[ri];
        for &e in &r.elems {
            stamp[e as usize] = ri;
        }
        streak.retain(|&e| {
            let kept = stamp[e as usize] == ri;
            if !kept {
                last_absent[e as usize] = Some(r.invoke);
            }
            kept
        });
    }
    let mut ns = Vec::new();
    let mut slowest: Option<(u64, usize)> = None;
    for (e, el) in elems.iter().enumerate() {
        if el.status != Status::Acknowledged || el.missed_final_total > 0 || el.seen_total == 0 {
            continue;
        }
        let Some(start) = el
            .adds
            .iter()
            .map(|&a| history.events[paired.ops[a].invoke].time)
            .min()
        else {
            continue;
        };
        let end = last_absent[e].map_or(0, |pos| history.events[pos].time);
        let latency = end.saturating_sub(start);
        if slowest.is_none_or(|(worst, _)| latency > worst) {
            slowest = Some((latency, e));
        }
        ns.push(latency);
    }
    let quantiles = Latencies::of(&mut ns).map(|l| Latencies {
        slowest: slowest.map(|(_, e)| elems[e].value.clone()),
        ..l
    });
    (quantiles, ns)
}

/// The kinds of set anomaly (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetAnomalyKind {
    Lost,
    Unexpected,
    Vanished,
    FailedButPresent,
}

impl SetAnomalyKind {
    pub const ALL: [SetAnomalyKind; 4] = [
        SetAnomalyKind::Lost,
        SetAnomalyKind::Unexpected,
        SetAnomalyKind::Vanished,
        SetAnomalyKind::FailedButPresent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SetAnomalyKind::Lost => "lost",
            SetAnomalyKind::Unexpected => "unexpected",
            SetAnomalyKind::Vanished => "vanished",
            SetAnomalyKind::FailedButPresent => "failed-but-present",
        }
    }

    /// The kind called `name` (an anomaly's `kind` in results.json).
    pub fn from_name(name: &str) -> Option<SetAnomalyKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// This kind's listed elements in `w`, and how many there are in all.
    pub fn of<'a>(self, w: &'a SetWitness, counts: &SetCounts) -> (&'a [ElementAnomaly], usize) {
        match self {
            SetAnomalyKind::Lost => (&w.lost, counts.lost),
            SetAnomalyKind::Unexpected => (&w.unexpected, counts.unexpected),
            SetAnomalyKind::Vanished => (&w.vanished, counts.vanished),
            SetAnomalyKind::FailedButPresent => (&w.failed_but_present, counts.failed_but_present),
        }
    }

    fn title(self, n: usize, key: &str) -> String {
        let elements = if n == 1 {
            "1 element".to_owned()
        } else {
            format!("{n} elements")
        };
        match self {
            SetAnomalyKind::Lost => format!(
                "Key {key}: {elements} acknowledged by the system, then missing from a final read"
            ),
            SetAnomalyKind::Unexpected => {
                format!("Key {key}: {elements} that no client ever added, returned by a read")
            }
            SetAnomalyKind::Vanished => {
                format!("Key {key}: {elements} seen by a read, then missing from a later read")
            }
            SetAnomalyKind::FailedButPresent => {
                format!("Key {key}: {elements} whose add failed, yet a read returned it")
            }
        }
    }

    /// The anomaly of this kind on `key`: its elements' adds and the reads that show it.
    fn anomaly(
        self,
        key: Option<&str>,
        list: &[ElementAnomaly],
        total: usize,
        sentences: Vec<String>,
    ) -> Anomaly {
        let mut ops = Vec::new();
        let mut span_ns = None;
        for e in list {
            if let Some(a) = &e.add {
                ops.push(a.invoke_index);
                widen(
                    &mut span_ns,
                    a.invoke_time,
                    a.complete_time.unwrap_or(a.invoke_time),
                );
            }
            for r in e.seen_by.iter().chain(&e.missed_by).chain(&e.last_seen) {
                ops.push(r.invoke_index);
                widen(&mut span_ns, r.invoke_time, r.complete_time);
            }
        }
        ops.sort_unstable();
        ops.dedup();
        Anomaly {
            kind: self.name().to_owned(),
            key: key.map(str::to_owned),
            title: self.title(total.max(list.len()), key.unwrap_or("-")),
            sentences,
            ops,
            cycle: Vec::new(),
            span_ns,
        }
    }
}

/// The registry's set checker: [`check`], in the shared result shape.
pub struct SetChecker;

impl Checker for SetChecker {
    fn name(&self) -> &'static str {
        "set"
    }

    fn property(&self) -> &'static str {
        "linearizable"
    }

    fn about(&self) -> &'static str {
        "adds and reads of sets: no acknowledged element lost, none unexpected or vanished"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        opts: &crate::Options,
    ) -> Result<CheckerResult, crate::CheckError> {
        Ok(check_mode(history, paired, opts.eventual).into_result())
    }

    fn promised_by(&self, promises: &[String], opts: &mut crate::Options) -> bool {
        crate::registry::promised_in_full_or_eventual(promises, opts)
    }
}

impl SetReport {
    /// The shared result: every key's sentences as the summary, one anomaly per key and kind,
    /// and this report as the detail.
    pub fn into_result(mut self) -> CheckerResult {
        let mode = if self.mode == "eventual" {
            "eventual mode (no-lost-updates): lost, unexpected and failed-but-present elements \
             are violations; vanished ones are counted, as a stale replica may show them"
        } else {
            "linearizable mode: lost, unexpected, vanished and failed-but-present elements are \
             violations"
        };
        let mut summary = vec![mode.to_owned()];
        if let Some(l) = &self.stable_latency {
            summary.push(format!(
                "latency to visibility (from an add's invocation until every later read, on any \
                 node, contains its element): {}",
                l.sentence()
            ));
        }
        summary.extend(
            self.keys
                .iter()
                .flat_map(|k| k.sentences().into_iter().chain(k.notes.clone()).take(8)),
        );
        let anomalies = self
            .keys
            .iter_mut()
            .flat_map(|k| std::mem::take(&mut k.anomalies))
            .collect();
        CheckerResult {
            checker: self.checker.to_owned(),
            verdict: match self.verdict {
                "valid" => Judgement::Valid,
                "invalid" => Judgement::Invalid,
                _ => Judgement::Unknown,
            },
            promised: true,
            summary,
            anomalies,
            elapsed_us: self.elapsed_us,
            detail: serde_json::to_value(&self).unwrap_or_default(),
        }
    }
}

fn push_listed(
    list: &mut Vec<ElementAnomaly>,
    more: &mut usize,
    make: impl FnOnce() -> ElementAnomaly,
) {
    if list.len() < MAX_ELEMENTS_LISTED {
        list.push(make());
    } else {
        *more += 1;
    }
}

/// Elements in a stable order: numbers by value, then everything else by its JSON text.
fn sort_anomalies(w: &mut SetWitness) {
    let order = |a: &ElementAnomaly| match a.element.as_f64() {
        Some(x) => (0, x, String::new()),
        None => (1, 0.0, a.element.to_string()),
    };
    for list in [
        &mut w.lost,
        &mut w.unexpected,
        &mut w.vanished,
        &mut w.failed_but_present,
    ] {
        list.sort_by(|a, b| {
            let (x, y) = (order(a), order(b));
            x.0.cmp(&y.0)
                .then(x.1.total_cmp(&y.1))
                .then_with(|| x.2.cmp(&y.2))
        });
    }
}

struct Ctx<'a> {
    history: &'a History,
    paired: &'a Paired,
    reads: &'a [Read],
    key: Option<&'a str>,
}

impl Ctx<'_> {
    fn read_view(&self, ri: u32) -> ReadView {
        let r = &self.reads[ri as usize];
        let op = &self.paired.ops[r.op];
        let (inv, comp) = (
            &self.history.events[r.invoke],
            &self.history.events[r.complete],
        );
        ReadView {
            process: op.process,
            node: op.node.clone(),
            invoke_index: inv.index,
            complete_index: comp.index,
            invoke_time: inv.time,
            complete_time: comp.time,
        }
    }

    fn add_view(&self, id: usize) -> AddView {
        let op = &self.paired.ops[id];
        let inv = &self.history.events[op.invoke];
        let comp = op.complete.map(|c| &self.history.events[c]);
        AddView {
            process: op.process,
            node: op.node.clone(),
            kind: op.kind.to_string(),
            invoke_index: inv.index,
            complete_index: comp.map(|e| e.index),
            invoke_time: inv.time,
            complete_time: comp.map(|e| e.time),
            error: op.error.clone(),
        }
    }

    /// The add of `el` of kind `kind` (any kind when `None`) that completed first (or, among
    /// those that never completed, was invoked first).
    fn first_add(&self, el: &Elem, kind: Option<EventType>) -> Option<AddView> {
        el.adds
            .iter()
            .copied()
            .filter(|&a| kind.is_none_or(|k| self.paired.ops[a].kind == k))
            .min_by_key(|&a| {
                let op = &self.paired.ops[a];
                (op.complete.unwrap_or(usize::MAX), op.invoke)
            })
            .map(|a| self.add_view(a))
    }

    fn anomaly(&self, el: &Elem, add: Option<AddView>) -> ElementAnomaly {
        ElementAnomaly {
            element: el.value.clone(),
            add,
            missed_by: Vec::new(),
            missed_total: 0,
            seen_by: el.seen.iter().map(|&r| self.read_view(r)).collect(),
            seen_total: el.seen_total,
            last_seen: None,
        }
    }

    fn lost(&self, el: &Elem) -> ElementAnomaly {
        ElementAnomaly {
            missed_by: el.missed_final.iter().map(|&r| self.read_view(r)).collect(),
            missed_total: el.missed_final_total,
            last_seen: el.last_seen.map(|r| self.read_view(r)),
            ..self.anomaly(el, self.first_add(el, Some(EventType::Ok)))
        }
    }

    fn vanished(&self, el: &Elem) -> ElementAnomaly {
        let first_invoked = el
            .adds
            .iter()
            .copied()
            .min_by_key(|&a| self.paired.ops[a].invoke)
            .map(|a| self.add_view(a));
        ElementAnomaly {
            missed_by: el.vanished_in.iter().map(|&r| self.read_view(r)).collect(),
            missed_total: el.vanished_total,
            ..self.anomaly(el, first_invoked)
        }
    }

    /// The sentences of each kind of anomaly, kind by kind (lost, unexpected, vanished,
    /// failed-but-present): one per listed element up to [`MAX_SENTENCES`], then one "... and
    /// N more" line when there are more.
    fn sentences(&self, w: &SetWitness, counts: &SetCounts) -> Vec<(SetAnomalyKind, Vec<String>)> {
        let key = self.key.map(str::to_owned);
        let mut out = Vec::new();
        for kind in SetAnomalyKind::ALL {
            let (list, total) = kind.of(w, counts);
            let mut lines: Vec<String> = list
                .iter()
                .take(MAX_SENTENCES)
                .map(|a| match kind {
                    SetAnomalyKind::Lost => self.lost_sentence(a, counts),
                    SetAnomalyKind::Unexpected => self.unexpected_sentence(a),
                    SetAnomalyKind::Vanished => self.vanished_sentence(a),
                    SetAnomalyKind::FailedButPresent => self.failed_sentence(a),
                })
                .collect();
            if total > MAX_SENTENCES.min(list.len()) {
                lines.push(format!(
                    "... and {} more {} elements of {}",
                    total - MAX_SENTENCES.min(list.len()),
                    kind.name(),
                    show_key(&key)
                ));
            }
            out.push((kind, lines));
        }
        out
    }

    fn element(&self, a: &ElementAnomaly) -> String {
        match self.key {
            Some(k) => format!("element {} of {k}", brief(&a.element)),
            None => format!("element {}", brief(&a.element)),
        }
    }

    fn lost_sentence(&self, a: &ElementAnomaly, counts: &SetCounts) -> String {
        let mut s = format!("{} was added", self.element(a));
        if let Some(add) = &a.add {
            s.push_str(&format!(
                " by process {} via {} (ok at {})",
                add.process,
                node(&add.node),
                add.complete_time.map_or_else(|| "?".to_owned(), secs)
            ));
        }
        if a.missed_total == 1 && counts.read_final == 1 {
            s.push_str(" but the final read ");
        } else if a.missed_total == counts.read_final {
            s.push_str(&format!(
                " but none of the {} final reads contained it: ",
                a.missed_total
            ));
        } else {
            s.push_str(&format!(
                " but {} of the {} final reads did not contain it: ",
                a.missed_total, counts.read_final
            ));
        }
        s.push_str(&list_reads(&a.missed_by, a.missed_total, ReadTime::Invoke));
        if a.missed_total == 1 && counts.read_final == 1 {
            s.push_str(" did not contain it");
        }
        match &a.last_seen {
            Some(r) => s.push_str(&format!(
                "; {} read{} had returned it, the last from {} completing at {}",
                a.seen_total,
                if a.seen_total == 1 { "" } else { "s" },
                node(&r.node),
                secs(r.complete_time)
            )),
            None => s.push_str("; no read ever returned it"),
        }
        s
    }

    fn unexpected_sentence(&self, a: &ElementAnomaly) -> String {
        format!(
            "{} was returned by {}, but no process ever tried to add it",
            self.element(a),
            list_reads_with_article(&a.seen_by, a.seen_total)
        )
    }

    fn vanished_sentence(&self, a: &ElementAnomaly) -> String {
        let Some(r1) = a.seen_by.first() else {
            return format!("{} vanished", self.element(a));
        };
        let mut s = format!(
            "{} was in the read from {} that completed at {} (process {}, event {}), but ",
            self.element(a),
            node(&r1.node),
            secs(r1.complete_time),
            r1.process,
            r1.complete_index
        );
        if a.missed_total == 1 {
            s.push_str("the later read ");
            s.push_str(&list_reads(&a.missed_by, 1, ReadTime::Invoke));
            s.push_str(" did not contain it");
        } else {
            s.push_str(&format!(
                "{} later reads did not contain it: {}",
                a.missed_total,
                list_reads(&a.missed_by, a.missed_total, ReadTime::Invoke)
            ));
        }
        s.push_str("; a linearizable set never loses an element");
        s
    }

    fn failed_sentence(&self, a: &ElementAnomaly) -> String {
        let mut s = match self.key {
            Some(k) => format!("the add of element {} to {k}", brief(&a.element)),
            None => format!("the add of element {}", brief(&a.element)),
        };
        if let Some(add) = &a.add {
            s.push_str(&format!(
                " by process {} via {} failed at {}",
                add.process,
                node(&add.node),
                add.complete_time.map_or_else(|| "?".to_owned(), secs)
            ));
            if let Some(e) = &add.error {
                let e = match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                s.push_str(&format!(" ({e})"));
            }
        } else {
            s.push_str(" failed");
        }
        s.push_str(&format!(
            ", a promise that it would never take effect, yet {} contained it",
            list_reads_with_article(&a.seen_by, a.seen_total)
        ));
        s
    }
}

#[derive(Clone, Copy)]
enum ReadTime {
    Invoke,
    Complete,
}

/// "from n4 at 40.02 s (process 17, event 812), from n5 at ... and 3 more".
fn list_reads(reads: &[ReadView], total: usize, time: ReadTime) -> String {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = reads
        .iter()
        .take(SHOWN)
        .map(|r| {
            let (t, at) = match time {
                ReadTime::Invoke => (r.invoke_time, r.invoke_index),
                ReadTime::Complete => (r.complete_time, r.complete_index),
            };
            let when = match time {
                ReadTime::Invoke => "invoked",
                ReadTime::Complete => "that completed",
            };
            format!(
                "from {} {when} at {} (process {}, event {at})",
                node(&r.node),
                secs(t),
                r.process
            )
        })
        .collect();
    let shown = parts.len();
    if total > shown {
        parts.push(format!("and {} more", total - shown));
    }
    parts.join(", ")
}

/// "the read from n1 that completed at 3.10 s (...)" or "3 reads: from ..., ...".
fn list_reads_with_article(reads: &[ReadView], total: usize) -> String {
    if total == 1 {
        format!("the read {}", list_reads(reads, total, ReadTime::Complete))
    } else {
        format!(
            "{total} reads ({})",
            list_reads(reads, total, ReadTime::Complete)
        )
    }
}

fn node(n: &Option<String>) -> String {
    n.clone().unwrap_or_else(|| "an unnamed node".to_owned())
}

fn show_key(k: &Option<String>) -> String {
    match k {
        Some(k) => format!("key {k}"),
        None => "the set".to_owned(),
    }
}

fn brief(v: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = v.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}...")
    }
}
