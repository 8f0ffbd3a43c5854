//! A write-ahead log: an append-only file of records, each
//! `[u32 LE payload length][u32 LE crc32 of payload][payload]`.
//!
//! The contract with the caller: a record is durable once [`Wal::sync`] has returned `Ok`, and
//! only then may anything depending on it be acknowledged. Recovery ([`Wal::open`]) returns
//! every record that was synced, in order.
//!
//! A crash can leave the end of the file half written: a partial header, a payload shorter than
//! its declared length, a payload whose CRC does not match, or zeros where the file system
//! extended the file but never wrote the data. Such a torn tail held only unsynced records, so
//! recovery cuts it off. Damage anywhere else means data that may have been acknowledged is
//! gone, and recovery refuses with [`WalError::Corrupt`] rather than silently dropping it.
//!
//! Known limit of the format: the CRC covers the payload, not the length, so a corrupted length
//! field that makes the last-but-N record run past the end of the file looks exactly like a
//! torn write and is treated as one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::fsutil::{parent_dir, sync_dir, tmp_path};

/// The largest payload a record may carry: 64 MiB. A larger declared length is damage.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Bytes of header before each payload: length and CRC.
pub const HEADER_BYTES: usize = 8;

/// Appends buffered beyond this are written to the file (not synced) so that a caller that
/// rarely syncs does not grow the buffer without bound.
const MAX_BUFFERED_BYTES: usize = 8 << 20;

/// What went wrong with a log; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A system call failed.
    #[error("wal {}: {action}: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// What was being done, e.g. "fdatasync".
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A damaged record that is not a torn tail: records after it may have been acknowledged.
    #[error("wal {}: corrupt record at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the damaged record's header starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A payload larger than [`MAX_RECORD_BYTES`] was appended.
    #[error("wal {}: a record of {len} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes", path.display())]
    TooLarge {
        /// The log file.
        path: PathBuf,
        /// The payload's length.
        len: usize,
    },
    /// An empty payload was appended. They are refused so that a zero-filled tail, which some
    /// file systems leave after a crash, can never read as a run of valid empty records.
    #[error("wal {}: empty records are not allowed", path.display())]
    EmptyRecord {
        /// The log file.
        path: PathBuf,
    },
    /// An earlier write or sync failed. After a failed fsync the kernel may have dropped the
    /// dirty pages, so what is on disk is unknown: reopen the log to find out.
    #[error("wal {}: an earlier write or sync failed, so what is durable is unknown; reopen the log", path.display())]
    Failed {
        /// The log file.
        path: PathBuf,
    },
}

/// The planted `no-fsync` bug of the bundled nodes: [`Wal::sync`] writes but skips the
/// fdatasync, so what it acknowledges survives a process crash and not a power loss.
static SKIP_FDATASYNC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Switches the planted `no-fsync` bug on for every log of this process.
pub fn skip_fdatasync_for_bug() {
    SKIP_FDATASYNC.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What [`Wal::open`] found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Every intact record, in the order they were appended.
    pub records: Vec<Vec<u8>>,
    /// How many bytes of torn tail were cut off (0 after a clean shutdown).
    pub torn_bytes: u64,
}

/// An open write-ahead log. See the module documentation for the durability contract.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    /// Encoded records appended but not yet written to the file.
    buf: Vec<u8>,
    /// Bytes written to the file so far (synced or not).
    written_len: u64,
    /// Whether bytes were written since the last fdatasync.
    unsynced: bool,
    /// Set once a write or sync fails; see [`WalError::Failed`].
    failed: bool,
}

