//! Mounting: what is refused, and that a dropped mount leaves nothing behind.

mod common;

#[test]
fn a_mountpoint_that_is_not_a_directory_is_refused() {
    let Some(fx) = common::mount("a_mountpoint_that_is_not_a_directory_is_refused") else {
        return;
    };
    let file = fx.backing.parent().unwrap().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let e = diskfs::Mount::new(&fx.backing, &file)
        .err()
        .expect("refused");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    assert!(diskfs::Mount::new(&fx.backing.join("missing"), &fx.mnt).is_err());
}

#[test]
fn a_dropped_mount_is_gone_even_with_a_file_open() {
    let Some(fx) = common::mount("a_dropped_mount_is_gone_even_with_a_file_open") else {
        return;
    };
    let open = std::fs::File::create(fx.m("held")).unwrap();
    let mnt = fx.mnt.canonicalize().unwrap();
    let mountinfo = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = format!(" {} ", mnt.display());
    assert!(mountinfo().contains(&needle));
    let common::Fixture {
        mount,
        backing,
        dir,
        ..
    } = fx;
    drop(mount);
    assert!(!mountinfo().contains(&needle), "still mounted");
    drop(open);
    assert!(backing.join("held").exists());
    drop(dir);
}
