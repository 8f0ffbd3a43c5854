//! The passthrough filesystem: every operation goes to the backing tree at once, and what a
//! power loss would take is recorded in the journal first.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::journal::{cstr, rename2, splitmix, DirOp, Loc, Replaced, State, Undo, ROOT};

/// Kernel caches hold nothing: after a power loss every lookup and stat comes back to us.
const TTL: Duration = Duration::ZERO;

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub handles: RwLock<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    pub fsync_error: AtomicBool,
    /// (min_ms, max_ms, rng state)
    pub fsync_delay: Mutex<Option<(u64, u64, u64)>>,
    /// A name at the root hidden from the mount (the stash, when it has to live inside).
    pub hidden: Option<OsString>,
}

pub(crate) enum Handle {
    File {
        ino: u64,
        file: File,
        /// Opened O_SYNC or O_DSYNC: each write is durable at once.
        sync: bool,
    },
    Dir {
        ino: u64,
        entries: Vec<(u64, FileType, OsString)>,
    },
}

impl Shared {
    pub fn new(state: State, hidden: Option<OsString>) -> Shared {
        Shared {
            state: Mutex::new(state),
            handles: RwLock::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            fsync_error: AtomicBool::new(false),
            fsync_delay: Mutex::new(None),
            hidden,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in one request must not wedge the filesystem: the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, fh: FileHandle) -> Option<Arc<Handle>> {
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        handles.get(&fh.0).cloned()
    }

    /// An open file of node `ino`, if any handle has one.
    fn open_file_of(&self, ino: u64) -> Option<File> {
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        handles.values().find_map(|h| match &**h {
            Handle::File { ino: i, file, .. } if *i == ino => file.try_clone().ok(),
            _ => None,
        })
    }

    fn add_handle(&self, h: Handle) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let mut handles = self.handles.write().unwrap_or_else(|e| e.into_inner());
        handles.insert(fh, Arc::new(h));
        FileHandle(fh)
    }

    fn drop_handle(&self, fh: FileHandle) {
        let mut handles = self.handles.write().unwrap_or_else(|e| e.into_inner());
        handles.remove(&fh.0);
    }

    /// The fault hooks every fsync passes: a delay (outside every lock, so other requests go
    /// on), then an injected EIO. Then `sync` runs under the lock, unless a power loss came
    /// while the fsync waited (since `epoch`, read when the request arrived): that fsync never
    /// finished, and answers EIO.
    fn fsync_with(&self, epoch: u64, sync: impl FnOnce(&mut State)) -> Result<(), Errno> {
        self.before_fsync()?;
        let mut st = self.lock();
        if st.epoch != epoch {
            return Err(Errno::EIO);
        }
        sync(&mut st);
        Ok(())
    }