impl Wal {
    /// Opens the log at `path`, creating it (and its directory) if missing, and recovers its
    /// records. A torn tail is cut off and the truncation fsynced; damage before the tail is
    /// [`WalError::Corrupt`].
    pub fn open(path: &Path) -> Result<(Wal, Recovery), WalError> {
        let err = |action| {
            let path = path.to_path_buf();
            move |source| WalError::Io {
                path,
                action,
                source,
            }
        };
        let dir = parent_dir(path);
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(err("create directory"))?;
            // Make the new directory's own entry durable (one level: the data dir's parent).
            sync_dir(&parent_dir(&dir)).map_err(err("fsync parent directory"))?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err("open"))?;
        if !existed {
            // The new directory entry must be durable too, or a crash could lose the whole log.
            sync_dir(&dir).map_err(err("fsync directory"))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(err("read"))?;

        let scan = scan(&bytes).map_err(|damage| WalError::Corrupt {
            path: path.to_path_buf(),
            offset: damage.offset as u64,
            reason: damage.reason,
        })?;
        let good_end = scan.good_end as u64;
        let torn_bytes = bytes.len() as u64 - good_end;
        if torn_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                torn_bytes,
                offset = good_end,
                reason = scan.torn_reason.as_deref().unwrap_or(""),
                "wal: cutting off torn tail"
            );
            file.set_len(good_end).map_err(err("truncate torn tail"))?;
            file.sync_all().map_err(err("fsync after truncation"))?;
        }
        file.seek(SeekFrom::Start(good_end)).map_err(err("seek"))?;
        let records = scan
            .records
            .into_iter()
            .map(|(start, end)| bytes[start..end].to_vec())
            .collect();
        let wal = Wal {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
            written_len: good_end,
            unsynced: false,
            failed: false,
        };
        Ok((
            wal,
            Recovery {
                records,
                torn_bytes,
            },
        ))
    }

    /// Queues a record. Cheap: nothing is durable, or even necessarily written, until
    /// [`Wal::sync`]. Refuses empty and oversized payloads.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), WalError> {
        self.check_usable()?;
        self.check_payload(payload)?;
        encode_into(&mut self.buf, payload);
        if self.buf.len() >= MAX_BUFFERED_BYTES {
            self.write_buffer()?;
        }
        Ok(())
    }

    /// Writes every queued record and fdatasyncs. When this returns `Ok`, every record appended
    /// so far survives a crash; acknowledge nothing before that.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        self.write_buffer()?;
        if self.unsynced && SKIP_FDATASYNC.load(std::sync::atomic::Ordering::Relaxed) {
            // The planted `no-fsync` bug: written, so it survives a kill -9 (the page cache
            // keeps it), but not on disk, so a power loss takes it.
            self.unsynced = false;
        }
        if self.unsynced {
            if let Err(source) = self.file.sync_data() {
                self.failed = true;
                return Err(self.io_error("fdatasync", source));
            }
            self.unsynced = false;
        }
        Ok(())
    }

    /// Atomically replaces the whole log with `records` (for compaction): writes a temporary
    /// file in the same directory, fsyncs it, renames it over the log and fsyncs the directory.
    /// A crash at any point leaves either the old log or the new one. Records appended but not
    /// yet synced are discarded: `records` is the entire new content.
    pub fn rewrite<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), WalError> {
        let records: Vec<&[u8]> = records.into_iter().collect();
        for r in &records {
            self.check_payload(r)?;
        }
        let tmp = tmp_path(&self.path).map_err(|e| self.io_error("name temporary file", e))?;
        // Until the rename, the old log is untouched, so a failure here leaves this Wal usable.
        let new_file = match write_log_file(&tmp, &records) {
            Ok(f) => f,
            Err((action, source)) => {
                // Best effort: a leftover temporary file is harmless, it is overwritten next time.
                let _ = fs::remove_file(&tmp);
                return Err(self.io_error(action, source));
            }
        };
        let new_len = records
            .iter()
            .map(|r| (HEADER_BYTES + r.len()) as u64)
            .sum();
        if let Err(source) = fs::rename(&tmp, &self.path) {
            let _ = fs::remove_file(&tmp);
            return Err(self.io_error("rename temporary file over the log", source));
        }
        // The rename happened; from here on, the handle to use is the new file's.
        self.file = new_file;
        self.buf.clear();
        self.written_len = new_len;
        self.unsynced = false;
        if let Err(source) = sync_dir(&parent_dir(&self.path)) {
            self.failed = true;
            return Err(self.io_error("fsync directory after rename", source));
        }
        self.failed = false;
        Ok(())
    }

    /// The size the log has once queued records are written: bytes in the file plus bytes
    /// queued by [`Wal::append`].
    pub fn len_bytes(&self) -> u64 {
        self.written_len + self.buf.len() as u64
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    fn check_payload(&self, payload: &[u8]) -> Result<(), WalError> {
        if payload.is_empty() {
            return Err(WalError::EmptyRecord {
                path: self.path.clone(),
            });
        }
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::TooLarge {
                path: self.path.clone(),
                len: payload.len(),
            });
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(source) = self.file.write_all(&self.buf) {
            // Part of the buffer may be in the file: the position no longer matches our count.
            self.failed = true;
            return Err(self.io_error("write", source));
        }
        self.written_len += self.buf.len() as u64;
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    fn io_error(&self, action: &'static str, source: io::Error) -> WalError {
        WalError::Io {
            path: self.path.clone(),
            action,
            source,
        }
    }
}

