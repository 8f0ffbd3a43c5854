//! A replica's durable state: every object it holds and every hint it owes, in a
//! write-ahead log (the shared `RecordLog`) of each changed object's new state. Objects travel
//! and change whole (a set of a thousand elements is written again for each add), so the log
//! is rewritten from the in-memory image once it holds [`COMPACT_FACTOR`] times what the
//! image does (and at least [`COMPACT_MIN_BYTES`]): a restart then replays a few copies of the
//! state, not the whole run. [`MemStorage`] keeps the same image for the simulation,
//! where a crash keeps exactly what was persisted.

use std::path::Path;

use node::storage::{DiskImage, RecordLog};
use serde::{Deserialize, Serialize};

use crate::core::{HintChange, Persist, Persisted};
use crate::object::Object;

pub use node::storage::{Storage, StorageError};

/// The log is compacted when it holds this many times the image's bytes...
pub const COMPACT_FACTOR: u64 = 2;
/// ...and at least this much.
pub const COMPACT_MIN_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, Default)]
pub struct Image {
    state: Persisted,
    /// Roughly the bytes the image takes in the log (objects only).
    bytes: u64,
}

fn object_bytes(k: &str, o: &Object) -> u64 {
    (k.len() + postcard::experimental::serialized_size(o).unwrap_or(0)) as u64
}

impl DiskImage for Image {
    type Persist = Persist;
    type State = Persisted;

    fn apply(&mut self, p: &Persist) {
        for (k, o) in &p.objects {
            let new = object_bytes(k, o);
            let old = self
                .state
                .objects
                .insert(k.clone(), o.clone())
                .map_or(0, |o| object_bytes(k, &o));
            self.bytes = (self.bytes + new).saturating_sub(old);
        }
        for h in &p.hints {
            match h {
                HintChange::Add(o, k) => {
                    self.state.hints.insert((*o, k.clone()));
                }
                HintChange::Done(o, k) => {
                    self.state.hints.remove(&(*o, k.clone()));
                }
            }
        }
        if let Some(i) = p.boot {
            self.state.incarnation = i;
        }
    }

    fn state(&self) -> Persisted {
        self.state.clone()
    }
}

/// The simulation's disk: survives a simulated crash, loses nothing persisted.
pub type MemStorage = node::storage::MemStorage<Image>;

/// One record of `dynamo.wal`.
#[derive(Serialize, Deserialize)]
enum Record {
    Object(String, Object),
    Hint(HintChange),
    Boot(u64),
}

/// `DIR/dynamo.wal`.
pub struct FileStorage {
    wal: RecordLog<Record>,
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
        let (wal, records) = RecordLog::<Record>::open(&dir.join("dynamo.wal"))?;
        let mut image = Image::default();
        for r in records {
            let p = match r {
                Record::Object(k, o) => Persist {
                    objects: vec![(k, o)],
                    ..Persist::default()
                },
                Record::Hint(h) => Persist {
                    hints: vec![h],
                    ..Persist::default()
                },
                Record::Boot(i) => Persist {
                    boot: Some(i),
                    ..Persist::default()
                },
            };
            image.apply(&p);
        }
        Ok(FileStorage { wal, image })
    }

    fn compact(&mut self) -> Result<(), StorageError> {
        let s = &self.image.state;
        let records: Vec<Record> = std::iter::once(Record::Boot(s.incarnation))
            .chain(
                s.objects
                    .iter()
                    .map(|(k, o)| Record::Object(k.clone(), o.clone())),
            )
            .chain(
                s.hints
                    .iter()
                    .map(|(o, k)| Record::Hint(HintChange::Add(*o, k.clone()))),
            )
            .collect();
        self.wal.rewrite(records.iter())
    }
}

impl Storage for FileStorage {
    type Persist = Persist;
    type State = Persisted;

    fn persist(&mut self, p: &Persist) -> Result<(), StorageError> {
        if p.is_empty() {
            return Ok(());
        }
        if let Some(i) = p.boot {
            self.wal.append(&Record::Boot(i))?;
        }
        for (k, o) in &p.objects {
            self.wal.append(&Record::Object(k.clone(), o.clone()))?;
        }
        for h in &p.hints {
            self.wal.append(&Record::Hint(h.clone()))?;
        }
        self.wal.sync()?;
        self.image.apply(p);
        if self.wal.len_bytes() > (COMPACT_FACTOR * self.image.bytes).max(COMPACT_MIN_BYTES) {
            self.compact()?;
        }
        Ok(())
    }

    fn load(&self) -> Persisted {
        self.image.state.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::PnCounter;

    #[test]
    fn objects_hints_and_incarnations_survive_a_reopen_and_a_compaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = PnCounter::default();
        c.incr(1, 4);
        {
            let mut s = FileStorage::open(dir.path()).expect("open");
            s.persist(&Persist {
                objects: vec![("c".into(), Object::Counter(c.clone()))],
                hints: vec![
                    HintChange::Add(2, "c".into()),
                    HintChange::Add(3, "c".into()),
                ],
                boot: Some(1),
            })
            .expect("persist");
            s.persist(&Persist {
                hints: vec![HintChange::Done(2, "c".into())],
                ..Persist::default()
            })
            .expect("persist");
        }
        let mut s = FileStorage::open(dir.path()).expect("reopen");
        let st = s.load();
        assert_eq!(st.incarnation, 1);
        assert_eq!(st.objects.get("c"), Some(&Object::Counter(c.clone())));
        assert_eq!(
            st.hints.iter().cloned().collect::<Vec<_>>(),
            vec![(3, "c".to_string())]
        );
        s.compact().expect("compact");
        drop(s);
        let st2 = FileStorage::open(dir.path()).expect("reopen").load();
        assert_eq!(st2.objects, st.objects);
        assert_eq!(st2.hints, st.hints);
        assert_eq!(st2.incarnation, 1);
    }
}
