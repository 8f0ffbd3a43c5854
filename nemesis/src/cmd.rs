//! Running helper programs (`ip`, `nft`, `iptables-restore`) inside a chosen network namespace,
//! and spawning long-lived children (namespace holders, nodes) that die with the harness.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::unistd::{getpid, getppid};

/// Why a helper command did not do its job.
#[derive(Debug)]
pub(crate) enum CmdFailure {
    Spawn {
        cmd: String,
        source: io::Error,
    },
    Status {
        cmd: String,
        status: String,
        stderr: String,
        input: String,
    },
}

/// A short-lived helper command, optionally run inside a network namespace.
pub(crate) struct Cmd {
    program: String,
    args: Vec<String>,
    stdin: Option<String>,
    netns: Option<Arc<File>>,
}

impl Cmd {
    pub(crate) fn new(program: &str, args: &[&str]) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: None,
            netns: None,
        }
    }

    pub(crate) fn stdin(mut self, input: String) -> Cmd {
        self.stdin = Some(input);
        self
    }

    pub(crate) fn netns(mut self, ns: Arc<File>) -> Cmd {
        self.netns = Some(ns);
        self
    }

    pub(crate) fn display(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Starts the command; [`Running::wait`] collects it. Starting several before waiting on any
    /// lets per-namespace rule changes land nearly together.
    pub(crate) fn spawn(self) -> Result<Running, CmdFailure> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(ns) = &self.netns {
            let fd = ns.as_raw_fd();
            // SAFETY: the closure only calls setns(2), which is async-signal-safe, and the fd
            // stays open because `self.netns` outlives the spawn.
            unsafe {
                command.pre_exec(move || {
                    let ns = BorrowedFd::borrow_raw(fd);
                    setns(ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
                });
            }
        }
        inherit_nothing(&mut command);
        let cmd = self.display();
        let mut child = command.spawn().map_err(|source| CmdFailure::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
        let input = self.stdin.unwrap_or_default();
        if let Some(mut pipe) = child.stdin.take() {
            // Inputs are a few kilobytes at most, well under a pipe buffer, so this cannot block
            // on a child that is not reading yet.
            if let Err(source) = pipe.write_all(input.as_bytes()) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CmdFailure::Spawn { cmd, source });
            }
        }
        Ok(Running { child, cmd, input })
    }

    /// Runs the command to completion; Ok holds its stdout.
    pub(crate) fn run(self) -> Result<String, CmdFailure> {
        self.spawn()?.wait()
    }
}

/// A started helper command.
pub(crate) struct Running {
    child: Child,
    cmd: String,
    input: String,
}

impl Running {
    pub(crate) fn wait(self) -> Result<String, CmdFailure> {
        let cmd = self.cmd;
        let out = self
            .child
            .wait_with_output()
            .map_err(|source| CmdFailure::Spawn {
                cmd: cmd.clone(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(CmdFailure::Status {
                cmd,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                input: self.input,
            })
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The one thread that forks every long-lived child.
///
/// Marks every descriptor above stderr close-on-exec in the child, so that a child inherits
/// none of the harness's descriptors: libraries may open some without `O_CLOEXEC` (the `nfq`
/// crate's netlink socket is one), and a node that held the delay fault's netlink socket open
/// would keep its queue bound after the fault ended.
fn inherit_nothing(command: &mut Command) {
    // SAFETY: close_range(2) is a plain system call, async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let r = libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process
/// (golang/go#27505). A node started from a tokio blocking-pool thread would be SIGKILLed when
/// that thread retires after 10 s idle. Forking from a thread that lives as long as the process
/// keeps the signal meaning "the harness died".
fn spawner() -> io::Result<&'static mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("nemesis-spawner".into())
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
        .ok_or_else(|| io::Error::other("could not start the nemesis spawner thread"))
}

/// Spawns a child that receives SIGKILL when the harness dies, with SIGINT and SIGTERM back at
/// their default dispositions (the harness may ignore them; ignored signals survive exec).
pub(crate) fn spawn_long_lived(mut command: Command) -> io::Result<Child> {
    let parent = getpid();
    inherit_nothing(&mut command);
    // SAFETY: prctl, getppid and signal (sigaction) are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // If the harness died between fork and prctl, no signal will ever come (the race
            // in aristanetworks/bst#74), so check who the parent is now.
            if getppid() != parent {
                return Err(io::Error::other(
                    "the harness exited while the child started",
                ));
            }
            for sig in [Signal::SIGINT, Signal::SIGTERM] {
                signal(sig, SigHandler::SigDfl).map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(command.spawn());
    });
    spawner()?
        .send(job)
        .map_err(|_| io::Error::other("the nemesis spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("the nemesis spawner thread dropped a request"))?
}
