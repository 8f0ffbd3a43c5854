//! Disk faults for the harness, built in: a node's data directory served through a FUSE
//! filesystem that can lose whatever was not fsynced, as LazyFS does for Jepsen
//! (dsrhaslab/lazyfs and jepsen.lazyfs's `lose-unfsynced-writes!`; Ramos et al., "When
//! Amnesia Strikes: Understanding and Reproducing Data Loss Bugs with Fault Injection",
//! PVLDB 17(11), 2024). Directory entries follow the rule of Pillai et al., "All File
//! Systems Are Not Created Equal" (OSDI 2014): a new, renamed or removed name is durable only
//! once its directory is fsynced.
//!
//! A [`Mount`] serves a backing directory at a mountpoint (fuser's pure-Rust mount: a direct
//! `mount(2)` as root or in a user namespace, fusermount3 otherwise, which needs
//! `user_allow_other` in /etc/fuse.conf for the `allow_other` we mount with; 8 threads, so an
//! fsync held by a delay does not hold up other requests). Every operation passes through to the
//! backing files at once, so reads need no bookkeeping; what a power loss would take is
//! recorded as undo logs (`journal.rs`):
//!
//! - File data: each unsynced write, truncate and extension records the bytes it overwrote and
//!   the length before it. `fsync`/`fdatasync` of the file (any handle) makes its data durable.
//! - Directory entries: create, mkdir, mknod, symlink, link, unlink, rmdir and rename are
//!   durable only after `fsync` of their directory (a rename across directories after both).
//!   Unlinked files and files replaced by a rename are kept aside in a stash (a sibling of the
//!   backing directory, or a hidden folder inside it when the parent is on another
//!   filesystem) until that is durable, so a power loss brings them back.
//! - [`Control::lose_unsynced`] undoes every file log, then every pending directory
//!   operation, newest first, leaving the backing directory at exactly the durable state.
//!   [`Control::tear`] does the same but lets each file's last unsynced write survive in part.
//!   [`Control::make_durable`] is the opposite: everything pending becomes durable, as a
//!   journal commit would make it (etcd 3.4 never fsyncs the directories it makes at start-up,
//!   so without one a power loss takes its whole data directory).
//!
//! Kernel caches: entries and attributes are never cached (TTL 0), each open drops the file's
//! page cache (no keep_cache), and a power loss invalidates every inode the kernel holds, so
//! reads and fresh mmaps after it see the durable state. Not direct_io: mmap keeps working.
//!
//! Simplifications: a file's data made durable by `fsync` stays so if its entry survives (a
//! new file whose entry is undone is removed whole); an undone `mkdir` removes the directory
//! with whatever was made durable inside it, and a durable removal of a directory makes what
//! was pending inside it durable too; a rename across directories is durable only once both
//! are fsynced; a torn write is the durable state with a prefix of the last write laid over
//! it (earlier unsynced writes are lost whole), and a write within one sector tears all or
//! nothing; a write through a handle opened `O_SYNC`/`O_DSYNC` makes that file's data durable
//! at once; an fsync under way when a power loss comes answers EIO and keeps nothing;
//! `fallocate` answers EOPNOTSUPP (Go's etcd and PostgreSQL fall back to writing or
//! truncating); xattrs are not supported; POSIX and flock locks stay in the kernel; an fsync
//! also syncs the backing file or directory, so that it costs what the disk underneath makes
//! it cost (and a failing host disk fails it); undo logs are bounded only by
//! what the servers overwrite without fsync (appends cost nothing).
//!
//! What the kernel does when the serving process dies: the FUSE connection is aborted with
//! the last close of /dev/fuse; a mount left in a namespace that lives on answers ENOTCONN
//! ("Transport endpoint is not connected") until someone unmounts it. A mount made inside a
//! private mount namespace goes away with the namespace when its last process dies, even by
//! SIGKILL (tests/kill.rs shows both).

mod fs;
mod journal;

use std::ffi::OsString;
use std::fs as stdfs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier, SessionACL};

pub use journal::{Loss, Pending};

use crate::fs::{DiskFs, Shared};
use crate::journal::State;

/// How many threads serve requests: enough that fsyncs held by a delay leave others to serve
/// reads and writes of other files.
const THREADS: usize = 8;

/// Whether FUSE can be used here: /dev/fuse present and a mount permitted. Err says why.
pub fn available() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err(
            "/dev/fuse is missing (a kernel without FUSE, or a container without the device)"
                .into(),
        );
    }
    if let Err(e) = stdfs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(format!("cannot open /dev/fuse: {e}"));
    }
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("diskfs-probe-{}-{n}", std::process::id()));
    let backing = dir.join("backing");
    let mnt = dir.join("mnt");
    let result = (|| -> io::Result<()> {
        stdfs::create_dir_all(&backing)?;
        stdfs::create_dir_all(&mnt)?;
        let m = Mount::new(&backing, &mnt)?;
        stdfs::write(mnt.join("probe"), b"ok")?;
        drop(m);
        Ok(())
    })();
    let _ = stdfs::remove_dir_all(&dir);
    result.map_err(|e| format!("a FUSE mount failed: {e}"))
}

/// A directory `backing` served at `mountpoint` by a passthrough filesystem in background
/// threads. Unmounts on drop.
pub struct Mount {
    session: Option<BackgroundSession>,
    control: Control,
    mountpoint: PathBuf,
}

/// Cheap to clone, Send + Sync: what the fault injector holds.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
    mountpoint: Arc<PathBuf>,
    notifier: Arc<Mutex<Option<Notifier>>>,
}

