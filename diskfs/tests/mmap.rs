//! etcd's bbolt reads its file through mmap: that must work, and see the durable state after a
//! power loss.

mod common;

use std::fs::{File, OpenOptions};

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use common::{child_says, fsync_dir, in_child, map_child, mount, runs, write_synced};

/// The first `len` bytes of a file as a fresh read-only shared mapping sees them.
fn mmap_read(f: &File, len: usize) -> Vec<u8> {
    // SAFETY: a read-only shared mapping of an open file, copied out and unmapped at once.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(
            p,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        let v = std::slice::from_raw_parts(p as *const u8, len).to_vec();
        libc::munmap(p, len);
        v
    }
}

const TEST: &str = "mmap_reads_see_writes_and_after_power_loss_the_durable_content";
const PAGE: usize = 4096;

/// The child's part (see `common::in_child`): the file's first two pages through a mapping,
/// after writing the second with pwrite first when asked.
fn child(what: &str, file: &std::path::Path) -> ! {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    if what == "pwrite-then-map" {
        // bbolt writes pages with pwrite and reads them through its mapping.
        assert_eq!(runs(&mmap_read(&f, 2 * PAGE)), "d*8192");
        f.write_at(&vec![b'u'; PAGE], PAGE as u64).unwrap();
    }
    child_says(&runs(&mmap_read(&f, 2 * PAGE)))
}

#[test]
fn mmap_reads_see_writes_and_after_power_loss_the_durable_content() {
    if let Some((what, file)) = map_child() {
        child(&what, &file);
    }
    let Some(fx) = mount(TEST) else {
        return;
    };
    write_synced(&fx.m("db"), &vec![b'd'; 2 * PAGE]);
    fsync_dir(&fx.mnt);
    assert_eq!(
        in_child(TEST, "pwrite-then-map", &fx.m("db")),
        "d*4096,u*4096"
    );
    fx.control.lose_unsynced().unwrap();
    assert_eq!(in_child(TEST, "map", &fx.m("db")), "d*8192");
    assert_eq!(std::fs::read(fx.m("db")).unwrap(), vec![b'd'; 2 * PAGE]);
}
