//! fsync that fails or is slow.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{fsync_dir, mount, write_synced};

#[test]
fn fsync_error_answers_eio_and_makes_nothing_durable() {
    let Some(fx) = mount("fsync_error_answers_eio_and_makes_nothing_durable") else {
        return;
    };
    write_synced(&fx.m("f"), b"durable");
    fsync_dir(&fx.mnt);
    fx.control.set_fsync_error(true);
    let mut f = OpenOptions::new().append(true).open(fx.m("f")).unwrap();
    f.write_all(b" unsynced").unwrap();
    let e = f.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = f.sync_data().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    File::create(fx.m("new")).unwrap();
    let e = File::open(&fx.mnt).unwrap().sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "fsyncdir: {e}");
    drop(f);
    let loss = fx.control.lose_unsynced().unwrap();
    assert_eq!((loss.files, loss.dir_ops), (1, 1));
    assert_eq!(fx.read_both("f"), b"durable");
    fx.assert_gone("new");

    fx.control.set_fsync_error(false);
    let mut f = OpenOptions::new().append(true).open(fx.m("f")).unwrap();
    f.write_all(b" now synced").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("f"), b"durable now synced");
}

#[test]
fn fsync_delay_holds_each_fsync_at_least_min_ms() {
    let Some(fx) = mount("fsync_delay_holds_each_fsync_at_least_min_ms") else {
        return;
    };
    write_synced(&fx.m("f"), b"x");
    write_synced(&fx.m("other"), b"readable meanwhile");
    fx.control.set_fsync_delay(Some((300, 400)), 42);
    let f = OpenOptions::new().write(true).open(fx.m("f")).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let start = Instant::now();
            f.sync_data().unwrap();
            start.elapsed()
        });
        // While that fsync sleeps, another file is served: the read ends before the fsync.
        std::thread::sleep(Duration::from_millis(50));
        let mut got = String::new();
        File::open(fx.m("other"))
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "readable meanwhile");
        assert!(!t.is_finished(), "a read waited for the fsync");
        let took = t.join().unwrap();
        assert!(took >= Duration::from_millis(300), "fsync took {took:?}");
        assert!(took < Duration::from_millis(2000), "fsync took {took:?}");
    });
    let start = Instant::now();
    fsync_dir(&fx.mnt);
    assert!(start.elapsed() >= Duration::from_millis(300));
    fx.control.set_fsync_delay(None, 0);
    let start = Instant::now();
    f.sync_all().unwrap();
    assert!(start.elapsed() < Duration::from_millis(300));
}

#[test]
fn an_fsync_held_across_a_power_loss_fails_and_keeps_nothing() {
    let Some(fx) = mount("an_fsync_held_across_a_power_loss_fails_and_keeps_nothing") else {
        return;
    };
    write_synced(&fx.m("f"), b"durable");
    fsync_dir(&fx.mnt);
    fx.control.set_fsync_delay(Some((400, 400)), 1);
    let mut f = OpenOptions::new().append(true).open(fx.m("f")).unwrap();
    f.write_all(b" lost").unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| f.sync_data());
        std::thread::sleep(Duration::from_millis(100));
        fx.control.lose_unsynced().unwrap();
        let e = t.join().unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    });
    fx.control.set_fsync_delay(None, 0);
    assert_eq!(fx.read_both("f"), b"durable");
}
