//! `harness report RUN_DIR`, `harness compare` and `harness serve` from the command line: a report is rewritten,
//! also for a run without results.json; missing or malformed inputs are exit status 2 with a
//! message naming the file (and line).

use std::path::Path;
use std::process::Command;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("reports/tests/fixtures")
            .join(name),
        dir.path(),
    );
    dir
}

fn report(dir: &Path) -> (i32, String, String) {
    let out = harness()
        .arg("report")
        .arg(dir)
        .output()
        .expect("run harness");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn report_rewrites_the_page_of_a_run() {
    let dir = fixture_copy("invalid");
    let (code, out, err) = report(dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("report.html: invalid"), "{out}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert!(html.contains(r#"data-verdict="invalid""#));
}

#[test]
fn report_renders_a_run_that_was_never_checked() {
    let dir = fixture_copy("valid");
    std::fs::remove_file(dir.path().join("results.json")).expect("rm");
    let (code, out, err) = report(dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("report.html: unknown"), "{out}");
}

#[test]
fn report_names_the_missing_or_malformed_file() {
    let dir = fixture_copy("valid");
    std::fs::remove_file(dir.path().join("history.jsonl")).expect("rm");
    let (code, _, err) = report(dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("history.jsonl"), "{err}");

    let dir = fixture_copy("valid");
    std::fs::write(dir.path().join("run.json"), "[1, 2").expect("write");
    let (code, _, err) = report(dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run.json") && err.contains("line 1"), "{err}");

    let dir = fixture_copy("valid");
    let mut history = std::fs::read_to_string(dir.path().join("history.jsonl")).expect("read");
    history.insert_str(0, "{\"index\": 0, \"time\": 1, \"process\": \"nobody\"}\n");
    std::fs::write(dir.path().join("history.jsonl"), history).expect("write");
    let (code, _, err) = report(dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("history.jsonl:1"),
        "names file and line: {err}"
    );

    let (code, _, err) = report(Path::new("/nonexistent/run"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/run"), "{err}");
}

fn compare_in(cwd: &Path, args: &[&Path]) -> (i32, String, String) {
    let out = harness()
        .arg("compare")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run harness");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_writes_compare_html_here_and_says_where() {
    let (a, b) = (fixture_copy("valid"), fixture_copy("invalid"));
    let cwd = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = compare_in(cwd.path(), &[a.path(), b.path()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("compare.html: 2 runs compared"), "{out}");
    let html = std::fs::read_to_string(cwd.path().join("compare.html")).expect("compare.html");
    assert!(html.contains("Availability during faults"));

    let help = harness()
        .args(["compare", "--help"])
        .output()
        .expect("run harness");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("availability during faults") && help.contains("--out"),
        "{help}"
    );
}

#[test]
fn compare_of_one_run_or_of_a_folder_that_is_not_a_run_is_bad_usage() {
    let a = fixture_copy("valid");
    let cwd = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = compare_in(cwd.path(), &[a.path()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least two run folders"), "{err}");

    let (code, _, err) = compare_in(cwd.path(), &[a.path(), cwd.path()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}: not a run folder", cwd.path().display())),
        "{err}"
    );
    assert!(!cwd.path().join("compare.html").exists());
}

#[test]
fn serve_refuses_a_store_that_does_not_exist() {
    let out = harness()
        .args(["serve", "--store", "/nonexistent/store", "--port", "0"])
        .output()
        .expect("run harness");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/store"));
}
