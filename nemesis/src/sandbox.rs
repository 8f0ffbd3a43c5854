//! The sandbox: the harness re-runs itself inside namespaces of its own, so that nothing a test
//! creates can outlive it or touch the host.
//!
//! ```text
//! original process (host)          ignores SIGINT, forwards SIGTERM, returns ParentDone(code)
//!  └─ intermediate                 PDEATHSIG=SIGKILL; unshares user (if not root), mount, net, PID
//!      └─ harness = PID 1          PDEATHSIG=SIGKILL; private mounts, fresh /proc, lo up
//!          ├─ namespace holders, nodes, helpers ...
//! ```
//!
//! When the harness (PID 1 of the new PID namespace) exits, the kernel kills every other process
//! in it; the last process leaving a network namespace takes its veths and firewall rules with
//! it. When the original process is SIGKILLed, PDEATHSIG kills the intermediate, whose death
//! kills the harness, and the same clean-up follows (`shared/notes/faults-measured.md` §5 tested
//! this with `unshare --kill-child`; this module does it in-process).
//!
//! The harness is PID 1 of its PID namespace, and the kernel delivers a signal to such a
//! process only if it has installed a handler for it: **install SIGINT and SIGTERM handlers**
//! (e.g. `tokio::signal`) early, or Ctrl-C is ignored. As a safety net the intermediate
//! SIGKILLs the harness [`SIGTERM_GRACE`] after forwarding a SIGTERM it did not act on.
//! PID 1 also inherits orphaned processes; [`crate::process::Supervisor`] reaps those of its
//! nodes' process groups.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getegid, geteuid, getpid, getppid, pipe2, ForkResult, Pid};

/// The environment variable that marks a process as already inside the sandbox.
pub const SANDBOX_ENV: &str = "HARNESS_SANDBOXED";

/// How long the intermediate waits, after forwarding SIGTERM, before it SIGKILLs the harness.
/// [`SIGTERM_GRACE_ENV`] overrides it (in milliseconds).
pub const SIGTERM_GRACE: Duration = Duration::from_secs(30);

/// Environment variable that overrides [`SIGTERM_GRACE`], in milliseconds.
pub const SIGTERM_GRACE_ENV: &str = "HARNESS_SIGTERM_GRACE_MS";

/// Exit status of the intermediate or the harness when sandbox set-up fails (the original
/// process returns the error itself; this only shows up if something reads the child's status).
const SETUP_FAILED: i32 = 4;

/// Where [`enter`] left the calling process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// This process is the harness, inside the sandbox: carry on.
    Inside,
    /// This process is the original one, and the sandboxed harness has exited with this status
    /// (128 + signal number if it was killed by a signal): exit with it.
    ParentDone(i32),
}

/// Why the sandbox could not be entered. The message says what would make it work.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// [`enter`] forks; forking a multi-threaded process leaves the child with locks held by
    /// threads that no longer exist.
    #[error(
        "sandbox::enter() must run while the process is single-threaded, but it has {0} threads: \
         call it first in main, before building a tokio runtime or spawning threads"
    )]
    NotSingleThreaded(usize),
    /// A namespace could not be created.
    #[error("{call} failed: {errno}: {hint}")]
    Namespace {
        /// The system call, e.g. `unshare(CLONE_NEWNET)`.
        call: String,
        /// The error number's name, e.g. `EPERM`.
        errno: String,
        /// What to do about it.
        hint: String,
    },
    /// Another step of setting up the sandbox failed.
    #[error("sandbox set-up failed at {step}: {errno} ({desc}){hint}")]
    Setup {
        /// The step, e.g. `mount proc on /proc`.
        step: String,
        /// The error number's name.
        errno: String,
        /// Its description.
        desc: String,
        /// What to do about it, if we know.
        hint: String,
    },
    /// The sandboxed child died before it reported success or failure.
    #[error("the sandbox child exited with status {0} before it was set up")]
    ChildDied(i32),
}

/// True in a process that is inside the sandbox (or was started with `HARNESS_SANDBOXED=1`).
pub fn is_inside() -> bool {
    std::env::var_os(SANDBOX_ENV).is_some_and(|v| v == "1")
}

