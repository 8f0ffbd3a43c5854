//! Power loss: what was fsynced survives, nothing else.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use common::{fsync_dir, mount, write_synced};

#[test]
fn unsynced_writes_are_lost_synced_ones_stay() {
    let Some(fx) = mount("unsynced_writes_are_lost_synced_ones_stay") else {
        return;
    };
    write_synced(&fx.m("f"), b"hello ");
    fsync_dir(&fx.mnt);
    let mut f = OpenOptions::new().append(true).open(fx.m("f")).unwrap();
    f.write_all(b"world").unwrap();
    f.sync_data().unwrap();
    f.write_all(b" and more").unwrap();
    drop(f);
    // (pwrite on an O_APPEND descriptor appends, on Linux: a second descriptor overwrites)
    OpenOptions::new()
        .write(true)
        .open(fx.m("f"))
        .unwrap()
        .write_at(b"J", 0)
        .unwrap();
    assert_eq!(fx.read_both("f"), b"Jello world and more");
    let p = fx.control.pending();
    assert_eq!((p.files, p.bytes, p.dir_ops), (1, 10, 0));
    let loss = fx.control.lose_unsynced().unwrap();
    assert_eq!(
        (loss.files, loss.bytes, loss.dir_ops, loss.torn),
        (1, 10, 0, 0)
    );
    assert_eq!(fx.read_both("f"), b"hello world");
    assert_eq!(fx.control.pending(), diskfs::Pending::default());
}

#[test]
fn truncate_and_extend_are_undone() {
    let Some(fx) = mount("truncate_and_extend_are_undone") else {
        return;
    };
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    write_synced(&fx.m("t"), &data);
    fsync_dir(&fx.mnt);
    let f = OpenOptions::new().write(true).open(fx.m("t")).unwrap();
    f.set_len(100).unwrap();
    f.write_at(b"xyz", 50).unwrap();
    f.set_len(9000).unwrap();
    f.write_at(b"tail", 8000).unwrap();
    drop(f);
    assert_eq!(fs::metadata(fx.m("t")).unwrap().len(), 9000);
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("t"), data);

    // A truncate through open(O_TRUNC) likewise.
    File::create(fx.m("t")).unwrap().write_all(b"new").unwrap();
    assert_eq!(fx.read_both("t"), b"new");
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("t"), data);
}

#[test]
fn a_new_file_needs_its_directory_fsynced() {
    let Some(fx) = mount("a_new_file_needs_its_directory_fsynced") else {
        return;
    };
    write_synced(&fx.m("nodir"), b"data");
    let loss = fx.control.lose_unsynced().unwrap();
    assert_eq!(loss.dir_ops, 1);
    fx.assert_gone("nodir");

    write_synced(&fx.m("withdir"), b"data");
    fsync_dir(&fx.mnt);
    let mut f = OpenOptions::new()
        .append(true)
        .open(fx.m("withdir"))
        .unwrap();
    f.write_all(b" unsynced").unwrap();
    drop(f);
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("withdir"), b"data");
    assert_eq!(fx.names("."), vec!["withdir"]);
}

#[test]
fn rename_is_undone_without_a_directory_fsync() {
    let Some(fx) = mount("rename_is_undone_without_a_directory_fsync") else {
        return;
    };
    write_synced(&fx.m("a"), b"new content");
    write_synced(&fx.m("b"), b"old content");
    fsync_dir(&fx.mnt);
    fs::rename(fx.m("a"), fx.m("b")).unwrap();
    assert_eq!(fx.read_both("b"), b"new content");
    assert_eq!(fx.names("."), vec!["b"]);
    let loss = fx.control.lose_unsynced().unwrap();
    assert_eq!(loss.dir_ops, 1);
    assert_eq!(fx.read_both("a"), b"new content");
    assert_eq!(fx.read_both("b"), b"old content");

    fs::rename(fx.m("a"), fx.m("b")).unwrap();
    fsync_dir(&fx.mnt);
    assert_eq!(fx.control.lose_unsynced().unwrap().dir_ops, 0);
    fx.assert_gone("a");
    assert_eq!(fx.read_both("b"), b"new content");
    assert_eq!(fx.names("."), vec!["b"]);
}