/// Writes a complete log to `path` and fsyncs it, returning the handle positioned at its end.
fn write_log_file(path: &Path, records: &[&[u8]]) -> Result<File, (&'static str, io::Error)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| ("create temporary file", e))?;
    let mut out = BufWriter::new(file);
    let mut header = Vec::with_capacity(HEADER_BYTES);
    for r in records {
        header.clear();
        encode_header(&mut header, r);
        out.write_all(&header)
            .and_then(|()| out.write_all(r))
            .map_err(|e| ("write temporary file", e))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| ("write temporary file", e.into_error()))?;
    file.sync_all().map_err(|e| ("fsync temporary file", e))?;
    Ok(file)
}

fn encode_header(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length was checked against 64 MiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
}

/// Appends one encoded record (header and payload) to `out`.
fn encode_into(out: &mut Vec<u8>, payload: &[u8]) {
    encode_header(out, payload);
    out.extend_from_slice(payload);
}

/// The result of reading a log image: where its intact records are, and where they end.
#[derive(Debug, PartialEq)]
struct Scan {
    /// `(start, end)` byte ranges of the payloads.
    records: Vec<(usize, usize)>,
    /// The end of the last intact record; everything after it is a torn tail.
    good_end: usize,
    /// Why the tail was judged torn, if there is one.
    torn_reason: Option<String>,
}

/// Damage that is not a torn tail.
#[derive(Debug, PartialEq)]
struct Damage {
    offset: usize,
    reason: String,
}

