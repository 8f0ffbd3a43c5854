//! Golden tests: the reports of the small run folders under tests/fixtures/ (made by
//! `cargo run -p harness-reports --example synthetic-run`, see tests/fixtures/README.md) must
//! render exactly as tests/golden/<name>.html. Time-dependent text (when the page was rendered,
//! the version) is fixed before comparing. `UPDATE_GOLDEN=1 cargo test -p harness-reports --test
//! golden` rewrites the golden files after an intended change; review their diff.

use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The page with what changes from run to run replaced.
fn render(name: &str) -> String {
    let folder = reports::load(&fixture(name)).expect("the fixture loads");
    let html = reports::render_html(&folder, "RENDERED-AT").expect("the fixture renders");
    html.replace(
        &format!("harness {}", env!("CARGO_PKG_VERSION")),
        "harness VERSION",
    )
}

fn check_golden(name: &str, html: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.html"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, html).expect("write the golden file");
        eprintln!("updated {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if want != html {
        let line = want
            .lines()
            .zip(html.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(html.lines().count()));
        panic!(
            "{name}: the report differs from {} from line {}:\n  golden: {}\n  now:    {}\n\
             (UPDATE_GOLDEN=1 rewrites the golden file after an intended change)",
            path.display(),
            line + 1,
            want.lines().nth(line).unwrap_or("<end>"),
            html.lines().nth(line).unwrap_or("<end>")
        );
    }
}

#[test]
fn a_valid_run_renders_as_its_golden_file() {
    let html = render("valid");
    assert!(html.contains(r#"<body data-verdict="valid">"#));
    assert!(
        !html.contains("data-anomaly="),
        "a valid run has no anomaly"
    );
    assert!(html.contains("Valid: every check passed over 40 operations."));
    // Its two faults (a partition, then a kill) are on the timeline, one group each.
    for n in 1..=2 {
        assert!(html.contains(&format!(r#"id="fault-{n}""#)), "fault {n}");
    }
    assert!(!html.contains(r#"id="fault-3""#));
    assert!(html.contains("n1 cut off from n2, n3, n4, n5"));
    check_golden("valid", &html);
}

#[test]
fn an_invalid_register_run_renders_as_its_golden_file() {
    let html = render("invalid");
    assert!(html.contains(r#"<body data-verdict="invalid">"#));
    assert!(html.contains(r#"data-anomaly="linearizability""#));
    // The anomaly links to its flag on the timeline, and the flag back to it.
    assert!(html.contains(r##"href="#tl-anomaly-1""##));
    assert!(html.contains(r#"id="tl-anomaly-1""#));
    assert!(html.contains(r##"href="#anomaly-1""##));
    assert!(html.contains("The operations that cannot be linearized together"));
    check_golden("invalid", &html);
}

#[test]
fn an_invalid_set_run_renders_as_its_golden_file() {
    let html = render("set-invalid");
    assert!(html.contains(r#"<body data-verdict="invalid">"#));
    for kind in ["lost", "unexpected", "vanished"] {
        assert!(
            html.contains(&format!(r#"data-anomaly="{kind}""#)),
            "{kind} is shown"
        );
    }
    assert!(html.contains("element 30 of s0 was added"));
    check_golden("set-invalid", &html);
}
