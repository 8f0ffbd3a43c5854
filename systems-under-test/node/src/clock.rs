//! A wall clock the harness can skew (DESIGN section 4, clock faults).
//!
//! The harness writes an offset in milliseconds to a file per node; the node adds it to the
//! system clock. Only wall-clock readings go through here (leases, timestamps): timeouts and
//! elapsed time use the monotonic clock, which the harness never skews, as on a real machine
//! where NTP steps the wall clock but not CLOCK_MONOTONIC.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often [`WallClock::spawn_watcher`] re-reads the offset file.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(10);

/// Distinct bad contents remembered for warn-once. Past this many, further distinct bad
/// contents still warn but are not remembered, so memory stays bounded.
const MAX_REMEMBERED_BAD_CONTENTS: usize = 64;

/// The system wall clock plus an offset read from a file. Cheap to clone: clones share state.
#[derive(Clone, Debug)]
pub struct WallClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    offset_file: Option<PathBuf>,
    offset_ms: AtomicI64,
    seen: Mutex<Seen>,
}

/// What the last read saw, so an unchanged file costs no parsing and a bad one warns once.
#[derive(Debug, Default)]
struct Seen {
    /// The file's content at the last read; the inner `None` is a missing file.
    last_content: Option<Option<String>>,
    bad_contents: HashSet<String>,
}

impl WallClock {
    /// A clock skewed by the offset in `offset_file` (none: the plain system clock). Reads the
    /// file once now; call [`WallClock::refresh`] or [`WallClock::spawn_watcher`] to follow it.
    pub fn new(offset_file: Option<PathBuf>) -> WallClock {
        let clock = WallClock {
            inner: Arc::new(Inner {
                offset_file,
                offset_ms: AtomicI64::new(0),
                seen: Mutex::new(Seen::default()),
            }),
        };
        clock.refresh();
        clock
    }

    /// Milliseconds since the Unix epoch, as this node believes: system time plus the offset.
    pub fn now_ms(&self) -> i64 {
        let system_ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            // A system clock set before 1970 is legal, if odd.
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        system_ms.saturating_add(self.offset_ms())
    }

    /// The current offset in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.inner.offset_ms.load(Ordering::Relaxed)
    }

    /// Re-reads the offset file now. A missing file means offset 0; content that does not parse
    /// keeps the previous offset and logs a warning once per distinct content.
    pub fn refresh(&self) {
        let Some(path) = &self.inner.offset_file else {
            return;
        };
        // A poisoned lock only means another refresh panicked mid-way; the data is still usable.
        // Reading under the lock keeps concurrent refreshes from applying an older read last.
        let mut seen = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let content = match std::fs::read(path) {
            // Lossy so that binary junk is reported as unparseable content, not as an I/O error.
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                // Transient (e.g. the harness is replacing the file): keep what we had.
                tracing::debug!(file = %path.display(), error = %e, "clock offset file unreadable");
                return;
            }
        };
        if seen.last_content.as_ref() == Some(&content) {
            return;
        }
        match content.as_deref().map_or(Ok(0), parse_offset_ms) {
            Ok(offset) => {
                let old = self.inner.offset_ms.swap(offset, Ordering::Relaxed);
                if old != offset {
                    tracing::info!(file = %path.display(), offset_ms = offset, previous_ms = old, "clock offset changed");
                }
            }
            Err(reason) => {
                let bad = content.clone().unwrap_or_default();
                if !seen.bad_contents.contains(&bad) {
                    tracing::warn!(
                        file = %path.display(),
                        content = %bad.escape_debug(),
                        kept_offset_ms = self.offset_ms(),
                        "clock offset file does not parse ({reason}); keeping the previous offset"
                    );
                    if seen.bad_contents.len() < MAX_REMEMBERED_BAD_CONTENTS {
                        seen.bad_contents.insert(bad);
                    }
                }
            }
        }
        seen.last_content = Some(content);
    }

    /// Spawns a task on the current tokio runtime that calls [`WallClock::refresh`] every
    /// [`WATCH_INTERVAL`] for as long as the runtime lives, so a skew the harness writes takes
    /// effect within milliseconds. Without an offset file the task ends at once.
    /// Panics if called outside a tokio runtime.
    pub fn spawn_watcher(&self) -> tokio::task::JoinHandle<()> {
        let clock = self.clone();
        tokio::spawn(async move {
            if clock.inner.offset_file.is_none() {
                return;
            }
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // A read of a few bytes from the page cache: cheaper than a spawn_blocking hop.
                clock.refresh();
            }
        })
    }
}

/// Parses "-120000\n", "+3600000", " 5 ": an integer number of milliseconds with an optional
/// sign and surrounding whitespace.
pub fn parse_offset_ms(content: &str) -> Result<i64, String> {
    let text = content.trim();
    if text.is_empty() {
        return Err("empty".to_string());
    }
    text.parse::<i64>()
        .map_err(|e| format!("expected an integer number of milliseconds: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_signed_integers_with_whitespace() {
        assert_eq!(parse_offset_ms("-120000\n"), Ok(-120000));
        assert_eq!(parse_offset_ms("+3600000"), Ok(3_600_000));
        assert_eq!(parse_offset_ms("  7 \t\n"), Ok(7));
        for bad in [
            "",
            " \n",
            "1.5",
            "12ms",
            "- 5",
            "+-1",
            "99999999999999999999",
        ] {
            assert!(parse_offset_ms(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn without_a_file_the_offset_is_zero() {
        let clock = WallClock::new(None);
        assert_eq!(clock.offset_ms(), 0);
        let system_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        assert!((clock.now_ms() - system_ms).abs() < 1_000);
    }

    #[test]
    fn follows_the_file_and_keeps_the_offset_on_bad_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clock-offset");
        let clock = WallClock::new(Some(path.clone()));
        assert_eq!(clock.offset_ms(), 0, "missing file: no skew");

        std::fs::write(&path, "-120000\n").expect("write");
        assert_eq!(clock.offset_ms(), 0, "read only on refresh");
        clock.refresh();
        assert_eq!(clock.offset_ms(), -120_000);
        let skewed = clock.now_ms();
        let system_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        assert!((system_ms - 120_000 - skewed).abs() < 1_000);

        std::fs::write(&path, "garbage").expect("write");
        clock.refresh();
        assert_eq!(
            clock.offset_ms(),
            -120_000,
            "bad content keeps the previous offset"
        );

        std::fs::write(&path, "+3600000").expect("write");
        clock.refresh();
        assert_eq!(clock.offset_ms(), 3_600_000);

        let clone = clock.clone();
        std::fs::remove_file(&path).expect("remove");
        clock.refresh();
        assert_eq!(
            clone.offset_ms(),
            0,
            "clones share the offset; a removed file means 0"
        );

        std::fs::write(&path, "42").expect("write");
        assert_eq!(
            WallClock::new(Some(path)).offset_ms(),
            42,
            "new() reads at once"
        );
    }

    #[tokio::test]
    async fn watcher_sees_changes_quickly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clock-offset");
        let clock = WallClock::new(Some(path.clone()));
        let watcher = clock.spawn_watcher();
        for want in [500, -500, 501] {
            std::fs::write(&path, want.to_string()).expect("write");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while clock.offset_ms() != want {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "watcher never saw {want}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        watcher.abort();

        let idle = WallClock::new(None).spawn_watcher();
        idle.await.expect("without a file the watcher ends at once");
    }
}
