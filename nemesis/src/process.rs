//! The cluster supervisor: starts node processes in their network namespaces and crashes,
//! pauses, resumes, restarts and stops them, as Jepsen's process nemeses do (`kill -9`, SIGSTOP /
//! SIGCONT; `shared/notes/faults-measured.md` §2 and §4).
//!
//! Every node runs in a process group of its own, so a signal reaches the node and whatever it
//! forked, and Ctrl-C at the terminal does not reach nodes directly (the harness stops them). Its
//! stdout and stderr are appended to `<dir>/node.log`; a restart appends to the same log after a
//! marker line. Children are reaped; inside the sandbox the harness is PID 1 and also reaps the
//! orphans left in a node's group.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::cmd::spawn_long_lived;

/// How many log lines an error carries.
pub const ERROR_LOG_LINES: usize = 20;
/// How often [`Supervisor::wait_ready`] polls the health URL.
pub const READY_POLL: Duration = Duration::from_millis(20);
/// How often stop polls for the node's exit.
const EXIT_POLL: Duration = Duration::from_millis(5);
/// How much of the end of a log file [`Supervisor::log_tail`] reads.
const TAIL_BYTES: u64 = 64 * 1024;

/// How to run one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The node's name (also the key of its network namespace).
    pub name: String,
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The node's folder (`nodes/<n>/`); holds `node.log`. Created if missing.
    pub dir: PathBuf,
    /// Answers 200 with a JSON body once the node is ready.
    pub health_url: String,
}

impl NodeSpec {
    /// Where the node's stdout and stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }
}

/// What a node is doing, as far as the supervisor knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Started and not stopped.
    Running,
    /// Stopped with SIGSTOP.
    Paused,
    /// Never started, or stopped / killed by the supervisor.
    Stopped,
    /// Exited on its own with this status (128 + signal number if a signal killed it).
    Exited(i32),
}

/// What went wrong with a node. Errors about a node that failed carry its log tail.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// No node of that name was ever started.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// Start was called on a node that is running.
    #[error("node {0} is already running (pid {1})")]
    AlreadyRunning(String, u32),
    /// The node is not in a state that allows the operation.
    #[error("cannot {action} node {node}: it is {state:?}")]
    WrongState {
        /// The node.
        node: String,
        /// Its state.
        state: NodeState,
        /// What was asked.
        action: &'static str,
    },
    /// The supervisor was given namespaces, but none for this node.
    #[error("node {node} has no network namespace (the supervisor has namespaces for {known:?})")]
    NoNamespace {
        /// The node.
        node: String,
        /// The nodes it has namespaces for.
        known: Vec<String>,
    },
    /// A file could not be opened or created.
    #[error("node {node}: {what} {path}: {source}")]
    Io {
        /// The node.
        node: String,
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The program could not be started.
    #[error("could not start node {node} (`{cmd}`): {source}")]
    Spawn {
        /// The node.
        node: String,
        /// The command line.
        cmd: String,
        /// Why.
        source: io::Error,
    },
    /// A signal could not be delivered.
    #[error("could not send {signal} to node {node} (process group {pgid}): {errno}")]
    Signal {
        /// The node.
        node: String,
        /// The signal.
        signal: Signal,
        /// The node's process group.
        pgid: i32,
        /// Why.
        errno: Errno,
    },
    /// Waiting for the node's process failed.
    #[error("waiting for node {node}: {source}")]
    Wait {
        /// The node.
        node: String,
        /// Why.
        source: io::Error,
    },
    /// The node exited before it became ready.
    #[error("node {node} exited with status {status} before it became ready{log}")]
    Exited {
        /// The node.
        node: String,
        /// Its exit status (128 + signal if killed).
        status: i32,
        /// The end of its log.
        log: Box<LogTail>,
    },
    /// The node did not answer its health URL in time.
    #[error("node {node} did not become ready within {waited_ms} ms (last probe, {url}: {last_error}; the node is {state:?}){log}")]
    NotReady {
        /// The node.
        node: String,
        /// What was asked: the health URL, or the protocol's probe.
        url: String,
        /// How long it was polled.
        waited_ms: u64,
        /// The outcome of the last poll.
        last_error: String,
        /// The node's state at the deadline.
        state: NodeState,
        /// The end of its log.
        log: Box<LogTail>,
    },
}

