//! Supervisor tests on plain processes (`sleep`, `sh`) and on an HTTP node (this test binary
//! re-executed as a responder), in the current network namespace. Every test's Supervisor is
//! dropped at the end, which SIGKILLs whatever still runs.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use nemesis::process::{NodeSpec, NodeState, ProcError, Supervisor};

/// Not a test: the body of the responder node, active only when the test binary is re-executed
/// with `NEMESIS_RESPONDER_ADDR` set.
#[test]
fn responder_child() {
    if std::env::var_os(common::RESPONDER_ENV).is_some() {
        common::responder_main();
    }
}

fn spec(dir: &Path, name: &str, program: &str, args: &[&str]) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![],
        dir: dir.join(name),
        health_url: "http://127.0.0.1:9/health".into(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn responder_spec(dir: &Path, name: &str) -> NodeSpec {
    let port = free_port();
    let exe = std::env::current_exe().expect("the test binary knows its path");
    NodeSpec {
        name: name.into(),
        program: exe,
        args: vec![
            "responder_child".into(),
            "--exact".into(),
            "--nocapture".into(),
        ],
        env: vec![
            (common::RESPONDER_ENV.into(), format!("127.0.0.1:{port}")),
            ("NODE".into(), name.into()),
        ],
        dir: dir.join(name),
        health_url: format!("http://127.0.0.1:{port}/health"),
    }
}

fn state_letter(pid: u32) -> Option<char> {
    common::proc_stat(pid as i32).map(|(s, _, _)| s)
}

#[test]
fn sleep_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    sup.start(&spec(dir.path(), "a", "sleep", &["1000"]))
        .expect("start");
    assert_eq!(sup.state("a"), NodeState::Running);
    let pid = sup.pid("a").expect("pid while running");

    sup.pause("a").expect("pause");
    assert_eq!(sup.state("a"), NodeState::Paused);
    assert!(common::eventually(Duration::from_secs(2), || state_letter(
        pid
    ) == Some(
        'T'
    )));
    sup.resume("a").expect("resume");
    assert_eq!(sup.state("a"), NodeState::Running);
    assert!(common::eventually(Duration::from_secs(2), || state_letter(
        pid
    ) == Some(
        'S'
    )));

    sup.kill("a").expect("kill");
    assert_eq!(sup.state("a"), NodeState::Stopped);
    assert_eq!(sup.pid("a"), None);
    assert_eq!(
        state_letter(pid),
        None,
        "killed node must be reaped, not a zombie"
    );

    sup.restart("a").expect("restart");
    let pid2 = sup.pid("a").expect("pid after restart");
    assert_ne!(pid, pid2);
    assert_eq!(sup.state("a"), NodeState::Running);

    let t = Instant::now();
    sup.stop("a", Duration::from_secs(5)).expect("stop");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "sleep dies on SIGTERM at once"
    );
    assert_eq!(sup.state("a"), NodeState::Stopped);
    assert_eq!(state_letter(pid2), None);
    // Stopping again is fine.
    sup.stop("a", Duration::from_secs(1)).expect("second stop");

    let log = std::fs::read_to_string(dir.path().join("a/node.log")).expect("log");
    assert_eq!(log.matches("--- nemesis: starting sleep 1000").count(), 2);
}

#[test]
fn stop_escalates_to_sigkill_for_the_whole_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    // The shell and its background child both ignore SIGTERM.
    sup.start(&spec(
        dir.path(),
        "stubborn",
        "sh",
        &["-c", "trap '' TERM; sleep 1000 & echo started; wait"],
    ))
    .expect("start");
    let pgid = sup.pid("stubborn").expect("pid") as i32;
    assert!(common::eventually(Duration::from_secs(5), || {
        common::group_members(pgid).len() >= 2
    }));
    let members = common::group_members(pgid);
    let t = Instant::now();
    sup.stop("stubborn", Duration::from_millis(300))
        .expect("stop");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "waited the bound: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "then killed: {took:?}");
    assert!(
        common::eventually(Duration::from_secs(2), || members
            .iter()
            .all(|p| !common::alive(*p))),
        "every member of the group is gone: {members:?}"
    );
    assert_eq!(sup.state("stubborn"), NodeState::Stopped);
}

