//! Maelstrom nodes run unmodified (systems-under-test/external/maelstrom/): each worked example
//! passes its workload under partitions and kills, its broken twin is caught, a node whose
//! output is partly garbage is logged and counted without stopping the run, and
//! `--system maelstrom:PATH` needs no definition file.

mod common;

use common::{harness, python_available, text};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systems-under-test/external/maelstrom")
}

/// One short run under partitions and kills; the exit status, stdout and stderr, and the
/// run folder.
fn run(system: &str, workload: &str, extra: &[&str], store: &Path) -> (i32, String, PathBuf) {
    let out = harness()
        .args(["run", "--system", system, "--workload", workload])
        .args([
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "8s",
            "--recovery",
            "2s",
            "--rate",
            "100",
            "--seed",
            "5",
            "--store",
        ])
        .arg(store)
        .args(extra)
        .output()
        .expect("run harness");
    let text = text(&out);
    let dir = std::fs::read_link(store.join("latest"))
        .map(|l| store.join(l))
        .unwrap_or_default();
    (out.status.code().unwrap_or(-1), text, dir)
}

fn run_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

fn example(name: &str) -> String {
    examples().join(name).to_string_lossy().into_owned()
}

/// The correct node passes (exit 0, the checker valid) and its twin is caught (exit 1, with
/// `caught` in the output).
fn pair(workload: &str, correct: &str, broken: &str, caught: &str, extra: &[&str]) {
    if !python_available() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, out, dir) = run(&example(correct), workload, extra, store.path());
    assert_eq!(code, 0, "{correct}: {out}");
    let figures = &run_json(&dir)["maelstrom"];
    // Every node was sent init once at start, and again after each restart.
    assert!(figures["inits"].as_u64().unwrap() > 5, "{figures}");
    assert_eq!(figures["malformed"], serde_json::json!({}), "{figures}");
    assert!(dir.join("messages.jsonl").metadata().unwrap().len() > 0);

    let store = tempfile::tempdir().unwrap();
    let (code, out, _) = run(&example(broken), workload, extra, store.path());
    assert_eq!(code, 1, "{broken}: {out}");
    assert!(
        out.contains(caught),
        "{broken}: expected {caught:?} in {out}"
    );
}

#[test]
fn echo_passes_and_a_caching_echo_is_caught() {
    pair(
        "echo",
        "echo.toml",
        "echo-broken.toml",
        "echo: invalid",
        &[],
    );
}

#[test]
fn gossip_survives_partitions_and_kills_and_fire_and_forget_loses_messages() {
    pair(
        "broadcast",
        "broadcast.toml",
        "broadcast-broken.toml",
        "none of the 5 final reads contained it",
        &["--topology", "line"],
    );
}

#[test]
fn a_cas_counter_in_seq_kv_passes_and_read_then_write_loses_increments() {
    pair(
        "g-counter",
        "g-counter.toml",
        "g-counter-broken.toml",
        "counter: invalid",
        &[],
    );
}

/// An echo node that also writes every kind of line a router cannot route.
const NOISY: &str = r#"#!/usr/bin/env python3
import json, sys
said = False
for line in sys.stdin:
    m = json.loads(line)
    body = m["body"]
    reply = {"in_reply_to": body.get("msg_id")}
    if body["type"] == "init":
        reply["type"] = "init_ok"
    else:
        reply.update(type="echo_ok", echo=body.get("echo"))
    if not said and body["type"] == "echo":
        said = True
        me = m["dest"]
        for bad in ["this is not json",
                    json.dumps({"src": me, "dest": "n2", "body": {"no_type": 1}}),
                    json.dumps({"src": me, "dest": "c1", "body": {"type": "echo_ok", "in_reply_to": 987654321}}),
                    json.dumps({"src": me, "dest": "n99", "body": {"type": "gossip"}})]:
            print(bad, flush=True)
    print(json.dumps({"src": m["dest"], "dest": m["src"], "body": reply}), flush=True)
"#;

