//! The linearizability checker: P-compositional (Horn & Kroening, "Faster linearizability
//! checking via P-compositionality", 2015) — the history is split by key, every key is checked
//! on its own (in parallel) and gets its own verdict — with the graph path for unique-valued
//! registers and the memoised search for everything else.
//!
//! The modules of this folder: `model` (what each operation does to a register or a string
//! key), `unique` (the polynomial path for registers with unique written values), `search`
//! (the memoised linearization search), `strings` (string keys viewed as registers), `witness`
//! (what a person reads when a key fails), `oracle` (a brute-force checker for tests) and
//! `synth` (histories of known verdict, for benchmarks and tests).

pub mod model;
pub mod oracle;
pub mod search;
pub mod strings;
pub mod synth;
pub mod unique;
pub mod witness;

use crate::lin::model::{new_model, AnyModel, Model, ModelKind};
use crate::lin::search::{Budget, KeyOp, Outcome};
use crate::lin::strings::StringView;
use crate::lin::unique::GraphOutcome;
use crate::lin::witness::{describe_view, explain, Clues, LinWitness, OpView};
use crate::registry::Checker;
use crate::result::{natural_key, widen, Anomaly, CheckerResult, Judgement};
use crate::CheckError;
use history::{History, Paired};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which decision procedure to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The graph path where it applies, the search otherwise.
    #[default]
    Auto,
    /// Always the search (for comparison and tests).
    Search,
}

/// Called after each key is decided, with (keys done, keys in all).
pub type Progress = std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    pub model: ModelKind,
    /// Time limit per key; a key not decided within it is `Unknown`.
    pub time_limit: Option<Duration>,
    /// Memory the checker may use for its memo tables, shared by the keys checked at once.
    pub memory_limit_bytes: usize,
    pub strategy: Strategy,
    /// Time allowed per key for building a witness, once the key is known to be invalid (not
    /// counted in `time_limit`, which bounds the decision).
    pub witness_time: Duration,
    pub progress: Option<Progress>,
    /// The set and counter checkers judge only what eventual consistency forbids (chosen by
    /// their `promised_by` when the system promises `no-lost-updates` but not
    /// `linearizable`).
    pub eventual: bool,
    /// The transactional checkers' options (consistency model, version order inferences).
    pub txn: crate::txn::TxnOptions,
    /// The causal checker's model (`--consistency-model CC|CCv|CM`); `None` means CCv.
    pub causal: Option<crate::causal::Model>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("model", &self.model)
            .field("time_limit", &self.time_limit)
            .field("memory_limit_bytes", &self.memory_limit_bytes)
            .field("strategy", &self.strategy)
            .field("witness_time", &self.witness_time)
            .finish_non_exhaustive()
    }
}

impl Options {
    pub fn new(model: ModelKind) -> Self {
        Options {
            model,
            time_limit: None,
            memory_limit_bytes: 1 << 30,
            strategy: Strategy::Auto,
            witness_time: Duration::from_secs(2),
            progress: None,
            eventual: false,
            txn: crate::txn::TxnOptions::default(),
            causal: None,
        }
    }
}

/// How a key was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Nothing to check: no operation of this key had to take effect.
    Trivial,
    /// The polynomial reads-from graph path.
    Graph,
    /// The memoised linearization search.
    Search,
}

/// A checker verdict (shared/DESIGN.md section 7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict<W> {
    Valid,
    Invalid { witness: W },
    Unknown { reason: String },
}