#[test]
fn stopping_a_paused_node_does_not_wait_for_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    sup.start(&spec(dir.path(), "p", "sleep", &["1000"]))
        .expect("start");
    sup.pause("p").expect("pause");
    let t = Instant::now();
    sup.stop("p", Duration::from_secs(10)).expect("stop");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(sup.state("p"), NodeState::Stopped);
}

#[test]
fn kill_takes_the_nodes_children_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    sup.start(&spec(
        dir.path(),
        "forker",
        "sh",
        &["-c", "sleep 1000 & sleep 1000 & wait"],
    ))
    .expect("start");
    let pgid = sup.pid("forker").expect("pid") as i32;
    assert!(common::eventually(Duration::from_secs(5), || {
        common::group_members(pgid).len() >= 3
    }));
    let members = common::group_members(pgid);
    sup.kill("forker").expect("kill");
    assert!(common::eventually(Duration::from_secs(2), || members
        .iter()
        .all(|p| !common::alive(*p))));
}

/// PostgreSQL's backends leave the postmaster's process group (each calls `setsid`): pause and
/// kill must reach them all the same.
#[test]
fn pause_and_kill_reach_children_that_left_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("escaped.pid");
    let script = format!("setsid sleep 1000 & echo $! > {}; wait", pid_file.display());
    let mut sup = Supervisor::new(Default::default());
    sup.start(&spec(dir.path(), "server", "sh", &["-c", &script]))
        .expect("start");
    let pgid = sup.pid("server").expect("pid") as i32;
    let mut escaped = 0;
    assert!(common::eventually(Duration::from_secs(5), || {
        escaped = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        escaped > 0 && common::proc_stat(escaped).is_some_and(|(_, _, g)| g == escaped)
    }));
    assert_ne!(escaped, pgid, "the child leads a group of its own");

    sup.pause("server").expect("pause");
    assert!(
        common::eventually(Duration::from_secs(2), || matches!(
            common::proc_stat(escaped),
            Some(('T', _, _))
        )),
        "the escaped child is stopped: {:?}",
        common::proc_stat(escaped)
    );
    sup.resume("server").expect("resume");
    assert!(common::eventually(Duration::from_secs(2), || matches!(
        common::proc_stat(escaped),
        Some(('S', _, _))
    )));

    sup.kill("server").expect("kill");
    assert!(
        common::eventually(Duration::from_secs(2), || !common::alive(escaped)),
        "the escaped child is killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_node_ready_pause_kill_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    let s = responder_spec(dir.path(), "web");
    sup.start(&s).expect("start");
    let v = sup
        .wait_ready("web", Duration::from_secs(10))
        .await
        .expect("ready");
    assert_eq!(v["node"], "web");
    assert_eq!(v["pid"], sup.pid("web").expect("pid"));

    // A paused node does not answer.
    sup.pause("web").expect("pause");
    let err = sup
        .wait_ready("web", Duration::from_millis(300))
        .await
        .expect_err("a paused node cannot be ready");
    let msg = err.to_string();
    assert!(matches!(err, ProcError::NotReady { .. }), "{msg}");
    assert!(msg.contains("Paused"), "{msg}");
    assert!(
        msg.contains("responder web listening"),
        "log tail in: {msg}"
    );
    sup.resume("web").expect("resume");
    sup.wait_ready("web", Duration::from_secs(5))
        .await
        .expect("ready after resume");

    // kill -9, then restart with the same spec and log.
    let old = sup.pid("web").expect("pid");
    sup.kill("web").expect("kill");
    assert!(
        sup.wait_ready("web", Duration::from_millis(100))
            .await
            .is_err(),
        "a killed node is not ready"
    );
    sup.restart("web").expect("restart");
    let v = sup
        .wait_ready("web", Duration::from_secs(10))
        .await
        .expect("ready after restart");
    assert_ne!(v["pid"], old);
    let log = sup.log_tail("web", 100);
    assert_eq!(log.matches("--- nemesis: starting").count(), 2, "{log}");
    assert_eq!(log.matches("responder web listening").count(), 2, "{log}");

    sup.stop_all(Duration::from_secs(2));
    assert_eq!(sup.state("web"), NodeState::Stopped);
}

