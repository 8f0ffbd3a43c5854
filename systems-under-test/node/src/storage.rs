//! Durable state, generic over what a protocol records: the [`Storage`] a runtime writes each
//! `Ready`'s records to, and [`RecordLog`], a [`Wal`] of typed records (postcard-encoded) on
//! which a Raft log, a Paxos acceptor log or a replica's hints can each be built.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::wal::{Wal, WalError};

/// Where a server writes what a `Ready` asks it to persist, and what it restarts from.
pub trait Storage {
    /// What one `Ready` asks to write.
    type Persist;
    /// Everything persisted so far, as a core restarts from it.
    type State;
    /// Writes `p` durably (fsync) before returning.
    fn persist(&mut self, p: &Self::Persist) -> Result<(), StorageError>;
    /// Everything persisted so far.
    fn load(&self) -> Self::State;
}

/// An in-memory image of a store's disk: a protocol's file storage and the simulation's
/// [`MemStorage`] apply each `Persist` to it the same way, and restart from its state.
pub trait DiskImage: Default {
    /// What one `Ready` asks to write.
    type Persist;
    /// What a core restarts from.
    type State;
    /// Applies one `Persist`, as the disk would hold it once written.
    fn apply(&mut self, p: &Self::Persist);
    /// Everything applied so far.
    fn state(&self) -> Self::State;
}

/// The simulation's disk over a protocol's image: survives a simulated crash, loses nothing
/// persisted.
#[derive(Clone, Debug, Default)]
pub struct MemStorage<I> {
    image: I,
}

impl<I: DiskImage> Storage for MemStorage<I> {
    type Persist = I::Persist;
    type State = I::State;

    fn persist(&mut self, p: &I::Persist) -> Result<(), StorageError> {
        self.image.apply(p);
        Ok(())
    }

    fn load(&self) -> I::State {
        self.image.state()
    }
}

/// What went wrong with a store; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Another file of the store (a snapshot, the directory) failed, or holds what does not
    /// decode.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A write-ahead log of records of type `R`, each one postcard-encoded WAL record. The
/// durability contract is the [`Wal`]'s: a record is durable once [`RecordLog::sync`] (or
/// [`RecordLog::rewrite`]) has returned `Ok`.
#[derive(Debug)]
pub struct RecordLog<R> {
    wal: Wal,
    // `fn() -> R`: the log neither owns nor borrows an `R`, so it is Send and Sync whatever R is.
    records: PhantomData<fn() -> R>,
}

impl<R: Serialize + DeserializeOwned> RecordLog<R> {
    /// Opens (or creates) the log at `path` and decodes every record it holds, in order. A
    /// torn tail (a write the last run never acknowledged) is cut off with a warning; a
    /// record that does not decode is damage, and refused.
    pub fn open(path: &Path) -> Result<(RecordLog<R>, Vec<R>), StorageError> {
        let (wal, recovery) = Wal::open(path)?;
        if recovery.torn_bytes > 0 {
            tracing::warn!(
                "{}: dropped a torn tail of {} bytes (a write the last run never acknowledged)",
                path.display(),
                recovery.torn_bytes
            );
        }
        let records = recovery
            .records
            .iter()
            .enumerate()
            .map(|(n, bytes)| {
                postcard::from_bytes(bytes).map_err(|e| StorageError::File {
                    path: path.to_path_buf(),
                    message: format!("record {n} does not decode: {e}"),
                })
            })
            .collect::<Result<Vec<R>, StorageError>>()?;
        let log = RecordLog {
            wal,
            records: PhantomData,
        };
        Ok((log, records))
    }

    /// Queues a record; nothing is durable until [`RecordLog::sync`].
    pub fn append(&mut self, record: &R) -> Result<(), StorageError> {
        self.wal.append(&encode(record))?;
        Ok(())
    }

    /// Makes every queued record durable.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.wal.sync()?;
        Ok(())
    }

    /// Atomically replaces the whole log with `records` (compaction), durably.
    pub fn rewrite<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a R>,
    ) -> Result<(), StorageError>
    where
        R: 'a,
    {
        let encoded: Vec<Vec<u8>> = records.into_iter().map(encode).collect();
        self.wal.rewrite(encoded.iter().map(Vec::as_slice))?;
        Ok(())
    }

    /// The log's size in bytes, for deciding when to compact it.
    pub fn len_bytes(&self) -> u64 {
        self.wal.len_bytes()
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        self.wal.path()
    }
}

/// Reads a snapshot kept in a file of its own (postcard-encoded); `None` when there is none.
pub fn read_snapshot<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StorageError> {
    match std::fs::read(path) {
        Ok(bytes) => postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| StorageError::File {
                path: path.to_path_buf(),
                message: format!("snapshot does not decode: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// Replaces the snapshot file at `path` with `snapshot`, atomically and durably.
pub fn write_snapshot<T: Serialize>(path: &Path, snapshot: &T) -> Result<(), StorageError> {
    crate::fsutil::write_atomic(path, &encode(snapshot)).map_err(|e| StorageError::File {
        path: path.to_path_buf(),
        message: format!("cannot write the snapshot: {e}"),
    })
}

fn encode<R: Serialize>(record: &R) -> Vec<u8> {
    // postcard fails only for types serde cannot describe (maps of unknown length and the
    // like), which a record type is not.
    postcard::to_allocvec(record).expect("records always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Rec {
        Promise { round: u64 },
        Accept { slot: u64, value: Vec<u8> },
    }

    #[test]
    fn records_round_trip_through_appends_and_rewrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("acceptor.wal");
        {
            let (mut log, old) = RecordLog::<Rec>::open(&path).expect("open");
            assert!(old.is_empty());
            log.append(&Rec::Promise { round: 3 }).expect("append");
            log.append(&Rec::Accept {
                slot: 1,
                value: b"x".to_vec(),
            })
            .expect("append");
            log.sync().expect("sync");
        }
        let (mut log, recs) = RecordLog::<Rec>::open(&path).expect("reopen");
        assert_eq!(
            recs,
            vec![
                Rec::Promise { round: 3 },
                Rec::Accept {
                    slot: 1,
                    value: b"x".to_vec()
                }
            ]
        );
        log.rewrite(&[Rec::Promise { round: 4 }]).expect("rewrite");
        drop(log);
        let (_, recs) = RecordLog::<Rec>::open(&path).expect("reopen");
        assert_eq!(recs, vec![Rec::Promise { round: 4 }]);
    }

    #[test]
    fn a_record_that_does_not_decode_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        {
            let (mut wal, _) = Wal::open(&path).expect("open");
            wal.append(&[0xff, 0xff, 0xff]).expect("append");
            wal.sync().expect("sync");
        }
        let err = RecordLog::<Rec>::open(&path).expect_err("garbage");
        let text = err.to_string();
        assert!(text.contains("record 0 does not decode"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
}
