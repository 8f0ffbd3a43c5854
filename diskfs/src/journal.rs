//! What is not yet durable, and how to take it back.
//!
//! Two kinds of records, both undo logs:
//! - per file (keyed by the node, so every name and handle of it shares one log): the bytes
//!   each unsynced write or truncate overwrote and the length before it. `fsync` of the file
//!   clears its log.
//! - one list of directory operations in the order they happened, each pending in the
//!   directories whose `fsync` makes it durable (two for a rename across directories).
//!
//! A power loss undoes every file log (newest entry first), then every pending directory
//! operation (newest first). Data goes first because a file's data is reached through the
//! node's current place, which the directory undo then moves; a node whose creation is undone
//! is deleted whatever its data.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fuser::FileType;

pub(crate) const ROOT: u64 = 1;

/// Where a node's bytes are in the backing tree now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    Root,
    Entry {
        parent: u64,
        name: OsString,
    },
    /// Unlinked, or replaced by a rename, while that is not durable: kept aside in the stash.
    Stash(PathBuf),
    Gone,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub loc: Loc,
    pub backing_ino: u64,
    pub kind: FileType,
}

/// One unsynced change to a file's bytes: undo it by setting the length back to `len_before`
/// and writing `old` at `offset` (`old` lies within `len_before`).
#[derive(Debug)]
pub(crate) struct Undo {
    pub offset: u64,
    pub old: Vec<u8>,
    pub len_before: u64,
    /// The length of the write, for a write; None for a truncate or an extension.
    pub write_len: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct FileLog {
    pub entries: Vec<Undo>,
    pub bytes: u64,
}

#[derive(Debug)]
pub(crate) enum Replaced {
    /// A file replaced by a rename, hard-linked into the stash first.
    File { node: u64, stash: PathBuf },
    /// An empty directory replaced by a rename: made again on undo.
    Dir { node: u64, mode: u32 },
}

#[derive(Debug)]
pub(crate) enum DirOp {
    /// A file, symlink, special file or hard link made at `parent/name`.
    Create {
        parent: u64,
        name: OsString,
        node: u64,
    },
    Mkdir {
        parent: u64,
        name: OsString,
        node: u64,
    },
    Unlink {
        parent: u64,
        name: OsString,
        node: u64,
        stash: PathBuf,
    },
    Rmdir {
        parent: u64,
        name: OsString,
        node: u64,
        mode: u32,
    },
    Rename {
        from: (u64, OsString),
        to: (u64, OsString),
        node: u64,
        replaced: Option<Replaced>,
        /// RENAME_EXCHANGE: `replaced` is None and the node that was at `to` is `other`.
        exchange_with: Option<u64>,
    },
}

#[derive(Debug)]
pub(crate) struct PendingOp {
    pub op: DirOp,
    /// Directories (nodes) not yet fsynced since the operation: durable when empty.
    pub dirs: Vec<u64>,
}

/// What a power loss took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Files whose unsynced data was discarded.
    pub files: usize,
    /// Bytes of unsynced writes discarded (the surviving part of a torn write included).
    pub bytes: u64,
    /// Directory operations undone.
    pub dir_ops: usize,
    /// Files whose last unsynced write survived in part.
    pub torn: usize,
}

/// What is not durable now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Bytes written since the files' last fsync.
    pub bytes: u64,
    /// Files with unsynced data (writes or length changes).
    pub files: usize,
    /// Directory operations not yet made durable by an fsync of their directory.
    pub dir_ops: usize,
}

pub(crate) struct State {
    pub backing: PathBuf,
    pub stash_dir: PathBuf,
    pub nodes: HashMap<u64, Node>,
    by_backing: HashMap<u64, u64>,
    next_ino: u64,
    pub logs: BTreeMap<u64, FileLog>,
    pub dir_ops: Vec<PendingOp>,
    stash_seq: u64,
    /// Counts power losses: an fsync that began before one (held by a delay) must not make
    /// anything of the next run durable.
    pub epoch: u64,
}