    fn before_fsync(&self) -> Result<(), Errno> {
        let delay_ms = {
            let mut d = self.fsync_delay.lock().unwrap_or_else(|e| e.into_inner());
            match d.as_mut() {
                Some((lo, hi, rng)) => {
                    *rng = splitmix(*rng);
                    let span = hi.saturating_sub(*lo) + 1;
                    Some(*lo + *rng % span)
                }
                None => None,
            }
        };
        if let Some(ms) = delay_ms {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if self.fsync_error.load(Ordering::SeqCst) {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn is_hidden(&self, parent: u64, name: &OsStr) -> bool {
        parent == ROOT && self.hidden.as_deref() == Some(name)
    }
}

pub(crate) struct DiskFs {
    pub shared: Arc<Shared>,
}

fn kind_of(ft: fs::FileType) -> FileType {
    FileType::from_std(ft).unwrap_or(FileType::RegularFile)
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsecs as u64)
    }
}

fn attr(ino: u64, m: &fs::Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.size(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.ctime(), m.ctime_nsec()),
        kind: kind_of(m.file_type()),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

fn errno(e: io::Error) -> Errno {
    match e.raw_os_error() {
        Some(_) => Errno::from(e),
        None => Errno::EIO,
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Files made through the mount belong to the caller, as on a local disk (we serve as root).
fn chown_to(path: &Path, req: &Request) {
    let _ = std::os::unix::fs::lchown(path, Some(req.uid()), Some(req.gid()));
}

fn stash_of(state: &mut State) -> Result<std::path::PathBuf, Errno> {
    state.new_stash_path().map_err(errno)
}

impl DiskFs {
    /// Look up `parent/name` in the backing tree and answer with its node.
    fn entry(&self, parent: u64, name: &OsStr) -> Result<(u64, fs::Metadata), Errno> {
        if self.shared.is_hidden(parent, name) {
            return Err(Errno::ENOENT);
        }
        let mut st = self.shared.lock();
        let path = st.child_path(parent, name).ok_or(Errno::ENOENT)?;
        let m = fs::symlink_metadata(&path).map_err(errno)?;
        let ino = st.node_at(parent, name, m.ino(), kind_of(m.file_type()));
        Ok((ino, m))
    }

    /// Makes the entry `parent/name` with `make` (mknod, mkdir, symlink), owned by the
    /// caller, records its creation as pending in `parent` until that directory is fsynced,
    /// and answers with it.
    fn new_entry(
        &self,
        req: &Request,
        parent: u64,
        name: &OsStr,
        reply: ReplyEntry,
        make: impl FnOnce(&Path) -> Result<(), Errno>,
    ) {
        let result = (|| -> Result<(u64, fs::Metadata), Errno> {
            let mut st = self.shared.lock();
            let path = st.child_path(parent, name).ok_or(Errno::ENOENT)?;
            make(&path)?;
            chown_to(&path, req);
            let m = fs::symlink_metadata(&path).map_err(errno)?;
            let kind = kind_of(m.file_type());
            let ino = st.node_at(parent, name, m.ino(), kind);
            let (name, node) = (name.to_os_string(), ino);
            let op = if kind == FileType::Directory {
                DirOp::Mkdir { parent, name, node }
            } else {
                DirOp::Create { parent, name, node }
            };
            st.record_dir(op, &[parent]);
            Ok((ino, m))
        })();
        match result {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn stat(&self, ino: u64) -> Result<fs::Metadata, Errno> {
        let path = self.shared.lock().path_of(ino);
        match path.map(fs::symlink_metadata) {
            Some(Ok(m)) => Ok(m),
            // Unlinked for good (durably), yet open: fstat works on a real disk (with no
            // links left), and the kernel asks without a handle. Any open one will do.
            Some(Err(e)) if e.raw_os_error() != Some(libc::ENOENT) => Err(errno(e)),
            _ => self
                .shared
                .open_file_of(ino)
                .ok_or(Errno::ENOENT)?
                .metadata()
                .map_err(errno),
        }
    }

    /// Set a file's length, recording what the change takes away.
    fn truncate(&self, ino: u64, fh: Option<FileHandle>, size: u64) -> Result<(), Errno> {
        let handle = fh.and_then(|fh| self.shared.handle(fh));
        let mut st = self.shared.lock();
        let opened;
        let file = match handle.as_deref() {
            Some(Handle::File { file, .. }) => file,
            _ => {
                let path = st.path_of(ino).ok_or(Errno::ENOENT)?;
                opened = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(path)
                    .map_err(errno)?;
                &opened
            }
        };
        let before = file.metadata().map_err(errno)?.len();
        if size == before {
            return Ok(());
        }
        let mut old = Vec::new();
        if size < before {
            // What a truncate takes away is kept to undo it; more than memory allows (a huge
            // sparse file cut short) is refused, never an abort of every mount.
            let n = usize::try_from(before - size).map_err(|_| Errno::ENOMEM)?;
            old.try_reserve_exact(n).map_err(|_| Errno::ENOMEM)?;
            old.resize(n, 0);
            read_up_to(file, &mut old, size).map_err(errno)?;
        }
        file.set_len(size).map_err(errno)?;
        st.record_data(
            ino,
            Undo {
                offset: size.min(before),
                old,
                len_before: before,
                write_len: None,
            },
        );
        Ok(())
    }
}

/// Read as much as there is into `buf` from `offset`; the rest stays zero. Returns the count.
fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

fn to_timespec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            }
        }
    }
}

impl Filesystem for DiskFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.entry(parent.0, name) {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        if let Some(h) = fh.and_then(|fh| self.shared.handle(fh)) {
            if let Handle::File { file, .. } = &*h {
                match file.metadata() {
                    Ok(m) => return reply.attr(&TTL, &attr(ino.0, &m)),
                    Err(e) => return reply.error(errno(e)),
                }
            }
        }
        match self.stat(ino.0) {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = (|| -> Result<fs::Metadata, Errno> {
            if let Some(size) = size {
                self.truncate(ino.0, fh, size)?;
            }
            let path = self.shared.lock().path_of(ino.0).ok_or(Errno::ENOENT)?;
            if let Some(mode) = mode {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(errno)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&path, uid, gid).map_err(errno)?;
            }
            if atime.is_some() || mtime.is_some() {
                let times = [to_timespec(atime), to_timespec(mtime)];
                let c = cstr(&path).map_err(errno)?;
                // SAFETY: a valid path and two timespecs that outlive the call.
                let rc = unsafe {
                    libc::utimensat(
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        times.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                check(rc).map_err(errno)?;
            }
            fs::symlink_metadata(&path).map_err(errno)
        })();
        match result {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let path = self.shared.lock().path_of(ino.0);
        match path.map(fs::read_link) {
            Some(Ok(target)) => reply.data(target.as_os_str().as_bytes()),
            Some(Err(e)) => reply.error(errno(e)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.new_entry(req, parent.0, name, reply, |path| {
            let c = cstr(path).map_err(errno)?;
            // SAFETY: a valid path.
            check(unsafe { libc::mknod(c.as_ptr(), mode & !umask, rdev as libc::dev_t) })
                .map_err(errno)
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.new_entry(req, parent.0, name, reply, |path| {
            let c = cstr(path).map_err(errno)?;
            // SAFETY: a valid path.
            check(unsafe { libc::mkdir(c.as_ptr(), (mode & !umask) as libc::mode_t) })
                .map_err(errno)
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = (|| -> Result<(), Errno> {
            if self.shared.is_hidden(parent.0, name) {
                return Err(Errno::ENOENT);
            }
            let mut st = self.shared.lock();
            let path = st.child_path(parent.0, name).ok_or(Errno::ENOENT)?;
            let m = fs::symlink_metadata(&path).map_err(errno)?;
            if m.is_dir() {
                return Err(Errno::EISDIR);
            }
            let ino = st.node_at(parent.0, name, m.ino(), kind_of(m.file_type()));
            let stash = stash_of(&mut st)?;
            // A rename keeps the inode, so open handles and the file's data log stay valid.
            fs::rename(&path, &stash).map_err(errno)?;
            st.set_loc(ino, Loc::Stash(stash.clone()));
            st.record_dir(
                DirOp::Unlink {
                    parent: parent.0,
                    name: name.to_os_string(),
                    node: ino,
                    stash,
                },
                &[parent.0],
            );
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = (|| -> Result<(), Errno> {
            if self.shared.is_hidden(parent.0, name) {
                return Err(Errno::ENOENT);
            }
            let mut st = self.shared.lock();
            let path = st.child_path(parent.0, name).ok_or(Errno::ENOENT)?;
            let m = fs::symlink_metadata(&path).map_err(errno)?;
            if !m.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let ino = st.node_at(parent.0, name, m.ino(), FileType::Directory);
            fs::remove_dir(&path).map_err(errno)?;
            st.set_loc(ino, Loc::Gone);
            st.record_dir(
                DirOp::Rmdir {
                    parent: parent.0,
                    name: name.to_os_string(),
                    node: ino,
                    mode: m.mode(),
                },
                &[parent.0],
            );
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.new_entry(req, parent.0, link_name, reply, |path| {
            std::os::unix::fs::symlink(target, path).map_err(errno)
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = (|| -> Result<(), Errno> {
            if self.shared.is_hidden(parent.0, name) || self.shared.is_hidden(newparent.0, newname)
            {
                return Err(Errno::EPERM);
            }
            if flags.contains(RenameFlags::RENAME_WHITEOUT) {
                return Err(Errno::EINVAL);
            }
            let mut st = self.shared.lock();
            let old = st.child_path(parent.0, name).ok_or(Errno::ENOENT)?;
            let new = st.child_path(newparent.0, newname).ok_or(Errno::ENOENT)?;
            let m = fs::symlink_metadata(&old).map_err(errno)?;
            let ino = st.node_at(parent.0, name, m.ino(), kind_of(m.file_type()));
            let target = match fs::symlink_metadata(&new) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(errno(e)),
            };
            let from = (parent.0, name.to_os_string());
            let to = (newparent.0, newname.to_os_string());
            let dirs = [parent.0, newparent.0];
            if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                let t = target.ok_or(Errno::ENOENT)?;
                let other = st.node_at(newparent.0, newname, t.ino(), kind_of(t.file_type()));
                rename2(&old, &new, libc::RENAME_EXCHANGE).map_err(errno)?;
                st.set_loc(
                    ino,
                    Loc::Entry {
                        parent: to.0,
                        name: to.1.clone(),
                    },
                );
                st.set_loc(
                    other,
                    Loc::Entry {
                        parent: from.0,
                        name: from.1.clone(),
                    },
                );
                st.record_dir(
                    DirOp::Rename {
                        from,
                        to,
                        node: ino,
                        replaced: None,
                        exchange_with: Some(other),
                    },
                    &dirs,
                );
                return Ok(());
            }
            let mut replaced = None;
            match target {
                Some(_) if flags.contains(RenameFlags::RENAME_NOREPLACE) => {
                    return Err(Errno::EEXIST);
                }
                Some(t) if t.ino() == m.ino() => {
                    // Two names of one inode: rename(2) does nothing.
                    return Ok(());
                }
                Some(t) => {
                    let other = st.node_at(newparent.0, newname, t.ino(), kind_of(t.file_type()));
                    if t.is_dir() {
                        if !m.is_dir() {
                            return Err(Errno::EISDIR);
                        }
                        replaced = Some(Replaced::Dir {
                            node: other,
                            mode: t.mode(),
                        });
                    } else {
                        if m.is_dir() {
                            return Err(Errno::ENOTDIR);
                        }
                        // Keep the replaced file by a second name first, so the rename
                        // itself stays one atomic replace for anyone watching.
                        let stash = stash_of(&mut st)?;
                        fs::hard_link(&new, &stash).map_err(errno)?;
                        replaced = Some(Replaced::File { node: other, stash });
                    }
                }
                None => {}
            }
            if let Err(e) = rename2(&old, &new, 0) {
                if let Some(Replaced::File { stash, .. }) = &replaced {
                    let _ = fs::remove_file(stash);
                }
                return Err(errno(e));
            }
            match &replaced {
                Some(Replaced::File { node, stash }) => {
                    st.set_loc(*node, Loc::Stash(stash.clone()))
                }
                Some(Replaced::Dir { node, .. }) => st.set_loc(*node, Loc::Gone),
                None => {}
            }
            st.set_loc(
                ino,
                Loc::Entry {
                    parent: to.0,
                    name: to.1.clone(),
                },
            );
            st.record_dir(
                DirOp::Rename {
                    from,
                    to,
                    node: ino,
                    replaced,
                    exchange_with: None,
                },
                &dirs,
            );
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let result = (|| -> Result<(u64, fs::Metadata), Errno> {
            let mut st = self.shared.lock();
            let src = st.path_of(ino.0).ok_or(Errno::ENOENT)?;
            let new = st.child_path(newparent.0, newname).ok_or(Errno::ENOENT)?;
            fs::hard_link(&src, &new).map_err(errno)?;
            let m = fs::symlink_metadata(&new).map_err(errno)?;
            st.record_dir(
                DirOp::Create {
                    parent: newparent.0,
                    name: newname.to_os_string(),
                    node: ino.0,
                },
                &[newparent.0],
            );
            Ok((ino.0, m))
        })();
        match result {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| -> Result<FileHandle, Errno> {
            // The path is looked up under the lock and opened outside it (opening may block),
            // so a rename in between could hand us another node's file: check, and look again.
            let mut tries = 0;
            let file = loop {
                let path = self.shared.lock().path_of(ino.0).ok_or(Errno::ENOENT)?;
                let file = open_backing(&path, flags.0, false)?;
                let got = file.metadata().map_err(errno)?.ino();
                let want = self.shared.lock().nodes.get(&ino.0).map(|n| n.backing_ino);
                tries += 1;
                if want == Some(got) || tries == 8 {
                    break file;
                }
            };
            Ok(self.shared.add_handle(Handle::File {
                ino: ino.0,
                file,
                sync: flags.0 & (libc::O_SYNC | libc::O_DSYNC) != 0,
            }))
        })();
        match result {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = (|| -> Result<(u64, fs::Metadata, FileHandle), Errno> {
            if self.shared.is_hidden(parent.0, name) {
                return Err(Errno::EACCES);
            }
            let mut st = self.shared.lock();
            let path = st.child_path(parent.0, name).ok_or(Errno::ENOENT)?;
            let (file, created) = match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode & !umask)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(f) => (f, true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && flags & libc::O_EXCL == 0 => {
                    (open_backing(&path, flags, false)?, false)
                }
                Err(e) => return Err(errno(e)),
            };
            if created {
                chown_to(&path, req);
            }
            let m = file.metadata().map_err(errno)?;
            let ino = st.node_at(parent.0, name, m.ino(), FileType::RegularFile);
            if created {
                st.record_dir(
                    DirOp::Create {
                        parent: parent.0,
                        name: name.to_os_string(),
                        node: ino,
                    },
                    &[parent.0],
                );
            }
            drop(st);
            if !created && flags & libc::O_TRUNC != 0 {
                self.truncate(ino, None, 0)?;
            }
            let m = if created {
                m
            } else {
                file.metadata().map_err(errno)?
            };
            let fh = self.shared.add_handle(Handle::File {
                ino,
                file,
                sync: flags & (libc::O_SYNC | libc::O_DSYNC) != 0,
            });
            Ok((ino, m, fh))
        })();
        match result {
            Ok((ino, m, fh)) => {
                reply.created(&TTL, &attr(ino, &m), Generation(0), fh, FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(h) = self.shared.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let Handle::File { file, .. } = &*h else {
            return reply.error(Errno::EISDIR);
        };
        let mut buf = vec![0u8; size as usize];
        match read_up_to(file, &mut buf, offset) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(h) = self.shared.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let Handle::File { ino, file, sync } = &*h else {
            return reply.error(Errno::EISDIR);
        };
        let result = (|| -> io::Result<()> {
            // Under the lock: the undo entry must match the order writes reach the file.
            let mut st = self.shared.lock();
            if *sync {
                file.write_all_at(data, offset)?;
                st.sync_file(*ino);
                return Ok(());
            }
            let before = file.metadata()?.len();
            let mut old = Vec::new();
            if offset < before {
                let n = (before - offset).min(data.len() as u64) as usize;
                old = vec![0u8; n];
                let got = read_up_to(file, &mut old, offset)?;
                old.truncate(got);
            }
            // Recorded first: a write that fails part way (ENOSPC) may still have changed
            // the file, and the undo holds either way.
            st.record_data(
                *ino,
                Undo {
                    offset,
                    old,
                    len_before: before,
                    write_len: Some(data.len() as u64),
                },
            );
            file.write_all_at(data, offset)?;
            Ok(())
        })();
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.shared.drop_handle(fh);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Read first: a power loss while the backing file syncs ends this fsync too.
        let epoch = self.shared.lock().epoch;
        let (ino, file) = match self.shared.handle(fh).as_deref() {
            Some(Handle::File { ino, file, .. }) => (*ino, file.try_clone().ok()),
            _ => (ino.0, None),
        };
        // The backing file is synced for real too, so that an fsync costs what the disk
        // underneath makes it cost (and fails when that disk fails).
        if let Some(f) = file {
            let synced = if datasync {
                f.sync_data()
            } else {
                f.sync_all()
            };
            if let Err(e) = synced {
                return reply.error(errno(e));
            }
        }
        match self.shared.fsync_with(epoch, |st| st.sync_file(ino)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| -> Result<FileHandle, Errno> {
            let mut st = self.shared.lock();
            let path = st.path_of(ino.0).ok_or(Errno::ENOENT)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (ino.0, FileType::Directory, OsString::from("..")),
            ];
            for e in fs::read_dir(&path).map_err(errno)? {
                let e = e.map_err(errno)?;
                let name = e.file_name();
                if self.shared.is_hidden(ino.0, &name) {
                    continue;
                }
                let ft = e.file_type().map_err(errno)?;
                let kind = kind_of(ft);
                let child = st.node_at(ino.0, &name, e.ino(), kind);
                entries.push((child, kind, name));
            }
            drop(st);
            Ok(self.shared.add_handle(Handle::Dir {
                ino: ino.0,
                entries,
            }))
        })();
        match result {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(h) = self.shared.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let Handle::Dir { entries, .. } = &*h else {
            return reply.error(Errno::ENOTDIR);
        };
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.shared.drop_handle(fh);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let ino = match self.shared.handle(fh).as_deref() {
            Some(Handle::Dir { ino, .. }) => *ino,
            _ => ino.0,
        };
        let (epoch, path) = {
            let st = self.shared.lock();
            (st.epoch, st.path_of(ino))
        };
        if let Some(path) = path {
            if let Err(e) = fs::File::open(&path).and_then(|d| d.sync_all()) {
                return reply.error(errno(e));
            }
        }
        match self.shared.fsync_with(epoch, |st| st.sync_dir(ino)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let path = self.shared.lock().backing.clone();
        let result = (|| -> io::Result<libc::statvfs> {
            let c = cstr(&path)?;
            // SAFETY: zeroed statvfs is a valid value to be overwritten; the path is valid.
            let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
            check(unsafe { libc::statvfs(c.as_ptr(), &mut s) })?;
            Ok(s)
        })();
        match result {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions (default_permissions); here only existence.
        match self.stat(ino.0) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        // Not journaled: callers (Go's etcd, PostgreSQL) fall back to writing or truncating.
        reply.error(Errno::EOPNOTSUPP);
    }
}

/// Open a backing file for a handle. Writable handles are opened read-write (an undo entry
/// needs the bytes a write overwrites); O_TRUNC comes as a setattr, and O_APPEND and
/// O_DIRECT are the kernel's business (it sends each write with its offset).
fn open_backing(path: &Path, flags: i32, _create: bool) -> Result<File, Errno> {
    let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
    OpenOptions::new()
        .read(true)
        .write(writable)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(errno)
}
