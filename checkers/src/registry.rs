//! The list of checkers. A checker is one module that implements [`Checker`] plus one line in
//! [`CHECKERS`]; `harness check --checker NAME`, the workloads (which name the checkers they
//! feed) and the report (which renders any [`CheckerResult`]) need nothing more.

use crate::result::CheckerResult;
use crate::{CheckError, Options};
use history::{History, Paired};
use std::path::Path;

/// A consistency checker over a paired history.
pub trait Checker: Sync {
    /// The name `--checker` takes and `results.json` carries.
    fn name(&self) -> &'static str;
    /// The property it checks, as system definitions name their promises
    /// (`[consistency] promises`, shared/DESIGN.md section 5).
    fn property(&self) -> &'static str;
    /// One line for `--help` and error messages.
    fn about(&self) -> &'static str;
    /// Checks `history`. `promised` in the result is true; the caller sets it from the
    /// system's promises.
    fn check(
        &self,
        history: &History,
        paired: &Paired,
        opts: &Options,
    ) -> Result<CheckerResult, CheckError>;
    /// Whether a system that promises `promises` promises what this checker checks. A checker
    /// that checks several models (the transactional ones) also picks, in `opts`, the model
    /// the system promises, unless one was chosen already.
    fn promised_by(&self, promises: &[String], _opts: &mut Options) -> bool {
        promised(promises, self.property())
    }
    /// Checks a JSON Lines history file as it is read, without holding its events, when this
    /// checker can (the transactional ones: a million transactions take gigabytes as events);
    /// `None` when it needs the whole history.
    fn check_jsonl(&self, _path: &Path, _opts: &Options) -> Option<Result<Streamed, CheckError>> {
        None
    }
    /// Whether it judges the history of any workload (the convergence of final reads), so that
    /// [`run`] adds it to every workload's checkers when the system promises its property.
    fn every_workload(&self) -> bool {
        false
    }
}

/// What [`Checker::check_jsonl`] returns: the result, the number of events read, and the
/// warnings met while reading.
#[derive(Debug)]
pub struct Streamed {
    pub result: CheckerResult,
    pub events: usize,
    pub warnings: Vec<history::Warning>,
    /// How long reading took, within the result's `elapsed_us`.
    pub read_us: u64,
}

/// Every checker, by name.
pub static CHECKERS: &[&dyn Checker] = &[
    &crate::lin::Linearizability,
    &crate::set::SetChecker,
    &crate::counter::CounterChecker,
    &crate::txn::LIST_APPEND,
    &crate::txn::RW_REGISTER,
    &crate::convergence::Convergence,
    &crate::siblings::Siblings,
    &crate::causal::Causal,
    &crate::unique_ids::UniqueIds,
    &crate::echo::Echo,
    &crate::kafka::KafkaChecker,
];

/// The checker called `name`; an unknown name is answered with the valid ones.
pub fn find(name: &str) -> Result<&'static dyn Checker, String> {
    CHECKERS
        .iter()
        .copied()
        .find(|c| c.name() == name)
        .ok_or_else(|| {
            format!(
                "unknown checker '{name}'; the checkers are: {}",
                names().join(", ")
            )
        })
}

pub fn names() -> Vec<&'static str> {
    CHECKERS.iter().map(|c| c.name()).collect()
}

/// Promises that include others: a strictly serializable store is linearizable on every key,
/// a linearizable one is sequentially consistent and causal, and loses no acknowledged update.
const IMPLIES: &[(&str, &str)] = &[
    ("strict-serializable", "linearizable"),
    ("strict-serializable", "serializable"),
    ("linearizable", "sequential"),
    ("linearizable", "causal"),
    ("linearizable", "no-lost-updates"),
    ("sequential", "causal"),
];

/// Whether a system that promises `promises` promises `property`.
pub fn promised(promises: &[String], property: &str) -> bool {
    let mut known: Vec<&str> = promises.iter().map(String::as_str).collect();
    let mut i = 0;
    while i < known.len() {
        for &(p, q) in IMPLIES {
            if p == known[i] && !known.contains(&q) {
                known.push(q);
            }
        }
        i += 1;
    }
    known.contains(&property)
}

/// The promises a system definition may make beyond the transactional models and the
/// checkers' own properties. `no-lost-updates`: an eventually consistent store that may serve
/// stale reads but keeps every acknowledged update (what the set and counter checkers'
/// eventual mode judges).
const SINGLE_OBJECT: &[&str] = &[
    "linearizable",
    "sequential",
    "causal",
    "convergent",
    "no-lost-updates",
];

/// How the set and counter checkers are promised: in full when the system promises
/// linearizability; in their eventual mode (`opts.eventual`) when it promises only
/// `no-lost-updates`; not at all otherwise (then they run in full, as information).
pub(crate) fn promised_in_full_or_eventual(promises: &[String], opts: &mut Options) -> bool {
    if promised(promises, "linearizable") {
        return true;
    }
    if promised(promises, "no-lost-updates") {
        opts.eventual = true;
        return true;
    }
    false
}

