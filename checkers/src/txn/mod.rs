//! Transactional consistency, the way Elle checks it (Kingsbury and Alvaro, "Elle: Inferring
//! Isolation Anomalies from Experimental Observations", VLDB 2020): from what transactions
//! read and wrote, infer the order of each key's versions; from that, the dependencies
//! between transactions (Adya's ww, wr and rw, plus process and real-time order when the
//! model asks for them); then name every cycle among them (G0, G1c, G-single, G-nonadjacent,
//! G2-item, and their `-process` and `-realtime` variants) and every anomaly that is not a
//! cycle (aborted and intermediate reads, internal inconsistency, incompatible orders, lost
//! updates, reads of values nobody wrote). The anomalies found rule out consistency models
//! ([`model`]); the verdict says whether the chosen one holds.
//!
//! - [`append`]: list-append, where every read returns the whole list, so each key's version
//!   order is known exactly (the longest read; every other must be a prefix of it).
//! - [`register`]: rw-register with unique written values, where the version order is
//!   inferred only partly: from the initial state, from a transaction that read one value and
//!   then wrote another, and optionally from process or real-time order.
//! - [`graph`]: the dependency graph on petgraph, its strongly connected components (Tarjan)
//!   and, in each, the shortest cycle of every class.
//! - [`explain`]: the sentences of a witness, one per edge.
//! - [`saturate`]: the weak levels of Biswas and Enea, session order included: read committed
//!   (`strong-session-read-committed`), read atomic (`read-atomic`) and transactional causal
//!   consistency (`causal`). When one of these is the model, it is checked the way AWDIT does
//!   (Møldrup, Pavlogiannis et al., PLDI 2025) instead of by Elle's cycle classes: each read
//!   forces every writer of its key visible to it (per the level) to commit before the writer
//!   it read from, and the level holds exactly when session order, reads-from (and for lists
//!   the version order) and those edges are acyclic. The anomalies that are not cycles
//!   (garbage, aborted, intermediate and internal reads) still rule the levels out.
//! - [`oracle`]: the brute-force reference (every serial order, or every commit order for the
//!   weak levels) for small histories, and [`synth`]: random small histories and large
//!   benchmark histories.

pub mod append;
pub mod explain;
pub mod graph;
pub mod model;
pub mod oracle;
pub mod register;
pub mod saturate;
pub mod synth;

use crate::registry::{Checker, Streamed};
use crate::result::{Anomaly, CheckerResult, Judgement};
use crate::{CheckError, Options};
use hashbrown::HashMap;
use history::jsonl::JsonlReader;
use history::txn::{check_completion, parse_mops, MopKind, MopValue};
use history::{EventType, History, HistoryError, Paired, Pairing, Step, Warning};
use std::path::Path;
use std::time::{Duration, Instant};

/// What the transactional checkers take beyond the history.
#[derive(Clone, Debug)]
pub struct TxnOptions {
    /// The consistency model to check (`model::names()`); `None` means strict-serializable.
    pub model: Option<String>,
    /// rw-register: infer version orders from process order (each key sequentially
    /// consistent, Elle's `sequential-keys`).
    pub sequential_keys: bool,
    /// rw-register: infer version orders from real-time order (each key linearizable, Elle's
    /// `linearizable-keys`).
    pub linearizable_keys: bool,
    /// rw-register: a transaction's write of a key comes after the version it read of that
    /// key (Elle's `wfr-keys`). On by default: a transaction that reads x=1 and then writes
    /// x=2 saw 1 before it wrote 2 under every model this checks.
    pub wfr_keys: bool,
    /// Time allowed to look for cycles in one strongly connected component, per class.
    pub cycle_search_time: Duration,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            model: None,
            sequential_keys: false,
            linearizable_keys: false,
            wfr_keys: true,
            cycle_search_time: Duration::from_secs(1),
        }
    }
}

