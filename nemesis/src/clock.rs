//! Per-node wall-clock skew for bundled nodes.
//!
//! One kernel has one realtime clock, and `clock_settime` would move the host's (Jepsen's
//! `bump-time.c` does exactly that on its dedicated machines). Bundled nodes instead read an offset
//! file every 10 ms (`--clock-offset-file`) and add it to their wall clock. The harness writes the
//! file atomically (temporary file, then rename in the same directory), so a reader never sees a
//! half-written number.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The offset file of one node: a single line holding the offset in milliseconds, e.g. `-250\n`.
#[derive(Debug, Clone)]
pub struct ClockFile {
    path: PathBuf,
}

impl ClockFile {
    /// A handle on `path`; nothing is written until [`ClockFile::set`] or [`ClockFile::reset`].
    pub fn new(path: impl Into<PathBuf>) -> ClockFile {
        ClockFile { path: path.into() }
    }

    /// Where the offset lives (pass this to the node as `--clock-offset-file`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the node's clock offset, atomically: readers see the old value or the new one.
    pub fn set(&self, offset_ms: i64) -> io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("clock file path {} has no file name", self.path.display()),
                )
            })?;
        // The pid in the name keeps two writers (two harness processes) from sharing a temp file.
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(format!("{offset_ms}\n").as_bytes())?;
            f.flush()?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Puts the node's clock back to true time (offset 0).
    pub fn reset(&self) -> io::Result<()> {
        self.set(0)
    }

    /// The offset currently in the file; 0 when the file is missing or unreadable, which is also
    /// what a node assumes in that case.
    pub fn current(&self) -> i64 {
        fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}