impl State {
    pub fn new(backing: PathBuf, stash_dir: PathBuf, root_backing_ino: u64) -> State {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                loc: Loc::Root,
                backing_ino: root_backing_ino,
                kind: FileType::Directory,
            },
        );
        let mut by_backing = HashMap::new();
        by_backing.insert(root_backing_ino, ROOT);
        State {
            backing,
            stash_dir,
            nodes,
            by_backing,
            next_ino: ROOT + 1,
            logs: BTreeMap::new(),
            dir_ops: Vec::new(),
            stash_seq: 0,
            epoch: 0,
        }
    }

    /// The backing path of a node now, or None when it is gone.
    pub fn path_of(&self, ino: u64) -> Option<PathBuf> {
        let mut names: Vec<&OsStr> = Vec::new();
        let mut at = ino;
        // A bound on depth: a cycle would be a bug, never an endless loop.
        for _ in 0..4096 {
            match &self.nodes.get(&at)?.loc {
                Loc::Root => {
                    let mut p = self.backing.clone();
                    for n in names.iter().rev() {
                        p.push(n);
                    }
                    return Some(p);
                }
                Loc::Entry { parent, name } => {
                    names.push(name);
                    at = *parent;
                }
                Loc::Stash(p) => {
                    if names.is_empty() {
                        return Some(p.clone());
                    }
                    return None;
                }
                Loc::Gone => return None,
            }
        }
        None
    }

    pub fn child_path(&self, parent: u64, name: &OsStr) -> Option<PathBuf> {
        Some(self.path_of(parent)?.join(name))
    }

    /// The node for a backing inode found at `parent/name`, made if new; its place is set to
    /// that entry (a hard link's node moves to whichever name was looked up last).
    pub fn node_at(&mut self, parent: u64, name: &OsStr, backing_ino: u64, kind: FileType) -> u64 {
        let loc = Loc::Entry {
            parent,
            name: name.to_os_string(),
        };
        if let Some(&ino) = self.by_backing.get(&backing_ino) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                if node.kind == kind && ino != ROOT {
                    node.loc = loc;
                    return ino;
                }
            }
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                loc,
                backing_ino,
                kind,
            },
        );
        self.by_backing.insert(backing_ino, ino);
        ino
    }

    pub fn set_loc(&mut self, ino: u64, loc: Loc) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            if loc == Loc::Gone && self.by_backing.get(&node.backing_ino) == Some(&ino) {
                self.by_backing.remove(&node.backing_ino);
            }
            node.loc = loc;
        }
    }

    /// The backing inode of a node changed (a directory made again by an undo).
    pub fn set_backing_ino(&mut self, ino: u64, backing_ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            if self.by_backing.get(&node.backing_ino) == Some(&ino) {
                self.by_backing.remove(&node.backing_ino);
            }
            node.backing_ino = backing_ino;
            self.by_backing.insert(backing_ino, ino);
        }
    }

    pub fn new_stash_path(&mut self) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.stash_dir)?;
        self.stash_seq += 1;
        Ok(self.stash_dir.join(format!("{}", self.stash_seq)))
    }

    pub fn record_data(&mut self, ino: u64, undo: Undo) {
        let log = self.logs.entry(ino).or_default();
        log.bytes += undo.write_len.unwrap_or(0);
        log.entries.push(undo);
    }

    pub fn record_dir(&mut self, op: DirOp, dirs: &[u64]) {
        let mut d = dirs.to_vec();
        d.dedup();
        self.dir_ops.push(PendingOp { op, dirs: d });
    }

    pub fn pending(&self) -> Pending {
        Pending {
            bytes: self.logs.values().map(|l| l.bytes).sum(),
            files: self.logs.values().filter(|l| !l.entries.is_empty()).count(),
            dir_ops: self.dir_ops.len(),
        }
    }

    /// fsync of a file: its data is durable.
    pub fn sync_file(&mut self, ino: u64) {
        self.logs.remove(&ino);
    }

    /// fsync of a directory: every operation pending in it is durable (a rename across two
    /// directories once both were fsynced). What a durable operation kept aside is dropped.
    /// A directory whose removal is durable takes what was pending inside it along: those
    /// operations can no longer be undone into it, so they count as durable too.
    pub fn sync_dir(&mut self, dir: u64) {
        let mut work = vec![dir];
        // Bounded: each round removes at least the operations pending in one directory.
        while let Some(dir) = work.pop() {
            let mut durable = Vec::new();
            let mut kept = Vec::with_capacity(self.dir_ops.len());
            for mut p in std::mem::take(&mut self.dir_ops) {
                p.dirs.retain(|&d| d != dir);
                if p.dirs.is_empty() {
                    durable.push(p.op);
                } else {
                    kept.push(p);
                }
            }
            self.dir_ops = kept;
            for op in durable {
                let stashed = match op {
                    DirOp::Unlink { node, stash, .. } => Some((node, stash)),
                    DirOp::Rename {
                        replaced: Some(Replaced::File { node, stash }),
                        ..
                    } => Some((node, stash)),
                    DirOp::Rmdir { node, .. }
                    | DirOp::Rename {
                        replaced: Some(Replaced::Dir { node, .. }),
                        ..
                    } => {
                        work.push(node);
                        None
                    }
                    _ => None,
                };
                if let Some((node, stash)) = stashed {
                    let _ = fs::remove_file(&stash);
                    if self.nodes.get(&node).map(|n| &n.loc) == Some(&Loc::Stash(stash)) {
                        self.set_loc(node, Loc::Gone);
                        self.logs.remove(&node);
                    }
                }
            }
        }
    }

    /// Everything pending becomes durable.
    pub fn make_durable(&mut self) {
        self.logs.clear();
        let dirs: Vec<u64> = self
            .dir_ops
            .iter()
            .flat_map(|p| p.dirs.iter().copied())
            .collect();
        for d in dirs {
            self.sync_dir(d);
        }
    }

    /// Power loss: undo every file log and every pending directory operation, newest first.
    /// With `tear`, each file's last unsynced write keeps a prefix drawn from the seed.
    pub fn lose(&mut self, tear: Option<u64>) -> Loss {
        self.epoch += 1;
        let mut loss = Loss::default();
        for (ino, log) in std::mem::take(&mut self.logs) {
            if log.entries.is_empty() {
                continue;
            }
            loss.files += 1;
            loss.bytes += log.bytes;
            let Some(path) = self.path_of(ino) else {
                continue;
            };
            match undo_file(&path, &self.backing, &log.entries, tear) {
                Ok(true) => loss.torn += 1,
                Ok(false) => {}
                Err(e) => eprintln!("diskfs: undo of {}: {e}", path.display()),
            }
        }
        let ops = std::mem::take(&mut self.dir_ops);
        loss.dir_ops = ops.len();
        for p in ops.into_iter().rev() {
            if let Err(e) = self.undo_dir_op(p.op) {
                eprintln!("diskfs: undo of a directory operation: {e}");
            }
        }
        let _ = fs::remove_dir(&self.stash_dir);
        loss
    }

    /// Whether `parent/name` is `node` now (its backing inode: a hard-linked node's place is
    /// only one of its names).
    fn is_at(&self, node: u64, parent: u64, name: &OsStr) -> bool {
        let Some(path) = self.child_path(parent, name) else {
            return false;
        };
        let ino = fs::symlink_metadata(path).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        matches!((ino, self.nodes.get(&node)), (Ok(i), Some(n)) if i == n.backing_ino)
    }

    /// A stashed file whose name a newer durable operation took: it never comes back.
    fn drop_stash(&mut self, node: u64, stash: PathBuf) {
        let _ = fs::remove_file(&stash);
        if self.nodes.get(&node).map(|n| &n.loc) == Some(&Loc::Stash(stash)) {
            self.set_loc(node, Loc::Gone);
        }
    }

    /// Undoes one directory operation. Operations newer than it were undone first, so what
    /// still stands in its way was made durable by a newer operation (a name taken again and
    /// its directory fsynced while this operation was pending in another directory): that
    /// entry is never overwritten or removed, and this operation's undo yields to it.
    fn undo_dir_op(&mut self, op: DirOp) -> io::Result<()> {
        let missing = || io::Error::new(io::ErrorKind::NotFound, "parent directory is gone");
        let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
        let taken = |e: &io::Error| e.raw_os_error() == Some(libc::EEXIST);
        match op {
            DirOp::Create { parent, name, node } => {
                if !self.is_at(node, parent, &name) {
                    return Ok(());
                }
                let path = self.child_path(parent, &name).ok_or_else(missing)?;
                fs::remove_file(&path)?;
                if self.nodes.get(&node).map(|n| &n.loc)
                    == Some(&Loc::Entry {
                        parent,
                        name: name.clone(),
                    })
                {
                    self.set_loc(node, Loc::Gone);
                }
            }
            DirOp::Mkdir { parent, name, node } => {
                if !self.is_at(node, parent, &name) {
                    return Ok(());
                }
                let path = self.child_path(parent, &name).ok_or_else(missing)?;
                // Entries made durable inside it go with it: the directory never existed.
                fs::remove_dir_all(&path)?;
                self.set_loc(node, Loc::Gone);
            }
            DirOp::Unlink {
                parent,
                name,
                node,
                stash,
            } => {
                let path = self.child_path(parent, &name).ok_or_else(missing)?;
                match rename2(&stash, &path, libc::RENAME_NOREPLACE) {
                    Ok(()) => {
                        if self.nodes.get(&node).map(|n| &n.loc) == Some(&Loc::Stash(stash)) {
                            self.set_loc(node, Loc::Entry { parent, name });
                        }
                    }
                    Err(e) if taken(&e) => self.drop_stash(node, stash),
                    Err(e) => return Err(e),
                }
            }
            DirOp::Rmdir {
                parent,
                name,
                node,
                mode,
            } => {
                let path = self.child_path(parent, &name).ok_or_else(missing)?;
                if !exists(&path) {
                    self.remake_dir(&path, mode, node, parent, name)?;
                }
            }
            DirOp::Rename {
                from,
                to,
                node,
                replaced,
                exchange_with,
            } => {
                let old = self.child_path(from.0, &from.1).ok_or_else(missing)?;
                let new = self.child_path(to.0, &to.1).ok_or_else(missing)?;
                if let Some(other) = exchange_with {
                    if !self.is_at(node, to.0, &to.1) || !self.is_at(other, from.0, &from.1) {
                        return Ok(());
                    }
                    rename2(&new, &old, libc::RENAME_EXCHANGE)?;
                    self.set_loc(
                        other,
                        Loc::Entry {
                            parent: to.0,
                            name: to.1,
                        },
                    );
                } else {
                    let moved_back = self.is_at(node, to.0, &to.1)
                        && match rename2(&new, &old, libc::RENAME_NOREPLACE) {
                            Ok(()) => true,
                            Err(e) if taken(&e) => false,
                            Err(e) => return Err(e),
                        };
                    match replaced {
                        Some(Replaced::File { node: r, stash }) if moved_back => {
                            match rename2(&stash, &new, libc::RENAME_NOREPLACE) {
                                Ok(()) => self.set_loc(
                                    r,
                                    Loc::Entry {
                                        parent: to.0,
                                        name: to.1.clone(),
                                    },
                                ),
                                Err(e) if taken(&e) => self.drop_stash(r, stash),
                                Err(e) => return Err(e),
                            }
                        }
                        Some(Replaced::File { node: r, stash }) => self.drop_stash(r, stash),
                        Some(Replaced::Dir { node: r, mode }) if moved_back && !exists(&new) => {
                            self.remake_dir(&new, mode, r, to.0, to.1.clone())?;
                        }
                        _ => {}
                    }
                    if !moved_back {
                        return Ok(());
                    }
                }
                self.set_loc(
                    node,
                    Loc::Entry {
                        parent: from.0,
                        name: from.1,
                    },
                );
            }
        }
        Ok(())
    }

    fn remake_dir(
        &mut self,
        path: &Path,
        mode: u32,
        node: u64,
        parent: u64,
        name: OsString,
    ) -> io::Result<()> {
        fs::create_dir(path)?;
        let _ = fs::set_permissions(
            path,
            std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
        );
        let st = fs::symlink_metadata(path)?;
        self.set_backing_ino(node, std::os::unix::fs::MetadataExt::ino(&st));
        self.set_loc(node, Loc::Entry { parent, name });
        Ok(())
    }
}