#[test]
fn rename_across_directories_needs_both_fsynced() {
    let Some(fx) = mount("rename_across_directories_needs_both_fsynced") else {
        return;
    };
    fs::create_dir(fx.m("d1")).unwrap();
    fs::create_dir(fx.m("d2")).unwrap();
    fsync_dir(&fx.mnt);
    write_synced(&fx.m("d1/f"), b"f");
    fsync_dir(&fx.m("d1"));
    fs::rename(fx.m("d1/f"), fx.m("d2/g")).unwrap();
    fsync_dir(&fx.m("d2"));
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("d1/f"), b"f");
    fx.assert_gone("d2/g");
    fs::rename(fx.m("d1/f"), fx.m("d2/g")).unwrap();
    fsync_dir(&fx.m("d2"));
    fsync_dir(&fx.m("d1"));
    fx.control.lose_unsynced().unwrap();
    fx.assert_gone("d1/f");
    assert_eq!(fx.read_both("d2/g"), b"f");
}

#[test]
fn undoing_a_rename_never_overwrites_a_name_made_durable_since() {
    let Some(fx) = mount("undoing_a_rename_never_overwrites_a_name_made_durable_since") else {
        return;
    };
    fs::create_dir(fx.m("d1")).unwrap();
    fs::create_dir(fx.m("d2")).unwrap();
    fsync_dir(&fx.mnt);
    write_synced(&fx.m("d1/a"), b"old a");
    fsync_dir(&fx.m("d1"));
    // a moves to d2 (pending in d1 and d2); a new a is made in d1, synced, and d1 fsynced:
    // the new a is durable, whatever becomes of the rename.
    fs::rename(fx.m("d1/a"), fx.m("d2/b")).unwrap();
    write_synced(&fx.m("d1/a"), b"new a");
    fsync_dir(&fx.m("d1"));
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("d1/a"), b"new a");
    // The moved file is not lost either: it stays where the rename put it.
    assert_eq!(fx.read_both("d2/b"), b"old a");
    assert_eq!(fx.control.pending(), diskfs::Pending::default());
}

#[test]
fn an_open_file_unlinked_for_good_can_still_be_fstatted() {
    let Some(fx) = mount("an_open_file_unlinked_for_good_can_still_be_fstatted") else {
        return;
    };
    write_synced(&fx.m("f"), b"12345");
    fsync_dir(&fx.mnt);
    let f = File::open(fx.m("f")).unwrap();
    fs::remove_file(fx.m("f")).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 5, "unlinked, not yet durable");
    fsync_dir(&fx.mnt);
    assert_eq!(f.metadata().unwrap().len(), 5, "unlinked for good");
}

#[test]
fn an_unlinked_file_comes_back_with_its_durable_content() {
    let Some(fx) = mount("an_unlinked_file_comes_back_with_its_durable_content") else {
        return;
    };
    write_synced(&fx.m("u"), b"durable");
    fsync_dir(&fx.mnt);
    let mut f = OpenOptions::new().append(true).open(fx.m("u")).unwrap();
    f.write_all(b" lost").unwrap();
    drop(f);
    fs::remove_file(fx.m("u")).unwrap();
    fx.assert_gone("u");
    let loss = fx.control.lose_unsynced().unwrap();
    assert_eq!((loss.files, loss.dir_ops), (1, 1));
    assert_eq!(fx.read_both("u"), b"durable");

    fs::remove_file(fx.m("u")).unwrap();
    fsync_dir(&fx.mnt);
    fx.control.lose_unsynced().unwrap();
    fx.assert_gone("u");
    // Nothing is left in the stash beside the backing directory either.
    let parent = fx.backing.parent().unwrap();
    let left: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().contains("stash")),
        "{left:?}"
    );
}

#[test]
fn mkdir_and_rmdir_need_the_parent_fsynced() {
    let Some(fx) = mount("mkdir_and_rmdir_need_the_parent_fsynced") else {
        return;
    };
    fs::create_dir(fx.m("d")).unwrap();
    write_synced(&fx.m("d/inner"), b"x");
    fsync_dir(&fx.m("d"));
    fx.control.lose_unsynced().unwrap();
    fx.assert_gone("d");

    fs::create_dir(fx.m("d")).unwrap();
    fsync_dir(&fx.mnt);
    fx.control.lose_unsynced().unwrap();
    assert!(fx.m("d").is_dir() && fx.b("d").is_dir());

    fs::remove_dir(fx.m("d")).unwrap();
    fx.control.lose_unsynced().unwrap();
    assert!(
        fx.m("d").is_dir() && fx.b("d").is_dir(),
        "rmdir without fsync is undone"
    );
    // A directory made again by the undo works like any other.
    write_synced(&fx.m("d/again"), b"y");
    fsync_dir(&fx.m("d"));
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("d/again"), b"y");

    fs::remove_file(fx.m("d/again")).unwrap();
    fsync_dir(&fx.m("d"));
    fs::remove_dir(fx.m("d")).unwrap();
    fsync_dir(&fx.mnt);
    fx.control.lose_unsynced().unwrap();
    fx.assert_gone("d");
}