/// Enters the sandbox. Call it first in `main`, while the process is still single-threaded.
///
/// Returns [`Entered::Inside`] in the sandboxed harness (at once if `HARNESS_SANDBOXED=1` is
/// already set), and [`Entered::ParentDone`] in the original process once the harness has
/// exited; the caller should then exit with that status.
pub fn enter() -> Result<Entered, SandboxError> {
    if is_inside() {
        return Ok(Entered::Inside);
    }
    let threads = thread_count();
    if threads > 1 {
        return Err(SandboxError::NotSingleThreaded(threads));
    }
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| setup("pipe2", e))?;
    let original = getpid();
    let grace = std::env::var(SIGTERM_GRACE_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(SIGTERM_GRACE);
    // Ignored before the fork, so no Ctrl-C can slip in between; the harness restores it.
    set_handler(Signal::SIGINT, SigHandler::SigIgn, SaFlags::empty());
    // SAFETY: the process is single-threaded (checked above), so the child may run any code.
    match unsafe { fork() } {
        Err(e) => {
            set_handler(Signal::SIGINT, SigHandler::SigDfl, SaFlags::empty());
            Err(setup("fork", e))
        }
        Ok(ForkResult::Parent { child }) => {
            drop(ready_w);
            CHILD.store(child.as_raw(), Ordering::SeqCst);
            set_handler(
                Signal::SIGTERM,
                SigHandler::Handler(forward_sigterm),
                SaFlags::SA_RESTART,
            );
            let report = read_report(ready_r);
            match report {
                Report::Ready => Ok(Entered::ParentDone(wait_for(child, None))),
                Report::Failed(f) => {
                    let _ = wait_for(child, None);
                    set_handler(Signal::SIGINT, SigHandler::SigDfl, SaFlags::empty());
                    set_handler(Signal::SIGTERM, SigHandler::SigDfl, SaFlags::empty());
                    Err(f.into_error())
                }
                Report::Silent => {
                    let code = wait_for(child, None);
                    set_handler(Signal::SIGINT, SigHandler::SigDfl, SaFlags::empty());
                    set_handler(Signal::SIGTERM, SigHandler::SigDfl, SaFlags::empty());
                    Err(SandboxError::ChildDied(code))
                }
            }
        }
        Ok(ForkResult::Child) => {
            drop(ready_r);
            let mut ready_w = Some(File::from(ready_w));
            match intermediate(original, grace, &mut ready_w) {
                Ok(()) => Ok(Entered::Inside),
                Err(f) => {
                    if let Some(w) = ready_w.as_mut() {
                        let _ = w.write_all(f.encode().as_bytes());
                    }
                    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong to the
                    // original process.
                    unsafe { libc::_exit(SETUP_FAILED) }
                }
            }
        }
    }
}

/// Runs in the intermediate child. Returns Ok only in the grandchild (the harness, PID 1);
/// the intermediate itself never returns from here on success.
fn intermediate(original: Pid, grace: Duration, ready_w: &mut Option<File>) -> Result<(), Failure> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| Failure::setup("prctl(PR_SET_PDEATHSIG)", e))?;
    if getppid() != original {
        // The original process died before prctl took effect: no signal will come.
        // SAFETY: see above.
        unsafe { libc::_exit(SETUP_FAILED) }
    }
    let uid = geteuid();
    let gid = getegid();
    if !uid.is_root() {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| Failure::ns("unshare(CLONE_NEWUSER)", e))?;
        write_proc("/proc/self/setgroups", "deny")?;
        write_proc("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_proc("/proc/self/gid_map", &format!("0 {gid} 1"))?;
        // Credentials changed; make sure the death signal is still armed.
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
            .map_err(|e| Failure::setup("prctl(PR_SET_PDEATHSIG)", e))?;
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| Failure::ns("unshare(CLONE_NEWNS)", e))?;
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Failure::ns("unshare(CLONE_NEWNET)", e))?;
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| Failure::ns("unshare(CLONE_NEWPID)", e))?;

    // Lets the harness tell whether the intermediate died before its own prctl took effect:
    // reading gives EOF once the intermediate (the only other holder of the write end) is gone.
    let (alive_r, alive_w) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| Failure::setup("pipe2", e))?;
    // SAFETY: still single-threaded.
    match unsafe { fork() } {
        Err(e) => Err(Failure::setup("fork into the new PID namespace", e)),
        Ok(ForkResult::Parent { child }) => {
            drop(alive_r);
            // The harness reports readiness; this copy of the write end must not hold the pipe
            // open, or the original process would never see EOF.
            drop(ready_w.take());
            CHILD.store(child.as_raw(), Ordering::SeqCst);
            set_handler(
                Signal::SIGTERM,
                SigHandler::Handler(forward_sigterm),
                SaFlags::empty(),
            );
            let code = wait_for(child, Some(grace));
            drop(alive_w);
            // SAFETY: see above.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Child) => {
            drop(alive_w);
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| Failure::setup("prctl(PR_SET_PDEATHSIG)", e))?;
            let mut probe = [0u8; 1];
            match nix::unistd::read(alive_r.as_raw_fd(), &mut probe) {
                Err(Errno::EAGAIN) => {}
                // EOF: the intermediate is already gone.
                // SAFETY: see above.
                _ => unsafe { libc::_exit(SETUP_FAILED) },
            }
            drop(alive_r);
            harness_setup()?;
            set_handler(Signal::SIGINT, SigHandler::SigDfl, SaFlags::empty());
            set_handler(Signal::SIGTERM, SigHandler::SigDfl, SaFlags::empty());
            std::env::set_var(SANDBOX_ENV, "1");
            if let Some(mut w) = ready_w.take() {
                w.write_all(b"OK")
                    .map_err(|e| Failure::io("report readiness", e))?;
            }
            Ok(())
        }
    }
}