/// A micro-op with its key interned.
#[derive(Clone, Debug, PartialEq)]
pub struct Mop {
    pub f: MopKind,
    pub key: u32,
    pub value: MopValue,
}

/// One transaction, as the checkers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Txn {
    /// History index (the `index` field) of its invocation: what witnesses call it by.
    pub index: u64,
    pub process: u64,
    /// `Ok`, `Fail` or `Info` (an invocation without completion is `Info`).
    pub kind: EventType,
    pub invoke_ns: u64,
    /// When an `ok` or `fail` completion arrived.
    pub complete_ns: Option<u64>,
    /// Line of the invocation in the history file, for messages.
    pub line: usize,
    pub mops: Vec<Mop>,
}

impl Txn {
    pub fn ok(&self) -> bool {
        self.kind == EventType::Ok
    }

    pub fn failed(&self) -> bool {
        self.kind == EventType::Fail
    }
}

/// The transactions of a history, keys interned.
#[derive(Clone, Debug, Default)]
pub struct Txns {
    pub file: std::path::PathBuf,
    pub txns: Vec<Txn>,
    pub keys: Vec<String>,
}

impl Txns {
    /// The transactions of `history`; a malformed one is an error naming its line and field.
    pub fn from_history(history: &History, paired: &Paired) -> Result<Txns, CheckError> {
        let typed = history::txn::txns(history, paired).map_err(|e| CheckError {
            file: e.file.clone(),
            line: e.line,
            field: e.field.clone().unwrap_or_else(|| "value".into()),
            message: e.message,
        })?;
        let mut out = Txns {
            file: history.file.clone(),
            ..Txns::default()
        };
        let mut ids = Interner::default();
        out.txns.reserve(typed.len());
        for t in typed {
            let inv = &history.events[t.invoke];
            let mops = ids.mops(t.mops, &mut out.keys);
            out.txns.push(Txn {
                index: inv.index,
                process: t.process,
                kind: t.kind,
                invoke_ns: inv.time,
                complete_ns: t
                    .complete
                    .filter(|_| t.kind != EventType::Info)
                    .map(|c| history.events[c].time),
                line: history.lines.get(t.invoke).copied().unwrap_or(t.invoke + 1),
                mops,
            });
        }
        Ok(out)
    }

    pub fn key(&self, k: u32) -> &str {
        &self.keys[k as usize]
    }

    /// An error about transaction `t`, naming the line of its invocation.
    pub fn error(&self, t: usize, message: String) -> CheckError {
        CheckError {
            file: self.file.clone(),
            line: self.txns[t].line,
            field: "value".into(),
            message,
        }
    }

