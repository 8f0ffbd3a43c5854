//! Crash tests for the write-ahead log: damaged files built by hand, and real crashes in the
//! style of sled's test suite, where this test binary re-runs itself as a child process that
//! appends until it is SIGKILLed, and the parent checks that every acknowledged record survived.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The workspace's one seeded generator, so that test data and kill timing replay exactly.
use history::rng::SplitMix64 as SplitMix;
use node::wal::{Wal, WalError, HEADER_BYTES};

/// Set in the child's environment to the log path; without it `child_writer` does nothing.
const CHILD_ENV: &str = "HARNESS_NODE_WAL_CRASH_CHILD";
/// Overrides the crash test's seed, to replay a failure.
const SEED_ENV: &str = "WAL_CRASH_SEED";
/// Crash iterations: enough to land kills mid-write many times, few enough to take seconds.
const CRASH_ITERATIONS: u64 = 30;
/// Largest group of records the child appends before one sync.
const MAX_BATCH: u64 = 3;
/// The child stops by itself after this many records, a bound in case the parent never kills.
const CHILD_MAX_RECORDS: u64 = 200_000;

/// Record `i`'s payload: a function of `i` alone, so the parent knows what the child wrote.
/// Sizes vary from 1 byte to ~200 KB; the large ones span many pages, so a kill can land in
/// the middle of their write() and tear the record (rarely: most of the child's time goes to
/// fdatasync; `every_cut_recovers_the_intact_prefix_and_stays_appendable` covers every tear).
fn payload(i: u64) -> Vec<u8> {
    let mut rng = SplitMix(i);
    let len = match i % 10 {
        0 => 1 + rng.below(200_000),
        1..=3 => 1 + rng.below(16_384),
        _ => 1 + rng.below(300),
    };
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn build_log(path: &Path, records: &[&[u8]]) -> Vec<u8> {
    let (mut wal, _) = Wal::open(path).expect("open fresh log");
    for r in records {
        wal.append(r).expect("append");
    }
    wal.sync().expect("sync");
    fs::read(path).expect("read log image")
}

/// Where each record of `records` ends in the file.
fn record_ends(records: &[&[u8]]) -> Vec<usize> {
    records
        .iter()
        .scan(0, |end, r| {
            *end += HEADER_BYTES + r.len();
            Some(*end)
        })
        .collect()
}

#[test]
fn record_format_is_length_crc_payload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = build_log(&dir.path().join("log"), &[b"hello"]);
    let mut want = Vec::new();
    want.extend_from_slice(&5u32.to_le_bytes());
    want.extend_from_slice(&crc32fast::hash(b"hello").to_le_bytes());
    want.extend_from_slice(b"hello");
    assert_eq!(bytes, want);
}

#[test]
fn every_cut_recovers_the_intact_prefix_and_stays_appendable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<&[u8]> = vec![b"first record", b"x", &[0xab; 40], &[0; 100]];
    let image = build_log(&dir.path().join("source"), &records);
    let ends = record_ends(&records);
    assert_eq!(*ends.last().expect("records"), image.len());

    let path = dir.path().join("cut");
    for cut in 0..=image.len() {
        fs::write(&path, &image[..cut]).expect("write cut image");
        let intact = ends.iter().filter(|end| **end <= cut).count();
        let good_end = if intact == 0 { 0 } else { ends[intact - 1] };

        let (mut wal, rec) = Wal::open(&path).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(rec.records, records[..intact], "cut at {cut}");
        assert_eq!(rec.torn_bytes, (cut - good_end) as u64, "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).expect("stat").len(),
            good_end as u64,
            "cut at {cut}"
        );
        assert_eq!(wal.len_bytes(), good_end as u64);

        wal.append(b"after recovery")
            .expect("append after recovery");
        wal.sync().expect("sync after recovery");
        drop(wal);
        let (_, rec) = Wal::open(&path).unwrap_or_else(|e| panic!("reopen after cut {cut}: {e}"));
        let mut want: Vec<&[u8]> = records[..intact].to_vec();
        want.push(b"after recovery");
        assert_eq!(rec.records, want, "reopen after cut at {cut}");
        assert_eq!(rec.torn_bytes, 0);
    }
}

#[test]
fn damaged_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<&[u8]> = vec![b"one", b"two", b"three"];
    let image = build_log(&dir.path().join("source"), &records);
    let last_start = record_ends(&records)[1];
    let path = dir.path().join("log");
    // Flip a bit of the stored CRC, then of the payload: both make the CRC disagree.
    for at in [last_start + 4, image.len() - 1] {
        let mut bytes = image.clone();
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).expect("write");
        let (_, rec) = Wal::open(&path).expect("a torn tail is not an error");
        assert_eq!(rec.records, records[..2], "flip at {at}");
        assert_eq!(rec.torn_bytes, (image.len() - last_start) as u64);
    }
}