impl<W> Verdict<W> {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid { .. } => "invalid",
            Verdict::Unknown { .. } => "unknown",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyResult {
    /// The key; `None` for operations without one (a single register).
    pub key: Option<String>,
    /// Operations checked (after dropping those that constrain nothing).
    pub ops: usize,
    pub method: Method,
    /// Why the graph path handed over to the search, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict<Box<LinWitness>>,
    /// Time to decide, excluding the witness.
    pub check_us: u64,
    /// Time to build the witness.
    pub witness_us: u64,
    pub configurations: u64,
    pub memo_bytes: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub checker: &'static str,
    pub model: ModelKind,
    /// `valid` when every key is, `invalid` when any key is, otherwise `unknown`.
    pub verdict: &'static str,
    pub keys: Vec<KeyResult>,
    pub elapsed_us: u64,
}

impl Report {
    pub fn count(&self, verdict: &str) -> usize {
        self.keys
            .iter()
            .filter(|k| k.verdict.name() == verdict)
            .count()
    }
}

/// Checks a validated history for linearizability, key by key.
pub fn check(history: &History, paired: &Paired, opts: &Options) -> Result<Report, CheckError> {
    let started = Instant::now();
    let mut by_key: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, op) in paired.ops.iter().enumerate() {
        by_key.entry(op.key.as_deref()).or_default().push(i);
    }
    let mut groups: Vec<(Option<&str>, Vec<usize>)> = by_key.into_iter().collect();
    // Biggest keys first, so one huge key does not start last.
    groups.sort_by_key(|(k, ids)| (std::cmp::Reverse(ids.len()), *k));
    let threads = rayon::current_num_threads().max(1);
    let memo_bytes = (opts.memory_limit_bytes / threads).max(1 << 20);
    let done = AtomicUsize::new(0);
    let results: Vec<Result<KeyResult, CheckError>> = groups
        .par_iter()
        .map(|(key, ids)| {
            let r = check_key(history, paired, *key, ids, opts, memo_bytes);
            if let Some(p) = &opts.progress {
                p(done.fetch_add(1, Ordering::Relaxed) + 1, groups.len());
            }
            r
        })
        .collect();
    let mut keys = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(k) => keys.push(k),
            Err(e) => errors.push(e),
        }
    }
    if let Some(first) = errors.into_iter().min_by_key(|e| e.line) {
        return Err(first);
    }
    keys.sort_by_key(|k| natural_key(&k.key));
    let verdict = if keys
        .iter()
        .any(|k| matches!(k.verdict, Verdict::Invalid { .. }))
    {
        "invalid"
    } else if keys
        .iter()
        .any(|k| matches!(k.verdict, Verdict::Unknown { .. }))
    {
        "unknown"
    } else {
        "valid"
    };
    Ok(Report {
        checker: "linearizability",
        model: opts.model,
        verdict,
        keys,
        elapsed_us: started.elapsed().as_micros() as u64,
    })
}

/// Turns one key's operations into the checker's form; errors name the line and field.
pub fn prepare(
    model: &mut AnyModel,
    history: &History,
    paired: &Paired,
    ids: &[usize],
) -> Result<Vec<KeyOp>, CheckError> {
    let mut kops = Vec::with_capacity(ids.len());
    for &id in ids {
        let op = &paired.ops[id];
        match model.prepare(op) {
            Ok(Some(p)) => kops.push(KeyOp {
                id,
                call: op.invoke as u64,
                ret: match (p.required, op.complete) {
                    (true, Some(c)) => c as u64,
                    _ => u64::MAX,
                },
                prepared: p,
            }),
            Ok(None) => {}
            Err(e) => {
                let at = if e.in_completion {
                    op.complete.unwrap_or(op.invoke)
                } else {
                    op.invoke
                };
                return Err(CheckError {
                    file: history.file.clone(),
                    line: history.lines.get(at).copied().unwrap_or(at + 1),
                    field: e.field.to_owned(),
                    message: e.message,
                });
            }
        }
    }
    Ok(kops)
}

/// How witnesses show an operation.
pub fn op_view(history: &History, paired: &Paired, model: &AnyModel, k: &KeyOp) -> OpView {
    let op = &paired.ops[k.id];
    let inv = &history.events[op.invoke];
    let comp = op.complete.map(|c| &history.events[c]);
    let action = model.show_action(k.prepared.action);
    let line_of = |pos: usize| history.lines.get(pos).copied().unwrap_or(pos + 1);
    OpView {
        op: k.id,
        process: op.process,
        action,
        kind: op.kind.to_string(),
        invoke_index: inv.index,
        complete_index: comp.map(|e| e.index),
        invoke_time: inv.time,
        complete_time: comp.map(|e| e.time),
        line: line_of(op.invoke),
        complete_line: op.complete.map(line_of),
    }
}

