//! Disk faults end to end: raft-node's `no-fsync` bug (the log written, never fdatasynced) is
//! invisible to `kill` (the page cache survives a process crash) and caught by
//! `disk:lose-unsynced` (a power loss); raft-node as it is stays valid under every disk shape.
//! `SEEDS=n` tries up to n seeds for the catch (default 3).

mod common;

use common::{harness, text};
use std::path::Path;

/// FUSE is there (it is on this machine kind, and in CI).
fn fuse_available() -> bool {
    let ok = Path::new("/dev/fuse").exists();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "/dev/fuse is missing in CI"
        );
        eprintln!("note: no /dev/fuse here; skipping");
    }
    ok
}

/// A short raft register run; the exit status and the output.
fn run(nemesis: &str, seed: u64, extra: &[&str]) -> (i32, String) {
    let store = tempfile::tempdir().unwrap();
    let out = harness()
        .args([
            "run",
            "--system",
            "raft",
            "--workload",
            "register",
            "--nemesis",
            nemesis,
        ])
        .args([
            "--nodes",
            "5",
            "--nemesis-interval",
            "3s",
            "--time-limit",
            "12s",
        ])
        .args(["--recovery", "3s", "--rate", "100", "--keys", "3"])
        .args(["--seed", &seed.to_string(), "--store"])
        .arg(store.path())
        .args(extra)
        .output()
        .expect("run harness");
    let text = text(&out);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn no_fsync_is_caught_by_a_power_loss_and_not_by_kill() {
    if !fuse_available() {
        return;
    }
    let (code, out) = run("kill", 1, &["--bug", "no-fsync"]);
    assert_eq!(
        code, 0,
        "a kill keeps the page cache, so no-fsync passes it: {out}"
    );
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut outputs = Vec::new();
    for seed in 1..=seeds {
        let (code, out) = run("disk:lose-unsynced", seed, &["--bug", "no-fsync"]);
        assert!(code == 0 || code == 1, "seed {seed}: {out}");
        if code == 1 {
            assert!(out.contains("linearizability: invalid"), "{out}");
            return;
        }
        outputs.push(out);
    }
    panic!(
        "no-fsync was not caught by disk:lose-unsynced in {seeds} runs:\n{}",
        outputs.join("\n")
    );
}

#[test]
fn raft_keeps_its_promises_under_every_disk_fault() {
    if !fuse_available() {
        return;
    }
    for shape in ["lose-unsynced", "torn", "fsync-error", "slow"] {
        let (code, out) = run(&format!("disk:{shape}"), 2, &[]);
        assert_eq!(code, 0, "disk:{shape}: {out}");
        assert!(
            out.contains("linearizability: valid"),
            "disk:{shape}: {out}"
        );
    }
}

#[test]
fn disk_faults_are_refused_for_a_system_that_does_not_support_them() {
    let out = harness()
        .args(["run", "--system"])
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("systems-under-test/external/postgres-serializable.toml"),
        )
        .args(["--nodes", "1", "--nemesis", "disk"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("does not support disk"), "{text}");
    let out = harness()
        .args(["run", "--nemesis", "disk:melt"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("lose-unsynced, torn, fsync-error, slow"),
        "{text}"
    );
}
