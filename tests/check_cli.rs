//! `harness check` end to end: exit codes of shared/DESIGN.md section 6 and clear messages
//! for bad input (file, line and field).

use std::path::{Path, PathBuf};
use std::process::Command;

fn harness(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("the harness binary runs");
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch directory removed when the test ends, even on failure.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("harness-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn conformance(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/porcupine")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

const VALID: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"x","value":1}
{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"x","value":1}
{"index":2,"time":30,"process":1,"type":"invoke","f":"read","key":"x","value":null}
{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"x","value":1}
"#;

const STALE: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"x","value":1}
{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"x","value":1}
{"index":2,"time":30,"process":1,"type":"invoke","f":"read","key":"x","value":null}
{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"x","value":null}
{"index":4,"time":50,"process":2,"type":"invoke","f":"read","key":"y","value":null}
{"index":5,"time":60,"process":2,"type":"ok","f":"read","key":"y","value":null}
"#;

#[test]
fn valid_history_exits_0_and_stale_read_exits_1_with_witness() {
    let s = Scratch::new("verdicts");
    let (code, out, _) = harness(&["check", &s.file("ok.jsonl", VALID)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VALID"), "{out}");

    let (code, out, _) = harness(&["check", &s.file("stale.jsonl", STALE)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("key x: invalid"), "{out}");
    assert!(
        out.contains("key y: valid"),
        "every key gets its own verdict: {out}"
    );
    assert!(out.contains("cannot be linearized together"), "{out}");
}

#[test]
fn json_output_parses_and_carries_the_witness() {
    let s = Scratch::new("json");
    let (code, out, _) = harness(&["check", "--json", &s.file("stale.jsonl", STALE)]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(doc["summary"]["invalid"], 1);
    let keys = doc["files"][0]["report"]["keys"].as_array().expect("keys");
    let x = keys.iter().find(|k| k["key"] == "x").expect("key x");
    assert_eq!(x["verdict"], "invalid");
    assert!(!x["witness"]["window"]
        .as_array()
        .expect("window")
        .is_empty());
}

#[test]
fn etcd_directory_gives_porcupines_verdicts_in_one_run() {
    let (code, out, _) = harness(&["check", "--brief", "--json", &conformance("jepsen")]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["summary"]["files"], 102);
    assert_eq!(doc["summary"]["valid"], 23);
    assert_eq!(doc["summary"]["invalid"], 79);
}

fn assert_bad_input(code: i32, out: &str, err: &str, wants: &[&str]) {
    let all = format!("{out}{err}");
    assert_eq!(code, 2, "bad input must exit 2: {all}");
    for w in wants {
        assert!(all.contains(w), "message should mention {w:?}: {all}");
    }
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn empty_file_is_a_clear_error() {
    let s = Scratch::new("empty");
    let f = s.file("empty.jsonl", "");
    let (code, out, err) = harness(&["check", &f]);
    assert_bad_input(code, &out, &err, &["empty.jsonl", "empty"]);
}

#[test]
fn unknown_format_is_a_clear_error() {
    let s = Scratch::new("unknown");
    let f = s.file("notes.txt", "hello, this is not a history\n");
    let (code, out, err) = harness(&["check", &f]);
    assert_bad_input(code, &out, &err, &["notes.txt", "--format"]);
}

#[test]
fn completion_without_invocation_names_line_and_field() {
    let s = Scratch::new("orphan");
    let f = s.file(
        "orphan.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}
{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}
{"index":2,"time":3,"process":4,"type":"ok","f":"read","value":1}
"#,
    );
    let (code, out, err) = harness(&["check", &f]);
    assert_bad_input(
        code,
        &out,
        &err,
        &["orphan.jsonl:3", "`type`", "no matching invocation"],
    );
}

#[test]
fn reused_process_after_info_names_line_and_field() {
    let s = Scratch::new("reuse");
    let f = s.file(
        "reuse.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}
{"index":1,"time":2,"process":0,"type":"info","f":"write","value":1}
{"index":2,"time":3,"process":0,"type":"invoke","f":"read","value":null}
{"index":3,"time":4,"process":0,"type":"ok","f":"read","value":1}
"#,
    );
    let (code, out, err) = harness(&["check", &f]);
    assert_bad_input(code, &out, &err, &["reuse.jsonl:3", "`process`", "line 2"]);
}

#[test]
fn garbage_values_name_line_and_field() {
    let s = Scratch::new("garbage");
    // A cas whose value is not [expected, new].
    let f = s.file(
        "cas.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"cas","value":"banana"}
{"index":1,"time":2,"process":0,"type":"ok","f":"cas","value":"banana"}
"#,
    );
    let (code, out, err) = harness(&["check", &f]);
    assert_bad_input(
        code,
        &out,
        &err,
        &["cas.jsonl:1", "`value`", "[expected, new]"],
    );

    // A process that is neither an integer nor "nemesis".
    let f = s.file(
        "proc.jsonl",
        r#"{"index":0,"time":1,"process":-3,"type":"invoke","f":"read","value":null}
"#,
    );
    let (code, out, err) = harness(&["check", &f]);
    assert_bad_input(code, &out, &err, &["proc.jsonl:1", "process"]);

    // A set read that returns a number.
    let f = s.file(
        "set.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"add","value":1}
{"index":1,"time":2,"process":0,"type":"ok","f":"add","value":1}
{"index":2,"time":3,"process":0,"type":"invoke","f":"read","value":null}
{"index":3,"time":4,"process":0,"type":"ok","f":"read","value":7}
"#,
    );
    let (code, out, err) = harness(&["check", "--model", "set", &f]);
    assert_bad_input(code, &out, &err, &["set.jsonl:4", "`value`"]);

    // An operation the model does not know.
    let (code, out, err) = harness(&[
        "check",
        "--model",
        "register",
        &s.file("cas2.jsonl", &VALID.replace("\"write\"", "\"cas\"")),
    ]);
    assert_bad_input(code, &out, &err, &["cas2.jsonl:1", "`f`", "register"]);
}

#[test]
fn truncated_last_line_is_reported_and_the_rest_checked() {
    let s = Scratch::new("truncated");
    let mut text = VALID.to_owned();
    text.push_str(r#"{"index":4,"time":50,"process":2,"type":"inv"#);
    let f = s.file("cut.jsonl", &text);
    let (code, out, err) = harness(&["check", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("cut.jsonl:5") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let (code, _, err) = harness(&["check", "--model", "nonsense", "x.jsonl"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cas-register"),
        "lists the valid models: {err}"
    );
    let (code, _, err) = harness(&["check", "--time-limit", "soon", "x.jsonl"]);
    assert_eq!(code, 2);
    assert!(err.contains("duration"), "{err}");
}

#[test]
fn missing_file_is_bad_input() {
    let (code, out, err) = harness(&["check", "/nonexistent/history.jsonl"]);
    assert_bad_input(code, &out, &err, &["/nonexistent/history.jsonl"]);
}
