//! Elle's own test cases (jepsen-io/elle, test/elle/list_append_test.clj and
//! rw_register_test.clj), transcribed as data in tests/elle/*.toml with the verdict, anomaly
//! types and weakest ruled-out models Elle expects: our checkers must agree on every one.

use checkers::txn::{analyse, model, Kind, TxnOptions, Txns};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(serde::Deserialize)]
struct File {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    model: String,
    #[serde(default)]
    options: Vec<String>,
    valid: toml::Value,
    anomalies: Vec<String>,
    #[serde(default)]
    not: Option<Vec<String>>,
    /// Anomalies we find beyond Elle's, each explained in a comment on the case.
    #[serde(default)]
    also: Vec<String>,
    /// Anomalies Elle reports that we do not, each explained in a comment on the case.
    #[serde(default)]
    unlike: Vec<String>,
    history: String,
}

/// Elle distinguishes item from predicate anomalies; every anomaly here is on items.
fn ours(name: &str) -> String {
    name.replace("G-single-item", "G-single")
        .replace("G-nonadjacent-item", "G-nonadjacent")
}

fn run(file: &str, kind: Kind) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/elle")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("case file");
    let cases: File = toml::from_str(&text).expect("case file parses");
    let mut failures = Vec::new();
    for c in &cases.case {
        let history = history::edn::parse_edn_history(
            Path::new(&c.name),
            &c.history,
            history::edn::EdnOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let paired = history::pair(&history).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let txns =
            Txns::from_history(&history, &paired).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let mut opts = TxnOptions {
            wfr_keys: false,
            ..TxnOptions::default()
        };
        let mut asked: Vec<&'static str> = Vec::new();
        for o in &c.options {
            match o.as_str() {
                "sequential-keys" => opts.sequential_keys = true,
                "linearizable-keys" => opts.linearizable_keys = true,
                "wfr-keys" => opts.wfr_keys = true,
                other => {
                    let a = other.strip_prefix("anomalies=").expect("known option");
                    asked.push(model::anomaly_name(&ours(a)).unwrap_or_else(|| panic!("{a}")));
                }
            }
        }
        let reportable = if c.model == "none" {
            model::implying(&asked)
        } else {
            model::prohibited(model::find(&c.model).expect("known model"))
        };
        // With no model, Elle adds process or real-time order only when an asked anomaly
        // needs it.
        let checked = match c.model.as_str() {
            "none" if reportable.iter().any(|a| a.ends_with("-realtime")) => "strict-serializable",
            "none" if reportable.iter().any(|a| a.ends_with("-process")) => {
                "strong-session-serializable"
            }
            "none" => "serializable",
            m => m,
        };
        opts.model = Some(checked.to_owned());
        let a = analyse(kind, &txns, &opts).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let all: BTreeSet<String> = a.anomalies.iter().map(|x| x.kind.clone()).collect();
        let extra: BTreeSet<String> = c.also.iter().cloned().collect();
        let found: BTreeSet<String> = all
            .iter()
            .filter(|k| reportable.contains(k.as_str()) && !extra.contains(*k))
            .cloned()
            .collect();
        let empty = a.graph_edges == 0;
        let mut expected: BTreeSet<String> = c.anomalies.iter().map(|x| ours(x)).collect();
        expected.remove("empty-transaction-graph");
        for u in &c.unlike {
            assert!(
                expected.remove(u),
                "{}: unlike {u} is not among Elle's",
                c.name
            );
        }
        let verdict = if !found.is_empty() {
            "false"
        } else if empty {
            "unknown"
        } else {
            "true"
        };
        let want = match &c.valid {
            _ if !c.unlike.is_empty() => (expected.is_empty()).to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::String(s) => s.clone(),
            other => panic!("{}: valid {other}", c.name),
        };
        let mut problems = Vec::new();
        if found != expected {
            problems.push(format!("anomalies {found:?}, Elle {expected:?}"));
        }
        if verdict != want {
            problems.push(format!("valid {verdict}, Elle {want}"));
        }
        let missing: Vec<&String> = extra.iter().filter(|x| !all.contains(*x)).collect();
        if !missing.is_empty() {
            problems.push(format!("expected also {missing:?}"));
        }
        if let Some(not) = &c.not {
            let kinds: Vec<&'static str> = all
                .iter()
                .filter(|k| !extra.contains(*k))
                .filter_map(|k| model::anomaly_name(k))
                .collect();
            let ours: BTreeSet<&str> = model::boundary(&kinds).0.into_iter().collect();
            let theirs: BTreeSet<&str> = not.iter().map(String::as_str).collect();
            if ours != theirs {
                problems.push(format!("not {ours:?}, Elle {theirs:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} (everything found: {all:?})",
                c.name,
                problems.join("; ")
            ));
        }
    }
    failures
}

#[test]
fn list_append_agrees_with_elle() {
    let f = run("list_append.toml", Kind::ListAppend);
    assert!(f.is_empty(), "{} disagreements:\n{}", f.len(), f.join("\n"));
}

#[test]
fn rw_register_agrees_with_elle() {
    let f = run("rw_register.toml", Kind::RwRegister);
    assert!(f.is_empty(), "{} disagreements:\n{}", f.len(), f.join("\n"));
}