pub(crate) fn rename2(from: &Path, to: &Path, flags: u32) -> io::Result<()> {
    let f = cstr(from)?;
    let t = cstr(to)?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// Undo one file's log, newest first. With a tear seed, the newest write (the last run of
/// contiguous writes) survives in part: a prefix ending at a 512-byte boundary of the file,
/// re-applied over the durable state.
/// Returns whether a non-empty prefix survived.
fn undo_file(path: &Path, backing: &Path, entries: &[Undo], tear: Option<u64>) -> io::Result<bool> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let last_write = entries.iter().rposition(|u| u.write_len.is_some());
    // The kernel hands one write(2) of a program to the filesystem in pieces (at most
    // max_write bytes each), so the last write is the last run of writes that each start
    // where the one before ended: a prefix of that run survives, never a hole before it.
    let first_of_run = last_write.map(|k| {
        let mut j = k;
        while j > 0 {
            let (prev, this) = (&entries[j - 1], &entries[j]);
            match prev.write_len {
                Some(len) if prev.offset + len == this.offset => j -= 1,
                _ => break,
            }
        }
        j
    });
    let mut keep: Option<(u64, Vec<u8>)> = None;
    for (i, u) in entries.iter().enumerate().rev() {
        if let (Some(seed), Some(k), Some(j)) = (tear, last_write, first_of_run) {
            if i == k {
                let start = entries[j].offset;
                let len = u.offset + u.write_len.unwrap_or(0) - start;
                let rel = path.strip_prefix(backing).unwrap_or(path);
                let cut = tear_point(start, len, mix(seed, rel.as_os_str().as_bytes()));
                if cut > start {
                    let mut buf = vec![0u8; (cut - start) as usize];
                    read_full(&file, &mut buf, start)?;
                    keep = Some((start, buf));
                }
            }
        }
        undo_entry(&file, u)?;
    }
    let torn = keep.is_some();
    if let Some((offset, data)) = keep {
        file.write_all_at(&data, offset)?;
    }
    Ok(torn)
}