    /// The transactions of a JSON Lines history file, read one line at a time: the events are
    /// paired by the same rules as `history::pair` and typed as they come, and none is kept,
    /// so a history of millions of transactions fits in a fraction of what its events would
    /// take. Other operations are skipped. Also returns the number of events and the
    /// warnings (a truncated last line).
    pub fn read_jsonl(path: &Path) -> Result<(Txns, usize, Vec<Warning>), CheckError> {
        let err = |e: HistoryError| CheckError {
            file: e.file.clone(),
            line: e.line,
            field: e.field.clone().unwrap_or_default(),
            message: e.message,
        };
        let f = std::fs::File::open(path).map_err(|e| {
            err(HistoryError::new(
                path,
                0,
                None,
                format!("cannot open the file: {e}"),
            ))
        })?;
        // One thread parses lines into events while this one pairs and types them.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<history::jsonl::Item>>(8);
        let file = path.to_path_buf();
        let parser = std::thread::spawn(move || {
            let mut reader = JsonlReader::new(std::io::BufReader::with_capacity(1 << 20, f), file);
            let mut batch = Vec::with_capacity(4096);
            for item in &mut reader {
                batch.push(item);
                if batch.len() == 4096 {
                    if tx.send(std::mem::take(&mut batch)).is_err() {
                        break;
                    }
                    batch.reserve(4096);
                }
            }
            let _ = tx.send(batch);
            reader.take_warnings()
        });
        let mut rules = Pairing::new(path);
        let mut out = Txns {
            file: path.to_path_buf(),
            ..Txns::default()
        };
        let mut ids = Interner::default();
        // Operation id -> its transaction's position, and the invoked micro-ops of those
        // still outstanding.
        let mut slot: Vec<u32> = Vec::new();
        let mut invoked: HashMap<usize, Vec<history::txn::Mop>> = HashMap::new();
        let mut events = 0;
        for item in rx.iter().flatten() {
            let (ev, line) = item.map_err(err)?;
            events += 1;
            let bad = |msg: String| err(HistoryError::new(path, line, Some("value"), msg));
            match rules.next(&ev, line, slot.len()).map_err(err)? {
                Step::Nemesis => {}
                Step::Invoke(process) if ev.f == "txn" => {
                    invoked.insert(slot.len(), parse_mops(&ev.value).map_err(bad)?);
                    slot.push(out.txns.len() as u32);
                    out.txns.push(Txn {
                        index: ev.index,
                        process,
                        kind: EventType::Info,
                        invoke_ns: ev.time,
                        complete_ns: None,
                        line,
                        mops: Vec::new(),
                    });
                }
                Step::Invoke(_) => slot.push(u32::MAX),
                Step::Complete(id) => {
                    let Some(t) = out.txns.get_mut(slot[id] as usize) else {
                        continue;
                    };
                    let asked = invoked.remove(&id).unwrap_or_default();
                    let mops = if ev.kind == EventType::Ok {
                        let done = parse_mops(&ev.value).map_err(bad)?;
                        check_completion(&asked, &done).map_err(bad)?;
                        done
                    } else {
                        asked
                    };
                    t.kind = ev.kind;
                    t.complete_ns = (ev.kind != EventType::Info).then_some(ev.time);
                    t.mops = ids.mops(mops, &mut out.keys);
                }
            }
        }
        for (id, asked) in invoked {
            out.txns[slot[id] as usize].mops = ids.mops(asked, &mut out.keys);
        }
        if events == 0 {
            return Err(err(HistoryError::new(
                path,
                0,
                None,
                "the file is empty: no events",
            )));
        }
        let warnings = parser.join().unwrap_or_default();
        Ok((out, events, warnings))
    }
}

/// Key names to numbers.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    fn key(&mut self, name: String, keys: &mut Vec<String>) -> u32 {
        if let Some(&k) = self.ids.get(&name) {
            return k;
        }
        let k = keys.len() as u32;
        keys.push(name.clone());
        self.ids.insert(name, k);
        k
    }

    fn mops(&mut self, mops: Vec<history::txn::Mop>, keys: &mut Vec<String>) -> Vec<Mop> {
        mops.into_iter()
            .map(|m| Mop {
                f: m.f,
                key: self.key(m.key, keys),
                value: m.value,
            })
            .collect()
    }
}

/// Which workload's inference to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ListAppend,
    RwRegister,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ListAppend => "list-append",
            Kind::RwRegister => "rw-register",
        }
    }
}

/// A dependency between two transactions: `from` must come before `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rel {
    /// `to` overwrote (or appended after) `from`'s write of a key.
    Ww,
    /// `to` read `from`'s write.
    Wr,
    /// `from` read a version that `to` overwrote (an anti-dependency).
    Rw,
    /// The same process ran `from`, then `to`.
    Process,
    /// `from` completed before `to` was invoked.
    Realtime,
}

impl Rel {
    pub fn name(self) -> &'static str {
        match self {
            Rel::Ww => "ww",
            Rel::Wr => "wr",
            Rel::Rw => "rw",
            Rel::Process => "process",
            Rel::Realtime => "realtime",
        }
    }
}