#[test]
fn damaged_middle_record_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<&[u8]> = vec![b"one", b"two", b"three"];
    let image = build_log(&dir.path().join("source"), &records);
    let middle_start = record_ends(&records)[0];
    let path = dir.path().join("log");
    for at in [middle_start + 4, middle_start + HEADER_BYTES + 1] {
        let mut bytes = image.clone();
        bytes[at] ^= 0x80;
        fs::write(&path, &bytes).expect("write");
        let err = Wal::open(&path).expect_err("damage in the middle must not be dropped");
        match &err {
            WalError::Corrupt { offset, reason, .. } => {
                assert_eq!(*offset, middle_start as u64);
                assert!(reason.contains("crc mismatch"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
        let text = err.to_string();
        let want = format!(
            "wal {}: corrupt record at byte {middle_start}: crc mismatch",
            path.display()
        );
        assert!(text.starts_with(&want), "{text}");
        assert_eq!(
            fs::read(&path).expect("read"),
            bytes,
            "a corrupt log is left untouched"
        );
    }

    // A length shortened in the middle leaves bytes that belong to no record.
    let mut bytes = image.clone();
    bytes[middle_start] = 1;
    fs::write(&path, &bytes).expect("write");
    assert!(matches!(Wal::open(&path), Err(WalError::Corrupt { .. })));
}

#[test]
fn zeroed_tail_is_torn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records: Vec<&[u8]> = vec![b"one", b"two"];
    let mut image = build_log(&dir.path().join("source"), &records);
    let good = image.len();
    // What a file system can leave when it extended the file but never wrote the data.
    image.extend_from_slice(&[0; 5000]);
    let path = dir.path().join("log");
    fs::write(&path, &image).expect("write");
    let (_, rec) = Wal::open(&path).expect("zeros are a torn tail");
    assert_eq!(rec.records, records);
    assert_eq!(rec.torn_bytes, 5000);
    assert_eq!(fs::metadata(&path).expect("stat").len(), good as u64);
}

/// The child side of the crash test. Run as a normal test it returns at once; run by
/// `sigkill_loses_no_acknowledged_record` with CHILD_ENV set, it appends records in groups,
/// syncs, and only then prints `wal-ack=N` for each, until it is killed.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (mut wal, rec) = Wal::open(Path::new(&path)).expect("child: open");
    let mut next = rec.records.len() as u64;
    let stdout = std::io::stdout();
    while next < CHILD_MAX_RECORDS {
        let batch = 1 + next % MAX_BATCH;
        for i in next..next + batch {
            wal.append(&payload(i)).expect("child: append");
        }
        wal.sync().expect("child: sync");
        let mut out = stdout.lock();
        for i in next..next + batch {
            // The parent closing the pipe means it is done with us.
            if writeln!(out, "wal-ack={i}")
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
        }
        next += batch;
    }
}

#[test]
fn sigkill_loses_no_acknowledged_record() {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("wal crash test: seed {seed} (reproduce with {SEED_ENV}={seed})");
    let mut rng = SplitMix(seed);
    let exe = std::env::current_exe().expect("path of this test binary");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wal.log");
    let started = Instant::now();
    let mut highest_ack: Option<u64> = None;
    let mut torn_seen = 0;

    for iteration in 0..CRASH_ITERATIONS {
        let ctx = format!("seed {seed}, iteration {iteration}");
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut acks: Vec<u64> = Vec::new();
        let mut read_acks = |lines: &mut std::io::Lines<_>, until: Option<usize>| {
            while until.is_none_or(|n| acks.len() < n) {
                let Some(Ok(line)) = lines.next() else {
                    return false;
                };
                // libtest may print its own text on the same line, so look for the marker.
                let line: String = line;
                for token in line.split_whitespace() {
                    if let Some(n) = token.strip_prefix("wal-ack=") {
                        acks.push(n.parse().expect("child prints integers"));
                    }
                }
            }
            true
        };

        let wait_for = 1 + rng.below(40) as usize;
        let alive = read_acks(&mut lines, Some(wait_for));
        assert!(
            alive,
            "{ctx}: child exited before {wait_for} acks: {:?}",
            child.wait()
        );
        // Let it run on for a random while, so the kill lands anywhere in append/sync/print.
        // Half the kills come at once, while the child is most likely writing its next group.
        if rng.below(2) == 1 {
            std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        }
        child.kill().expect("SIGKILL child");
        read_acks(&mut lines, None);
        child.wait().expect("reap child");

        // The child numbers records from what it recovered, so acks continue our sequence.
        let first_expected = highest_ack.map_or(0, |h| h + 1);
        assert!(
            acks.first().is_none_or(|a| *a >= first_expected),
            "{ctx}: acks restart below {first_expected}: {acks:?}"
        );
        assert!(
            acks.windows(2).all(|w| w[1] == w[0] + 1),
            "{ctx}: acks not consecutive"
        );
        if let Some(last) = acks.last() {
            highest_ack = Some(*last);
        }

        let (_, rec) = Wal::open(&path).unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
        if rec.torn_bytes > 0 {
            torn_seen += 1;
        }
        let recovered = rec.records.len() as u64;
        if let Some(h) = highest_ack {
            assert!(
                recovered > h,
                "{ctx}: record {h} was acknowledged but only {recovered} records survived"
            );
            // At most the group in flight when the kill landed was durable without an ack.
            assert!(
                recovered <= h + 1 + MAX_BATCH,
                "{ctx}: {recovered} records recovered, more than were written after ack {h}"
            );
        }
        for (i, r) in rec.records.iter().enumerate() {
            assert!(
                *r == payload(i as u64),
                "{ctx}: record {i} ({} bytes) differs from what was written",
                r.len()
            );
        }
    }
    eprintln!(
        "wal crash test: {CRASH_ITERATIONS} kills, {} records acknowledged, {torn_seen} torn tails cut, {:?}",
        highest_ack.map_or(0, |h| h + 1),
        started.elapsed()
    );
}