impl Mount {
    /// Serve `backing` at `mountpoint` (an existing empty directory).
    pub fn new(backing: &Path, mountpoint: &Path) -> io::Result<Mount> {
        let backing = stdfs::canonicalize(backing)?;
        let mountpoint = stdfs::canonicalize(mountpoint)?;
        let bm = stdfs::metadata(&backing)?;
        if !bm.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", backing.display()),
            ));
        }
        if !stdfs::metadata(&mountpoint)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mountpoint {} is not a directory", mountpoint.display()),
            ));
        }
        let (stash_dir, hidden) = stash_place(&backing, &bm);
        let _ = stdfs::remove_dir_all(&stash_dir);
        let state = State::new(backing.clone(), stash_dir, bm.ino());
        let shared = Arc::new(Shared::new(state, hidden));
        let fs = DiskFs {
            shared: shared.clone(),
        };
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("diskfs".into()),
            MountOption::Subtype("diskfs".into()),
            MountOption::DefaultPermissions,
            MountOption::NoAtime,
        ];
        // Nodes may run as another user than the harness.
        config.acl = SessionACL::All;
        config.n_threads = Some(THREADS);
        config.clone_fd = true;
        let session = fuser::spawn_mount(fs, &mountpoint, &config)?;
        let notifier = Arc::new(Mutex::new(Some(session.notifier())));
        Ok(Mount {
            session: Some(session),
            control: Control {
                shared,
                notifier,
                mountpoint: Arc::new(mountpoint.clone()),
            },
            mountpoint,
        })
    }

    /// The handle that injects faults.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Where the filesystem is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Ok(mut n) = self.control.notifier.lock() {
            *n = None;
        }
        // A lazy unmount always succeeds (a plain one fails while anything is busy): the mount
        // leaves the namespace at once, handles still open are served until closed, and the
        // session's threads end with the connection.
        if let Ok(c) = journal::cstr(&self.mountpoint) {
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        drop(self.session.take());
        let stash = self.control.shared.lock().stash_dir.clone();
        let _ = stdfs::remove_dir_all(stash);
    }
}

/// The stash must be on the backing directory's filesystem (files move there by rename):
/// beside it when its parent is on the same one, else a hidden folder inside it.
fn stash_place(backing: &Path, bm: &stdfs::Metadata) -> (PathBuf, Option<OsString>) {
    let name = backing
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    if let Some(parent) = backing.parent() {
        if let Ok(pm) = stdfs::metadata(parent) {
            if pm.dev() == bm.dev() {
                return (parent.join(format!(".{name}.diskfs-stash")), None);
            }
        }
    }
    let hidden = OsString::from(".diskfs-stash");
    (backing.join(&hidden), Some(hidden))
}

impl Control {
    /// Power loss: discard every write, truncate, create, mkdir, rename and unlink not yet
    /// made durable, so the backing directory holds exactly the durable state. Call it while
    /// no process uses the filesystem.
    pub fn lose_unsynced(&self) -> io::Result<Loss> {
        self.lose(None)
    }

    /// The same, except that the last unsynced write of each file survives in part: a prefix
    /// of it ending at a 512-byte sector boundary of the file (possibly empty, never the whole
    /// write when it spans more than one sector; a write within one sector survives whole or
    /// not at all), drawn from `seed` and the file's path.
    pub fn tear(&self, seed: u64) -> io::Result<Loss> {
        self.lose(Some(seed))
    }

    fn lose(&self, tear: Option<u64>) -> io::Result<Loss> {
        // Dirty pages of shared writable mappings are written back by the kernel whenever it
        // likes, even after their process died: have them written now, so they are journaled
        // and undone with the rest instead of landing after the power loss.
        if let Ok(dir) = stdfs::File::open(self.mountpoint.as_path()) {
            // SAFETY: syncfs on a descriptor we own.
            unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) };
        }
        let (loss, inodes) = {
            let mut st = self.shared.lock();
            let loss = st.lose(tear);
            let inodes: Vec<u64> = st.nodes.keys().copied().collect();
            (loss, inodes)
        };
        // Entries and attributes are never cached (TTL 0) and each open drops the page cache;
        // this drops pages of files the kernel still holds, so an mmap made later is fresh.
        let notifier = self.notifier.lock().ok().and_then(|n| n.clone());
        if let Some(n) = notifier {
            for ino in inodes {
                let _ = n.inval_inode(INodeNo(ino), 0, 0);
            }
        }
        Ok(loss)
    }

    /// While on, fsync, fdatasync and fsyncdir answer EIO (and make nothing durable).
    pub fn set_fsync_error(&self, on: bool) {
        self.shared.fsync_error.store(on, Ordering::SeqCst);
    }

    /// While Some((min_ms, max_ms)), every fsync/fdatasync/fsyncdir first sleeps a time drawn
    /// from the range (seeded), then does its work.
    pub fn set_fsync_delay(&self, range: Option<(u64, u64)>, seed: u64) {
        let mut d = self
            .shared
            .fsync_delay
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *d = range.map(|(lo, hi)| (lo.min(hi), lo.max(hi), seed));
    }

    /// Make everything pending durable now, as a kernel's periodic writeback and journal
    /// commit eventually would (ext4 commits every 5 s): for a harness that wants a power loss
    /// to take only what was written since, e.g. not a server's whole freshly made data
    /// directory when the server never fsyncs its parent (etcd 3.4 does not).
    pub fn make_durable(&self) -> Pending {
        let mut st = self.shared.lock();
        let before = st.pending();
        st.make_durable();
        before
    }

    /// What is not yet durable now.
    pub fn pending(&self) -> Pending {
        self.shared.lock().pending()
    }
}
