//! `render_run` on run folders as they are found: complete, killed half-way (no results.json,
//! a truncated last line, operations never completed), broken (no run.json, a bad history
//! line), and hostile (values from a system that tries to break the page).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of a fixture in a temporary folder, to render into.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_report_is_written_next_to_the_history_and_nothing_else_is_left() {
    let dir = copy_of("invalid");
    let stats = reports::render_run(dir.path()).expect("renders");
    assert_eq!(stats.verdict, "invalid");
    assert_eq!(stats.anomalies, 1);
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert_eq!(html.len() as u64, stats.bytes);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // The temporary file was renamed, not left behind.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_run_killed_half_way_renders_with_an_unknown_verdict_and_says_why() {
    let dir = copy_of("valid");
    std::fs::remove_file(dir.path().join("results.json")).expect("rm results");
    // Cut the history in the middle of a line, after an invocation that never completed.
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).expect("history");
    let lines: Vec<&str> = history.lines().collect();
    let invoke = lines
        .iter()
        .position(|l| l.contains(r#""type":"invoke""#) && lines.len() > 40)
        .expect("an invocation");
    let mut kept: String = lines[..=invoke + 20].join("\n");
    kept.push('\n');
    kept.push_str(&lines[invoke + 21][..20]);
    std::fs::write(dir.path().join("history.jsonl"), kept).expect("write");
    let stats = reports::render_run(dir.path()).expect("renders a killed run");
    assert_eq!(stats.verdict, "unknown");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert!(html.contains(r#"<body data-verdict="unknown">"#));
    assert!(
        html.contains("Not checked: results.json is missing"),
        "says why"
    );
    assert!(html.contains("is truncated"), "mentions the cut line");
    assert!(html.contains("never completed in the history"), "{html}");
    assert!(!html.contains("data-anomaly="));
}

#[test]
fn a_folder_without_run_json_or_with_a_bad_history_line_is_an_error_naming_the_file() {
    let dir = copy_of("valid");
    std::fs::remove_file(dir.path().join("run.json")).expect("rm");
    let e = reports::render_run(dir.path()).expect_err("no run.json");
    assert!(e.is_input());
    assert!(e.to_string().contains("run.json"), "{e}");

    let dir = copy_of("valid");
    std::fs::write(dir.path().join("run.json"), "{\"system\": ").expect("write");
    let e = reports::render_run(dir.path()).expect_err("bad run.json");
    assert!(
        e.to_string().contains("run.json") && e.to_string().contains("line 1"),
        "{e}"
    );

    let dir = copy_of("valid");
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).expect("history");
    let mut lines: Vec<String> = history.lines().map(str::to_owned).collect();
    lines[4] = r#"{"index":4,"time":"soon","process":1,"type":"ok","f":"read"}"#.to_string();
    std::fs::write(dir.path().join("history.jsonl"), lines.join("\n") + "\n").expect("write");
    let e = reports::render_run(dir.path()).expect_err("bad history line");
    let msg = e.to_string();
    assert!(
        msg.contains("history.jsonl:5"),
        "names file and line: {msg}"
    );
    assert!(msg.contains("time"), "names the field: {msg}");

    let e = reports::render_run(&dir.path().join("nowhere")).expect_err("no folder");
    assert!(e.to_string().contains("nowhere"), "{e}");
}

#[test]
fn an_unreadable_results_json_is_shown_not_fatal() {
    let dir = copy_of("invalid");
    std::fs::write(dir.path().join("results.json"), "{\"verdict\": \"inv").expect("write");
    let stats = reports::render_run(dir.path()).expect("renders");
    assert_eq!(stats.verdict, "unknown");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert!(
        html.contains("Not checked: results.json cannot be read"),
        "{html}"
    );
}

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(2)>";
const QUOTES: &str = "\"'><svg onload=alert(3)>";

/// A run folder whose every string is hostile: keys, operation names, node names, values,
/// errors, the command, the checkers' sentences and witnesses, plus a 1 MB value.
fn hostile_run(dir: &Path) {
    let huge = "A".repeat(1 << 20);
    let ctl = "bell\u{7} nul\u{0} esc\u{1b}[31m line\u{2028}sep";
    let nodes = [SCRIPT, QUOTES, "../../etc"];
    let mut events: Vec<Value> = vec![json!({
        "index": 0, "time": 1_000_000, "process": "nemesis", "type": "info",
        "f": "start-partition", "value": {SCRIPT: [QUOTES], QUOTES: [SCRIPT]}
    })];
    let mut t = 2_000_000u64;
    for i in 0..40u64 {
        let (key, f, value) = match i % 4 {
            0 => (SCRIPT.to_string(), "write".to_string(), json!(i)),
            1 => (QUOTES.to_string(), IMG.to_string(), json!(ctl)),
            2 => (ctl.to_string(), "read".to_string(), json!(huge)),
            _ => (
                SCRIPT.to_string(),
                format!("{IMG}{i}"),
                json!({SCRIPT: IMG}),
            ),
        };
        let node = nodes[(i % 3) as usize];
        events.push(
            json!({"index": 0, "time": t, "process": i % 5, "type": "invoke",
            "f": f, "key": key, "value": value, "node": node}),
        );
        let kind = ["ok", "fail", "info", "ok"][(i % 4) as usize];
        events.push(
            json!({"index": 0, "time": t + 500_000, "process": i % 5, "type": kind,
            "f": f, "key": key, "value": value, "node": node, "error": SCRIPT}),
        );
        t += 1_000_000;
        if kind == "info" {
            // An info retires its process id; keep using fresh ones.
            break;
        }
    }
    events.push(
        json!({"index": 0, "time": t, "process": "nemesis", "type": "info",
        "f": IMG, "value": SCRIPT}),
    );
    events.push(
        json!({"index": 0, "time": t + 1, "process": "nemesis", "type": "info",
        "f": "stop-partition", "value": null}),
    );
    let mut text = String::new();
    for (i, e) in events.iter_mut().enumerate() {
        e["index"] = json!(i);
        text.push_str(&e.to_string());
        text.push('\n');
    }
    std::fs::write(dir.join("history.jsonl"), text).expect("history");
    let run = json!({
        "system": SCRIPT, "workload": IMG, "nemesis": [QUOTES], "nodes": nodes,
        "seed": SCRIPT, "bug": ctl, "command": format!("harness run </pre>{SCRIPT} {huge}"),
        "started_at": QUOTES, "time_limit_ms": 1000,
    });
    std::fs::write(dir.join("run.json"), run.to_string()).expect("run.json");
    let op = |op: usize, p: u64| {
        json!({"op": op, "process": p, "action": format!("write {SCRIPT} {IMG}"), "kind": "ok",
            "invoke_index": 1, "complete_index": 2, "invoke_time": 2_000_000 + op as u64,
            "complete_time": 2_500_000, "line": 2, "complete_line": 3})
    };
    let witness = json!({
        "prefix": [0], "prefix_state": SCRIPT, "stuck": 1,
        "candidates": [{"op": 1, "reaches": null, "note": format!("{IMG} is impossible")}],
        "window": [0, 1], "window_minimal": true,
        "orders": [{"steps": [[0, QUOTES]], "fails_at": [1, SCRIPT]}], "orders_omitted": 0,
        "reason": format!("{SCRIPT} {huge}"),
        "cycle": [{"from": SCRIPT, "to": IMG, "because": QUOTES}, {"from": IMG, "to": SCRIPT, "because": ctl}],
        "ops": [op(0, 1), op(1, 2)],
        "explanation": [SCRIPT, format!("  - {IMG}"), format!("    {QUOTES} {ctl}")],
    });
    let element = json!({"element": SCRIPT, "add": null, "seen_by": [{"process": 3,
        "node": SCRIPT, "invoke_index": 5, "complete_index": 6, "invoke_time": 3_000_000,
        "complete_time": 3_100_000}], "seen_total": 1, "missed_total": 0});
    let results = json!([
        {"checker": "linearizability", "verdict": "invalid", "promised": true,
         "summary": [SCRIPT, IMG, huge],
         "anomalies": [{"kind": "linearizability", "key": SCRIPT, "title": format!("Key {SCRIPT}: {huge}"),
             "sentences": [SCRIPT, format!("  - {IMG}"), format!("    {QUOTES} {ctl}")],
             "ops": [0, 2], "cycle": [{"from": 0, "to": 2, "because": QUOTES}],
             "span_ns": [1_000_000, 2_000_000]}],
         "detail": {"keys": [{"key": SCRIPT, "ops": 2, "method": "graph", "verdict": "invalid",
             "witness": witness, "check_us": 1, "witness_us": 1, "configurations": 0,
             "memo_bytes": 0},
             {"key": IMG, "ops": 2, "method": "search", "verdict": "unknown",
              "reason": QUOTES, "check_us": 1, "witness_us": 0, "configurations": 0,
              "memo_bytes": 0}]}},
        {"checker": "set", "verdict": "invalid", "promised": true, "summary": [QUOTES],
         "anomalies": [{"kind": "unexpected", "key": QUOTES, "title": QUOTES,
             "sentences": [format!("{SCRIPT} no process ever tried to add it")],
             "ops": [5], "span_ns": [3_000_000, 3_100_000]}],
         "detail": {"keys": [{"key": QUOTES, "counts": {"attempted": 0, "acknowledged": 0,
             "failed": 0, "indeterminate": 0, "reads": 1, "read_final": 1, "stable": 0,
             "recovered": 0, "never_read": 0, "lost": 0, "unexpected": 1, "vanished": 0,
             "failed_but_present": 0},
             "verdict": "invalid", "witness": {"lost": [], "unexpected": [element],
             "vanished": [], "failed_but_present": [], "sentences": [format!("{SCRIPT} no process ever tried to add it")]}}]}},
        {"checker": SCRIPT, "verdict": "unknown", "promised": false, "summary": [QUOTES],
         "anomalies": [{"kind": IMG, "key": SCRIPT, "title": IMG, "sentences": [QUOTES],
             "ops": [0], "span_ns": null}]},
        {"checker": SCRIPT, "verdict": IMG, "summary": [QUOTES]}
    ]);
    std::fs::write(dir.join("results.json"), results.to_string()).expect("results.json");
    for n in nodes {
        // Node folders named like that cannot all exist; the links must still be safe.
        let _ = std::fs::create_dir_all(dir.join("nodes").join(n.replace('/', "_")));
    }
}

#[test]
fn a_hostile_run_renders_escaped_and_the_page_stays_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    hostile_run(dir.path());
    let stats = reports::render_run(dir.path()).expect("renders");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    if let Some(out) = std::env::var_os("HOSTILE_REPORT_OUT") {
        // To look at it in a browser.
        std::fs::write(out, &html).expect("write a copy");
    }
    assert_eq!(stats.verdict, "invalid");
    // Our one script element, and no tag that came from the data.
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert_eq!(html.matches("</script>").count(), 1);
    assert!(!html.contains("<img"), "no image tag from the data");
    assert!(!html.contains("<svg onload"), "no svg tag from the data");
    assert!(!html.contains("\"'>"), "no attribute broken out of");
    assert!(!html.contains('\u{0}') && !html.contains('\u{1b}') && !html.contains('\u{7}'));
    assert!(
        html.contains("&lt;script&gt;"),
        "the data is shown, escaped"
    );
    // The structure is intact: one body, every section, closed html.
    assert_eq!(html.matches("<body").count(), 1);
    assert!(html.contains(r#"<body data-verdict="invalid">"#));
    for id in [
        "verdict",
        "timeline",
        "charts",
        "keys",
        "anomalies",
        "files",
    ] {
        assert!(
            html.contains(&format!(r#"<section id="{id}">"#)),
            "section {id}"
        );
    }
    assert!(html.contains(r#"data-anomaly="linearizability""#));
    assert!(html.contains(r#"data-anomaly="unexpected""#));
    assert!(html.trim_end().ends_with("</html>"));
    // The 1 MB strings are cut, not copied into the page.
    assert!(html.len() < 400_000, "{} bytes", html.len());
    assert!(html.contains("more characters)"));
    // Links to node logs stay inside the run folder.
    assert!(html.contains("nodes/..%2F..%2Fetc/node.log") || !html.contains("../../etc/node.log"));
    assert!(!html.contains("href=\"nodes/../"), "no link climbs out");
}

/// A checker the report has no code of its own for (the counter) still gets its anomaly
/// drawn: title, sentences, its operations as bars, the faults active then.
#[test]
fn a_counter_anomaly_renders_from_the_shared_fields_alone() {
    let dir = copy_of("valid");
    // The fixture's history, with a counter's lost increment appended after it.
    let history_path = dir.path().join("history.jsonl");
    let mut text = std::fs::read_to_string(&history_path).expect("history");
    let first = text.lines().count() as u64;
    let t0 = 9_000_000_000u64;
    for (index, (p, kind, f, v)) in (first..).zip([
        (900, "invoke", "incr", json!(2)),
        (900, "ok", "incr", json!(2)),
        (901, "invoke", "read", Value::Null),
        (901, "ok", "read", json!(0)),
    ]) {
        text.push_str(
            &json!({"index": index, "time": t0 + index, "process": p, "type": kind, "f": f,
                    "key": "c0", "value": v, "node": "n1"})
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&history_path, &text).expect("write history");
    let h = history::read_file(&history_path, None)
        .expect("reads")
        .history;
    let paired = history::pair(&h).expect("pairs");
    let opts = checkers::Options::new(checkers::ModelKind::CasRegister);
    let results = checkers::registry::run(
        &["counter"],
        &["linearizable".to_string()],
        &h,
        &paired,
        &opts,
    )
    .expect("checks");
    assert_eq!(results[0].verdict, checkers::Judgement::Invalid);
    std::fs::write(
        dir.path().join("results.json"),
        serde_json::to_string(&results).expect("serialises"),
    )
    .expect("results.json");
    let stats = reports::render_run(dir.path()).expect("renders");
    assert_eq!(stats.verdict, "invalid");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert!(html.contains(r#"data-anomaly="lower-than-acknowledged""#));
    assert!(html.contains("Key c0: a final read of 0, below the 2 surely added before it"));
    assert!(html.contains("must lie between 2 and 2"));
    // The read and the increment it missed, drawn as bars and listed.
    assert!(html.contains("The operations involved"));
    assert!(
        html.contains("<td>p901</td><td>read c0</td><td>ok</td>"),
        "the read's row"
    );
    assert!(
        html.contains("<td>p900</td><td>incr c0</td><td>ok</td>"),
        "the increment's row"
    );
}