/// Runs in the harness, PID 1 of the new namespaces.
fn harness_setup() -> Result<(), Failure> {
    // Without this, the /proc mount below would propagate back to the host's mount namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| Failure::setup("mount --make-rprivate /", e))?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| Failure::setup("mount proc on /proc", e))?;
    let out = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Failure::io("run `ip link set lo up` (is iproute2 installed?)", e))?;
    if !out.status.success() {
        return Err(Failure {
            step: format!(
                "`ip link set lo up`: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            errno: 0,
            namespace: false,
        });
    }
    Ok(())
}

/// The child whose status this process waits for and to which it forwards SIGTERM.
static CHILD: AtomicI32 = AtomicI32::new(0);
static TERM_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn forward_sigterm(_: libc::c_int) {
    TERM_SEEN.store(true, Ordering::SeqCst);
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(child, libc::SIGTERM) };
    }
}

fn set_handler(sig: Signal, handler: SigHandler, flags: SaFlags) {
    let action = SigAction::new(handler, flags, SigSet::empty());
    // SAFETY: the handlers used here only touch atomics and call kill(2).
    if let Err(e) = unsafe { sigaction(sig, &action) } {
        tracing::warn!(signal = %sig, error = %e, "sigaction failed");
    }
}

/// Waits for `child` and returns its exit status (128 + signal if killed). With a `grace`,
/// SIGKILLs it that long after a SIGTERM was forwarded (the harness, as PID 1, ignores SIGTERM
/// when it has no handler).
fn wait_for(child: Pid, grace: Option<Duration>) -> i32 {
    let mut deadline: Option<Instant> = None;
    loop {
        if let Some(grace) = grace {
            if deadline.is_none() && TERM_SEEN.load(Ordering::SeqCst) {
                deadline = Some(Instant::now() + grace);
            }
        }
        let flags = deadline.map(|_| WaitPidFlag::WNOHANG);
        match waitpid(child, flags) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => {
                if let Some(d) = deadline {
                    if Instant::now() >= d {
                        // SAFETY: kill(2) on our own child.
                        unsafe { libc::kill(child.as_raw(), libc::SIGKILL) };
                        deadline = Some(Instant::now() + Duration::from_secs(3600));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return 128 + libc::SIGKILL,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

fn write_proc(path: &str, content: &str) -> Result<(), Failure> {
    std::fs::write(path, content)
        .map_err(|e| Failure::io(&format!("write {content:?} to {path}"), e))
}

fn setup(step: &str, e: Errno) -> SandboxError {
    Failure::setup(step, e).into_error()
}

enum Report {
    Ready,
    Failed(Failure),
    Silent,
}

fn read_report(r: OwnedFd) -> Report {
    let mut buf = String::new();
    let mut f = File::from(r);
    loop {
        match f.read_to_string(&mut buf) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if buf == "OK" {
        Report::Ready
    } else if let Some(f) = Failure::decode(&buf) {
        Report::Failed(f)
    } else {
        Report::Silent
    }
}

/// A set-up failure as it travels from the child to the original process over the pipe.
#[derive(Debug)]
struct Failure {
    step: String,
    errno: i32,
    namespace: bool,
}

impl Failure {
    fn ns(call: &str, e: Errno) -> Failure {
        Failure {
            step: call.to_string(),
            errno: e as i32,
            namespace: true,
        }
    }

    fn setup(step: &str, e: Errno) -> Failure {
        Failure {
            step: step.to_string(),
            errno: e as i32,
            namespace: false,
        }
    }

    fn io(step: &str, e: std::io::Error) -> Failure {
        Failure {
            step: format!("{step}: {e}"),
            errno: e.raw_os_error().unwrap_or(0),
            namespace: false,
        }
    }

    fn encode(&self) -> String {
        format!(
            "ERR\n{}\n{}\n{}",
            u8::from(self.namespace),
            self.errno,
            self.step
        )
    }

    fn decode(s: &str) -> Option<Failure> {
        let mut parts = s.splitn(4, '\n');
        if parts.next()? != "ERR" {
            return None;
        }
        let namespace = parts.next()? == "1";
        let errno = parts.next()?.parse().ok()?;
        let step = parts.next()?.to_string();
        Some(Failure {
            step,
            errno,
            namespace,
        })
    }

    fn into_error(self) -> SandboxError {
        let errno = Errno::from_raw(self.errno);
        let name = if self.errno == 0 {
            "error".to_string()
        } else {
            format!("{errno:?}")
        };
        if self.namespace {
            SandboxError::Namespace {
                hint: namespace_hint(&self.step, errno),
                call: self.step,
                errno: format!("{name} ({})", errno.desc()),
            }
        } else {
            let hint = if self.step.starts_with("mount proc") {
                ": a container that masks parts of /proc forbids a fresh proc mount; run it \
                 with --privileged (or run the harness on the host as root)"
                    .to_string()
            } else {
                String::new()
            };
            SandboxError::Setup {
                step: self.step,
                errno: name,
                desc: errno.desc().to_string(),
                hint,
            }
        }
    }
}

fn namespace_hint(call: &str, errno: Errno) -> String {
    match errno {
        Errno::ENOSPC => "the limit on namespaces is reached: raise sysctl \
                          user.max_user_namespaces / user.max_net_namespaces / \
                          user.max_pid_namespaces / user.max_mnt_namespaces"
            .to_string(),
        Errno::EINVAL if call.contains("USER") => {
            "this kernel was built without user namespaces (CONFIG_USER_NS): run as root".into()
        }
        Errno::EINVAL => {
            format!("this kernel lacks the namespace type of {call}: run on a kernel built with it")
        }
        _ if geteuid().is_root() => "the process is root but lacks CAP_SYS_ADMIN (a container \
                                     without privileges?): run it with --privileged, or grant \
                                     CAP_SYS_ADMIN and CAP_NET_ADMIN"
            .to_string(),
        _ => "run as root, or enable unprivileged user namespaces (sysctl \
              kernel.unprivileged_userns_clone=1; on Ubuntu also \
              kernel.apparmor_restrict_unprivileged_userns=0)"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_survive_the_pipe() {
        let f = Failure::ns("unshare(CLONE_NEWNET)", Errno::EPERM);
        let back = Failure::decode(&f.encode()).expect("decodes");
        assert_eq!(back.step, "unshare(CLONE_NEWNET)");
        assert_eq!(back.errno, Errno::EPERM as i32);
        assert!(back.namespace);
        assert!(Failure::decode("OK").is_none());
        assert!(Failure::decode("").is_none());
    }

    #[test]
    fn eperm_message_says_what_to_do() {
        let msg = Failure::ns("unshare(CLONE_NEWNET)", Errno::EPERM)
            .into_error()
            .to_string();
        assert!(
            msg.starts_with("unshare(CLONE_NEWNET) failed: EPERM"),
            "{msg}"
        );
        if geteuid().is_root() {
            assert!(msg.contains("CAP_SYS_ADMIN"), "{msg}");
        } else {
            assert!(msg.contains("unprivileged_userns_clone"), "{msg}");
        }
    }

    #[test]
    fn enter_refuses_a_threaded_process() {
        if is_inside() {
            return;
        }
        // The test harness runs this on a worker thread, so there are at least two.
        match enter() {
            Err(SandboxError::NotSingleThreaded(n)) => assert!(n >= 2),
            other => panic!("expected NotSingleThreaded, got {other:?}"),
        }
    }
}
