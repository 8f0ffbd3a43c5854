//! Finding the histories to check: the paths given, with directories walked recursively in
//! name order. Hidden entries (`.name`) are ignored, symbolic links to directories inside a
//! directory are not followed, and a file reached twice (same device and inode) is taken once.
//! A file found in a directory is sorted by [`triage`] before it is read in full: a README is
//! skipped, but a `.jsonl`, `.edn` or `.log` file that is not a history is an error.

use crate::HistoryError;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// File name endings that are always meant as histories: such a file is never skipped.
pub const HISTORY_EXTENSIONS: [&str; 3] = ["jsonl", "edn", "log"];

/// What the walk found, in order.
#[derive(Debug)]
pub enum Found {
    /// A file to read; `from_dir` when it was found in a directory rather than named.
    File { path: PathBuf, from_dir: bool },
    /// Not to be read, and why (the same file as another, a link to a directory, ...).
    Skipped { path: PathBuf, reason: String },
    /// An entry the walk could not get at.
    Error(HistoryError),
}

/// Walks `paths` (see the module documentation).
pub fn walk(paths: &[PathBuf]) -> Vec<Found> {
    let mut w = Walk::default();
    for p in paths {
        w.arg(p);
    }
    w.found
}

#[derive(Default)]
struct Walk {
    found: Vec<Found>,
    files: HashMap<(u64, u64), PathBuf>,
    dirs: HashSet<(u64, u64)>,
}

impl Walk {
    fn arg(&mut self, path: &Path) {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => self.dir(path, &m),
            Ok(m) if m.is_file() => self.file(path, &m, false),
            // Missing files, pipes and `-` (standard input): the reader says what it makes of them.
            _ => self.found.push(Found::File {
                path: path.to_path_buf(),
                from_dir: false,
            }),
        }
    }

    fn file(&mut self, path: &Path, meta: &std::fs::Metadata, from_dir: bool) {
        match self.files.get(&(meta.dev(), meta.ino())) {
            Some(first) => {
                let reason = format!("same file as {}", first.display());
                self.skip(path, reason);
            }
            None => {
                self.files
                    .insert((meta.dev(), meta.ino()), path.to_path_buf());
                self.found.push(Found::File {
                    path: path.to_path_buf(),
                    from_dir,
                });
            }
        }
    }

    fn skip(&mut self, path: &Path, reason: impl Into<String>) {
        self.found.push(Found::Skipped {
            path: path.to_path_buf(),
            reason: reason.into(),
        });
    }

    fn error(&mut self, path: &Path, what: impl std::fmt::Display) {
        self.found.push(Found::Error(HistoryError::new(
            path,
            0,
            None,
            what.to_string(),
        )));
    }

    fn dir(&mut self, dir: &Path, meta: &std::fs::Metadata) {
        if !self.dirs.insert((meta.dev(), meta.ino())) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return self.error(dir, format_args!("cannot read the directory: {e}")),
        };
        let mut found = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => found.push(entry),
                Err(e) => {
                    self.error(dir, format_args!("cannot list the directory: {e}"));
                    break;
                }
            }
        }
        found.sort_by_key(|e| e.file_name());
        for entry in found {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                self.entry(&entry);
            }
        }
    }

    fn entry(&mut self, entry: &std::fs::DirEntry) {
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) => return self.error(&path, format_args!("cannot read the entry: {e}")),
        };
        if kind.is_dir() {
            match entry.metadata() {
                Ok(m) => self.dir(&path, &m),
                Err(e) => self.error(&path, format_args!("cannot read the directory: {e}")),
            }
            return;
        }
        // `fs::metadata` follows a symbolic link; `entry.metadata` does not.
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if kind.is_symlink() => {
                let target = std::fs::read_link(&path)
                    .map(|t| format!(" to {}", t.display()))
                    .unwrap_or_default();
                return self.error(
                    &path,
                    format_args!("cannot follow the symbolic link{target}: {e}"),
                );
            }
            Err(e) => return self.error(&path, format_args!("cannot read the file: {e}")),
        };
        if meta.is_file() {
            self.file(&path, &meta, true);
        } else if meta.is_dir() {
            self.skip(&path, "symbolic link to a directory, not followed");
        } else {
            self.skip(&path, "not a regular file");
        }
    }
}

/// What a file found in a directory looks like, before it is read in full.
#[derive(Debug)]
pub enum Triage {
    History,
    /// Readable, but not a history at all (a README): skipped.
    NotHistory,
    /// Cannot be read, is empty, or is named as a history but is not one: an error.
    Unusable(HistoryError),
}

/// A reader that remembers whether reading failed, to tell "not a history" from "unreadable".
struct Watched<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        self.failed |= r.is_err();
        r
    }
}

/// Sorts a file found in a directory (read with no format given) into [`Triage`].
pub fn triage(path: &Path) -> Triage {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            return Triage::Unusable(HistoryError::new(
                path,
                0,
                None,
                format!("cannot open the file: {e}"),
            ))
        }
    };
    let mut watched = Watched {
        inner: file,
        failed: false,
    };
    let Err(e) = crate::detect::detect_format_from(BufReader::new(&mut watched), path) else {
        return Triage::History;
    };
    let meant_as_history = path
        .extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| HISTORY_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()));
    if watched.failed || meant_as_history || e.message.contains("empty") {
        Triage::Unusable(e)
    } else {
        Triage::NotHistory
    }
}
