//! Durable state of one server: a write-ahead log of hard-state changes, truncations and
//! entries (the runtime's [`RecordLog`] of Raft's [`Record`]s), plus the latest snapshot in
//! its own file. [`MemStorage`] keeps the same in memory for the simulation, where a crash
//! keeps exactly what was persisted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use node::storage::{DiskImage, RecordLog};
use serde::{Deserialize, Serialize};

use crate::core::{Entry, HardState, LogIndex, Persist, Persisted, Snapshot, Term};

pub use node::storage::{Storage, StorageError};

/// Applies a `Persist` to an in-memory image of the disk; both storages share it.
#[derive(Clone, Debug, Default)]
pub struct Image {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: BTreeMap<LogIndex, Entry>,
}

impl DiskImage for Image {
    type Persist = Persist;
    type State = Persisted;

    fn apply(&mut self, p: &Persist) {
        if let Some(hs) = p.hard_state {
            self.hard_state = hs;
        }
        if let Some(s) = &p.snapshot {
            self.set_snapshot(s.clone());
        }
        if let Some(from) = p.truncate_from {
            self.entries.split_off(&from);
        }
        for e in &p.append {
            self.entries.insert(e.index, e.clone());
        }
    }

    fn state(&self) -> Persisted {
        Persisted {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.values().cloned().collect(),
        }
    }
}

impl Image {
    fn set_snapshot(&mut self, s: Snapshot) {
        let keep = self.entries.split_off(&(s.last_index + 1));
        self.entries = keep;
        self.snapshot = Some(s);
    }

    /// Entries must follow the snapshot without gaps; anything else is a damaged store.
    fn check(&self) -> Result<(), String> {
        let first = self.snapshot.as_ref().map_or(0, |s| s.last_index) + 1;
        for (expect, i) in (first..).zip(self.entries.keys()) {
            if *i != expect {
                return Err(format!(
                    "log entry {expect} is missing (next stored is {i})"
                ));
            }
        }
        Ok(())
    }
}

/// The simulation's disk: survives a simulated crash, loses nothing persisted.
pub type MemStorage = node::storage::MemStorage<Image>;

/// Splits entries into runs of at most 16 MiB of data, well under the WAL's record limit.
fn chunks_by_bytes(entries: &[Entry]) -> Vec<&[Entry]> {
    const MAX: usize = 16 << 20;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, e) in entries.iter().enumerate() {
        if i > start && bytes + e.data.len() > MAX {
            out.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += e.data.len() + 32;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// One record of `raft.wal`.
#[derive(Serialize, Deserialize)]
enum Record {
    HardState(HardState),
    Truncate(LogIndex),
    Entries(Vec<Entry>),
    /// A snapshot up to this entry was written to the snapshot file.
    Snapshot {
        last_index: LogIndex,
        last_term: Term,
    },
}

/// `DIR/raft.wal` and `DIR/snapshot.bin`.
pub struct FileStorage {
    wal: RecordLog<Record>,
    snapshot_path: PathBuf,
    image: Image,
}

impl FileStorage {
    /// Opens (or creates) the store in `dir`, recovering from a torn write if the last run
    /// died in the middle of one.
    pub fn open(dir: &Path) -> Result<FileStorage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::File {
            path: dir.to_path_buf(),
            message: format!("cannot create the data directory: {e}"),
        })?;
        let snapshot_path = dir.join("snapshot.bin");
        let mut image = Image {
            snapshot: node::storage::read_snapshot::<Snapshot>(&snapshot_path)?,
            ..Image::default()
        };
        let wal_path = dir.join("raft.wal");
        let (wal, records) = RecordLog::open(&wal_path)?;
        for record in records {
            match record {
                Record::HardState(hs) => image.hard_state = hs,
                Record::Truncate(from) => {
                    image.entries.split_off(&from);
                }
                Record::Entries(es) => {
                    for e in es {
                        image.entries.insert(e.index, e);
                    }
                }
                Record::Snapshot { last_index, .. } => {
                    // The snapshot file may be newer than this record; never older.
                    let covered = image.snapshot.as_ref().map_or(0, |s| s.last_index);
                    let keep = image.entries.split_off(&(last_index.min(covered) + 1));
                    image.entries = keep;
                }
            }
        }
        let (covered, covered_term) = image
            .snapshot
            .as_ref()
            .map_or((0, Term(0)), |s| (s.last_index, s.last_term));
        let keep = image.entries.split_off(&(covered + 1));
        image.entries = keep;
        // Terms never go down along a log. Entries after the snapshot with a lower term than
        // its last entry belong to a log the snapshot replaced (the process died between
        // writing the snapshot and rewriting the log): drop them.
        if let Some(first_stale) = image
            .entries
            .values()
            .find(|e| e.term < covered_term)
            .map(|e| e.index)
        {
            image.entries.split_off(&first_stale);
        }
        image.check().map_err(|message| StorageError::File {
            path: wal_path.clone(),
            message,
        })?;
        Ok(FileStorage {
            wal,
            snapshot_path,
            image,
        })
    }
}