/// The end of a node's log, as carried by errors (displayed on lines of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail {
    /// The log file.
    pub path: PathBuf,
    /// Its last [`ERROR_LOG_LINES`] lines.
    pub tail: String,
}

impl LogTail {
    fn read(path: PathBuf) -> Box<LogTail> {
        let tail = tail_file(&path, ERROR_LOG_LINES);
        Box::new(LogTail { path, tail })
    }
}

impl std::fmt::Display for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tail.trim().is_empty() {
            write!(f, "\n(log {} is empty)", self.path.display())
        } else {
            write!(
                f,
                "\n--- last lines of {} ---\n{}",
                self.path.display(),
                self.tail.trim_end()
            )
        }
    }
}

struct Node {
    spec: NodeSpec,
    child: Option<Child>,
    paused: bool,
    /// Set when the node exited without being asked to.
    exited: Option<i32>,
    /// The process group of the last run, kept after the leader exits so that stop / kill can
    /// still clean up members it left behind.
    pgid: Option<Pid>,
}

impl Node {
    /// Notices (and reaps) a node that exited on its own.
    fn refresh(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.exited = Some(exit_code(status));
                self.child = None;
                self.paused = false;
            }
        }
    }

    fn state(&mut self) -> NodeState {
        self.refresh();
        match (&self.child, self.paused, self.exited) {
            (Some(_), true, _) => NodeState::Paused,
            (Some(_), false, _) => NodeState::Running,
            (None, _, Some(code)) => NodeState::Exited(code),
            (None, _, None) => NodeState::Stopped,
        }
    }

    /// Sends `signal` to the node: its process group, and every descendant of its main process
    /// that has left the group. Some servers move their children out: PostgreSQL's postmaster
    /// makes every backend the leader of a session of its own (`setsid`), so a signal to the
    /// group alone would stop or kill the postmaster and leave the backends serving their
    /// connections. Returns the descendants outside the group that were signalled.
    fn signal_group(&self, signal: Signal) -> Result<Vec<Pid>, ProcError> {
        let Some(pgid) = self.pgid else {
            return Ok(Vec::new());
        };
        if signal == Signal::SIGKILL {
            // Stopped first: a stopped process cannot fork, and its children stay its children,
            // so all of them can be found, until it dies.
            let escaped = self.stop_tree(pgid)?;
            self.killpg(pgid, signal)?;
            signal_each(&escaped, signal);
            return Ok(escaped);
        }
        if signal == Signal::SIGSTOP {
            return self.stop_tree(pgid);
        }
        self.killpg(pgid, signal)?;
        let escaped = escaped_descendants(pgid);
        signal_each(&escaped, signal);
        Ok(escaped)
    }

    /// SIGSTOPs the group, waits until its leader has stopped (so it forks no more), then stops
    /// the descendants that left the group, again until no new one appears. Bounded: a tree
    /// that keeps growing after [`STOP_TREE_ROUNDS`] walks is left as it is.
    fn stop_tree(&self, pgid: Pid) -> Result<Vec<Pid>, ProcError> {
        self.killpg(pgid, Signal::SIGSTOP)?;
        let deadline = Instant::now() + STOP_WAIT;
        while proc_stat(pgid.as_raw())
            .is_some_and(|(state, _, _)| !matches!(state, 'T' | 't' | 'Z'))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut stopped: Vec<Pid> = Vec::new();
        for _ in 0..STOP_TREE_ROUNDS {
            let fresh: Vec<Pid> = escaped_descendants(pgid)
                .into_iter()
                .filter(|p| !stopped.contains(p))
                .collect();
            if fresh.is_empty() {
                break;
            }
            signal_each(&fresh, Signal::SIGSTOP);
            stopped.extend(fresh);
        }
        Ok(stopped)
    }

    fn killpg(&self, pgid: Pid, signal: Signal) -> Result<(), ProcError> {
        match killpg(pgid, signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(errno) => Err(ProcError::Signal {
                node: self.spec.name.clone(),
                signal,
                pgid: pgid.as_raw(),
                errno,
            }),
        }
    }

    /// SIGKILLs the whole group (and the descendants that left it) and reaps the leader and
    /// any orphans.
    fn kill_and_reap(&mut self) -> Result<(), ProcError> {
        let sent = self.signal_group(Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            // Covers a leader that left the group (setsid / setpgid) on its own.
            let _ = child.kill();
            child.wait().map_err(|source| ProcError::Wait {
                node: self.spec.name.clone(),
                source,
            })?;
        }
        if let Some(pgid) = self.pgid.take() {
            reap_group_orphans(pgid);
        }
        if let Ok(escaped) = &sent {
            reap_orphans(escaped);
        }
        self.paused = false;
        self.exited = None;
        sent.map(drop)
    }
}

