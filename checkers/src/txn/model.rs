//! Consistency models and the anomalies that rule them out, as Elle relates them (Adya's
//! isolation levels, their session and real-time ("strong") variants, and the models of
//! Bailis, Cerone and Daudjee between them). Three relations, all data:
//!
//! - [`IMPLIES`]: anomaly A implies anomaly B (a G0 cycle is also a G1c; a lost update is a
//!   G2-item);
//! - [`MODELS`]: a history that satisfies model M also satisfies model N;
//! - [`PROSCRIBES`]: the anomalies a model rules out directly (it also rules out everything
//!   its weaker models rule out, and every anomaly that implies one of those).
//!
//! From them: the anomalies a chosen model prohibits ([`prohibited`]), and for the anomalies
//! found, the weakest models they rule out and the stronger ones with them ([`boundary`],
//! Elle's `:not` and `:also-not`).
//!
//! `causal` (transactional causal consistency, Biswas and Enea, OOPSLA 2019) is ours: with
//! `read-atomic` and `strong-session-read-committed` it is checked by saturation
//! ([`super::saturate`]), session order included, and its violations are anomalies of their
//! own (`causal-violation`, `read-atomic-violation`, `read-committed-violation`,
//! `cyclic-so-wr`). It implies both, and the session and real-time snapshot models imply it;
//! Elle's session-less models (serializable, snapshot-isolation, prefix, ...) still imply
//! `read-atomic` through `causal-cerone`, so `read-atomic` does not imply
//! `strong-session-read-committed` here, though a `read-atomic` check includes session order:
//! otherwise serializable would forbid `G1c-process`.

use std::collections::BTreeSet;

/// The model checked when none is chosen.
pub const DEFAULT_MODEL: &str = "strict-serializable";

