//! The recorder: appends every event of a run to `history.jsonl` (shared/DESIGN.md section 2)
//! while the run goes on.
//!
//! Each event gets its `index` and its `time` under one lock, in the order it is queued, so
//! indexes are 0, 1, 2, … in file order and times never go backwards. A background thread writes
//! the queue through [`JsonlWriter`] into a buffer of whole lines that it flushes at least every
//! [`FLUSH_INTERVAL`], and on [`Recorder::close`]. A process killed mid-run leaves a prefix of
//! whole lines up to the last flush (at worst one torn last line, which the reader skips with a
//! warning); a process that closes the recorder, or drops its last handle, loses nothing.

use crate::client::Completion;
use crate::Op;
use history::jsonl::JsonlWriter;
use history::{Event, EventType, Process};
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest time an event waits in memory before it reaches the file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Events queued for the writer before recording blocks (back-pressure on a slow disk rather
/// than unbounded memory).
pub const QUEUE_EVENTS: usize = 1 << 16;

const WRITE_BUFFER_BYTES: usize = 1 << 16;

/// Client operations recorded so far, for a progress bar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

enum Msg {
    Event(Event),
    Close(tokio::sync::oneshot::Sender<io::Result<()>>),
}

struct Sequencer {
    next_index: u64,
    /// `None` once closed: later events are dropped (and counted).
    tx: Option<SyncSender<Msg>>,
}

struct Inner {
    start: Instant,
    seq: Mutex<Sequencer>,
    thread: Mutex<Option<JoinHandle<()>>>,
    invoked: AtomicU64,
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
    dropped: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone without close(): let the writer drain the queue and flush,
        // so that a normal exit loses nothing.
        if let Ok(seq) = self.seq.get_mut() {
            seq.tx = None;
        }
        if let Ok(slot) = self.thread.get_mut() {
            if let Some(t) = slot.take() {
                let _ = t.join();
            }
        }
    }
}

/// The optional fields of a client event (shared/DESIGN.md section 3).
#[derive(Default)]
struct Extra {
    local: bool,
    siblings: bool,
    context: Option<String>,
}