/// One inferred dependency, with what explains it: the key, and the two values or elements
/// involved (`a()` of `from`, `b()` of `to`; `None` for the initial, empty state). Kept in 32
/// bytes: a history of a million transactions has millions of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dep {
    pub from: u32,
    pub to: u32,
    pub key: u32,
    pub rel: Rel,
    /// How the order was learnt (`append::UNOBSERVED`, `register::INITIAL`, ...), 0 if plain.
    pub source: u8,
    a: i64,
    b: i64,
}

/// The value `Dep` stores for "none" (no element, the initial state).
const NONE: i64 = i64::MIN;

impl Dep {
    pub fn new(
        from: u32,
        to: u32,
        rel: Rel,
        key: u32,
        a: Option<i64>,
        b: Option<i64>,
        source: u8,
    ) -> Dep {
        Dep {
            from,
            to,
            key,
            rel,
            source,
            a: a.unwrap_or(NONE),
            b: b.unwrap_or(NONE),
        }
    }

    /// A dependency that names no key or value (process or real-time order).
    pub fn order(from: u32, to: u32, rel: Rel) -> Dep {
        Dep::new(from, to, rel, 0, None, None, 0)
    }

    pub fn a(&self) -> Option<i64> {
        (self.a != NONE).then_some(self.a)
    }

    pub fn b(&self) -> Option<i64> {
        (self.b != NONE).then_some(self.b)
    }
}

/// What an inference (list-append or rw-register) found: the dependencies and the anomalies
/// that are not cycles.
#[derive(Debug, Default)]
pub struct Inferred {
    pub deps: Vec<Dep>,
    pub anomalies: Vec<Anomaly>,
    /// Facts for the summary ("12 keys, 3 with incompatible orders").
    pub notes: Vec<String>,
}

/// The list-append checker.
pub const LIST_APPEND: TxnChecker = TxnChecker(Kind::ListAppend);
/// The rw-register checker.
pub const RW_REGISTER: TxnChecker = TxnChecker(Kind::RwRegister);

/// A transactional checker: list-append or rw-register.
pub struct TxnChecker(pub Kind);

impl Checker for TxnChecker {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn property(&self) -> &'static str {
        "strict-serializable"
    }
    fn about(&self) -> &'static str {
        match self.0 {
            Kind::ListAppend => {
                "transactions over append-only lists: Elle's dependency cycles (G0 to G2-item) \
                 and aborted, intermediate and internal reads, against --consistency-model"
            }
            Kind::RwRegister => {
                "transactions over registers with unique writes: Elle's dependency cycles with \
                 the version order inferred, against --consistency-model"
            }
        }
    }
    fn check(
        &self,
        history: &History,
        paired: &Paired,
        opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        check(self.0, history, paired, &opts.txn)
    }
    fn promised_by(&self, promises: &[String], opts: &mut Options) -> bool {
        promised_model(promises, opts)
    }
    fn check_jsonl(&self, path: &Path, opts: &Options) -> Option<Result<Streamed, CheckError>> {
        Some(stream(self.0, path, &opts.txn))
    }
}

/// The strongest transactional model among a system's promises becomes the model checked
/// (unless `--consistency-model` chose one); a system that promises none is checked for
/// strict-serializable, as information.
fn promised_model(promises: &[String], opts: &mut Options) -> bool {
    let promised: Vec<&'static str> = promises
        .iter()
        .filter_map(|p| model::find(p).ok())
        .collect();
    let strongest = promised
        .iter()
        .copied()
        .find(|m| promised.iter().all(|o| model::implies(m, o)));
    let chosen = strongest.or(promised.first().copied());
    if opts.txn.model.is_none() {
        opts.txn.model = chosen.map(str::to_owned);
    }
    match &opts.txn.model {
        Some(m) => model::find(m).is_ok_and(|m| promised.iter().any(|p| model::implies(p, m))),
        None => false,
    }
}