fn undo_entry(file: &File, u: &Undo) -> io::Result<()> {
    file.set_len(u.len_before)?;
    if !u.old.is_empty() {
        file.write_all_at(&u.old, u.offset)?;
    }
    Ok(())
}

fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            // Past the end reads as zeros, as a hole would.
            buf[done..].fill(0);
            break;
        }
        done += n;
    }
    Ok(())
}

pub(crate) const SECTOR: u64 = 512;

/// Where a torn write of `len` bytes at `offset` ends: `offset` (nothing survives) or a sector
/// boundary strictly inside the write; a write within one sector is atomic, so all or nothing.
pub(crate) fn tear_point(offset: u64, len: u64, draw: u64) -> u64 {
    let end = offset + len;
    let first = (offset / SECTOR + 1) * SECTOR;
    let interior = if first < end {
        (end - 1 - first) / SECTOR + 1
    } else {
        0
    };
    if interior == 0 {
        return if len > 0 && draw % 2 == 1 {
            end
        } else {
            offset
        };
    }
    // choices: offset, first, first + SECTOR, ... (interior of them)
    let pick = draw % (interior + 1);
    if pick == 0 {
        offset
    } else {
        first + (pick - 1) * SECTOR
    }
}

/// splitmix64 of the seed mixed with a name: one independent draw per file.
pub(crate) fn mix(seed: u64, name: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in name {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix(seed ^ h)
}

pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tear_points_are_sector_boundaries_strictly_inside() {
        for draw in 0..50 {
            // spans sectors: never the whole write
            let c = tear_point(100, 1000, draw);
            assert!(c == 100 || c == 512 || c == 1024, "{c}");
            // aligned three sectors: 0, 512, 1024 but never 1536
            let c = tear_point(0, 1536, draw);
            assert!(c == 0 || c == 512 || c == 1024, "{c}");
            // within one sector: all or nothing
            let c = tear_point(600, 10, draw);
            assert!(c == 600 || c == 610, "{c}");
        }
        let all: std::collections::BTreeSet<u64> =
            (0..50).map(|d| tear_point(0, 1536, d)).collect();
        assert_eq!(all.into_iter().collect::<Vec<_>>(), vec![0, 512, 1024]);
    }
}