/// A cheaply cloneable, thread-safe handle on one `history.jsonl`.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates (truncating) `path` and starts the writer. Event times are nanoseconds since
    /// `start`.
    pub fn create(path: &Path, start: Instant) -> io::Result<Recorder> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_EVENTS);
        let thread = std::thread::Builder::new()
            .name("history-writer".to_owned())
            .spawn(move || writer(file, rx))?;
        Ok(Recorder {
            inner: Arc::new(Inner {
                start,
                seq: Mutex::new(Sequencer {
                    next_index: 0,
                    tx: Some(tx),
                }),
                thread: Mutex::new(Some(thread)),
                invoked: AtomicU64::new(0),
                ok: AtomicU64::new(0),
                fail: AtomicU64::new(0),
                info: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            }),
        })
    }

    /// Records that `process` invokes `op` on `node`.
    pub fn invoke(&self, process: u64, op: &Op, node: &str) {
        self.inner.invoked.fetch_add(1, Ordering::Relaxed);
        self.record(
            Process::Client(process),
            EventType::Invoke,
            op.f.clone(),
            op.key.clone(),
            op.value.clone(),
            Some(node.to_owned()),
            None,
            Extra {
                local: op.local,
                siblings: false,
                context: op.context.clone(),
            },
        );
    }

    /// Records how `process`'s `op` on `node` completed.
    pub fn complete(&self, process: u64, op: &Op, node: &str, c: &Completion) {
        let counter = match c.kind {
            EventType::Ok => &self.inner.ok,
            EventType::Fail => &self.inner.fail,
            // An `invoke` here would be a bug in the caller; it is recorded as given and the
            // history's validator names it.
            EventType::Info | EventType::Invoke => &self.inner.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.record(
            Process::Client(process),
            c.kind,
            op.f.clone(),
            op.key.clone(),
            c.value.clone(),
            Some(node.to_owned()),
            c.error.clone().map(Value::String),
            Extra {
                local: false,
                siblings: c.kind == EventType::Ok && c.siblings,
                context: c.context.clone().filter(|_| c.kind == EventType::Ok),
            },
        );
    }

    /// Records a nemesis event (normally `Info`: a fault's effect is never certain).
    pub fn nemesis(&self, kind: EventType, f: &str, value: Value) {
        self.record(
            Process::Nemesis,
            kind,
            f.to_owned(),
            None,
            value,
            None,
            None,
            Extra::default(),
        );
    }

    /// Client operations recorded so far.
    pub fn counts(&self) -> Counts {
        Counts {
            invoked: self.inner.invoked.load(Ordering::Relaxed),
            ok: self.inner.ok.load(Ordering::Relaxed),
            fail: self.inner.fail.load(Ordering::Relaxed),
            info: self.inner.info.load(Ordering::Relaxed),
        }
    }

    /// Events recorded after [`Recorder::close`], which are not in the file.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        process: Process,
        kind: EventType,
        f: String,
        key: Option<String>,
        value: Value,
        node: Option<String>,
        error: Option<Value>,
        extra: Extra,
    ) {
        let mut event = Event {
            index: 0,
            time: 0,
            process,
            kind,
            f,
            key,
            value,
            node,
            error,
            local: extra.local,
            siblings: extra.siblings,
            context: extra.context,
        };
        // A poisoned lock means a thread panicked while holding it; the sequencer's state is
        // two plain fields and stays consistent, so carry on.
        let mut seq = self.inner.seq.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = seq.tx.as_ref() else {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Index and time are taken under the lock that also orders the queue: file order,
        // index order and time order are one order.
        event.index = seq.next_index;
        event.time = u64::try_from(
            Instant::now()
                .saturating_duration_since(self.inner.start)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        if tx.send(Msg::Event(event)).is_ok() {
            seq.next_index += 1;
        } else {
            // The writer is gone (it only exits when told to): count the loss.
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Flushes every recorded event to the file, syncs it, and stops the writer. Reports the
    /// first write error of the whole run, if there was one. Events recorded afterwards are
    /// dropped (see [`Recorder::dropped`]); closing twice is harmless.
    pub async fn close(&self) -> io::Result<()> {
        let Some(done) = self.send_close() else {
            return Ok(());
        };
        let result = done.await.unwrap_or_else(|_| {
            Err(io::Error::other(
                "the history writer thread ended without answering",
            ))
        });
        self.join();
        result
    }

    /// [`Recorder::close`] for callers outside an async runtime.
    pub fn close_blocking(&self) -> io::Result<()> {
        let Some(done) = self.send_close() else {
            return Ok(());
        };
        let result = done.blocking_recv().unwrap_or_else(|_| {
            Err(io::Error::other(
                "the history writer thread ended without answering",
            ))
        });
        self.join();
        result
    }

    fn send_close(&self) -> Option<tokio::sync::oneshot::Receiver<io::Result<()>>> {
        let mut seq = self.inner.seq.lock().unwrap_or_else(|p| p.into_inner());
        let tx = seq.tx.take()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        // The queue is FIFO, so Close arrives after every event recorded before it.
        tx.send(Msg::Close(done_tx)).ok()?;
        Some(done_rx)
    }

    fn join(&self) {
        let handle = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = handle {
            // The thread has answered Close, so it is about to return: this does not block.
            let _ = t.join();
        }
    }
}

/// The writer thread: drains the queue into the file, flushing at least every FLUSH_INTERVAL.
/// After the first error it keeps draining (so recording never blocks) but writes nothing more,
/// and reports the error on Close.
fn writer(file: File, rx: Receiver<Msg>) {
    let mut out = JsonlWriter::new(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file));
    let mut error: Option<io::Error> = None;
    // When the oldest event not yet flushed was written; None when everything is flushed.
    let mut dirty_since: Option<Instant> = None;
    loop {
        let msg = match dirty_since {
            Some(t) => rx.recv_timeout(FLUSH_INTERVAL.saturating_sub(t.elapsed())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Event(ev)) => {
                if error.is_none() {
                    if let Err(e) = out.write(&ev) {
                        error = Some(e);
                    }
                }
                dirty_since.get_or_insert_with(Instant::now);
            }
            Ok(Msg::Close(done)) => {
                flush(&mut out, &mut error);
                if error.is_none() {
                    if let Err(e) = out.into_inner().get_ref().sync_data() {
                        error = Some(e);
                    }
                }
                let result = match error {
                    None => Ok(()),
                    Some(e) => Err(io::Error::new(
                        e.kind(),
                        format!("writing history.jsonl: {e}"),
                    )),
                };
                let _ = done.send(result);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                flush(&mut out, &mut error);
                if let Some(e) = error {
                    tracing::error!("writing history.jsonl: {e}");
                }
                return;
            }
        }
        if dirty_since.is_some_and(|t| t.elapsed() >= FLUSH_INTERVAL) {
            flush(&mut out, &mut error);
            dirty_since = None;
        }
    }
}

fn flush(out: &mut JsonlWriter<BufWriter<File>>, error: &mut Option<io::Error>) {
    if error.is_none() {
        if let Err(e) = out.flush() {
            *error = Some(e);
        }
    }
}
