//! What the kernel does with a mount whose serving process is SIGKILLed.
//!
//! - Inside a private mount namespace (as the harness runs): the mount lives only there, and
//!   goes away with the namespace when its last process dies. Nothing is left.
//! - In a namespace that lives on: the connection is aborted when /dev/fuse is closed, and the
//!   mount stays, answering ENOTCONN ("Transport endpoint is not connected") until unmounted.
//!
//! Each test re-runs this test binary as the child (sled's way), selected by `DISKFS_CHILD`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CHILD: &str = "DISKFS_CHILD";

/// In the child: mount `DISKFS_BACKING` at `DISKFS_MNT` (in a private mount namespace of this
/// thread when asked), say so, and wait to be killed.
fn child(private_ns: bool) -> ! {
    let backing = PathBuf::from(std::env::var("DISKFS_BACKING").expect("DISKFS_BACKING"));
    let mnt = PathBuf::from(std::env::var("DISKFS_MNT").expect("DISKFS_MNT"));
    // SAFETY: prctl with constant arguments: die with the test that started us.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if private_ns {
        // SAFETY: plain syscalls with valid arguments. unshare(CLONE_NEWNS) moves this thread
        // (and the threads it starts) into a new mount namespace.
        unsafe {
            assert_eq!(
                libc::unshare(libc::CLONE_NEWNS),
                0,
                "unshare: {}",
                std::io::Error::last_os_error()
            );
            let root = c"/";
            let rc = libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            assert_eq!(rc, 0, "make / private: {}", std::io::Error::last_os_error());
        }
    }
    let mount = diskfs::Mount::new(&backing, &mnt).expect("mount in the child");
    std::fs::write(mnt.join("from-child"), b"hi").expect("write through the mount");
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let mut out = std::io::stdout();
    writeln!(out, "MOUNTED {tid}").expect("stdout");
    out.flush().expect("stdout");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let _ = &mount;
    }
}

fn mounted_in(mountinfo: &str, mnt: &Path) -> bool {
    let needle = format!(" {} ", mnt.display());
    mountinfo.lines().any(|l| l.contains(&needle))
}

/// Start this test again as a child that mounts, and wait until it has; its pid and the tid
/// of the thread that mounted.
fn spawn_child(test: &str, mode: &str, backing: &Path, mnt: &Path) -> (std::process::Child, u32) {
    let exe = std::env::current_exe().expect("current_exe");
    let mut c = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .env("DISKFS_BACKING", backing)
        .env("DISKFS_MNT", mnt)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = c.stdout.take().expect("child stdout");
    let mut tid = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child stdout");
        // libtest may have begun the line with the test's name.
        if let Some((_, t)) = line.split_once("MOUNTED ") {
            tid = Some(t.trim().parse::<u32>().expect("tid"));
            break;
        }
    }
    let Some(tid) = tid else {
        let status = c.wait().expect("wait");
        panic!("the child ended without mounting: {status}");
    };
    (c, tid)
}

fn kill(c: &mut std::process::Child) {
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGKILL) };
    let status = c.wait().expect("wait");
    assert!(!status.success());
}

#[test]
fn a_mount_in_a_private_namespace_vanishes_when_its_process_is_killed() {
    if std::env::var(CHILD).as_deref() == Ok("ns") {
        child(true);
    }
    let Some(fx) =
        common::mount("a_mount_in_a_private_namespace_vanishes_when_its_process_is_killed")
    else {
        return;
    };
    drop(fx);
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("data"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let mnt = mnt.canonicalize().unwrap();
    let (mut c, tid) = spawn_child(
        "a_mount_in_a_private_namespace_vanishes_when_its_process_is_killed",
        "ns",
        &backing,
        &mnt,
    );
    let theirs = std::fs::read_to_string(format!("/proc/{}/task/{tid}/mountinfo", c.id())).unwrap();
    let ours = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounted_in(&theirs, &mnt),
        "the child's namespace has the mount"
    );
    assert!(!mounted_in(&ours, &mnt), "ours never had it");
    assert_eq!(std::fs::read(backing.join("from-child")).unwrap(), b"hi");
    kill(&mut c);
    let ours = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounted_in(&ours, &mnt), "nothing is left");
    assert_eq!(
        std::fs::read_dir(&mnt).unwrap().count(),
        0,
        "the mountpoint is a plain empty dir"
    );
}

/// Unmounts a mount left by a killed child, whatever the test's outcome.
struct Detach(PathBuf);
impl Drop for Detach {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_mount_in_a_shared_namespace_is_left_dead_when_its_process_is_killed() {
    if std::env::var(CHILD).as_deref() == Ok("shared") {
        child(false);
    }
    let Some(fx) =
        common::mount("a_mount_in_a_shared_namespace_is_left_dead_when_its_process_is_killed")
    else {
        return;
    };
    drop(fx);
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("data"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let mnt = mnt.canonicalize().unwrap();
    let _detach = Detach(mnt.clone());
    let (mut c, _tid) = spawn_child(
        "a_mount_in_a_shared_namespace_is_left_dead_when_its_process_is_killed",
        "shared",
        &backing,
        &mnt,
    );
    assert_eq!(std::fs::read(mnt.join("from-child")).unwrap(), b"hi");
    kill(&mut c);
    let ours = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mounted_in(&ours, &mnt), "the mount outlives its process");
    let e = std::fs::metadata(mnt.join("from-child")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
}
