//! `harness run` end to end: usage errors, a short run in the sandbox, and a harness killed
//! half-way that leaves nothing behind but a checkable prefix of its history.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

fn run_err(args: &[&str]) -> (i32, String) {
    let out = harness()
        .arg("run")
        .args(args)
        .output()
        .expect("run harness");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_names_are_answered_with_the_valid_ones() {
    let (code, err) = run_err(&["--system", "rafft"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rafft") && err.contains("raft"), "{err}");
    let (code, err) = run_err(&["--nemesis", "partition,paws"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("paws") && err.contains("pause"), "{err}");
    let (code, err) = run_err(&["--nemesis", "partition:ring+delay"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("majorities-ring"), "{err}");
    let (code, err) = run_err(&["--workload", "queue"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("register, set"), "{err}");
    let (code, err) = run_err(&["--bug", "stale-reads"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("stale-read,") || err.contains("stale-read"),
        "{err}"
    );
    let (code, err) = run_err(&["--time-limit", "soon"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--time-limit"), "{err}");
}

#[test]
fn staged_faults_are_refused_for_a_system_whose_status_lacks_their_fields() {
    // Refused before anything starts: etcd need not be installed.
    let etcd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systems-under-test/external/etcd.toml"
    );
    let (code, err) = run_err(&["--system", etcd, "--nemesis", "kill:after-vote"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("kill:after-vote") && err.contains("voted_for"),
        "{err}"
    );
    let (code, err) = run_err(&[
        "--system",
        etcd,
        "--nemesis",
        "partition,partition:figure-8",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("commit"), "{err}");
}

/// Whether the sandbox tests can run (they need root). Without root they are skipped, except
/// under `CI=true`, where CI runs as root and a skipped test would hide a failure.
fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    assert!(
        root || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true, but the sandbox tests are not running as root"
    );
    root
}

fn latest(store: &Path) -> PathBuf {
    std::fs::canonicalize(store.join("latest")).expect("store/latest points at the run")
}

/// Processes whose command line mentions `needle` (the test's own store), from /proc.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(needle) {
                    found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
                }
            }
        }
    }
    found
}

#[test]
fn a_short_run_passes_and_leaves_a_complete_run_folder() {
    if !is_root() {
        eprintln!("skipped: needs root for the sandbox");
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let out = harness()
        .args([
            "run",
            "--system",
            "raft",
            "--nemesis",
            "partition,kill",
            "--nodes",
            "3",
        ])
        .args([
            "--time-limit",
            "6s",
            "--recovery",
            "1s",
            "--seed",
            "5",
            "--store",
        ])
        .arg(store.path())
        .output()
        .expect("run harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("linearizability: valid"), "{stdout}");
    let run = latest(store.path());
    for f in [
        "run.json",
        "history.jsonl",
        "results.json",
        "report.html",
        "nodes/n1/node.log",
    ] {
        let len = std::fs::metadata(run.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{f} is missing or empty in {}", run.display());
    }
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    assert!(
        history.contains("\"f\":\"start-partition\"") || history.contains("\"f\":\"start-kill\"")
    );
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(run_json["seed"], 5);
    assert!(
        run_json["startup_ms"].as_u64().is_some_and(|ms| ms < 3_000),
        "{run_json}"
    );
    let report = std::fs::read_to_string(run.join("report.html")).expect("report");
    assert!(report.contains("data-verdict=\"valid\""));
    assert!(processes_mentioning(&store.path().display().to_string()).is_empty());
}

/// Runs `plan` for a few seconds and checks that it exits 0, that each of `kinds` started and
/// every fault it started was healed, and that the run folder names the plan. The run folder.
fn run_plan_healed(plan: &str, nodes: &str, kinds: &[&str], store: &Path) -> PathBuf {
    let out = harness()
        .args([
            "run",
            "--system",
            "raft",
            "--nemesis",
            plan,
            "--nodes",
            nodes,
        ])
        .args([
            "--time-limit",
            "8s",
            "--nemesis-interval",
            "2s",
            "--recovery",
            "2s",
        ])
        .args(["--seed", "3", "--store"])
        .arg(store)
        .output()
        .expect("run harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let run = latest(store);
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let count = |f: &str| history.matches(&format!("\"f\":\"{f}\"")).count();
    for f in kinds {
        assert!(count(&format!("start-{f}")) > 0, "no start-{f}:\n{stderr}");
    }
    for f in ["partition", "delay", "kill", "pause"] {
        assert_eq!(
            count(&format!("start-{f}")),
            count(&format!("stop-{f}")),
            "every {f} healed"
        );
    }
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(run_json["nemesis_plan"], plan);
    assert!(
        run_json["command"]
            .as_str()
            .is_some_and(|c| c.contains(&format!("--nemesis {plan} "))),
        "{run_json}"
    );
    assert!(processes_mentioning(&store.display().to_string()).is_empty());
    run
}

#[test]
fn joined_faults_run_together_and_are_all_healed() {
    if !is_root() {
        eprintln!("skipped: needs root for the sandbox");
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let plan = "partition:majorities-ring+delay+kill:election-storm";
    run_plan_healed(plan, "5", &["partition", "delay", "kill"], store.path());
}

#[test]
fn a_staged_figure_8_moves_its_cuts_and_heals_them() {
    if !is_root() {
        eprintln!("skipped: needs root for the sandbox");
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let run = run_plan_healed(
        "partition:figure-8",
        "3",
        &["partition", "delay"],
        store.path(),
    );
    // It isolates the leader, then the next one: at least two cuts in one attempt.
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    assert!(history.matches("\"f\":\"start-partition\"").count() >= 2);
}

#[test]
fn a_staged_vote_moves_its_cuts_and_heals_them() {
    if !is_root() {
        eprintln!("skipped: needs root for the sandbox");
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let run = run_plan_healed(
        "kill:after-vote",
        "3",
        &["partition", "delay", "kill"],
        store.path(),
    );
    // The voter's restart is on its data: it comes back with the term of its vote.
    let logs: String = ["n1", "n2", "n3"]
        .iter()
        .filter_map(|n| std::fs::read_to_string(run.join("nodes").join(n).join("node.log")).ok())
        .collect();
    assert!(logs.matches("recovered term").count() > 3, "{logs}");
}

#[test]
fn a_killed_harness_leaves_nothing_but_a_checkable_history() {
    if !is_root() {
        eprintln!("skipped: needs root for the sandbox");
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let mut child = harness()
        .args([
            "run",
            "--system",
            "raft",
            "--nemesis",
            "pause",
            "--nodes",
            "3",
        ])
        .args(["--time-limit", "60s", "--nemesis-interval", "1s", "--store"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start harness");
    // Wait for operations to be recorded, then SIGKILL the harness.
    let start = Instant::now();
    let history = loop {
        let h = std::fs::canonicalize(store.path().join("latest"))
            .ok()
            .map(|r| r.join("history.jsonl"));
        if let Some(h) = h.filter(|h| {
            std::fs::metadata(h)
                .map(|m| m.len() > 20_000)
                .unwrap_or(false)
        }) {
            break h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no history after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let needle = store.path().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_mentioning(&needle);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = harness()
        .arg("check")
        .arg(&history)
        .arg("--brief")
        .output()
        .expect("check");
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "the partial history was not accepted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs raft under list-append transactions and partitions, with `bug` planted or not: the exit
/// code, the printed summary and the run folder.
fn list_append_run(bug: Option<&str>, seed: &str, store: &Path) -> (Option<i32>, String, PathBuf) {
    let mut cmd = harness();
    cmd.args(["run", "--system", "raft", "--workload", "list-append"])
        .args([
            "--nodes",
            "3",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2s",
        ])
        .args([
            "--time-limit",
            "10s",
            "--recovery",
            "1s",
            "--keys",
            "3",
            "--seed",
            seed,
        ])
        .arg("--store")
        .arg(store);
    if let Some(bug) = bug {
        cmd.args(["--bug", bug]);
    }
    let out = cmd.output().expect("run harness");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, latest(store))
}

#[test]
fn list_append_on_raft_is_strict_serializable_and_a_stale_read_bug_is_caught() {
    if !is_root() {
        eprintln!("skipped: needs root for the sandbox");
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let (code, text, run) = list_append_run(None, "3", store.path());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("list-append: valid"), "{text}");
    assert!(text.contains("checked for strict-serializable"), "{text}");
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    assert!(
        history.contains("\"f\":\"txn\""),
        "no transaction in {}",
        run.display()
    );

    // Followers answer read-only transactions from their own state: a transaction that began
    // after another committed misses it, which real-time order makes a cycle.
    let (code, text, run) = list_append_run(Some("stale-read"), "3", store.path());
    assert_eq!(code, Some(1), "{text}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("results.json")).expect("results"))
            .expect("json");
    let kinds: Vec<&str> = results[0]["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert!(
        kinds.iter().any(|k| k.ends_with("-realtime")),
        "a stale read shows as a real-time cycle: {kinds:?}\n{text}"
    );
    assert!(processes_mentioning(&store.path().display().to_string()).is_empty());
}