/// How long [`Node::stop_tree`] waits for the group's leader to stop.
const STOP_WAIT: Duration = Duration::from_millis(200);
/// How many times [`Node::stop_tree`] looks for descendants that are not stopped yet.
const STOP_TREE_ROUNDS: usize = 8;

/// Sends `signal` to each of `pids`; one that is gone already is no error.
fn signal_each(pids: &[Pid], signal: Signal) {
    for p in pids {
        let _ = nix::sys::signal::kill(*p, signal);
    }
}

/// The descendants of the group leader `pgid` (through /proc's parent links) that are in
/// another process group.
fn escaped_descendants(pgid: Pid) -> Vec<Pid> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<i32, Vec<(i32, i32)>> = HashMap::new();
    for pid in dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        if let Some((_, ppid, pgrp)) = proc_stat(pid) {
            children.entry(ppid).or_default().push((pid, pgrp));
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![pgid.as_raw()];
    while let Some(parent) = todo.pop() {
        for &(pid, pgrp) in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            if pgrp != pgid.as_raw() {
                out.push(Pid::from_raw(pid));
            }
            todo.push(pid);
        }
    }
    out
}

/// Reaps `pids` once they are this process's children (inside the sandbox the harness is PID
/// 1, which inherits a killed node's orphans); waits up to 200 ms for them to die. A pid that
/// is not our child (outside the sandbox, init reaps it) is left alone.
fn reap_orphans(pids: &[Pid]) {
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut left: Vec<Pid> = pids.to_vec();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|p| {
            matches!(
                waitpid(*p, Some(WaitPidFlag::WNOHANG)),
                Ok(nix::sys::wait::WaitStatus::StillAlive)
            )
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Starts and controls the cluster's node processes.
pub struct Supervisor {
    net_paths: HashMap<String, PathBuf>,
    nodes: BTreeMap<String, Mutex<Node>>,
    stdio: Option<StdioHook>,
}

/// Takes a node's stdin and stdout each time it starts (its name, then the write end of its
/// stdin and the read end of its stdout): for nodes that speak over pipes, as Maelstrom's do.
pub type StdioHook = std::sync::Arc<dyn Fn(&str, OwnedFd, OwnedFd) + Send + Sync>;

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn lock(node: &Mutex<Node>) -> MutexGuard<'_, Node> {
    // A panic while holding the lock leaves the node's bookkeeping usable.
    node.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Supervisor {
    /// A supervisor that starts each node in the network namespace at `net_paths[node]`
    /// (`/proc/<pid>/ns/net`, see [`crate::net::Network::netns_paths`]). With an empty map nodes
    /// run in the supervisor's own namespace.
    pub fn new(net_paths: HashMap<String, PathBuf>) -> Supervisor {
        Supervisor {
            net_paths,
            nodes: BTreeMap::new(),
            stdio: None,
        }
    }

    /// From now on every node starts with pipes for stdin and stdout, handed to `hook` (its
    /// stderr still goes to its log): a node that speaks over pipes, as Maelstrom's do.
    pub fn set_stdio_hook(&mut self, hook: StdioHook) {
        self.stdio = Some(hook);
    }

    fn node(&self, name: &str) -> Result<&Mutex<Node>, ProcError> {
        self.nodes
            .get(name)
            .ok_or_else(|| ProcError::UnknownNode(name.to_string()))
    }

    /// Starts the node described by `spec` (its own process group, stdin from /dev/null,
    /// stdout and stderr appended to `spec.dir/node.log`; with a stdio hook, stdin and stdout
    /// are pipes given to the hook). Does not wait for readiness: see
    /// [`Supervisor::wait_ready`].
    pub fn start(&mut self, spec: &NodeSpec) -> Result<(), ProcError> {
        if let Some(existing) = self.nodes.get(&spec.name) {
            let mut node = lock(existing);
            node.refresh();
            if let Some(child) = &node.child {
                return Err(ProcError::AlreadyRunning(spec.name.clone(), child.id()));
            }
            // Leftovers of the previous run's group, if it exited on its own.
            node.kill_and_reap()?;
        }
        let io_err = |what: &'static str, path: PathBuf| {
            let node = spec.name.clone();
            move |source| ProcError::Io {
                node,
                what,
                path,
                source,
            }
        };
        fs::create_dir_all(&spec.dir).map_err(io_err("create directory", spec.dir.clone()))?;
        let log_path = spec.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err("open log", log_path.clone()))?;
        let cmd_line = command_line(spec);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        writeln!(log, "--- nemesis: starting {cmd_line} (unix time {now:.3})")
            .map_err(io_err("write log", log_path.clone()))?;
        let stderr = log
            .try_clone()
            .map_err(io_err("duplicate log handle", log_path.clone()))?;

        let netns = if self.net_paths.is_empty() {
            None
        } else {
            let path = self
                .net_paths
                .get(&spec.name)
                .ok_or_else(|| ProcError::NoNamespace {
                    node: spec.name.clone(),
                    known: self.net_paths.keys().cloned().collect(),
                })?;
            Some(File::open(path).map_err(io_err("open network namespace", path.clone()))?)
        };

        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stderr(stderr)
            .process_group(0);
        if self.stdio.is_some() {
            command.stdin(Stdio::piped()).stdout(Stdio::piped());
        } else {
            command.stdin(Stdio::null()).stdout(log);
        }
        if let Some(ns) = &netns {
            let fd = ns.as_raw_fd();
            // SAFETY: setns(2) is async-signal-safe; `netns` stays open until spawn returns.
            unsafe {
                command.pre_exec(move || {
                    setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)
                });
            }
        }
        let mut child = spawn_long_lived(command).map_err(|source| ProcError::Spawn {
            node: spec.name.clone(),
            cmd: cmd_line.clone(),
            source,
        })?;
        if let (Some(hook), Some(stdin), Some(stdout)) =
            (&self.stdio, child.stdin.take(), child.stdout.take())
        {
            hook(&spec.name, OwnedFd::from(stdin), OwnedFd::from(stdout));
        }
        drop(netns);
        tracing::debug!(node = %spec.name, pid = child.id(), cmd = %cmd_line, "node started");
        let node = Node {
            spec: spec.clone(),
            pgid: Some(Pid::from_raw(child.id() as i32)),
            child: Some(child),
            paused: false,
            exited: None,
        };
        self.nodes.insert(spec.name.clone(), Mutex::new(node));
        Ok(())
    }

    /// Polls the node's health URL every [`READY_POLL`] until it answers 200 with a JSON body,
    /// which is returned. Fails with the node's log tail if the node exits first or `timeout`
    /// passes.
    pub async fn wait_ready(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, ProcError> {
        let url = lock(self.node(name)?).spec.health_url.clone();
        // No proxy: a proxy from the environment cannot reach the sandbox's subnet.
        let client =
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| ProcError::Spawn {
                    node: name.to_string(),
                    cmd: format!("HTTP client for {url}"),
                    source: io::Error::other(e),
                })?;
        let probe = |per_try: Duration| {
            let request = client.get(&url).timeout(per_try);
            async move {
                match request.send().await {
                    Ok(resp) if resp.status() == reqwest::StatusCode::OK => resp
                        .json::<serde_json::Value>()
                        .await
                        .map_err(|e| format!("200 but the body is not JSON: {e}")),
                    Ok(resp) => Err(format!("HTTP {}", resp.status())),
                    Err(e) => Err(error_chain(&e)),
                }
            }
        };
        self.wait_ready_with(name, timeout, &url, probe).await
    }

    /// Calls `probe` every [`READY_POLL`] until it answers `Ok`, which is returned: readiness
    /// for a node that speaks no HTTP (a database's own protocol). `probe` is given how long
    /// that attempt may take; `what` names what it asks, for the error. Fails with the node's
    /// log tail if the node exits first or `timeout` passes.
    pub async fn wait_ready_with<F, Fut>(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        mut probe: F,
    ) -> Result<serde_json::Value, ProcError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: std::future::Future<Output = Result<serde_json::Value, String>>,
    {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut last_error = String::from("no attempt finished");
        loop {
            let (state, log_path) = {
                let mut node = lock(self.node(name)?);
                (node.state(), node.spec.log_path())
            };
            if let NodeState::Exited(status) = state {
                return Err(ProcError::Exited {
                    node: name.to_string(),
                    status,
                    log: LogTail::read(log_path),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProcError::NotReady {
                    node: name.to_string(),
                    url: what.to_string(),
                    waited_ms: started.elapsed().as_millis() as u64,
                    last_error,
                    state,
                    log: LogTail::read(log_path),
                });
            }
            let per_try = (deadline - now).min(Duration::from_secs(1));
            match tokio::time::timeout(per_try, probe(per_try)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = format!("no answer within {} ms", per_try.as_millis()),
            }
            tokio::time::sleep(READY_POLL.min(deadline.saturating_duration_since(Instant::now())))
                .await;
        }
    }

    /// Stops the node: SIGTERM to its group (after SIGCONT if paused), up to `bound` for it to
    /// exit, then SIGKILL. Stopping a node that is not running is not an error. Blocks the
    /// calling thread for up to `bound`; from async code use `tokio::task::block_in_place`.
    pub fn stop(&mut self, name: &str, bound: Duration) -> Result<(), ProcError> {
        let node = self.node(name)?;
        let mut node = lock(node);
        terminate(&mut node)?;
        wait_until(&mut node, Instant::now() + bound);
        node.kill_and_reap()
    }

    /// Crashes the node: SIGKILL to its group, then reaps it.
    pub fn kill(&mut self, name: &str) -> Result<(), ProcError> {
        let node = self.node(name)?;
        lock(node).kill_and_reap()
    }

    /// Starts the node again with the spec it last ran with (same data directory, same log).
    /// A node that is still running is killed first.
    pub fn restart(&mut self, name: &str) -> Result<(), ProcError> {
        let spec = {
            let mut node = lock(self.node(name)?);
            node.kill_and_reap()?;
            node.spec.clone()
        };
        self.start(&spec)
    }

    /// Freezes the node's whole process group with SIGSTOP.
    pub fn pause(&mut self, name: &str) -> Result<(), ProcError> {
        let mut node = lock(self.node(name)?);
        match node.state() {
            NodeState::Running => {
                node.signal_group(Signal::SIGSTOP)?;
                node.paused = true;
                Ok(())
            }
            state => Err(ProcError::WrongState {
                node: name.to_string(),
                state,
                action: "pause",
            }),
        }
    }

    /// Lets a paused node's process group go on with SIGCONT.
    pub fn resume(&mut self, name: &str) -> Result<(), ProcError> {
        let mut node = lock(self.node(name)?);
        match node.state() {
            NodeState::Paused => {
                node.signal_group(Signal::SIGCONT)?;
                node.paused = false;
                Ok(())
            }
            state => Err(ProcError::WrongState {
                node: name.to_string(),
                state,
                action: "resume",
            }),
        }
    }

    /// The node's state ([`NodeState::Stopped`] for a node never started).
    pub fn state(&self, name: &str) -> NodeState {
        match self.nodes.get(name) {
            Some(node) => lock(node).state(),
            None => NodeState::Stopped,
        }
    }

    /// The pid of the node's main process (also its process group id) while it runs.
    pub fn pid(&self, name: &str) -> Option<u32> {
        let node = self.nodes.get(name)?;
        let mut node = lock(node);
        node.refresh();
        node.child.as_ref().map(Child::id)
    }

    /// The last `lines` lines of the node's log ("" if there is none).
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        match self.nodes.get(name) {
            Some(node) => tail_file(&lock(node).spec.log_path(), lines),
            None => String::new(),
        }
    }

    /// The names of the nodes started so far.
    pub fn names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// Stops every node, all at once: SIGTERM to every group, up to `bound` in total, then
    /// SIGKILL. Failures are logged; every node is stopped afterwards regardless.
    pub fn stop_all(&mut self, bound: Duration) {
        let deadline = Instant::now() + bound;
        for node in self.nodes.values() {
            let mut node = lock(node);
            if let Err(e) = terminate(&mut node) {
                tracing::warn!(error = %e, "stop_all");
            }
        }
        for node in self.nodes.values() {
            let mut node = lock(node);
            wait_until(&mut node, deadline);
            if let Err(e) = node.kill_and_reap() {
                tracing::warn!(error = %e, "stop_all");
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for node in self.nodes.values() {
            let _ = lock(node).kill_and_reap();
        }
    }
}

/// SIGTERM to the group; SIGCONT after it if paused, so the signal is acted on at once.
fn terminate(node: &mut Node) -> Result<(), ProcError> {
    node.refresh();
    if node.child.is_none() {
        return Ok(());
    }
    node.signal_group(Signal::SIGTERM)?;
    if node.paused {
        node.signal_group(Signal::SIGCONT)?;
        node.paused = false;
    }
    Ok(())
}

/// Waits for the node's main process to exit, at most until `deadline`.
fn wait_until(node: &mut Node, deadline: Instant) {
    while let Some(child) = node.child.as_mut() {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => {
                // Asked to stop, so this is a stop, not an exit of its own.
                node.child = None;
                return;
            }
            Ok(None) if Instant::now() >= deadline => return,
            Ok(None) => std::thread::sleep(EXIT_POLL),
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    }
}

fn command_line(spec: &NodeSpec) -> String {
    let mut s = spec.program.display().to_string();
    for a in &spec.args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// The last `lines` lines of a file, reading at most its last 64 KiB.
pub fn tail_file(path: &std::path::Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL_BYTES);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    // A cut first line is partial; drop it unless it is all there is.
    let all = if start > 0 && all.len() > 1 {
        &all[1..]
    } else {
        &all[..]
    };
    let from = all.len().saturating_sub(lines);
    let mut out = all[from..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Reaps processes of group `pgid` that were reparented to this process (it is PID 1 inside the
/// sandbox), so that killed node children do not linger as zombies. Waits up to 200 ms for
/// SIGKILLed members to die.
fn reap_group_orphans(pgid: Pid) {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        let orphans = group_children(me, pgid.as_raw());
        if orphans.is_empty() {
            return;
        }
        for pid in &orphans {
            let _ = waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG));
        }
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Children of `parent` in process group `pgid`, other than the group leader (which its
/// `Child` handle reaps).
fn group_children(parent: i32, pgid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != pgid)
        .filter(|pid| proc_stat(*pid).is_some_and(|(_, ppid, pgrp)| ppid == parent && pgrp == pgid))
        .collect()
}

/// (state, ppid, pgrp) from /proc/<pid>/stat.
pub(crate) fn proc_stat(pid: i32) -> Option<(char, i32, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        fs::write(&path, text).expect("write");
        let tail = tail_file(&path, 3);
        assert_eq!(tail, "line 28\nline 29\nline 30\n");
        assert_eq!(tail_file(&dir.path().join("missing"), 3), "");
    }

    #[test]
    fn exit_codes_map_signals_above_128() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn proc_stat_reads_this_process() {
        let me = std::process::id() as i32;
        let (state, ppid, _) = proc_stat(me).expect("own stat");
        assert!(state == 'R' || state == 'S', "{state}");
        assert_eq!(ppid, std::os::unix::process::parent_id() as i32);
    }
}