#[test]
fn interleaved_operations_undo_in_reverse_order() {
    let Some(fx) = mount("interleaved_operations_undo_in_reverse_order") else {
        return;
    };
    write_synced(&fx.m("wal"), b"0123456789");
    fsync_dir(&fx.mnt);
    // A snapshot written to a temporary name, renamed over the old one, the old one renamed
    // away, then the log truncated: all unsynced.
    write_synced(&fx.m("snap.tmp"), b"snapshot 2");
    fs::rename(fx.m("wal"), fx.m("wal.old")).unwrap();
    fs::rename(fx.m("snap.tmp"), fx.m("wal")).unwrap();
    fs::remove_file(fx.m("wal.old")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(fx.m("wal"))
        .unwrap()
        .set_len(4)
        .unwrap();
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.names("."), vec!["wal"]);
    assert_eq!(fx.read_both("wal"), b"0123456789");
}

#[test]
fn symlinks_and_hard_links_are_entries_too() {
    let Some(fx) = mount("symlinks_and_hard_links_are_entries_too") else {
        return;
    };
    write_synced(&fx.m("f"), b"f");
    fsync_dir(&fx.mnt);
    std::os::unix::fs::symlink("f", fx.m("s")).unwrap();
    fs::hard_link(fx.m("f"), fx.m("h")).unwrap();
    assert_eq!(fs::read_link(fx.m("s")).unwrap().to_str(), Some("f"));
    assert_eq!(fx.read_both("h"), b"f");
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.names("."), vec!["f"]);
}

#[test]
fn torn_writes_keep_a_sector_aligned_prefix_of_the_last_write() {
    let Some(fx) = mount("torn_writes_keep_a_sector_aligned_prefix_of_the_last_write") else {
        return;
    };
    let base: Vec<u8> = vec![b'.'; 700];
    let mut prefixes = std::collections::BTreeSet::new();
    for seed in 0..24u64 {
        write_synced(&fx.m("t"), &base);
        fsync_dir(&fx.mnt);
        let f = OpenOptions::new().write(true).open(fx.m("t")).unwrap();
        f.write_at(&[b'a'; 100], 0).unwrap(); // an earlier unsynced write: lost whole
        let last = vec![b'z'; 2000];
        f.write_at(&last, 300).unwrap(); // spans 512, 1024, 1536, 2048
        drop(f);
        let loss = fx.control.tear(seed).unwrap();
        let got = fx.read_both("t");
        // Where the prefix ends: past the durable bytes, the z's; beyond, nothing.
        let end = got.len().max(300);
        let cut = if got.len() > 700 {
            got.len()
        } else {
            got.iter()
                .rposition(|&b| b == b'z')
                .map(|i| i + 1)
                .unwrap_or(300)
        };
        assert!(
            cut == 300 || (cut % 512 == 0 && cut < 2300),
            "seed {seed}: cut {cut}"
        );
        let mut want = base.clone();
        if want.len() < cut {
            want.resize(cut, 0);
        }
        want[300..cut].fill(b'z');
        assert_eq!(got, want, "seed {seed}: cut {cut}, len {end}");
        assert_eq!(loss.torn, usize::from(cut > 300), "seed {seed}");
        prefixes.insert(cut);
        fs::remove_file(fx.m("t")).unwrap();
        fsync_dir(&fx.mnt);
    }
    // Several seeds give several cuts, including none and strict prefixes.
    assert!(prefixes.contains(&300), "{prefixes:?}");
    assert!(
        prefixes.iter().any(|&c| c > 300 && c < 2300),
        "{prefixes:?}"
    );
    // The same seed tears the same way.
    for _ in 0..2 {
        write_synced(&fx.m("t"), &base);
        fsync_dir(&fx.mnt);
        fx.control.tear(7).unwrap();
    }
}

#[test]
fn tear_of_a_write_within_one_sector_is_all_or_nothing() {
    let Some(fx) = mount("tear_of_a_write_within_one_sector_is_all_or_nothing") else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..16u64 {
        write_synced(&fx.m("s"), b"0000000000");
        fsync_dir(&fx.mnt);
        OpenOptions::new()
            .write(true)
            .open(fx.m("s"))
            .unwrap()
            .write_at(b"abc", 2)
            .unwrap();
        fx.control.tear(seed).unwrap();
        let got = fx.read_both("s");
        assert!(
            got == b"0000000000" || got == b"00abc00000",
            "seed {seed}: {got:?}"
        );
        seen.insert(got);
        fs::remove_file(fx.m("s")).unwrap();
        fsync_dir(&fx.mnt);
    }
    assert_eq!(seen.len(), 2);
}