/// Anomaly → the anomalies it implies.
const IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    // Every cycle here is over items (keys), never predicates: a G-single or G-nonadjacent
    // is Elle's G-single-item or G-nonadjacent-item, and so also a G2-item.
    ("G-single", &["G-nonadjacent", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    ("G-nonadjacent", &["G2-item", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-item-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-item-realtime"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-process", &["G2-realtime"]),
    ("incompatible-order", &["G1a"]),
    ("dirty-update", &["G1a"]),
    ("future-read", &["G1c"]),
    ("lost-update", &["G2-item"]),
    // The weak levels checked by saturation ([`super::saturate`]), session order included as
    // Biswas and Enea define them: a cycle of session order and reads-from breaks every level
    // (and is a G1c, or a G1c-process when session order is in it); what breaks read
    // committed breaks read atomic, and what breaks read atomic breaks causal.
    ("cyclic-so-wr", &["G1c-process", "read-committed-violation"]),
    ("read-committed-violation", &["read-atomic-violation"]),
    ("read-atomic-violation", &["causal-violation"]),
];

/// Model → the (weaker) models it implies.
const MODELS: &[(&str, &[&str])] = &[
    (
        "strict-serializable",
        &[
            "serializable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-read-committed"],
    ),
    (
        "strong-session-snapshot-isolation",
        &[
            "snapshot-isolation",
            "strong-session-read-committed",
            "causal",
        ],
    ),
    (
        "strong-read-committed",
        &["strong-session-read-committed", "strong-read-uncommitted"],
    ),
    (
        "strong-session-read-committed",
        &["read-committed", "strong-session-read-uncommitted"],
    ),
    (
        "strong-read-uncommitted",
        &["strong-session-read-uncommitted"],
    ),
    ("strong-session-read-uncommitted", &["read-uncommitted"]),
    (
        "serializable",
        &[
            "repeatable-read",
            "snapshot-isolation",
            "update-serializable",
        ],
    ),
    ("update-atomic", &[]),
    ("update-serializable", &["forward-consistent-view"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
            "update-atomic",
        ],
    ),
    ("parallel-snapshot-isolation", &["causal-cerone"]),
    ("prefix", &["causal-cerone"]),
    ("causal-cerone", &["read-atomic"]),
    // Transactional causal consistency (Biswas and Enea, OOPSLA 2019), session order
    // included. Elle's session-less models above reach read-atomic through causal-cerone and
    // never reach this one; only the session and real-time models do.
    ("causal", &["read-atomic", "strong-session-read-committed"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view", "update-atomic"],
    ),
    ("cursor-stability", &["read-committed"]),
    ("monotonic-view", &["read-committed"]),
    ("monotonic-snapshot-read", &["read-committed"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("read-committed", &["read-uncommitted"]),
    ("read-uncommitted", &[]),
];

/// Model → the anomalies it rules out directly.
const PROSCRIBES: &[(&str, &[&str])] = &[
    // A value nobody wrote (ours; Elle has no such check) breaks every model.
    (
        "read-uncommitted",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "garbage-read",
        ],
    ),
    ("read-committed", &["G1"]),
    ("cursor-stability", &["G1", "lost-update"]),
    ("update-atomic", &["lost-update"]),
    ("monotonic-view", &["G1"]),
    ("monotonic-snapshot-read", &["G1"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1"]),
    (
        "read-atomic",
        &["internal", "G1a", "future-read", "read-atomic-violation"],
    ),
    ("causal", &["causal-violation"]),
    ("causal-cerone", &["internal", "G1a"]),
    ("prefix", &["internal", "G1a"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    ("repeatable-read", &["G1", "G2-item", "lost-update"]),
    ("snapshot-isolation", &["internal", "G1", "G-nonadjacent"]),
    ("serializable", &["G1", "G2", "internal"]),
    ("update-serializable", &["G1"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime"],
    ),
    ("strong-session-read-uncommitted", &["G0-process"]),
    (
        "strong-session-read-committed",
        &["G1c-process", "read-committed-violation"],
    ),
    ("strong-read-uncommitted", &["G0-realtime"]),
    ("strong-read-committed", &["G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &["internal", "G1-process", "G-nonadjacent-process"],
    ),
    (
        "strong-snapshot-isolation",
        &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    ),
    ("strong-session-serializable", &["G1-process", "G2-process"]),
];

/// Every model `--consistency-model` accepts, strongest first.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|(m, _)| *m).collect()
}

/// The model called `name`, or the list of known ones.
pub fn find(name: &str) -> Result<&'static str, String> {
    MODELS
        .iter()
        .map(|(m, _)| *m)
        .find(|m| *m == name)
        .ok_or_else(|| {
            format!(
                "unknown consistency model '{name}'; the models are: {}",
                names().join(", ")
            )
        })
}

/// Breadth-first closure of `start` along `rel` (forward) or against it (backward).
fn closure(
    rel: &[(&'static str, &[&'static str])],
    start: &[&'static str],
    forward: bool,
) -> BTreeSet<&'static str> {
    let mut seen: BTreeSet<&'static str> = start.iter().copied().collect();
    let mut todo: Vec<&'static str> = start.to_vec();
    while let Some(x) = todo.pop() {
        let next: Vec<&'static str> = if forward {
            rel.iter()
                .filter(|(a, _)| *a == x)
                .flat_map(|(_, bs)| bs.iter().copied())
                .collect()
        } else {
            rel.iter()
                .filter(|(_, bs)| bs.contains(&x))
                .map(|(a, _)| *a)
                .collect()
        };
        for y in next {
            if seen.insert(y) {
                todo.push(y);
            }
        }
    }
    seen
}

/// Every anomaly that rules out `model`: what it and each model it implies proscribe, and
/// every anomaly that implies one of those.
pub fn prohibited(model: &'static str) -> BTreeSet<&'static str> {
    let models = closure(MODELS, &[model], true);
    let direct: Vec<&'static str> = PROSCRIBES
        .iter()
        .filter(|(m, _)| models.contains(m))
        .flat_map(|(_, a)| a.iter().copied())
        .collect();
    closure(IMPLIES, &direct, false)
}

/// Whether `model` needs real-time order (`strict-serializable`, the `strong-` models) or
/// process order (the `strong-session-` models) among the dependencies.
pub fn needs(model: &'static str) -> (bool, bool) {
    let p = prohibited(model);
    let realtime = p.iter().any(|a| a.ends_with("-realtime"));
    let process = p.iter().any(|a| a.ends_with("-process"));
    (process, realtime)
}

/// The models the anomalies found rule out: the weakest (`not`) and every stronger one
/// (`also_not`), as Elle's `:not` and `:also-not`.
pub fn boundary(found: &[&'static str]) -> (Vec<&'static str>, Vec<&'static str>) {
    let implied = closure(IMPLIES, found, true);
    let direct: Vec<&'static str> = PROSCRIBES
        .iter()
        .filter(|(_, a)| a.iter().any(|x| implied.contains(x)))
        .map(|(m, _)| *m)
        .collect();
    let impossible = closure(MODELS, &direct, false);
    let weakest: Vec<&'static str> = impossible
        .iter()
        .copied()
        .filter(|m| {
            let below = closure(MODELS, &[m], true);
            !below.iter().any(|w| w != m && impossible.contains(w))
        })
        .collect();
    let also: Vec<&'static str> = impossible
        .iter()
        .copied()
        .filter(|m| !weakest.contains(m))
        .collect();
    (weakest, also)
}

/// Whether a history that satisfies `stronger` satisfies `weaker` (every model implies itself).
pub fn implies(stronger: &'static str, weaker: &'static str) -> bool {
    closure(MODELS, &[stronger], true).contains(weaker)
}

/// `anomaly` and every anomaly it implies.
pub fn implied(anomaly: &'static str) -> BTreeSet<&'static str> {
    closure(IMPLIES, &[anomaly], true)
}

/// `anomalies` and every anomaly that implies one of them: what a check asking for just
/// these (Elle's `:anomalies`) reports.
pub fn implying(anomalies: &[&'static str]) -> BTreeSet<&'static str> {
    closure(IMPLIES, anomalies, false)
}

/// The static name of an anomaly kind this module knows.
pub fn anomaly_name(kind: &str) -> Option<&'static str> {
    IMPLIES
        .iter()
        .flat_map(|(a, bs)| std::iter::once(*a).chain(bs.iter().copied()))
        .chain(PROSCRIBES.iter().flat_map(|(_, a)| a.iter().copied()))
        .find(|a| *a == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializable_forbids_g2_item_but_read_committed_allows_it() {
        let s = prohibited("serializable");
        for a in [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single",
            "G2-item",
            "lost-update",
            "internal",
        ] {
            assert!(s.contains(a), "serializable should forbid {a}");
        }
        assert!(!s.contains("G2-item-realtime"));
        let rc = prohibited("read-committed");
        for a in [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "dirty-update",
            "incompatible-order",
        ] {
            assert!(rc.contains(a), "read-committed should forbid {a}");
        }
        for a in ["G-single", "G2-item", "lost-update", "G1c-realtime"] {
            assert!(!rc.contains(a), "read-committed allows {a}");
        }
        let si = prohibited("snapshot-isolation");
        assert!(si.contains("G-single") && si.contains("lost-update"));
        assert!(!si.contains("G2-item"), "write skew is allowed under SI");
        let ss = prohibited("strict-serializable");
        assert!(ss.contains("G2-item-realtime") && ss.contains("G0-process"));
        assert!(ss.contains("garbage-read"));
    }

    #[test]
    fn models_need_the_orders_their_anomalies_mention() {
        assert_eq!(needs("serializable"), (false, false));
        assert_eq!(needs("strong-session-serializable"), (true, false));
        assert!(needs("strict-serializable").1);
    }

    #[test]
    fn boundaries_name_the_weakest_models_ruled_out() {
        let (not, also) = boundary(&["G2-item"]);
        assert_eq!(not, ["repeatable-read"]);
        assert!(also.contains(&"serializable") && also.contains(&"strict-serializable"));
        assert!(!also.contains(&"snapshot-isolation"));
        let (not, _) = boundary(&["G1a"]);
        assert!(
            not.contains(&"read-committed") || not.contains(&"read-atomic"),
            "{not:?}"
        );
        let (not, _) = boundary(&["G-single"]);
        assert!(not.contains(&"consistent-view"), "{not:?}");
        assert!(boundary(&[]).0.is_empty());
    }

    #[test]
    fn causal_sits_between_the_session_models_and_read_atomic() {
        assert!(implies("causal", "read-atomic"));
        assert!(implies("causal", "strong-session-read-committed"));
        assert!(implies("strict-serializable", "causal"));
        assert!(implies("strong-session-serializable", "causal"));
        // Elle's session-less models know nothing of session order.
        assert!(!implies("serializable", "causal"));
        assert!(!implies("snapshot-isolation", "causal"));
        assert!(!implies("causal", "serializable"));
        let cc = prohibited("causal");
        for a in [
            "causal-violation",
            "read-atomic-violation",
            "read-committed-violation",
            "cyclic-so-wr",
            "G1a",
            "G1b",
            "G1c-process",
            "internal",
            "garbage-read",
        ] {
            assert!(cc.contains(a), "causal should forbid {a}");
        }
        assert!(!cc.contains("lost-update") && !cc.contains("G2-item"));
        let ra = prohibited("read-atomic");
        assert!(ra.contains("read-atomic-violation") && !ra.contains("causal-violation"));
        let rc = prohibited("strong-session-read-committed");
        assert!(rc.contains("read-committed-violation") && rc.contains("cyclic-so-wr"));
        assert!(!rc.contains("read-atomic-violation"));
        assert_eq!(needs("causal"), (true, false));
        assert_eq!(boundary(&["causal-violation"]).0, ["causal"]);
        assert_eq!(boundary(&["read-atomic-violation"]).0, ["read-atomic"]);
        assert_eq!(
            boundary(&["read-committed-violation"]).0,
            ["read-atomic", "strong-session-read-committed"]
        );
        let (not, also) = boundary(&["cyclic-so-wr"]);
        assert!(not.contains(&"strong-session-read-committed"), "{not:?}");
        assert!(also.contains(&"causal"), "{also:?}");
        assert_eq!(anomaly_name("causal-violation"), Some("causal-violation"));
    }

    #[test]
    fn unknown_models_list_the_known_ones() {
        let e = find("serialisable").unwrap_err();
        assert!(
            e.contains("strict-serializable") && e.contains("read-committed"),
            "{e}"
        );
        assert_eq!(find("snapshot-isolation"), Ok("snapshot-isolation"));
    }
}
