//! What the command-line tests share: the harness binary, and a finished command's output.

use std::process::{Command, Output};

/// The `harness` binary this test build made.
pub fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harness"))
}

/// Stdout, then stderr, as text.
pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Whether python3 runs here; in CI it must (scripts/install-deps installs it).
#[allow(dead_code)] // not every test binary runs Python
pub fn python_available() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is missing (scripts/install-deps installs it)"
        );
        eprintln!("note: python3 is not installed; skipping");
    }
    ok
}
