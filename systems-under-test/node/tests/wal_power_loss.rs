//! The write-ahead log through the harness's disk-fault filesystem (diskfs): records synced
//! before a power loss all come back, records written but not synced come back only whole
//! and in order (or not at all), and a torn last write is cut off, over and over on one log.

use std::fs::{self, OpenOptions};
use std::io::Write;

use history::rng::SplitMix64;
use node::wal::Wal;

/// The bytes a log holding exactly `records` has (frames only: a log has no file header).
fn frames(records: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames");
    let (mut wal, _) = Wal::open(&path).unwrap();
    for r in records {
        wal.append(r).unwrap();
    }
    wal.sync().unwrap();
    fs::read(&path).unwrap()
}

fn records(rng: &mut SplitMix64, n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let len = 1 + rng.below(20_000) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        })
        .collect()
}

#[test]
fn synced_records_survive_power_losses_and_torn_tails_are_cut() {
    if let Err(why) = diskfs::available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "FUSE in CI: {why}"
        );
        eprintln!("note: FUSE not available here ({why}); skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("disk"), dir.path().join("mnt"));
    fs::create_dir_all(&backing).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    let mount = diskfs::Mount::new(&backing, &mnt).unwrap();
    let disk = mount.control();
    let path = mnt.join("raft.wal");
    let mut rng = SplitMix64(7);
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let mut torn_seen = 0;
    for round in 0..24u64 {
        let (mut wal, recovery) = Wal::open(&path).unwrap();
        assert!(
            recovery.records.len() >= acked.len() && recovery.records[..acked.len()] == acked[..],
            "round {round}: an acknowledged record is missing or changed"
        );
        // What came back beyond the acknowledged records was written whole before the loss;
        // it is part of the log from now on.
        acked = recovery.records;
        if recovery.torn_bytes > 0 {
            torn_seen += 1;
        }
        let n = 1 + rng.below(4);
        let batch = records(&mut rng, n);
        for r in &batch {
            wal.append(r).unwrap();
        }
        wal.sync().unwrap();
        acked.extend(batch);
        // Then records written after the last sync: on their way to disk when power goes.
        let n = 1 + rng.below(3);
        let unsynced = records(&mut rng, n);
        drop(wal);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&frames(&unsynced)).unwrap();
        drop(f);
        let lost = if round % 2 == 0 {
            disk.lose_unsynced().unwrap()
        } else {
            disk.tear(round).unwrap()
        };
        assert!(
            lost.bytes > 0,
            "round {round}: nothing was unsynced: {lost:?}"
        );
        let size = fs::metadata(&path).unwrap().len();
        let (_, recovery) = Wal::open(&path).unwrap_or_else(|e| {
            panic!("round {round}: after {lost:?} the log ({size} bytes) does not open: {e}")
        });
        if recovery.torn_bytes > 0 {
            torn_seen += 1;
        }
        if round % 2 == 0 {
            assert_eq!(
                recovery.records, acked,
                "round {round}: a power loss kept unsynced records"
            );
        }
        assert!(
            recovery.records.len() >= acked.len() && recovery.records[..acked.len()] == acked[..],
            "round {round}: an acknowledged record is missing or changed after the loss"
        );
        acked = recovery.records;
    }
    assert!(torn_seen > 0, "no torn write was cut off in 12 tears");
    drop(mount);
}
