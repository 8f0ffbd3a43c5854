//! Shared by the integration tests: a mount under a tempdir, skipped with a note where FUSE
//! cannot be used (and failed under CI=true, where it must work).
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub struct Fixture {
    pub mount: diskfs::Mount,
    pub control: diskfs::Control,
    pub mnt: PathBuf,
    pub backing: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A fresh mount, or None (with a note) when FUSE is not available here outside CI.
pub fn mount(test: &str) -> Option<Fixture> {
    if let Err(why) = diskfs::available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: FUSE not available under CI: {why}");
        }
        eprintln!("{test}: skipped: FUSE not available here: {why}");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = dir.path().join("data");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&backing).expect("mkdir backing");
    fs::create_dir(&mnt).expect("mkdir mnt");
    let mount = diskfs::Mount::new(&backing, &mnt).expect("mount");
    let control = mount.control();
    Some(Fixture {
        mount,
        control,
        mnt,
        backing,
        dir,
    })
}

impl Fixture {
    pub fn m(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }
    pub fn b(&self, rel: &str) -> PathBuf {
        self.backing.join(rel)
    }
    /// The same bytes through the mount and in the backing directory.
    pub fn read_both(&self, rel: &str) -> Vec<u8> {
        let through = fs::read(self.m(rel)).expect("read through the mount");
        let backing = fs::read(self.b(rel)).expect("read the backing file");
        assert_eq!(
            through, backing,
            "{rel}: the mount and the backing file differ"
        );
        through
    }
    /// Gone through the mount and in the backing directory.
    pub fn assert_gone(&self, rel: &str) {
        assert!(!self.m(rel).exists(), "{rel} still seen through the mount");
        assert!(
            !self.b(rel).exists(),
            "{rel} still in the backing directory"
        );
    }
    /// A file's names in a directory, through the mount, sorted.
    pub fn names(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.m(rel))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

pub fn fsync_dir(p: &Path) {
    File::open(p)
        .expect("open dir")
        .sync_all()
        .expect("fsync dir");
}

/// Write a whole new file and fsync it (its data, not its directory entry).
pub fn write_synced(p: &Path, data: &[u8]) {
    use std::io::Write;
    let mut f = File::create(p).expect("create");
    f.write_all(data).expect("write");
    f.sync_all().expect("fsync");
}

/// Set in a child started by [`in_child`]: what it is to do, then `\t`, then the file.
const MAP_CHILD: &str = "DISKFS_MAP_CHILD";

/// The mapping work a child was started for: `(what, file)`.
pub fn map_child() -> Option<(String, PathBuf)> {
    let v = std::env::var(MAP_CHILD).ok()?;
    let (what, file) = v.split_once('\t')?;
    Some((what.to_owned(), PathBuf::from(file)))
}

/// Runs `test` of this test binary again in a child process, which sees [`map_child`] give
/// `(what, file)`, and returns the text after `RESULT ` on its output.
///
/// Memory mappings of files on the mount are touched only there: in the process that serves
/// the mount, a page fault waiting on the filesystem while another thread unmaps memory can
/// stall the serving threads behind the same address-space lock, for good.
pub fn in_child(test: &str, what: &str, file: &Path) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(MAP_CHILD, format!("{what}\t{}", file.display()))
        .output()
        .expect("start the child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{test} child ({what}): {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("{test} child ({what}) said nothing: {text}"))
        .to_owned()
}

/// In a child: says `result` to the parent and ends.
pub fn child_says(result: &str) -> ! {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "RESULT {result}");
    let _ = out.flush();
    std::process::exit(0)
}

/// Bytes as runs, for a child to report: `d*4096,u*4096`.
pub fn runs(bytes: &[u8]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let j = bytes[i..]
            .iter()
            .position(|b| *b != bytes[i])
            .map_or(bytes.len(), |n| i + n);
        out.push(format!("{}*{}", bytes[i] as char, j - i));
        i = j;
    }
    out.join(",")
}
