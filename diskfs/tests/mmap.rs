//! etcd's bbolt reads its file through mmap: that must work, and see the durable state after a
//! power loss.

mod common;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use common::{fsync_dir, mount, write_synced};

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

#[test]
fn mmap_reads_see_writes_and_after_power_loss_the_durable_content() {
    let Some(fx) = mount("mmap_reads_see_writes_and_after_power_loss_the_durable_content") else {
        return;
    };
    let page = 4096;
    write_synced(&fx.m("db"), &vec![b'd'; 2 * page]);
    fsync_dir(&fx.mnt);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(fx.m("db"))
        .unwrap();
    assert_eq!(mmap_read(&f, 2 * page), vec![b'd'; 2 * page]);
    // bbolt writes pages with pwrite and reads them through its mapping.
    f.write_at(&vec![b'u'; page], page as u64).unwrap();
    let seen = mmap_read(&f, 2 * page);
    assert_eq!(&seen[page..], &vec![b'u'; page][..]);
    drop(f);
    fx.control.lose_unsynced().unwrap();
    let f = File::open(fx.m("db")).unwrap();
    assert_eq!(mmap_read(&f, 2 * page), vec![b'd'; 2 * page]);
}
