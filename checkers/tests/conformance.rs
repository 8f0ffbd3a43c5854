//! Golden tests: every row of shared/conformance/porcupine/expected.tsv must get its expected
//! verdict, with the model the table names. The table is read, not copied.

use checkers::{ModelKind, Options, Verdict};
use std::path::PathBuf;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/porcupine")
}

#[test]
fn every_row_of_expected_tsv_gets_its_verdict() {
    let dir = conformance_dir();
    let table = std::fs::read_to_string(dir.join("expected.tsv")).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; ../shared must sit beside the checkout",
            dir.display()
        )
    });
    let mut rows = 0;
    let mut wrong = Vec::new();
    for (n, line) in table.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 3, "expected.tsv line {}: {line:?}", n + 1);
        let (file, model, expected) = (cols[0], cols[1], cols[2]);
        let model: ModelKind = model.parse().expect("a model the checker knows");
        let expected_valid = match expected {
            "true" => true,
            "false" => false,
            other => panic!("expected.tsv line {}: verdict {other:?}", n + 1),
        };
        let loaded = history::read_file(&dir.join(file), None).expect("conformance files parse");
        let paired = history::pair(&loaded.history).expect("conformance files are well formed");
        // A budget keeps CI bounded: c50-bad has keys that are hard to exhaust.
        let opts = Options {
            time_limit: Some(std::time::Duration::from_secs(5)),
            ..Options::new(model)
        };
        let report = checkers::check(&loaded.history, &paired, &opts)
            .expect("conformance files fit their model");
        rows += 1;
        // Every key decided: an `unknown` is as wrong as a wrong verdict here.
        let decided = report
            .keys
            .iter()
            .all(|k| !matches!(k.verdict, Verdict::Unknown { .. }))
            || (!expected_valid && report.verdict == "invalid");
        if (report.verdict == "valid") != expected_valid || !decided {
            wrong.push(format!(
                "{file}: expected {expected}, got {}",
                report.verdict
            ));
        }
        for k in &report.keys {
            if let Verdict::Invalid { witness } = &k.verdict {
                assert!(
                    !witness.window.is_empty(),
                    "{file}: an invalid key without a window"
                );
                assert!(
                    !witness.explanation.is_empty(),
                    "{file}: an invalid key without sentences"
                );
            }
        }
    }
    assert_eq!(rows, 108, "expected.tsv lists 102 etcd logs and 6 kv files");
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

/// The same etcd verdicts with the search alone (no shortcut may hide a search bug).
#[test]
fn etcd_logs_with_search_only() {
    let dir = conformance_dir();
    let table = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    for line in table.lines().skip(1).filter(|l| l.starts_with("jepsen/")) {
        let cols: Vec<&str> = line.split('\t').collect();
        let loaded = history::read_file(&dir.join(cols[0]), None).expect("parses");
        let paired = history::pair(&loaded.history).expect("pairs");
        let opts = Options {
            strategy: checkers::Strategy::Search,
            ..Options::new(ModelKind::CasRegister)
        };
        let report = checkers::check(&loaded.history, &paired, &opts).expect("checks");
        assert_eq!(report.verdict == "valid", cols[2] == "true", "{}", cols[0]);
    }
}