fn check_key(
    history: &History,
    paired: &Paired,
    key: Option<&str>,
    ids: &[usize],
    opts: &Options,
    memo_bytes: usize,
) -> Result<KeyResult, CheckError> {
    let started = Instant::now();
    let deadline = opts.time_limit.map(|t| started + t);
    let mut model = new_model(opts.model);
    let kops = prepare(&mut model, history, paired, ids)?;
    let mut result = KeyResult {
        key: key.map(str::to_owned),
        ops: kops.len(),
        method: Method::Trivial,
        note: None,
        verdict: Verdict::Valid,
        check_us: 0,
        witness_us: 0,
        configurations: 0,
        memo_bytes: 0,
    };
    if !kops.iter().any(|k| k.prepared.required) {
        result.check_us = started.elapsed().as_micros() as u64;
        return Ok(result);
    }
    let view = |m: &AnyModel, k: &KeyOp| op_view(history, paired, m, k);
    // Marks the key invalid, with a witness built within its own time budget.
    let invalid = |result: &mut KeyResult, model: &mut AnyModel, clues: Clues<'_>| {
        let w0 = Instant::now();
        let w = explain(model, &kops, clues, opts.witness_time, memo_bytes, &view);
        result.witness_us = w0.elapsed().as_micros() as u64;
        result.verdict = Verdict::Invalid {
            witness: Box::new(w),
        };
    };

    // The register view the graph path decides, where it applies; and, for string-kv, what
    // each read needs (for witnesses).
    let mut needs = None;
    let mut graph_input: Option<Result<Vec<KeyOp>, GraphOutcome>> = None;
    {
        let m = &model;
        let describe = |i: u32| describe_view(&view(m, &kops[i as usize]));
        match &model {
            AnyModel::Register(r) if r.unique_writes() => graph_input = Some(Ok(kops.clone())),
            AnyModel::StringKv(s) => {
                let (v, n) = strings::register_view(s, &kops, &describe);
                needs = n;
                match v {
                    StringView::Registers(ops) => graph_input = Some(Ok(ops)),
                    StringView::Invalid { suspects, reason } => {
                        graph_input = Some(Err(GraphOutcome::Invalid {
                            suspects,
                            reason,
                            cycle: Vec::new(),
                        }))
                    }
                    StringView::NotApplicable(why) => {
                        result.note = Some(format!("graph path not applicable ({why})"))
                    }
                }
            }
            _ => {}
        }
    }
    if let (Strategy::Auto, Some(input)) = (opts.strategy, graph_input) {
        result.method = Method::Graph;
        let outcome = match input {
            Err(outcome) => outcome,
            Ok(ops) => {
                let m = &model;
                let describe = |i: u32| describe_view(&view(m, &kops[i as usize]));
                unique::check_unique(&ops, &describe)
            }
        };
        match outcome {
            GraphOutcome::Valid => {
                result.check_us = started.elapsed().as_micros() as u64;
                return Ok(result);
            }
            GraphOutcome::Invalid {
                suspects,
                reason,
                cycle,
            } => {
                result.check_us = started.elapsed().as_micros() as u64;
                let reason = siblings_read(history, paired, &kops, &suspects, |i| {
                    describe_view(&view(&model, &kops[i as usize]))
                })
                .unwrap_or(reason);
                let clues = Clues {
                    suspects: Some(&suspects),
                    reason: Some(&reason),
                    cycle: &cycle,
                    needs: needs.as_deref(),
                    ..Clues::default()
                };
                invalid(&mut result, &mut model, clues);
                return Ok(result);
            }
            GraphOutcome::Undecided(why) => {
                result.note = Some(format!("graph path undecided ({why}); searched instead"));
            }
        }
    }

    result.method = Method::Search;
    let budget = Budget {
        deadline,
        memo_bytes,
    };
    let (outcome, stats) = search::search(&mut model, &kops, &budget);
    result.configurations = stats.configurations;
    result.memo_bytes = stats.memo_bytes;
    result.check_us = started.elapsed().as_micros() as u64;
    match outcome {
        Outcome::Linearizable(_) => {}
        Outcome::Unknown(reason) => result.verdict = Verdict::Unknown { reason },
        Outcome::NotLinearizable(deepest) => {
            let clues = Clues {
                deepest: Some(&deepest),
                needs: needs.as_deref(),
                ..Clues::default()
            };
            invalid(&mut result, &mut model, clues);
        }
    }
    Ok(result)
}