/// Reads and checks a JSON Lines history file without keeping its events.
fn stream(kind: Kind, path: &Path, opts: &TxnOptions) -> Result<Streamed, CheckError> {
    let started = Instant::now();
    let (txns, events, warnings) = Txns::read_jsonl(path)?;
    let read_us = started.elapsed().as_micros() as u64;
    let mut result = check_txns(kind, &txns, opts)?;
    result.elapsed_us = started.elapsed().as_micros() as u64;
    Ok(Streamed {
        result,
        events,
        warnings,
        read_us,
    })
}

/// Checks the transactions of `history` with `kind`'s inference.
pub fn check(
    kind: Kind,
    history: &History,
    paired: &Paired,
    opts: &TxnOptions,
) -> Result<CheckerResult, CheckError> {
    let started = Instant::now();
    let txns = Txns::from_history(history, paired)?;
    let mut result = check_txns(kind, &txns, opts)?;
    result.elapsed_us = started.elapsed().as_micros() as u64;
    Ok(result)
}

/// The analysis behind a verdict, for tests and benchmarks.
#[derive(Debug)]
pub struct Analysis {
    pub model: &'static str,
    /// Every anomaly found, allowed by the model or not.
    pub anomalies: Vec<Anomaly>,
    /// The kinds found that the model forbids.
    pub forbidden: Vec<String>,
    /// The weakest models ruled out, and the stronger ones with them.
    pub not: Vec<&'static str>,
    pub also_not: Vec<&'static str>,
    /// Cycle searches that ran out of time (their SCC still has a cycle reported).
    pub timeouts: usize,
    pub graph_nodes: usize,
    pub graph_edges: usize,
    pub largest_scc: usize,
    /// What the inference noted (how much it read, anomalies counted but not shown).
    pub notes: Vec<String>,
}

/// Checks already-typed transactions.
pub fn analyse(kind: Kind, txns: &Txns, opts: &TxnOptions) -> Result<Analysis, CheckError> {
    let model =
        model::find(opts.model.as_deref().unwrap_or(model::DEFAULT_MODEL)).map_err(|message| {
            CheckError {
                file: txns.file.clone(),
                line: 0,
                field: "consistency-model".into(),
                message,
            }
        })?;
    let weak = saturate::Level::of(model);
    let Inferred {
        deps,
        mut anomalies,
        mut notes,
    } = match kind {
        Kind::ListAppend if weak.is_some() => append::infer_external(txns)?,
        Kind::ListAppend => append::infer(txns)?,
        Kind::RwRegister => register::infer(txns, opts)?,
    };
    if let Some(level) = weak {
        let ww: Vec<Dep> = deps.into_iter().filter(|d| d.rel == Rel::Ww).collect();
        let s = saturate::check(txns, kind, level, ww);
        notes.extend(s.notes);
        anomalies.extend(s.anomalies);
        // Biswas and Enea take every transaction to read its own writes: a history that
        // does not is outside every level, read committed included (Elle's read-committed,
        // which has no such assumption, allows it).
        let (mut forbidden, not, also_not) = judge(model, &anomalies);
        if anomalies.iter().any(|a| a.kind == "internal")
            && !forbidden.iter().any(|k| k == "internal")
        {
            forbidden.push("internal".into());
            forbidden.sort();
        }
        return Ok(Analysis {
            model,
            anomalies,
            forbidden,
            not,
            also_not,
            timeouts: 0,
            graph_nodes: s.txns,
            graph_edges: s.edges,
            largest_scc: s.largest_scc,
            notes,
        });
    }
    let (process, realtime) = model::needs(model);
    let g = graph::Graph::build(txns, deps, process && !realtime, realtime);
    let cycles = g.cycles(txns, opts.cycle_search_time, kind);
    notes.extend(
        cycles
            .counts
            .iter()
            .filter(|(_, n)| *n > graph::MAX_CYCLES_PER_CLASS)
            .map(|(class, n)| {
                format!(
                    "{n} {class} cycles, one per group of transactions that depend on each \
                     other ({} shown)",
                    graph::MAX_CYCLES_PER_CLASS
                )
            }),
    );
    anomalies.extend(cycles.anomalies);
    let (forbidden, not, also_not) = judge(model, &anomalies);
    Ok(Analysis {
        model,
        anomalies,
        forbidden,
        not,
        also_not,
        timeouts: cycles.timeouts,
        graph_nodes: g.txn_nodes(),
        graph_edges: g.edge_count(),
        largest_scc: cycles.largest_scc,
        notes,
    })
}