/// Every promise a system definition may make (`[consistency] promises`): the transactional
/// consistency models (`txn::model::names`, strict-serializable down to read-uncommitted),
/// the single-object ones and every checker's property (a checker of a property of its own,
/// as Maelstrom's `unique-ids`, `echo` and `kafka`, adds it), each once: `causal` is both
/// (transactional causal consistency, and causal consistency of single objects, which it
/// implies).
pub fn promises() -> Vec<&'static str> {
    let mut all = crate::txn::model::names();
    let properties = CHECKERS.iter().map(|c| c.property());
    for p in SINGLE_OBJECT.iter().copied().chain(properties) {
        if !all.contains(&p) {
            all.push(p);
        }
    }
    all
}

/// Runs the named checkers over one history, each marked promised or not, and after them
/// every checker that judges any workload ([`Checker::every_workload`]) whose property the
/// system promises.
pub fn run(
    names: &[&str],
    promises: &[String],
    history: &History,
    paired: &Paired,
    opts: &Options,
) -> Result<Vec<CheckerResult>, String> {
    let mut out = Vec::new();
    let mut checkers = names
        .iter()
        .map(|n| find(n))
        .collect::<Result<Vec<_>, _>>()?;
    for c in CHECKERS {
        let mut scratch = opts.clone();
        if c.every_workload() && !names.contains(&c.name()) && c.promised_by(promises, &mut scratch)
        {
            checkers.push(*c);
        }
    }
    for checker in checkers {
        let name = checker.name();
        let mut opts = opts.clone();
        let promised = checker.promised_by(promises, &mut opts);
        let mut result = checker
            .check(history, paired, &opts)
            .map_err(|e| format!("{name} checker: {e}"))?;
        result.promised = promised;
        out.push(result);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_checkers_property_is_a_promise_a_definition_may_make() {
        let all = promises();
        assert_eq!(
            all[crate::txn::model::names().len()..],
            [
                "linearizable",
                "sequential",
                "convergent",
                "no-lost-updates",
                "unique-ids",
                "echo",
                "kafka"
            ]
        );
        for c in CHECKERS {
            assert!(all.contains(&c.property()), "{}", c.name());
        }
    }

    use super::*;

    #[test]
    fn promises_imply_weaker_ones() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(promised(&p(&["strict-serializable"]), "linearizable"));
        assert!(promised(&p(&["strict-serializable"]), "causal"));
        assert!(promised(&p(&["linearizable"]), "linearizable"));
        assert!(!promised(&p(&["causal", "convergent"]), "linearizable"));
        assert!(!promised(&[], "linearizable"));
        assert!(promised(&p(&["linearizable"]), "no-lost-updates"));
        assert!(!promised(
            &p(&["convergent", "no-lost-updates"]),
            "linearizable"
        ));
    }

    #[test]
    fn set_and_counter_pick_the_eventual_mode_only_without_linearizability() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        for name in ["set", "counter"] {
            let c = find(name).expect("registered");
            let mut o = Options::new(crate::ModelKind::CasRegister);
            assert!(c.promised_by(&p(&["convergent", "no-lost-updates"]), &mut o));
            assert!(o.eventual, "{name}");
            let mut o = Options::new(crate::ModelKind::CasRegister);
            assert!(c.promised_by(&p(&["linearizable"]), &mut o));
            assert!(!o.eventual, "{name}");
            let mut o = Options::new(crate::ModelKind::CasRegister);
            assert!(!c.promised_by(&p(&["convergent"]), &mut o));
            assert!(!o.eventual, "{name}");
        }
    }

    #[test]
    fn every_workload_checkers_join_when_promised() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let h = History::new("t.jsonl");
        let paired = Paired::default();
        let o = Options::new(crate::ModelKind::CasRegister);
        let names = |r: Vec<CheckerResult>| r.into_iter().map(|c| c.checker).collect::<Vec<_>>();
        let plain = run(&["set"], &p(&["linearizable"]), &h, &paired, &o).expect("runs");
        assert_eq!(names(plain), ["set"]);
        let dynamo = run(&["set"], &p(&["convergent"]), &h, &paired, &o).expect("runs");
        assert_eq!(names(dynamo), ["set", "convergence"]);
    }

    #[test]
    fn promises_are_listed_once_though_causal_is_both_kinds() {
        let all = promises();
        let mut once = all.clone();
        once.sort_unstable();
        once.dedup();
        assert_eq!(once.len(), all.len(), "{all:?}");
        assert_eq!(all.iter().filter(|p| **p == "causal").count(), 1);
        assert!(crate::txn::model::find("causal").is_ok());
    }

    #[test]
    fn every_property_and_implication_is_a_known_promise() {
        let known = promises();
        for c in CHECKERS {
            assert!(known.contains(&c.property()), "{}", c.name());
        }
        for (p, q) in IMPLIES {
            assert!(known.contains(p) && known.contains(q), "{p} {q}");
        }
    }

    #[test]
    fn names_are_unique_and_unknown_ones_list_the_rest() {
        let mut n = names();
        n.sort_unstable();
        n.dedup();
        assert_eq!(n.len(), CHECKERS.len());
        let err = find("linearizable").err().unwrap_or_default();
        assert!(
            err.contains("linearizability") && err.contains("set"),
            "{err}"
        );
    }
}
