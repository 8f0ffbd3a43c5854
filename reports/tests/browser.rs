//! The report of an invalid run, opened in headless Chromium: after its script ran, the DOM
//! must hold the verdict and the anomaly, and the script must have run without failing.
//! Chromium comes from Debian (`scripts/install-deps` installs it). Without it the test is
//! skipped with a notice, except under CI (`CI=true`), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
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

/// Runs chromium with `args`, killing it after `limit`; returns its standard output.
fn run_bounded(program: &Path, args: &[String], limit: Duration) -> String {
    let out_file = tempfile::NamedTempFile::new().expect("tempfile");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out_file.reopen().expect("reopen"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => break,
            None if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    std::fs::read_to_string(out_file.path()).expect("read the DOM")
}

#[test]
fn chromium_shows_the_verdict_and_the_anomaly_of_an_invalid_run() {
    let Some(browser) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed (scripts/install-deps installs it); CI needs it");
        }
        eprintln!(
            "skipped: chromium is not installed (./scripts/install-deps installs it); \
             this test fails instead under CI=true"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("run");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid"),
        &run,
    );
    reports::render_run(&run).expect("render");
    let profile = dir.path().join("profile");
    let url = format!("file://{}", run.join("report.html").display());
    let dom = run_bounded(
        &browser,
        &[
            "--headless".into(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", profile.display()),
            "--dump-dom".into(),
            url,
        ],
        Duration::from_secs(90),
    );
    assert!(
        dom.contains(r#"data-verdict="invalid""#),
        "the verdict is in the DOM: {}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains(">INVALID<"), "the verdict is shown");
    assert!(
        dom.contains(r#"data-anomaly="linearizability""#),
        "the anomaly is in the DOM"
    );
    assert!(dom.contains("cannot be linearized together"));
    // The script ran to its end (it marks the body last).
    assert!(
        dom.contains(r#"data-script="ran""#),
        "the page's script ran"
    );
    // The drawings are real SVG elements in the DOM.
    assert!(dom.contains("<svg") && dom.contains(r#"id="timeline-svg""#));
}