/// Reads records from a log image. An invalid record is a torn tail when nothing follows it
/// (it reaches or runs past the end of the file) or when everything from it to the end is zero;
/// otherwise it is damage in the middle.
fn scan(bytes: &[u8]) -> Result<Scan, Damage> {
    let mut records = Vec::new();
    let mut pos = 0;
    let torn = |records, pos, reason: String| {
        Ok(Scan {
            records,
            good_end: pos,
            torn_reason: Some(reason),
        })
    };
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < HEADER_BYTES {
            return torn(
                records,
                pos,
                format!("incomplete header of {} bytes", rest.len()),
            );
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let stored_crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let record_end = pos.saturating_add(HEADER_BYTES).saturating_add(len);

        let problem = if len == 0 {
            Some("zero length".to_string())
        } else if len > MAX_RECORD_BYTES {
            Some(format!(
                "declared length {len} exceeds the limit of {MAX_RECORD_BYTES}"
            ))
        } else if record_end > bytes.len() {
            Some(format!(
                "declared length {len} runs {} bytes past the end of the file",
                record_end - bytes.len()
            ))
        } else {
            let computed = crc32fast::hash(&rest[HEADER_BYTES..HEADER_BYTES + len]);
            (computed != stored_crc).then(|| {
                format!("crc mismatch (stored {stored_crc:#010x}, computed {computed:#010x})")
            })
        };
        match problem {
            None => {
                records.push((pos + HEADER_BYTES, record_end));
                pos = record_end;
            }
            Some(reason) if record_end >= bytes.len() => return torn(records, pos, reason),
            Some(reason) if rest.iter().all(|b| *b == 0) => {
                return torn(
                    records,
                    pos,
                    format!("{reason}; zeros to the end of the file"),
                )
            }
            Some(reason) => {
                return Err(Damage {
                    offset: pos,
                    reason: format!(
                        "{reason}, and {} more bytes follow it",
                        bytes.len() - record_end
                    ),
                })
            }
        }
    }
    Ok(Scan {
        records,
        good_end: pos,
        torn_reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_into(&mut out, p);
        }
        out
    }

    fn payloads(bytes: &[u8], scan: &Scan) -> Vec<Vec<u8>> {
        scan.records
            .iter()
            .map(|(s, e)| bytes[*s..*e].to_vec())
            .collect()
    }

    #[test]
    fn scan_reads_intact_images() {
        let bytes = image(&[b"a", b"bc", &[7; 300]]);
        let s = scan(&bytes).expect("intact");
        assert_eq!(s.good_end, bytes.len());
        assert_eq!(s.torn_reason, None);
        assert_eq!(
            payloads(&bytes, &s),
            vec![b"a".to_vec(), b"bc".to_vec(), vec![7; 300]]
        );
        assert_eq!(scan(&[]).expect("empty").records, vec![]);
    }

    #[test]
    fn scan_treats_zeroed_tail_as_torn() {
        let mut bytes = image(&[b"a"]);
        let good = bytes.len();
        bytes.extend_from_slice(&[0; 4096]);
        let s = scan(&bytes).expect("zeroed tail is torn");
        assert_eq!(s.good_end, good);
        assert!(s.torn_reason.expect("torn").contains("zeros"));
    }

    #[test]
    fn scan_rejects_zero_length_record_followed_by_data() {
        let mut bytes = image(&[b"a"]);
        let at = bytes.len();
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&image(&[b"b"]));
        let d = scan(&bytes).expect_err("damage in the middle");
        assert_eq!(d.offset, at);
        assert!(d.reason.starts_with("zero length"), "{}", d.reason);
    }

    #[test]
    fn scan_treats_oversized_length_at_tail_as_torn() {
        let mut bytes = image(&[b"a"]);
        let good = bytes.len();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let s = scan(&bytes).expect("runs past the end: torn");
        assert_eq!(s.good_end, good);
        assert!(s.torn_reason.expect("torn").contains("exceeds the limit"));
    }

    #[test]
    fn append_refuses_empty_and_oversized_payloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(&dir.path().join("log")).expect("open");
        let err = wal.append(b"").expect_err("empty");
        assert!(matches!(err, WalError::EmptyRecord { .. }), "{err}");
        let err = wal
            .append(&vec![0; MAX_RECORD_BYTES + 1])
            .expect_err("too large");
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        assert_eq!(wal.len_bytes(), 0);
    }

    #[test]
    fn round_trip_and_len_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join("log");
        let (mut wal, rec) = Wal::open(&path).expect("open creates");
        assert_eq!(
            rec,
            Recovery {
                records: vec![],
                torn_bytes: 0
            }
        );
        assert_eq!(wal.path(), path);
        wal.append(b"one").expect("append");
        wal.append(b"two!").expect("append");
        assert_eq!(wal.len_bytes(), (8 + 3 + 8 + 4) as u64);
        wal.sync().expect("sync");
        wal.sync()
            .expect("a second sync with nothing queued is fine");
        drop(wal);
        let (mut wal, rec) = Wal::open(&path).expect("reopen");
        assert_eq!(rec.records, vec![b"one".to_vec(), b"two!".to_vec()]);
        assert_eq!(rec.torn_bytes, 0);
        assert_eq!(wal.len_bytes(), 23);
        wal.append(b"three").expect("append");
        wal.sync().expect("sync");
        let (_, rec) = Wal::open(&path).expect("reopen");
        assert_eq!(rec.records.len(), 3);
        assert_eq!(rec.records[2], b"three");
    }

    #[test]
    fn unsynced_appends_are_not_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let (mut wal, _) = Wal::open(&path).expect("open");
        wal.append(b"kept").expect("append");
        wal.sync().expect("sync");
        wal.append(b"queued only").expect("append");
        drop(wal);
        let (_, rec) = Wal::open(&path).expect("reopen");
        assert_eq!(rec.records, vec![b"kept".to_vec()]);
    }

    #[test]
    fn rewrite_replaces_everything_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let (mut wal, _) = Wal::open(&path).expect("open");
        for r in [&b"a"[..], b"b", b"c"] {
            wal.append(r).expect("append");
        }
        wal.sync().expect("sync");
        wal.append(b"unsynced, discarded by rewrite")
            .expect("append");
        let compacted: Vec<Vec<u8>> = vec![b"snapshot-ish".to_vec(), b"c".to_vec()];
        wal.rewrite(compacted.iter().map(Vec::as_slice))
            .expect("rewrite");
        assert_eq!(wal.len_bytes(), (8 + 12 + 8 + 1) as u64);
        wal.append(b"d").expect("append after rewrite");
        wal.sync().expect("sync after rewrite");
        let (_, rec) = Wal::open(&path).expect("reopen");
        assert_eq!(
            rec.records,
            vec![b"snapshot-ish".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("log")],
            "no temporary file left"
        );

        let err = wal.rewrite([&b""[..]]).expect_err("empty record");
        assert!(matches!(err, WalError::EmptyRecord { .. }));
        wal.rewrite(std::iter::empty()).expect("rewrite to nothing");
        let (_, rec) = Wal::open(&path).expect("reopen");
        assert!(rec.records.is_empty());
    }

    #[test]
    fn large_buffers_are_written_before_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let (mut wal, _) = Wal::open(&path).expect("open");
        let chunk = vec![5u8; 1 << 20];
        for _ in 0..9 {
            wal.append(&chunk).expect("append");
        }
        let on_disk = fs::metadata(&path).expect("stat").len();
        assert!(
            on_disk >= MAX_BUFFERED_BYTES as u64,
            "buffer was bounded: {on_disk}"
        );
        wal.sync().expect("sync");
        assert_eq!(fs::metadata(&path).expect("stat").len(), wal.len_bytes());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Wal::open(dir.path()).expect_err("a directory is not a log");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("wal {}: ", dir.path().display())),
            "{text}"
        );
    }
}
