//! What the disk faults need of a node's data directory: a filesystem the harness serves
//! (the `diskfs` crate's FUSE filesystem, handed in by the harness through this trait, so that
//! this crate depends on no filesystem), which can lose what was not made durable, tear the
//! last unsynced write, fail fsync or slow it.

use serde::Serialize;

/// What a power loss discarded on one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// Files whose unsynced data was discarded.
    pub files: usize,
    /// Bytes of unsynced writes discarded.
    pub bytes: u64,
    /// Directory operations (create, rename, unlink, ...) undone.
    pub dir_ops: usize,
    /// Files whose last unsynced write survived in part.
    pub torn: usize,
}

/// One node's data directory, served through a filesystem the harness controls.
pub trait Disk: Send + Sync {
    /// Discards everything not made durable (the node must not be running): a power loss.
    fn lose_unsynced(&self) -> std::io::Result<Lost>;
    /// The same, but each file's last unsynced write survives in part (drawn from `seed`).
    fn tear(&self, seed: u64) -> std::io::Result<Lost>;
    /// While on, fsync and fdatasync answer EIO.
    fn set_fsync_error(&self, on: bool);
    /// While Some((min, max)), every fsync first waits min..=max ms (drawn from `seed`).
    fn set_fsync_delay(&self, range_ms: Option<(u64, u64)>, seed: u64);
}