/// The kinds found that `model` forbids, and the weakest models they rule out and the
/// stronger ones with them.
fn judge(
    model: &'static str,
    anomalies: &[Anomaly],
) -> (Vec<String>, Vec<&'static str>, Vec<&'static str>) {
    let prohibited = model::prohibited(model);
    let mut kinds: Vec<&'static str> = anomalies
        .iter()
        .filter_map(|a| model::anomaly_name(&a.kind))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let forbidden: Vec<String> = kinds
        .iter()
        .filter(|k| prohibited.contains(*k))
        .map(|k| k.to_string())
        .collect();
    let (not, also_not) = model::boundary(&kinds);
    (forbidden, not, also_not)
}

/// Checks already-typed transactions and writes the verdict in the shared result shape.
pub fn check_txns(kind: Kind, txns: &Txns, opts: &TxnOptions) -> Result<CheckerResult, CheckError> {
    let started = Instant::now();
    let a = analyse(kind, txns, opts)?;
    let counts = count(txns);
    let mut summary = vec![format!(
        "{} transactions ({} ok, {} failed, {} indeterminate) over {} keys, checked for {}",
        txns.txns.len(),
        counts[0],
        counts[1],
        counts[2],
        txns.keys.len(),
        a.model
    )];
    let verdict = if !a.forbidden.is_empty() {
        summary.push(format!(
            "{} forbids what was found: {}",
            a.model,
            a.forbidden.join(", ")
        ));
        Judgement::Invalid
    } else if a.graph_edges == 0 {
        summary.push(
            "no transaction depends on another (nothing read what another wrote, and no order \
             was known between them): nothing to check"
                .into(),
        );
        Judgement::Unknown
    } else {
        Judgement::Valid
    };
    let allowed: Vec<&str> = {
        let mut k: Vec<&str> = a
            .anomalies
            .iter()
            .map(|x| x.kind.as_str())
            .filter(|k| !a.forbidden.iter().any(|f| f == k))
            .collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    if !allowed.is_empty() {
        summary.push(format!(
            "found but allowed by {}: {}",
            a.model,
            allowed.join(", ")
        ));
    }
    if !a.not.is_empty() {
        summary.push(format!(
            "not {}; also not {}",
            a.not.join(", "),
            if a.also_not.is_empty() {
                "anything stronger".to_string()
            } else {
                a.also_not.join(", ")
            }
        ));
    }
    summary.extend(a.notes.iter().cloned());
    if a.timeouts > 0 {
        summary.push(format!(
            "{} cycle searches ran out of time; the cycles shown may not be the shortest",
            a.timeouts
        ));
    }
    let detail = serde_json::json!({
        "model": a.model,
        "not": a.not,
        "also_not": a.also_not,
        "forbidden": a.forbidden,
        "graph": {"transactions": a.graph_nodes, "edges": a.graph_edges, "largest_scc": a.largest_scc},
    });
    Ok(CheckerResult {
        checker: kind.name().into(),
        verdict,
        promised: true,
        summary,
        anomalies: a.anomalies,
        elapsed_us: started.elapsed().as_micros() as u64,
        detail,
    })
}

/// Transactions by outcome: ok, fail, info.
fn count(txns: &Txns) -> [usize; 3] {
    let mut c = [0; 3];
    for t in &txns.txns {
        c[match t.kind {
            EventType::Ok => 0,
            EventType::Fail => 1,
            _ => 2,
        }] += 1;
    }
    c
}
