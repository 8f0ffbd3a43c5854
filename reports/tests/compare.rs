//! `reports::compare` on run folders written here: two systems under one partition, one
//! refusing on its minority side and one answering there; runs that are not like for like;
//! and the inputs that are errors (one run, a folder that is not a run, a bad history line).

use reports::compare::{render_compare, COMPARE_FILE};
use reports::ReportError;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// n3 is cut off from 2 s to 4 s.
const CUT_NS: (u64, u64) = (2_000_000_000, 4_000_000_000);

/// How a system answers an operation on `node` invoked at `t_ns`, and after how long.
type Answer = fn(node: &str, t_ns: u64, n: usize) -> (&'static str, u64);

/// Always answers, in 5 ms (eventually consistent: available on the minority side).
fn available(_: &str, _: u64, _: usize) -> (&'static str, u64) {
    ("ok", 5_000_000)
}

/// Refuses on the minority side while it is cut off: a fail at once or a timeout (info).
fn consistent(node: &str, t: u64, n: usize) -> (&'static str, u64) {
    if node == "n3" && (CUT_NS.0..CUT_NS.1).contains(&t) {
        if n.is_multiple_of(2) {
            ("fail", 1_000_000)
        } else {
            ("info", 500_000_000)
        }
    } else {
        ("ok", 5_000_000)
    }
}

/// A run folder under `root`: every 250 ms from 10 ms to 5.76 s one read on each node,
/// answered by `answer`; a partition cutting off n3 over `CUT_NS`.
fn write_run(root: &Path, system: &str, seed: u64, answer: Answer) -> PathBuf {
    let dir = root.join(format!("{system}-register-partition/20260101T00000{seed}Z"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut events: Vec<Value> = Vec::new();
    let mut n = 0usize;
    for tick in 0..24u64 {
        let t = 10_000_000 + tick * 250_000_000;
        for node in NODES {
            let (kind, took) = answer(node, t, n);
            events.push(
                json!({"time": t, "process": n, "type": "invoke", "f": "read",
                "key": "k1", "value": null, "node": node}),
            );
            events.push(
                json!({"time": t + took, "process": n, "type": kind, "f": "read",
                "key": "k1", "value": null, "node": node}),
            );
            n += 1;
        }
    }
    events.push(
        json!({"time": CUT_NS.0, "process": "nemesis", "type": "info",
        "f": "start-partition", "value": {"n1": ["n3"], "n2": ["n3"], "n3": ["n1", "n2"]}}),
    );
    events.push(
        json!({"time": CUT_NS.1, "process": "nemesis", "type": "info",
        "f": "stop-partition", "value": null}),
    );
    events.sort_by_key(|e| e["time"].as_u64());
    let mut text = String::new();
    for (i, e) in events.iter_mut().enumerate() {
        e["index"] = json!(i);
        text.push_str(&e.to_string());
        text.push('\n');
    }
    std::fs::write(dir.join("history.jsonl"), text).expect("history");
    let run = json!({
        "system": system, "workload": "register", "nemesis": ["partition"], "seed": seed,
        "nodes": NODES, "time_limit_ms": 6000, "started_at": "20260101T000000Z",
        "schedule": {"steps": [{"fault": "partition", "shape": "isolate one node",
            "start_ms": 2000, "end_ms": 4000}]},
    });
    std::fs::write(dir.join("run.json"), run.to_string()).expect("run.json");
    let results = json!([
        {"checker": "linearizability", "verdict": "valid", "promised": system != "dynamo",
         "summary": [], "anomalies": []},
    ]);
    std::fs::write(dir.join("results.json"), results.to_string()).expect("results.json");
    dir
}

fn render(dirs: &[PathBuf], out: &Path) -> String {
    let stats = render_compare(dirs, out).expect("renders");
    let html = std::fs::read_to_string(out).expect("page");
    assert_eq!(html.len() as u64, stats.bytes);
    html
}

#[test]
fn two_systems_under_one_partition_show_the_minority_side() {
    let root = tempfile::tempdir().expect("tempdir");
    let raft = write_run(root.path(), "raft", 7, consistent);
    let dynamo = write_run(root.path(), "dynamo", 7, available);
    let out = root.path().join(COMPARE_FILE);
    let html = render(&[raft, dynamo], &out);
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
    // Self-contained: nothing is fetched.
    for fetch in ["src=\"http", "href=\"http", "<link", "url("] {
        assert!(!html.contains(fetch), "{fetch}");
    }
    // 24 operations were invoked during the cut, 8 of them on n3 (4 fail, 4 info).
    assert!(
        html.contains(
            "raft: 66.7% of the operations invoked during faults completed ok (100.0% outside \
             them); on the minority side of a partition (n3) 0.0%, on the majority side 100.0%."
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "dynamo: 100.0% of the operations invoked during faults completed ok (100.0% \
             outside them); on the minority side of a partition (n3) 100.0%"
        ),
        "{html}"
    );
    assert!(html.contains("16 ok</span> · <span class=\"fail\">4 fail</span> · <span class=\"info\">4 info</span>"), "{html}");
    assert!(html.contains(r#"<tr class="minority"><th>n3</th><td>minority side</td>"#));
    // Latency of ok operations: 5 ms each.
    assert!(html.contains("<td class=\"num\">5.0 ms</td>"), "{html}");
    // Checkers, promised and informational.
    assert!(html.contains("not promised: informational"));
    assert!(html.contains(">promised<"));
    // The same seed and schedule: no warning.
    assert!(html.contains(r#"data-warnings="0""#));
    assert!(!html.contains("Not like for like"));
    // One timeline per run, shaded where the partition was.
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.matches("n3 cut off from n1, n2").count() >= 2);
}

#[test]
fn runs_that_differ_in_seed_or_schedule_are_rendered_with_a_warning() {
    let root = tempfile::tempdir().expect("tempdir");
    let raft = write_run(root.path(), "raft", 7, consistent);
    let paxos = write_run(root.path(), "paxos", 8, consistent);
    let mut run: Value =
        serde_json::from_str(&std::fs::read_to_string(paxos.join("run.json")).expect("run.json"))
            .expect("json");
    run["schedule"]["steps"][0]["start_ms"] = json!(3000);
    std::fs::write(paxos.join("run.json"), run.to_string()).expect("write");
    let out = root.path().join("side-by-side.html");
    let stats = render_compare(&[raft.clone(), paxos.clone()], &out).expect("renders");
    assert_eq!(stats.runs, vec!["raft", "paxos"]);
    assert_eq!(stats.warnings.len(), 2, "{:?}", stats.warnings);
    let html = std::fs::read_to_string(&out).expect("page");
    assert!(html.contains("Not like for like"));
    assert!(
        html.contains("The runs differ in seed: 7 for raft, 8 for paxos."),
        "{html}"
    );
    assert!(
        html.contains("The planned fault schedules (run.json) differ"),
        "{html}"
    );
    assert!(
        html.contains("partition (isolate one node) 3.0–4.0 s for paxos"),
        "{html}"
    );

    // The same system twice is told apart by its place.
    let again = write_run(&root.path().join("again"), "raft", 7, consistent);
    let stats = render_compare(&[raft.clone(), again.clone()], &out).expect("renders");
    assert_eq!(stats.runs, vec!["raft #1", "raft #2"]);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);

    // The same plan, but the history of the second cut off another node.
    let history = again.join("history.jsonl");
    let text = std::fs::read_to_string(&history).expect("read");
    let moved: Vec<String> = text
        .lines()
        .map(|l| {
            let mut e: Value = serde_json::from_str(l).expect("json");
            if e["f"] == "start-partition" {
                e["value"] = json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]});
            }
            e.to_string()
        })
        .collect();
    std::fs::write(&history, moved.join("\n") + "\n").expect("write");
    let stats = render_compare(&[raft, again], &out).expect("renders");
    assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
    assert!(
        stats.warnings[0].contains(
            "fault 1 is \"partition: n3 cut off from n1, n2\" for raft #1 and \"partition: n1 cut \
             off from n2, n3\" for raft #2"
        ),
        "{:?}",
        stats.warnings
    );
}

#[test]
fn one_run_a_folder_that_is_not_a_run_and_a_bad_history_are_errors_naming_the_file() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join(COMPARE_FILE);
    let raft = write_run(root.path(), "raft", 7, consistent);
    let dynamo = write_run(root.path(), "dynamo", 7, available);

    let e = render_compare(std::slice::from_ref(&raft), &out).expect_err("one run");
    assert!(matches!(e, ReportError::Usage(_)) && e.is_input(), "{e}");
    assert!(e.to_string().contains("at least two run folders"), "{e}");

    let empty = root.path().join("not-a-run");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let e = render_compare(&[raft.clone(), empty.clone()], &out).expect_err("not a run");
    assert!(e.is_input());
    assert!(
        e.to_string()
            .starts_with(&format!("{}: not a run folder", empty.display())),
        "{e}"
    );
    let e =
        render_compare(&[raft.clone(), root.path().join("nowhere")], &out).expect_err("no folder");
    assert!(e.to_string().contains("nowhere") && e.is_input(), "{e}");

    // A bad line: the message names the folder, the file and the line.
    let history = dynamo.join("history.jsonl");
    let text = std::fs::read_to_string(&history).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{\"index\": 2, \"time\": \"soon\"}";
    std::fs::write(&history, lines.join("\n") + "\n").expect("write");
    let e = render_compare(&[raft.clone(), dynamo.clone()], &out).expect_err("bad line");
    assert!(e.is_input());
    assert!(
        e.to_string().contains(&format!("{}:3", history.display())),
        "{e}"
    );

    std::fs::remove_file(&history).expect("rm");
    let e = render_compare(&[raft.clone(), dynamo.clone()], &out).expect_err("no history");
    assert!(
        e.to_string().contains(&history.display().to_string()),
        "{e}"
    );

    std::fs::write(raft.join("run.json"), "{\"system\": ").expect("write");
    let e = render_compare(&[raft.clone(), dynamo], &out).expect_err("bad run.json");
    assert!(
        e.to_string()
            .contains(&raft.join("run.json").display().to_string())
            && e.to_string().contains("line 1"),
        "{e}"
    );
    assert!(!out.exists(), "nothing is written on an error");
}