impl Storage for FileStorage {
    type Persist = Persist;
    type State = Persisted;

    fn persist(&mut self, p: &Persist) -> Result<(), StorageError> {
        if p.is_empty() {
            return Ok(());
        }
        if let Some(s) = &p.snapshot {
            node::storage::write_snapshot(&self.snapshot_path, s)?;
        }
        self.image.apply(p);
        if p.snapshot.is_some() {
            // Compaction: the log is rewritten with only what the snapshot does not cover.
            let mut records = vec![Record::HardState(self.image.hard_state)];
            let entries: Vec<Entry> = self.image.entries.values().cloned().collect();
            for chunk in chunks_by_bytes(&entries) {
                records.push(Record::Entries(chunk.to_vec()));
            }
            if let Some(s) = &self.image.snapshot {
                records.push(Record::Snapshot {
                    last_index: s.last_index,
                    last_term: s.last_term,
                });
            }
            self.wal.rewrite(&records)?;
            return Ok(());
        }
        if let Some(hs) = p.hard_state {
            self.wal.append(&Record::HardState(hs))?;
        }
        if let Some(from) = p.truncate_from {
            self.wal.append(&Record::Truncate(from))?;
        }
        for chunk in chunks_by_bytes(&p.append) {
            self.wal.append(&Record::Entries(chunk.to_vec()))?;
        }
        self.wal.sync()?;
        Ok(())
    }

    fn load(&self) -> Persisted {
        self.image.state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::NodeId;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            term: Term(term),
            index,
            data: format!("e{index}").into_bytes(),
        }
    }

    #[test]
    fn file_storage_replays_truncations_and_snapshots() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = FileStorage::open(dir.path()).expect("open");
            s.persist(&Persist {
                hard_state: Some(HardState {
                    term: Term(2),
                    vote: Some(NodeId(1)),
                }),
                append: (1..=5).map(|i| entry(1, i)).collect(),
                ..Persist::default()
            })
            .expect("persist");
            s.persist(&Persist {
                truncate_from: Some(4),
                append: vec![entry(2, 4)],
                ..Persist::default()
            })
            .expect("persist");
        }
        let s = FileStorage::open(dir.path()).expect("reopen");
        let p = s.load();
        assert_eq!(p.hard_state.vote, Some(NodeId(1)));
        assert_eq!(p.entries.len(), 4);
        assert_eq!(p.entries[3], entry(2, 4));
        drop(s);
        {
            let mut s = FileStorage::open(dir.path()).expect("reopen");
            s.persist(&Persist {
                snapshot: Some(Snapshot {
                    last_index: 3,
                    last_term: Term(1),
                    data: b"state".to_vec(),
                }),
                ..Persist::default()
            })
            .expect("snapshot");
            s.persist(&Persist {
                append: vec![entry(2, 5)],
                ..Persist::default()
            })
            .expect("persist");
        }
        let p = FileStorage::open(dir.path()).expect("reopen").load();
        assert_eq!(p.snapshot.as_ref().map(|s| s.last_index), Some(3));
        assert_eq!(
            p.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(p.hard_state.term, Term(2));
    }

    #[test]
    fn a_crash_between_snapshot_and_log_rewrite_does_not_resurrect_replaced_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = FileStorage::open(dir.path()).expect("open");
            s.persist(&Persist {
                append: (1..=6).map(|i| entry(1, i)).collect(),
                ..Persist::default()
            })
            .expect("persist");
        }
        // An installed snapshot (4, term 2) reached its file; the log rewrite did not happen.
        let snap = Snapshot {
            last_index: 4,
            last_term: Term(2),
            data: vec![],
        };
        let bytes = postcard::to_allocvec(&snap).expect("encode");
        node::fsutil::write_atomic(&dir.path().join("snapshot.bin"), &bytes).expect("write");
        let p = FileStorage::open(dir.path()).expect("reopen").load();
        assert_eq!(p.snapshot.map(|s| s.last_index), Some(4));
        assert!(
            p.entries.is_empty(),
            "entries of the replaced log came back: {:?}",
            p.entries
        );
    }
}