#[test]
fn concurrent_writers_to_many_files() {
    let Some(fx) = mount("concurrent_writers_to_many_files") else {
        return;
    };
    std::thread::scope(|s| {
        for t in 0..4 {
            let fx = &fx;
            s.spawn(move || {
                let p = fx.m(&format!("w{t}"));
                let mut f = File::create(&p).unwrap();
                for i in 0..200u32 {
                    f.write_all(&i.to_le_bytes()).unwrap();
                    if i == 99 {
                        f.sync_data().unwrap();
                    }
                }
            });
        }
    });
    fsync_dir(&fx.mnt);
    fx.control.lose_unsynced().unwrap();
    for t in 0..4 {
        let got = fx.read_both(&format!("w{t}"));
        let want: Vec<u8> = (0..100u32).flat_map(|i| i.to_le_bytes()).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn a_durably_removed_tree_leaves_nothing_pending() {
    let Some(fx) = mount("a_durably_removed_tree_leaves_nothing_pending") else {
        return;
    };
    fs::create_dir_all(fx.m("a/b")).unwrap();
    write_synced(&fx.m("a/b/f"), b"f");
    fsync_dir(&fx.m("a/b"));
    fsync_dir(&fx.m("a"));
    fsync_dir(&fx.mnt);
    assert_eq!(fx.control.pending(), diskfs::Pending::default());
    fs::remove_dir_all(fx.m("a")).unwrap();
    assert_eq!(fx.control.pending().dir_ops, 3);
    fsync_dir(&fx.mnt);
    assert_eq!(fx.control.pending(), diskfs::Pending::default());
    let loss = fx.control.lose_unsynced().unwrap();
    assert_eq!(loss, diskfs::Loss::default());
    fx.assert_gone("a");

    // Not durable: the whole tree comes back, file and all.
    fs::create_dir_all(fx.m("a/b")).unwrap();
    write_synced(&fx.m("a/b/f"), b"f");
    fx.control.make_durable();
    fs::remove_dir_all(fx.m("a")).unwrap();
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("a/b/f"), b"f");
}

fn renameat2(from: &std::path::Path, to: &std::path::Path, flags: u32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let f = std::ffi::CString::new(from.as_os_str().as_bytes()).unwrap();
    let t = std::ffi::CString::new(to.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn rename_noreplace_refuses_and_exchange_is_undone() {
    let Some(fx) = mount("rename_noreplace_refuses_and_exchange_is_undone") else {
        return;
    };
    write_synced(&fx.m("a"), b"A");
    write_synced(&fx.m("b"), b"B");
    fsync_dir(&fx.mnt);
    let e = renameat2(&fx.m("a"), &fx.m("b"), libc::RENAME_NOREPLACE).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    renameat2(&fx.m("a"), &fx.m("c"), libc::RENAME_NOREPLACE).unwrap();
    renameat2(&fx.m("c"), &fx.m("b"), libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fx.read_both("b"), b"A");
    assert_eq!(fx.read_both("c"), b"B");
    let loss = fx.control.lose_unsynced().unwrap();
    assert_eq!(loss.dir_ops, 2);
    assert_eq!(fx.read_both("a"), b"A");
    assert_eq!(fx.read_both("b"), b"B");
    fx.assert_gone("c");
}

#[test]
fn writes_through_a_shared_writable_mapping_are_journaled() {
    const TEST: &str = "writes_through_a_shared_writable_mapping_are_journaled";
    use std::os::fd::AsRawFd;
    if let Some((_, file)) = common::map_child() {
        // The child (see `common::in_child`) writes through a shared mapping, unmaps without
        // msync, and ends: the kernel writes the page back through the mount.
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(file)
            .unwrap();
        // SAFETY: a shared mapping of an open file, written and unmapped without msync.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            );
            assert_ne!(p, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
            std::ptr::write_bytes(p as *mut u8, b'm', 100);
            libc::munmap(p, 4096);
        }
        drop(f);
        common::child_says("written");
    }
    let Some(fx) = mount(TEST) else {
        return;
    };
    write_synced(&fx.m("m"), &[b'd'; 4096]);
    fsync_dir(&fx.mnt);
    assert_eq!(common::in_child(TEST, "write", &fx.m("m")), "written");
    // The page reached the file (written back when the child closed it), unsynced; the
    // power loss takes it away.
    let mut written = vec![b'm'; 100];
    written.extend_from_slice(&[b'd'; 3996]);
    assert_eq!(fx.read_both("m"), written);
    fx.control.lose_unsynced().unwrap();
    assert_eq!(fx.read_both("m"), vec![b'd'; 4096]);
}