#[test]
fn garbage_from_a_node_is_logged_with_its_node_and_line_and_the_run_goes_on() {
    if !python_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("noisy.py");
    std::fs::write(&node, NOISY).unwrap();
    std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let store = tempfile::tempdir().unwrap();
    let system = format!("maelstrom:{}", node.display());
    let out = harness()
        .args([
            "run",
            "--system",
            &system,
            "--workload",
            "echo",
            "--nodes",
            "2",
        ])
        .args([
            "--time-limit",
            "3s",
            "--recovery",
            "1s",
            "--seed",
            "1",
            "--store",
        ])
        .arg(store.path())
        .output()
        .unwrap();
    let text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("echo: valid"), "{text}");
    assert!(text.contains("not messages that could be routed"), "{text}");
    let run = store
        .path()
        .join(std::fs::read_link(store.path().join("latest")).unwrap());
    let figures = &run_json(&run)["maelstrom"];
    for n in ["n1", "n2"] {
        assert_eq!(figures["malformed"][n], 4, "{figures}");
    }
    let log = std::fs::read_to_string(run.join("messages.jsonl")).unwrap();
    for why in [
        "not JSON",
        "no string `type`",
        "no client is waiting for",
        "\\\"n99\\\", which is neither a node",
    ] {
        assert!(log.contains(why), "{why} not in the message log");
    }
    assert!(
        log.contains("n1, line "),
        "the log names the node and the line"
    );
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        report.contains("could not be routed"),
        "the report says so too"
    );
}

#[test]
fn a_node_that_never_answers_init_is_named_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("mute.sh");
    std::fs::write(
        &node,
        "#!/bin/sh\necho 'starting, but not reading stdin' >&2\nsleep 60\n",
    )
    .unwrap();
    std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let store = tempfile::tempdir().unwrap();
    let def = dir.path().join("mute.toml");
    std::fs::write(
        &def,
        "name = \"mute\"\n[node]\nprogram = \"./mute.sh\"\n[client]\nprotocol = \"maelstrom\"\n\
         [ready]\ntimeout = \"2s\"\n[stop]\ngrace = \"1s\"\n",
    )
    .unwrap();
    let out = harness()
        .args(["run", "--system"])
        .arg(&def)
        .args([
            "--workload",
            "echo",
            "--nodes",
            "1",
            "--time-limit",
            "2s",
            "--store",
        ])
        .arg(store.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("did not become ready"), "{text}");
    assert!(text.contains("init"), "{text}");
    assert!(
        text.contains("not reading stdin"),
        "the node's log tail: {text}"
    );
}

#[test]
fn a_workload_that_is_not_maelstroms_is_refused_before_anything_starts() {
    let out = harness()
        .args(["run", "--system"])
        .arg(format!("maelstrom:{}", example("echo.py")))
        .args(["--workload", "register"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("does not support register"), "{text}");
    let out = harness()
        .args(["run", "--system"])
        .arg(example("echo.toml"))
        .args(["--workload", "echo", "--topology", "grid"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("--topology"), "{text}");
}

fn test_node(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/maelstrom-nodes")
        .join(name);
    format!("maelstrom:{}", p.display())
}

/// One short run of `workload` on a node of tests/maelstrom-nodes (no definition file), with
/// partitions; the exit status and the output.
fn short(node: &str, workload: &str, extra: &[&str]) -> (i32, String) {
    let store = tempfile::tempdir().unwrap();
    let out = harness()
        .args(["run", "--system", &test_node(node), "--workload", workload])
        .args([
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2s",
            "--nodes",
            "3",
        ])
        .args([
            "--time-limit",
            "5s",
            "--recovery",
            "1s",
            "--rate",
            "100",
            "--seed",
            "2",
        ])
        .args(["--keys", "3", "--store"])
        .arg(store.path())
        .args(extra)
        .output()
        .expect("run harness");
    let text = text(&out);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn every_other_maelstrom_workload_runs_end_to_end() {
    if !python_available() {
        return;
    }
    // Nodes that serve everything from n1 (or from the lin-kv service): correct, if not
    // available on the far side of a partition.
    for (node, workload, verdict) in [
        ("linkv.py", "lin-kv", "linearizability: valid"),
        ("txn.py", "txn-list-append", "list-append: valid"),
        ("kafka.py", "kafka", "kafka: valid"),
        ("ids.py", "unique-ids", "unique-ids: valid"),
        ("gset.py", "g-set", "set: valid"),
    ] {
        let (code, out) = short(node, workload, &[]);
        assert_eq!(code, 0, "{workload}: {out}");
        assert!(out.contains(verdict), "{workload}: {out}");
    }
    // And their planted mistakes: ids that repeat across nodes, polls that skip a message.
    let (code, out) = short("ids.py", "unique-ids", &["--node-arg=--broken"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("returned by more than one acknowledged generate"),
        "{out}"
    );
    let (code, out) = short("kafka.py", "kafka", &["--node-arg=--broken"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("kafka: invalid"), "{out}");
}
