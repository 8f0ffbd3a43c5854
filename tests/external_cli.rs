//! External systems through definition files: the worked example of
//! systems-under-test/external/README.md runs as documented and passes, the same example with
//! its durability removed is caught, and mistakes in a definition file are usage errors that
//! name the file and line.

use std::path::{Path, PathBuf};
use std::process::Command;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systems-under-test/external/example-python")
}

fn python_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the example definition in `dir` as a one-node cluster with kills; returns the exit
/// status and stdout.
fn run_example(dir: &Path, store: &Path) -> (i32, String) {
    run_example_with(dir, store, "kill")
}

/// The same, with `nemesis`.
fn run_example_with(dir: &Path, store: &Path, nemesis: &str) -> (i32, String) {
    let out = harness()
        .args(["run", "--system"])
        .arg(dir.join("kvnode.toml"))
        .args([
            "--nodes",
            "1",
            "--nemesis",
            nemesis,
            "--nemesis-interval",
            "2s",
            "--time-limit",
            "7s",
            "--recovery",
            "1s",
            "--seed",
            "3",
            "--store",
        ])
        .arg(store)
        .output()
        .expect("run harness");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The example copied to a fresh folder, without its line `line` (trimmed), as the guide's
/// steps break it.
fn copy_without(line: &str) -> tempfile::TempDir {
    let broken = tempfile::tempdir().unwrap();
    for f in ["kvnode.py", "kvnode.toml"] {
        std::fs::copy(example_dir().join(f), broken.path().join(f)).unwrap();
    }
    let py = broken.path().join("kvnode.py");
    let text = std::fs::read_to_string(&py).unwrap();
    let without: String = text
        .lines()
        .filter(|l| l.trim() != line)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        text.len(),
        without.len(),
        "the example no longer has {line}"
    );
    std::fs::write(&py, without).unwrap();
    broken
}

#[test]
fn the_worked_example_passes_and_its_broken_copy_is_caught() {
    if !python_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is missing (scripts/install-deps installs it)"
        );
        eprintln!("note: python3 is not installed; skipping");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, out) = run_example(&example_dir(), store.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("linearizability: valid"), "{out}");

    // The guide's step 3: without `self.save()` a kill loses acknowledged writes.
    let broken = copy_without("self.save()");
    let (code, out) = run_example(broken.path(), store.path());
    assert_eq!(
        code, 1,
        "a store that forgets on a crash must be caught:\n{out}"
    );
    assert!(out.contains("linearizability: invalid"), "{out}");
}

#[test]
fn a_missing_directory_fsync_passes_kills_and_is_caught_by_a_power_loss() {
    if !python_available() || !std::path::Path::new("/dev/fuse").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 and FUSE in CI"
        );
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (code, out) = run_example_with(&example_dir(), store.path(), "disk:lose-unsynced");
    assert_eq!(
        code, 0,
        "every fsync in place survives power losses:\n{out}"
    );
    // The guide's step 4: without the directory's fsync the rename is not durable.
    let broken = copy_without("self.fsync_dir()");
    let (code, out) = run_example_with(broken.path(), store.path(), "kill");
    assert_eq!(
        code, 0,
        "a kill keeps the rename in the kernel's memory:\n{out}"
    );
    let (code, out) = run_example_with(broken.path(), store.path(), "disk:lose-unsynced");
    assert_eq!(code, 1, "a power loss undoes the rename:\n{out}");
    assert!(out.contains("linearizability: invalid"), "{out}");
}

#[test]
fn definition_mistakes_name_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example_dir().join("kvnode.toml"))
        .unwrap()
        .replace("{ip}:{port}", "{ip}:{prot}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = harness()
        .args(["run", "--system"])
        .arg(&bad)
        .args(["--nodes", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:9:") && err.contains("node.args[3]") && err.contains("{prot}"),
        "{err}"
    );
    // A fault the file does not list is refused before anything starts.
    let out = harness()
        .args(["run", "--system"])
        .arg(example_dir().join("kvnode.toml"))
        .args(["--nodes", "1", "--nemesis", "clock"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("does not support clock"), "{err}");
}
