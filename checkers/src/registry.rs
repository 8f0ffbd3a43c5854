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
    &crate::txn::ListAppend,
    &crate::txn::RwRegister,
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
/// a linearizable one is sequentially consistent and causal.
const IMPLIES: &[(&str, &str)] = &[
    ("strict-serializable", "linearizable"),
    ("strict-serializable", "serializable"),
    ("linearizable", "sequential"),
    ("linearizable", "causal"),
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

/// The promises a system definition may make beyond the transactional models.
const SINGLE_OBJECT: &[&str] = &["linearizable", "sequential", "causal", "convergent"];

/// Every promise a system definition may make (`[consistency] promises`): the transactional
/// consistency models (`txn::model::names`, strict-serializable down to read-uncommitted) and
/// the single-object ones.
pub fn promises() -> Vec<&'static str> {
    let mut all = crate::txn::model::names();
    all.extend_from_slice(SINGLE_OBJECT);
    all
}

/// Runs the named checkers over one history, each marked promised or not.
pub fn run(
    names: &[&str],
    promises: &[String],
    history: &History,
    paired: &Paired,
    opts: &Options,
) -> Result<Vec<CheckerResult>, String> {
    let mut out = Vec::new();
    for &name in names {
        let checker = find(name)?;
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
    use super::*;

    #[test]
    fn promises_imply_weaker_ones() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(promised(&p(&["strict-serializable"]), "linearizable"));
        assert!(promised(&p(&["strict-serializable"]), "causal"));
        assert!(promised(&p(&["linearizable"]), "linearizable"));
        assert!(!promised(&p(&["causal", "convergent"]), "linearizable"));
        assert!(!promised(&[], "linearizable"));
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