/// Why a read that returned siblings (concurrent versions a Dynamo-style store kept side by
/// side) is not linearizable, when the graph path's first suspect is one: the list it returned
/// is no value any write wrote, and the reason is that the writes were never ordered.
fn siblings_read(
    history: &History,
    paired: &Paired,
    kops: &[KeyOp],
    suspects: &[u32],
    describe: impl Fn(u32) -> String,
) -> Option<String> {
    let &first = suspects.first()?;
    let op = &paired.ops[kops.get(first as usize)?.id];
    let done = &history.events[op.complete?];
    if !done.siblings {
        return None;
    }
    let n = done.value.as_array().map_or(0, Vec::len);
    Some(format!(
        "{} returned {n} siblings: versions the store kept side by side because their writes \
         were concurrent, never ordered. A linearizable register holds one value at a time \
         (the siblings and causal checkers judge reads of siblings)",
        describe(first)
    ))
}

/// The registry's linearizability checker: [`check`], in the shared result shape.
pub struct Linearizability;

impl Checker for Linearizability {
    fn name(&self) -> &'static str {
        "linearizability"
    }

    fn property(&self) -> &'static str {
        "linearizable"
    }

    fn about(&self) -> &'static str {
        "every key's operations take effect at one instant between invocation and completion \
         (registers, cas registers, string keys; --model picks which)"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        Ok(check(history, paired, opts)?.into_result())
    }
}

impl Report {
    /// The verdict as the shared result type has it.
    pub fn judgement(&self) -> Judgement {
        match self.verdict {
            "valid" => Judgement::Valid,
            "invalid" => Judgement::Invalid,
            _ => Judgement::Unknown,
        }
    }

    /// The shared result: a summary naming every key that is not valid, one anomaly per
    /// invalid key (its witness's operations and sentences), and this report as the detail.
    pub fn into_result(self) -> CheckerResult {
        let mut summary = Vec::new();
        let mut anomalies = Vec::new();
        for k in self.keys.iter().filter(|k| k.verdict.name() != "valid") {
            summary.push(format!(
                "key {}: {}",
                k.key.as_deref().unwrap_or("-"),
                k.verdict.name()
            ));
            match &k.verdict {
                Verdict::Invalid { witness } => {
                    summary.extend(witness.explanation.iter().take(6).cloned());
                    anomalies.push(anomaly(k.key.as_deref(), witness));
                }
                Verdict::Unknown { reason } => summary.push(reason.clone()),
                Verdict::Valid => {}
            }
        }
        CheckerResult {
            checker: self.checker.to_string(),
            verdict: self.judgement(),
            promised: true,
            summary,
            anomalies,
            elapsed_us: self.elapsed_us,
            detail: serde_json::to_value(&self).unwrap_or_default(),
        }
    }
}

/// One invalid key as an anomaly: the operations that cannot be linearized together (or, when
/// the witness has no such set, the stuck operation and its rivals).
fn anomaly(key: Option<&str>, w: &LinWitness) -> Anomaly {
    let by_op: BTreeMap<usize, &OpView> = w.ops.iter().map(|v| (v.op, v)).collect();
    let focus: Vec<&OpView> = if w.window.is_empty() {
        w.stuck
            .into_iter()
            .chain(w.candidates.iter().map(|c| c.op))
            .filter_map(|i| by_op.get(&i).copied())
            .collect()
    } else {
        w.window
            .iter()
            .filter_map(|i| by_op.get(i).copied())
            .collect()
    };
    let mut span_ns = None;
    for v in &focus {
        widen(
            &mut span_ns,
            v.invoke_time,
            v.complete_time.unwrap_or(v.invoke_time),
        );
    }
    let key_name = key.unwrap_or("-");
    let title = if w.window.is_empty() {
        format!("Key {key_name} is not linearizable")
    } else if w.window.len() == 1 {
        format!("Key {key_name}: an operation that cannot be linearized even on its own")
    } else {
        format!(
            "Key {key_name}: {} operations that cannot be linearized together",
            w.window.len()
        )
    };
    Anomaly {
        kind: "linearizability".into(),
        key: key.map(str::to_owned),
        title,
        sentences: w.explanation.clone(),
        ops: focus.iter().map(|v| v.invoke_index).collect(),
        // The unique-value path's cycle is drawn by the linearizability view, with the
        // operations as the witness describes them.
        cycle: Vec::new(),
        span_ns,
    }
}
