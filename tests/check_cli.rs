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
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    }
    /// Creates the directory `name` (and its parents); returns its path.
    fn dir(&self, name: &str) -> String {
        let p = self.0.join(name);
        std::fs::create_dir_all(&p).expect("dir");
        p.to_string_lossy().into_owned()
    }
    /// Creates the symbolic link `name` pointing at `target` (as written).
    fn link(&self, target: &str, name: &str) -> String {
        let p = self.0.join(name);
        std::os::unix::fs::symlink(target, &p).expect("symlink");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unlock(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes every directory under `dir` readable again (tests lock some), so it can be removed.
fn unlock(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            unlock(&entry.path());
        }
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

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("--json prints JSON ({e}): {out}"))
}

/// The result of `file` (a path ending) in a --json document.
fn file_entry<'a>(doc: &'a serde_json::Value, file: &str) -> &'a serde_json::Value {
    doc["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["file"].as_str().is_some_and(|p| p.ends_with(file)))
        .unwrap_or_else(|| panic!("no entry for {file}: {doc:#}"))
}

#[test]
fn a_directory_where_nothing_was_checked_exits_2() {
    let s = Scratch::new("nothing-checked");
    let readme_only = s.dir("readme");
    s.file("readme/README.md", "# Notes\nNothing to see here.\n");
    let (code, out, err) = harness(&["check", &readme_only]);
    assert_eq!(code, 2, "no file was checked: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("README.md"))
        .unwrap_or_else(|| panic!("the README is listed: {out}"));
    assert!(
        line.ends_with("README.md: skipped (not a history)"),
        "{out}"
    );
    assert_eq!(line.matches("README.md").count(), 1, "path once: {out}");
    assert_eq!(out.lines().count(), 1, "one short line: {out}");
    assert!(
        !out.contains("--format"),
        "no --format hint for a README: {out}"
    );
    assert!(err.contains("no history was checked"), "{err}");

    // Files named as histories are errors when they cannot be read as one, never skipped.
    for name in ["history.jsonl", "run.edn", "etcd_001.log"] {
        let d = s.dir(&format!("damaged-{name}"));
        s.file(
            &format!("damaged-{name}/{name}"),
            "garbage, not a history\n",
        );
        let (code, out, err) = harness(&["check", &d]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(out.contains(&format!("{name}: ERROR")), "{out}");
        assert!(!out.contains("skipped"), "{out}");
        let (_, out, _) = harness(&["check", "--json", &d]);
        assert_eq!(file_entry(&json(&out), name)["verdict"], "error", "{out}");
    }

    // A README beside a history is skipped and does not change the exit status.
    let mixed = s.dir("mixed");
    s.file("mixed/README.md", "# Notes\n");
    s.file("mixed/ok.jsonl", VALID);
    let (code, out, err) = harness(&["check", &mixed]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 valid, 0 invalid, 0 unknown, 0 errors, 1 skipped"),
        "{out}"
    );
}

#[test]
fn out_of_range_limits_are_usage_errors() {
    let s = Scratch::new("limits");
    let f = s.file("ok.jsonl", VALID);
    let (code, _, err) = harness(&["check", "--time-limit", "99999999999999999999s", &f]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("--time-limit") && err.contains("duration"),
        "{err}"
    );

    let (code, _, err) = harness(&["check", "--memory-limit", "512KiB", &f]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("minimum") && err.contains("1MiB"), "{err}");
    let (code, out, err) = harness(&["check", "--memory-limit", "1MiB", &f]);
    assert_eq!(code, 0, "the minimum itself is fine: {out}{err}");
}

#[test]
fn unreadable_entries_are_errors_naming_them_and_the_rest_is_checked() {
    let s = Scratch::new("unreadable");
    let d = s.dir("d");
    s.file("d/ok.jsonl", VALID);
    s.link("/nonexistent/history.jsonl", "d/dangling.jsonl");
    s.link("self", "d/self");
    let proc_mem = Path::new("/proc/self/mem").exists();
    if proc_mem {
        s.link("/proc/self/mem", "d/mem");
    }
    // A directory we may not read (when not running as root, which may read anything).
    let locked = s.dir("d/locked");
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    let locked_works = std::fs::read_dir(&locked).is_err();

    let (code, out, err) = harness(&["check", &d]);
    assert_eq!(code, 2, "errors and nothing invalid: {out}{err}");
    assert!(
        out.contains("ok.jsonl: VALID"),
        "the rest is checked: {out}"
    );
    let mut bad = vec!["dangling.jsonl", "self"];
    if proc_mem {
        bad.push("mem");
    }
    if locked_works {
        bad.push("locked");
    }
    for name in &bad {
        assert!(out.contains(&format!("/{name}: ERROR")), "{name}: {out}");
    }
    assert!(
        out.contains("/nonexistent/history.jsonl"),
        "names the target: {out}"
    );

    let (code, out, _) = harness(&["check", "--json", &d]);
    assert_eq!(code, 2);
    let doc = json(&out);
    for name in &bad {
        let e = file_entry(&doc, name);
        assert_eq!(e["verdict"], "error", "{name}: {e}");
        let message = e["error"]["message"].as_str().expect("a message");
        assert!(message.contains(name), "{name}: {message}");
    }
    assert_eq!(file_entry(&doc, "ok.jsonl")["verdict"], "valid");
}

#[test]
fn symlink_loops_are_not_followed_and_each_file_is_checked_once() {
    let s = Scratch::new("loops");
    let d = s.dir("d");
    s.file("d/sub/ok.jsonl", VALID);
    s.link("..", "d/sub/loop");
    s.link("sub/ok.jsonl", "d/again.jsonl");
    let (code, out, err) = harness(&["check", "--json", &d]);
    assert_eq!(code, 0, "{out}{err}");
    let doc = json(&out);
    assert_eq!(doc["summary"]["valid"], 1, "checked once: {out}");
    assert_eq!(doc["summary"]["files"], 3, "{out}");
    assert_eq!(file_entry(&doc, "loop")["verdict"], "skipped");
    // In name order the link comes first, so the file it points at is the repeat.
    assert_eq!(file_entry(&doc, "again.jsonl")["verdict"], "valid");
    let repeat = file_entry(&doc, "ok.jsonl");
    assert_eq!(repeat["verdict"], "skipped");
    assert!(
        repeat["skipped"]
            .as_str()
            .is_some_and(|why| why.contains("same file as") && why.contains("again.jsonl")),
        "{repeat}"
    );

    // A symlink named on the command line is followed.
    let (code, out, err) = harness(&["check", &format!("{d}/again.jsonl")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("VALID"), "{out}");
}

#[test]
fn mixed_verdicts_exit_by_the_documented_precedence() {
    let s = Scratch::new("precedence");
    let d = s.dir("d");
    s.file("d/a-ok.jsonl", VALID);
    s.file(
        "d/b-broken.jsonl",
        "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n",
    );
    let (code, out, err) = harness(&["check", &d]);
    assert_eq!(code, 2, "error beats valid: {out}{err}");
    s.file("d/c-stale.jsonl", STALE);
    let (code, out, err) = harness(&["check", &d]);
    assert_eq!(code, 1, "an anomaly beats an error: {out}{err}");

    let (code, help, _) = harness(&["check", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("1, then 2, then 3, then 0"), "{help}");
    assert!(help.contains("4  the harness itself failed"), "{help}");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    assert!(
        readme.contains("1, then 2, then 3, then 0"),
        "README documents it too"
    );
}

#[test]
fn help_and_readme_state_the_real_defaults() {
    let (_, help, _) = harness(&["check", "--help"]);
    let memory = help
        .split("--memory-limit <SIZE>")
        .nth(1)
        .and_then(|rest| rest.split("--strategy").next())
        .expect("--memory-limit is documented");
    assert!(!memory.contains("per file"), "{memory}");
    assert!(
        help.contains("shared by the keys checked at once"),
        "{help}"
    );
    assert!(help.contains("Default: no limit"), "{help}");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    // `harness run` does default to 30 s; `harness check` has no time limit by default.
    let check_section = readme
        .split("## `harness check`")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a `harness check` section");
    assert!(
        !check_section.contains("[--time-limit 30s]"),
        "no made-up default"
    );
    assert!(readme.contains("shared by the keys checked at once"));
}

#[test]
fn json_errors_are_structured_and_empty_directories_give_json() {
    let s = Scratch::new("json-errors");
    let f = s.file(
        "orphan.jsonl",
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}
{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":1}
{"index":2,"time":3,"process":4,"type":"ok","f":"read","value":1}
"#,
    );
    let (code, out, _) = harness(&["check", "--json", &f]);
    assert_eq!(code, 2);
    let doc = json(&out);
    let e = &doc["files"][0]["error"];
    assert_eq!(e["line"], 3, "{e}");
    assert_eq!(e["field"], "type", "{e}");
    let message = e["message"].as_str().expect("a human message");
    assert!(
        message.contains("orphan.jsonl:3") && message.contains("no matching invocation"),
        "{message}"
    );

    let empty = s.dir("empty");
    let (code, out, err) = harness(&["check", "--json", &empty]);
    assert_eq!(code, 2, "{out}{err}");
    let doc = json(&out);
    assert_eq!(doc["summary"]["files"], 0);
    assert_eq!(doc["summary"]["exit"], 2);
    assert!(
        doc["note"].as_str().is_some_and(|n| n.contains(&empty)),
        "{out}"
    );

    // Text: the directory is named plainly, not as a Rust list.
    let (code, _, err) = harness(&["check", &empty]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("no history files found in {empty}")),
        "{err}"
    );
    assert!(!err.contains("[\""), "{err}");
}

#[test]
fn keys_are_quoted_when_unusual_and_counts_are_singular() {
    let s = Scratch::new("keys");
    let op = |i: u32, p: u32, ty: &str, f: &str, key: &str, v: &str| {
        format!(
            r#"{{"index":{i},"time":{},"process":{p},"type":"{ty}","f":"{f}","key":{key},"value":{v}}}"#,
            10 * (i + 1)
        )
    };
    let lines = [
        op(0, 0, "invoke", "read", r#""""#, "null"),
        op(1, 0, "ok", "read", r#""""#, "null"),
        op(2, 1, "invoke", "read", r#""a\nb: invalid""#, "null"),
        op(3, 1, "ok", "read", r#""a\nb: invalid""#, "null"),
        op(4, 2, "invoke", "read", r#""\u001b[31mred""#, "null"),
        op(5, 2, "ok", "read", r#""\u001b[31mred""#, "null"),
        op(6, 3, "invoke", "write", r#""plain-key_1.x""#, "1"),
        op(7, 3, "ok", "write", r#""plain-key_1.x""#, "1"),
    ];
    let f = s.file("keys.jsonl", &(lines.join("\n") + "\n"));
    let (code, out, err) = harness(&["check", &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"key "": valid"#), "{out}");
    assert!(out.contains(r#"key "a\nb: invalid": valid"#), "{out}");
    assert!(out.contains(r#"key "\u{1b}[31mred": valid"#), "{out}");
    assert!(out.contains("key plain-key_1.x: valid"), "{out}");
    assert!(!out.contains('\u{1b}'), "no raw escape: {out}");
    assert!(
        !out.lines().any(|l| l.starts_with("b: invalid")),
        "a key cannot forge a line: {out}"
    );
    assert!(out.contains("(1 op,"), "{out}");
    assert!(out.contains("4 keys:"), "{out}");

    let one = s.file("one.jsonl", &(lines[..2].join("\n") + "\n"));
    let (_, out, _) = harness(&["check", &one]);
    assert!(out.contains("1 op, 1 key:"), "{out}");
    assert!(!out.contains("1 ops") && !out.contains("1 keys"), "{out}");
}

#[test]
fn notes_are_shown_only_with_verbose() {
    let f = conformance("kv/c10-ok.txt");
    let (code, out, _) = harness(&["check", &f]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("note:"), "{out}");
    let (code, out, _) = harness(&["check", "--verbose", &f]);
    assert_eq!(code, 0);
    assert!(out.contains("note: graph path"), "{out}");
    let (_, out, _) = harness(&["check", "--json", &f]);
    assert!(
        out.contains("\"note\": \"graph path"),
        "the JSON keeps them"
    );
}

#[test]
fn very_long_witness_lines_are_cut() {
    let s = Scratch::new("long");
    let long = "A".repeat(100_000);
    let f = s.file(
        "long.jsonl",
        &format!(
            r#"{{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"x","value":"{long}"}}
{{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"x","value":"{long}"}}
{{"index":2,"time":30,"process":1,"type":"invoke","f":"read","key":"x","value":null}}
{{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"x","value":"B"}}
"#
        ),
    );
    let (code, out, _) = harness(&["check", &f]);
    assert_eq!(code, 1, "{}", &out[..out.len().min(2000)]);
    assert!(
        out.contains("more characters; see --json)"),
        "{}",
        &out[..out.len().min(2000)]
    );
    let longest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest <= 460, "a line of {longest} characters");
    let (_, out, _) = harness(&["check", "--json", &f]);
    assert!(out.contains(&long), "the JSON has the whole value");
}

#[test]
fn output_that_cannot_be_written_exits_4() {
    let Ok(full) = std::fs::File::create("/dev/full") else {
        return; // No /dev/full here.
    };
    let s = Scratch::new("full");
    let f = s.file("ok.jsonl", VALID);
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["check", &f])
        .stdout(full)
        .output()
        .expect("the harness binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("cannot write the output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A set history with an acknowledged element missing from the final read.
const LOST_SET: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"add","key":"s","value":1}
{"index":1,"time":20,"process":0,"type":"ok","f":"add","key":"s","value":1}
{"index":2,"time":30,"process":1,"type":"invoke","f":"read","key":"s","value":null}
{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"s","value":[]}
"#;

/// A counter history whose final read misses an acknowledged increment.
const LOST_INCR: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"incr","key":"c","value":2}
{"index":1,"time":20,"process":0,"type":"ok","f":"incr","key":"c","value":2}
{"index":2,"time":30,"process":0,"type":"invoke","f":"incr","key":"c","value":3}
{"index":3,"time":40,"process":0,"type":"ok","f":"incr","key":"c","value":3}
{"index":4,"time":50,"process":1,"type":"invoke","f":"read","key":"c","value":null}
{"index":5,"time":60,"process":1,"type":"ok","f":"read","key":"c","value":3}
"#;

#[test]
fn any_registered_checker_runs_by_name() {
    let s = Scratch::new("checkers");
    let set = s.file("set.jsonl", LOST_SET);
    let (code, out, _) = harness(&["check", &set, "--checker", "set"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INVALID") && out.contains("(lost)"), "{out}");
    let (code, out, _) = harness(&["check", &set, "--checker", "set", "--json"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        json(&out)["files"][0]["result"]["anomalies"][0]["kind"],
        "lost"
    );

    let counter = s.file("counter.jsonl", LOST_INCR);
    let (code, out, _) = harness(&["check", &counter, "--checker", "counter"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("lower-than-acknowledged"), "{out}");
    assert!(out.contains("must lie between 5 and 5"), "{out}");
    // The same history with the increment seen is valid.
    let seen = LOST_INCR.replace(
        r#""type":"ok","f":"read","key":"c","value":3"#,
        r#""type":"ok","f":"read","key":"c","value":5"#,
    );
    let fixed = s.file("fixed.jsonl", &seen);
    let (code, out, _) = harness(&["check", &fixed, "--checker", "counter"]);
    assert_eq!(code, 0, "{out}");

    let (code, _, err) = harness(&["check", &set, "--checker", "sett"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown checker 'sett'") && err.contains("counter"),
        "{err}"
    );
}

/// A set read that misses an acknowledged add, then a final read on the node (local, as a run
/// takes them) that has it: a stale read, which a linearizable set forbids and an eventually
/// consistent one allows.
const STALE_SET: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"add","key":"s","value":1,"node":"n1"}
{"index":1,"time":20,"process":0,"type":"ok","f":"add","key":"s","value":1,"node":"n1"}
{"index":2,"time":30,"process":1,"type":"invoke","f":"read","key":"s","value":null,"node":"n1"}
{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"s","value":[],"node":"n1"}
{"index":4,"time":50,"process":7,"type":"invoke","f":"read","key":"s","value":null,"node":"n1","local":true}
{"index":5,"time":60,"process":7,"type":"ok","f":"read","key":"s","value":[1],"node":"n1"}
"#;

#[test]
fn set_and_counter_check_the_eventual_mode_when_asked() {
    let s = Scratch::new("eventual");
    let stale = s.file("stale.jsonl", STALE_SET);
    let (code, out, _) = harness(&["check", &stale, "--checker", "set"]);
    assert_eq!(code, 1, "a linearizable set has no stale reads: {out}");
    for model in ["linearizable", "LINEARIZABLE"] {
        let (code, out, _) = harness(&[
            "check",
            &stale,
            "--checker",
            "set",
            "--consistency-model",
            model,
        ]);
        assert_eq!(code, 1, "{model}: {out}");
    }
    let (code, out, _) = harness(&[
        "check",
        &stale,
        "--checker",
        "set",
        "--consistency-model",
        "eventual",
        "--json",
    ]);
    assert_eq!(
        code, 0,
        "a stale read is allowed in the eventual mode: {out}"
    );
    assert_eq!(json(&out)["files"][0]["verdict"], "valid", "{out}");
    // A final read that lacks the add is a lost update in either mode.
    let lost = s.file("lost.jsonl", LOST_SET);
    let (code, out, _) = harness(&[
        "check",
        &lost,
        "--checker",
        "set",
        "--consistency-model",
        "eventual",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(lost)"), "{out}");
    let counter = s.file("counter.jsonl", LOST_INCR);
    let (code, out, _) = harness(&[
        "check",
        &counter,
        "--checker",
        "counter",
        "--consistency-model",
        "eventual",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("lower-than-acknowledged"), "{out}");
    // The mode belongs to set and counter, and they take no other model.
    let (code, _, err) = harness(&["check", &stale, "--consistency-model", "eventual"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--checker set or --checker counter"), "{err}");
    let (code, _, err) = harness(&[
        "check",
        &stale,
        "--checker",
        "set",
        "--consistency-model",
        "serializable",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("linearizable or eventual"), "{err}");
    let (code, _, err) = harness(&["check", &stale, "--consistency-model", "eventualy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("linearizable, eventual"), "{err}");
}

/// Two concurrent writes, then a read that returned both as siblings.
const SIBLINGS: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"k","value":1,"node":"n1"}
{"index":1,"time":11,"process":1,"type":"invoke","f":"write","key":"k","value":2,"node":"n2"}
{"index":2,"time":20,"process":0,"type":"ok","f":"write","key":"k","value":1,"node":"n1","context":"a"}
{"index":3,"time":21,"process":1,"type":"ok","f":"write","key":"k","value":2,"node":"n2","context":"b"}
{"index":4,"time":30,"process":0,"type":"invoke","f":"read","key":"k","value":null,"node":"n1"}
{"index":5,"time":40,"process":0,"type":"ok","f":"read","key":"k","value":[1,2],"siblings":true,"node":"n1","context":"c"}
"#;

#[test]
fn a_read_of_siblings_is_named_as_such_by_linearizability() {
    let s = Scratch::new("siblings-lin");
    let f = s.file("siblings.jsonl", SIBLINGS);
    let (code, out, _) = harness(&["check", &f]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("returned 2 siblings"), "{out}");
    assert!(!out.contains("no operation ever wrote"), "{out}");
    // The same list without the siblings flag is a value nobody wrote.
    let plain = s.file("plain.jsonl", &SIBLINGS.replace(r#""siblings":true,"#, ""));
    let (code, out, _) = harness(&["check", &plain]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no operation ever wrote"), "{out}");
}

/// A Dynamo-style register: a write made with the context of a read that saw 1, then two
/// nodes' local final reads, one of them still holding 1 beside 2.
const DIVERGED: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"k","value":1,"node":"n1"}
{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"k","value":1,"node":"n1","context":"a"}
{"index":2,"time":30,"process":0,"type":"invoke","f":"read","key":"k","value":null,"node":"n1","context":"a"}
{"index":3,"time":40,"process":0,"type":"ok","f":"read","key":"k","value":1,"node":"n1","context":"b"}
{"index":4,"time":50,"process":0,"type":"invoke","f":"write","key":"k","value":2,"node":"n1","context":"b"}
{"index":5,"time":60,"process":0,"type":"ok","f":"write","key":"k","value":2,"node":"n1","context":"c"}
{"index":6,"time":70,"process":7,"type":"invoke","f":"read","key":"k","value":null,"node":"n1","local":true}
{"index":7,"time":80,"process":7,"type":"ok","f":"read","key":"k","value":2,"node":"n1"}
{"index":8,"time":90,"process":8,"type":"invoke","f":"read","key":"k","value":null,"node":"n2","local":true}
{"index":9,"time":99,"process":8,"type":"ok","f":"read","key":"k","value":[2,1],"node":"n2","siblings":true}
"#;

#[test]
fn convergence_and_siblings_read_the_optional_fields() {
    let s = Scratch::new("dynamo");
    let f = s.file("dynamo.jsonl", DIVERGED);
    let (code, out, _) = harness(&["check", &f, "--checker", "convergence", "--json"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        json(&out)["files"][0]["result"]["anomalies"][0]["kind"],
        "diverged"
    );
    let (code, out, _) = harness(&["check", &f, "--checker", "siblings", "--json"]);
    assert_eq!(code, 1, "{out}");
    let doc = json(&out);
    let kinds: Vec<&str> = doc["files"][0]["result"]["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["superseded-sibling", "resurrected"], "{out}");
}

/// A write skew: two transactions each read the key the other appends to, and miss it.
const WRITE_SKEW: &str = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["r","x",null],["append","y",1]]}
{"index":1,"time":1,"process":1,"type":"invoke","f":"txn","value":[["r","y",null],["append","x",2]]}
{"index":2,"time":2,"process":0,"type":"ok","f":"txn","value":[["r","x",[]],["append","y",1]]}
{"index":3,"time":3,"process":1,"type":"ok","f":"txn","value":[["r","y",[]],["append","x",2]]}
{"index":4,"time":4,"process":0,"type":"invoke","f":"txn","value":[["r","x",null],["r","y",null]]}
{"index":5,"time":5,"process":0,"type":"ok","f":"txn","value":[["r","x",[2]],["r","y",[1]]]}
"#;

#[test]
fn transactions_get_their_checker_and_the_model_decides_the_verdict() {
    let s = Scratch::new("txn");
    let jsonl = s.file("skew.jsonl", WRITE_SKEW);
    let (code, out, err) = harness(&["check", &jsonl]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("list-append") && out.contains("G2-item: T0 → T1 → T0"),
        "{out}"
    );
    assert!(
        out.contains("because T0 read x empty before T1 appended 2"),
        "{out}"
    );
    let (code, out, _) = harness(&["check", &jsonl, "--consistency-model", "snapshot-isolation"]);
    assert_eq!(code, 0, "snapshot isolation allows write skew: {out}");
    assert!(
        out.contains("found but allowed by snapshot-isolation: G2-item"),
        "{out}"
    );
    // The same history as Elle writes it, in EDN.
    let edn = s.file(
        "skew.edn",
        "{:index 0, :time 0, :type :invoke, :process 0, :f :txn, :value [[:r :x nil] [:append :y 1]]}\n\
         {:index 1, :time 1, :type :invoke, :process 1, :f :txn, :value [[:r :y nil] [:append :x 2]]}\n\
         {:index 2, :time 2, :type :ok, :process 0, :f :txn, :value [[:r :x []] [:append :y 1]]}\n\
         {:index 3, :time 3, :type :ok, :process 1, :f :txn, :value [[:r :y []] [:append :x 2]]}\n",
    );
    let (code, out, err) = harness(&["check", &edn, "--checker", "list-append"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("G2-item"), "{out}");
    let (code, out, err) = harness(&["check", &jsonl, "--consistency-model", "serialisable"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("unknown consistency model 'serialisable'"),
        "{err}"
    );
}

#[test]
fn a_malformed_transaction_names_its_line_and_field() {
    let s = Scratch::new("txn-bad");
    let bad = WRITE_SKEW.replace(r#"["append","x",2]]}"#, r#"["append","x","two"]]}"#);
    let path = s.file("bad.jsonl", &bad);
    let (code, out, err) = harness(&["check", &path]);
    assert_bad_input(
        code,
        &out,
        &err,
        &["bad.jsonl:2", "value", "append needs an integer value"],
    );
}

/// One JSON Lines history of register operations: (process, f, key, value written or read).
fn register_history(ops: &[(u64, &str, &str, Option<i64>)]) -> String {
    let mut out = String::new();
    for (i, (p, f, k, v)) in ops.iter().enumerate() {
        let input = if *f == "read" { None } else { *v };
        let j = |kind: &str, value: Option<i64>, at: usize| {
            serde_json::json!({"index": at, "time": at * 1000, "process": p, "type": kind,
                "f": f, "key": k, "value": value})
            .to_string()
        };
        out += &format!(
            "{}\n{}\n",
            j("invoke", input, 2 * i),
            j("ok", *v, 2 * i + 1)
        );
    }
    out
}

#[test]
fn causal_models_pick_the_verdict_and_the_output_names_all_three() {
    let s = Scratch::new("causal");
    // Each session reads the other's write after its own: CC and CM hold, CCv does not.
    let cf = s.file(
        "cf.jsonl",
        &register_history(&[
            (1, "write", "x", Some(1)),
            (2, "write", "x", Some(2)),
            (1, "read", "x", Some(2)),
            (2, "read", "x", Some(1)),
        ]),
    );
    let (code, out, err) = harness(&["check", &cf, "--checker", "causal"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("CC: holds, CCv: violated, CM: holds") && out.contains("CyclicCF"),
        "{out}"
    );
    for m in ["CC", "cm"] {
        // A causal model alone picks the causal checker.
        let (code, out, err) = harness(&["check", &cf, "--consistency-model", m]);
        assert_eq!(code, 0, "{m}: {out}{err}");
        assert!(out.contains("(causal,"), "{out}");
    }
    let wfr = s.file(
        "wfr.jsonl",
        &register_history(&[
            (2, "write", "x", Some(1)),
            (3, "read", "x", Some(1)),
            (3, "write", "y", Some(7)),
            (1, "read", "y", Some(7)),
            (1, "read", "x", None),
        ]),
    );
    let (code, out, _) = harness(&[
        "check",
        &wfr,
        "--checker",
        "causal",
        "--consistency-model",
        "CC",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("writes-follow-reads violated"), "{out}");
    let (code, _, err) = harness(&[
        "check",
        &wfr,
        "--checker",
        "causal",
        "--consistency-model",
        "serializable",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the causal checker checks CC, CCv or CM"),
        "{err}"
    );
    let (code, _, err) = harness(&[
        "check",
        &wfr,
        "--checker",
        "set",
        "--consistency-model",
        "CC",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = harness(&["check", &wfr, "--consistency-model", "serializable"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("no transactions"), "{out}");
}