#[tokio::test]
async fn stop_waits_for_a_node_that_ignores_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    let mut s = responder_spec(dir.path(), "deaf");
    s.env
        .push(("NEMESIS_RESPONDER_IGNORE_TERM".into(), "1".into()));
    sup.start(&s).expect("start");
    sup.wait_ready("deaf", Duration::from_secs(10))
        .await
        .expect("ready");
    let t = Instant::now();
    sup.stop("deaf", Duration::from_millis(400)).expect("stop");
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(sup.state("deaf"), NodeState::Stopped);
}

#[tokio::test]
async fn wait_ready_reports_the_exit_status_and_log_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    sup.start(&spec(
        dir.path(),
        "crashy",
        "sh",
        &[
            "-c",
            "echo starting up; echo 'fatal: no quorum config' >&2; exit 3",
        ],
    ))
    .expect("start");
    let err = sup
        .wait_ready("crashy", Duration::from_secs(10))
        .await
        .expect_err("it exits");
    let msg = err.to_string();
    assert!(matches!(err, ProcError::Exited { status: 3, .. }), "{msg}");
    assert!(msg.contains("exited with status 3"), "{msg}");
    assert!(msg.contains("fatal: no quorum config"), "{msg}");
    assert!(msg.contains("starting up"), "{msg}");
    assert_eq!(sup.state("crashy"), NodeState::Exited(3));
    // A node that exited can be started again.
    sup.restart("crashy").expect("restart");
}

#[tokio::test]
async fn wait_ready_times_out_with_the_log_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    let mut s = spec(
        dir.path(),
        "slow",
        "sh",
        &[
            "-c",
            "for i in $(seq 1 30); do echo line $i; done; exec sleep 1000",
        ],
    );
    s.health_url = format!("http://127.0.0.1:{}/health", free_port());
    sup.start(&s).expect("start");
    let t = Instant::now();
    let err = sup
        .wait_ready("slow", Duration::from_millis(500))
        .await
        .expect_err("nothing listens");
    assert!(t.elapsed() < Duration::from_secs(3));
    let msg = err.to_string();
    assert!(msg.contains("did not become ready within"), "{msg}");
    assert!(msg.contains("line 30"), "{msg}");
    assert!(!msg.contains("line 10\n"), "only the last 20 lines: {msg}");
    assert!(msg.contains("Running"), "{msg}");
}

#[test]
fn errors_name_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new(Default::default());
    assert!(matches!(sup.kill("nope"), Err(ProcError::UnknownNode(_))));
    assert_eq!(sup.state("nope"), NodeState::Stopped);
    assert_eq!(sup.log_tail("nope", 5), "");
    let s = spec(dir.path(), "x", "sleep", &["1000"]);
    sup.start(&s).expect("start");
    assert!(matches!(sup.start(&s), Err(ProcError::AlreadyRunning(..))));
    assert!(matches!(sup.resume("x"), Err(ProcError::WrongState { .. })));
    let err = sup
        .start(&spec(dir.path(), "y", "/nonexistent/binary", &[]))
        .expect_err("no such program");
    assert!(err.to_string().contains("/nonexistent/binary"), "{err}");

    let mut with_ns = Supervisor::new([("a".to_string(), "/proc/self/ns/net".into())].into());
    let err = with_ns
        .start(&spec(dir.path(), "b", "sleep", &["1"]))
        .expect_err("b has no namespace");
    assert!(matches!(err, ProcError::NoNamespace { .. }), "{err}");
}

#[test]
fn a_node_can_join_a_given_namespace() {
    // Our own namespace, passed explicitly, exercises the setns path without root-only setup.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sup = Supervisor::new([("a".to_string(), "/proc/self/ns/net".into())].into());
    sup.start(&spec(dir.path(), "a", "sleep", &["1000"]))
        .expect("start");
    let pid = sup.pid("a").expect("pid");
    let ours = std::fs::read_link("/proc/self/ns/net").expect("own netns");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("node netns");
    assert_eq!(ours, theirs);
}

#[test]
fn drop_kills_whatever_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = {
        let mut sup = Supervisor::new(Default::default());
        sup.start(&spec(dir.path(), "a", "sleep", &["1000"]))
            .expect("start");
        sup.start(&spec(dir.path(), "b", "sleep", &["1000"]))
            .expect("start");
        sup.pause("b").expect("pause");
        [sup.pid("a"), sup.pid("b")]
    };
    for pid in pids.into_iter().flatten() {
        assert_eq!(state_letter(pid), None, "pid {pid} outlived the supervisor");
    }
}
