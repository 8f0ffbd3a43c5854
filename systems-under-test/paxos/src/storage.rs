//! Durable state of one server: a write-ahead log (the runtime's [`RecordLog`]) of promises,
//! proposer rounds and votes, plus the latest snapshot in its own file. [`MemStorage`] keeps
//! the same in memory for the simulation, where a crash keeps exactly what was persisted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use node::storage::{DiskImage, RecordLog};
use serde::{Deserialize, Serialize};

use crate::core::{Accepted, Ballot, Persist, Persisted, Slot, Snapshot};

pub use node::storage::{Storage, StorageError};

/// Paxos's image of the disk; both storages apply a `Persist` to it the same way.
#[derive(Clone, Debug, Default)]
pub struct Image {
    promised: Ballot,
    round: u64,
    snapshot: Option<Snapshot>,
    accepted: BTreeMap<Slot, Accepted>,
}

impl DiskImage for Image {
    type Persist = Persist;
    type State = Persisted;

    fn apply(&mut self, p: &Persist) {
        if let Some(b) = p.promised {
            self.promised = b;
        }
        if let Some(r) = p.round {
            self.round = r;
        }
        for a in &p.accepted {
            self.accepted.insert(a.slot, a.clone());
        }
        if let Some(s) = &p.snapshot {
            self.set_snapshot(s.clone());
        }
    }

    fn state(&self) -> Persisted {
        Persisted {
            promised: self.promised,
            round: self.round,
            snapshot: self.snapshot.clone(),
            accepted: self.accepted.values().cloned().collect(),
        }
    }
}

impl Image {
    fn set_snapshot(&mut self, s: Snapshot) {
        self.accepted = self.accepted.split_off(&(s.last_slot + 1));
        self.snapshot = Some(s);
    }
}

/// The simulation's disk: survives a simulated crash, loses nothing persisted.
pub type MemStorage = node::storage::MemStorage<Image>;

/// One record of `paxos.wal`.
#[derive(Serialize, Deserialize)]
enum Record {
    Promised(Ballot),
    Round(u64),
    Votes(Vec<Accepted>),
    /// A snapshot up to this slot was written to the snapshot file.
    Snapshot(Slot),
}

/// Splits votes into runs of at most 16 MiB of values, well under the WAL's record limit.
fn chunks(votes: &[Accepted]) -> impl Iterator<Item = &[Accepted]> {
    const MAX: usize = 16 << 20;
    let mut start = 0;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for (i, a) in votes.iter().enumerate() {
        if i > start && bytes + a.value.len() > MAX {
            out.push(&votes[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += a.value.len() + 32;
    }
    if start < votes.len() {
        out.push(&votes[start..]);
    }
    out.into_iter()
}

/// `DIR/paxos.wal` and `DIR/snapshot.bin`.
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
        let (wal, records) = RecordLog::open(&dir.join("paxos.wal"))?;
        for record in records {
            match record {
                Record::Promised(b) => image.promised = b,
                Record::Round(r) => image.round = r,
                Record::Votes(votes) => {
                    for a in votes {
                        image.accepted.insert(a.slot, a);
                    }
                }
                // The snapshot file is at least as new as this record: votes it covers are
                // dropped below.
                Record::Snapshot(_) => {}
            }
        }
        let covered = image.snapshot.as_ref().map_or(0, |s| s.last_slot);
        image.accepted = image.accepted.split_off(&(covered + 1));
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
        if let Some(s) = &p.snapshot {
            // Compaction: the log is rewritten with only what the snapshot does not cover.
            let mut records = vec![
                Record::Promised(self.image.promised),
                Record::Round(self.image.round),
            ];
            let votes: Vec<Accepted> = self.image.accepted.values().cloned().collect();
            records.extend(chunks(&votes).map(|c| Record::Votes(c.to_vec())));
            records.push(Record::Snapshot(s.last_slot));
            self.wal.rewrite(&records)?;
            return Ok(());
        }
        if let Some(b) = p.promised {
            self.wal.append(&Record::Promised(b))?;
        }
        if let Some(r) = p.round {
            self.wal.append(&Record::Round(r))?;
        }
        for c in chunks(&p.accepted) {
            self.wal.append(&Record::Votes(c.to_vec()))?;
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

    fn vote(slot: Slot, round: u64, v: &str) -> Accepted {
        Accepted {
            slot,
            ballot: Ballot {
                round,
                node: NodeId(1),
            },
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn promises_votes_and_snapshots_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = FileStorage::open(dir.path()).expect("open");
            s.persist(&Persist {
                promised: Some(Ballot {
                    round: 3,
                    node: NodeId(2),
                }),
                round: Some(2),
                accepted: (1..=5).map(|i| vote(i, 1, "a")).collect(),
                snapshot: None,
            })
            .expect("persist");
            // A later vote in slot 4 replaces the earlier one.
            s.persist(&Persist {
                accepted: vec![vote(4, 3, "b")],
                ..Persist::default()
            })
            .expect("persist");
        }
        let p = FileStorage::open(dir.path()).expect("reopen").load();
        assert_eq!(p.promised.round, 3);
        assert_eq!(p.round, 2);
        assert_eq!(p.accepted.len(), 5);
        assert_eq!(p.accepted[3], vote(4, 3, "b"));
        {
            let mut s = FileStorage::open(dir.path()).expect("reopen");
            s.persist(&Persist {
                snapshot: Some(Snapshot {
                    last_slot: 3,
                    data: b"state".to_vec(),
                }),
                ..Persist::default()
            })
            .expect("snapshot");
            s.persist(&Persist {
                accepted: vec![vote(6, 3, "c")],
                ..Persist::default()
            })
            .expect("persist");
        }
        let p = FileStorage::open(dir.path()).expect("reopen").load();
        assert_eq!(p.snapshot.as_ref().map(|s| s.last_slot), Some(3));
        assert_eq!(
            p.accepted.iter().map(|a| a.slot).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        assert_eq!(p.promised.round, 3, "the promise survives compaction");
    }

    #[test]
    fn a_crash_between_snapshot_and_log_rewrite_drops_covered_votes() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = FileStorage::open(dir.path()).expect("open");
            s.persist(&Persist {
                accepted: (1..=6).map(|i| vote(i, 1, "a")).collect(),
                ..Persist::default()
            })
            .expect("persist");
        }
        let snap = Snapshot {
            last_slot: 4,
            data: vec![],
        };
        let bytes = postcard::to_allocvec(&snap).expect("encode");
        node::fsutil::write_atomic(&dir.path().join("snapshot.bin"), &bytes).expect("write");
        let p = FileStorage::open(dir.path()).expect("reopen").load();
        assert_eq!(
            p.accepted.iter().map(|a| a.slot).collect::<Vec<_>>(),
            vec![5, 6]
        );
    }
}
