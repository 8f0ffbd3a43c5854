//! The driver: one thread owns the core and its storage and does all the protocol work, so
//! fsyncs batch naturally (everything that arrived while the last one ran is persisted by the
//! next); tokio serves HTTP and carries peer messages. Also the [`Backend`] that hands client
//! operations to the driver and forwards them to the leader when the core refuses them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use super::transport::{self, Outboxes};
use super::{ClientId, Core, Members, NodeId, PeerMessage, Status};
use crate::clock::WallClock;
use crate::config::NodeArgs;
use crate::op::{OpRequest, OpResponse};
use crate::server::{Backend, Forwarder};
use crate::storage::{Storage, StorageError};

/// Inputs a round of the driver takes at most, so that ticks and persisting are never
/// starved by a flood of requests.
const MAX_INPUTS_PER_ROUND: usize = 4096;

/// How often answers that will never come are swept out, and how old they may get.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
const MAX_WAIT: Duration = Duration::from_secs(60);

/// What the runtime needs to know beyond the core and its storage.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The protocol's name: the peer route (`POST /raft`), the driver thread, log lines.
    pub name: &'static str,
    /// The interval between two [`Core::tick`]s.
    pub tick: Duration,
    /// How long a client operation may wait for its answer before it is `info`.
    pub op_timeout: Duration,
    /// `/health` fields beyond the [`Status`] (e.g. the read mode, planted bugs).
    pub health_extra: serde_json::Map<String, Value>,
    /// Said in the "serving on" log line, after the cluster size (e.g. the read mode).
    pub banner: String,
}

impl Runtime {
    /// A consensus node's runtime: ticks of [`crate::config::TICK_MS`], `/health` and the
    /// banner saying how reads are served and which bugs are planted.
    pub fn consensus(
        name: &'static str,
        op_timeout: Duration,
        read_mode: &str,
        bugs: &[&'static str],
    ) -> Runtime {
        let mut health_extra = serde_json::Map::new();
        health_extra.insert("read_mode".into(), read_mode.into());
        health_extra.insert("bugs".into(), bugs.into());
        let planted = if bugs.is_empty() {
            String::new()
        } else {
            format!(", BUGS: {}", bugs.join(","))
        };
        Runtime {
            name,
            tick: Duration::from_millis(crate::config::TICK_MS),
            op_timeout,
            health_extra,
            banner: format!("{read_mode} reads{planted}"),
        }
    }
}

/// A seed for one incarnation of a server: the time and the process id, so that two
/// incarnations draw different timeouts.
pub fn boot_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id())
}

/// A node binary's `main` after its arguments were parsed and checked: runs `node` on a
/// multi-threaded tokio runtime until it stops, and turns the outcome into the exit status
/// (1, with the error on stderr and in the log, when it failed).
pub fn main<F>(program: &str, node: F) -> std::process::ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(node) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{program}: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Why a node stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The listen address cannot be bound.
    #[error("--listen {addr}: cannot bind: {source}")]
    Bind {
        /// The address of `--listen`.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `--id` is not among `--peers` (the caller should have validated the arguments).
    #[error("--id {0} is not among --peers")]
    NotAMember(String),
    /// Serving HTTP failed.
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    /// The HTTP client for peers cannot be built.
    #[error("cannot build the peer client: {0}")]
    PeerClient(#[from] reqwest::Error),
    /// The driver thread cannot be started.
    #[error("cannot start the driver thread: {0}")]
    Thread(std::io::Error),
    /// A server that cannot make its state durable must stop (fail-stop).
    #[error("cannot persist: {0}")]
    Persist(StorageError),
    /// The core can no longer go on safely.
    #[error("{0}")]
    Fatal(String),
    /// The driver thread panicked.
    #[error("the {0} driver thread panicked")]
    Panicked(&'static str),
}

/// The answer of the driver to a client operation.
pub(super) enum Reply {
    Done(OpResponse),
    NotLeader(Option<NodeId>),
}

/// What the driver's inbox carries.
pub(super) enum Input<C: Core> {
    Client {
        op: OpRequest,
        reply: oneshot::Sender<Reply>,
    },
    Peer(Vec<C::Message>),
    Stop,
}

struct CoreBackend<C: Core> {
    id: String,
    inbox: std_mpsc::Sender<Input<C>>,
    status: Arc<Mutex<Status>>,
    members: Members,
    forwarder: Forwarder,
    op_timeout: Duration,
    health_extra: serde_json::Map<String, Value>,
}

impl<C: Core> Backend for CoreBackend<C> {
    fn op(
        &self,
        req: OpRequest,
        forwarded: bool,
    ) -> Pin<Box<dyn Future<Output = OpResponse> + Send + 'static>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.inbox.send(Input::Client {
            op: req.clone(),
            reply: tx,
        });
        let members = self.members.clone();
        let forwarder = self.forwarder.clone();
        let timeout = self.op_timeout;
        Box::pin(async move {
            if sent.is_err() {
                return OpResponse::fail("node is shutting down");
            }
            match tokio::time::timeout(timeout, rx).await {
                Err(_) => OpResponse::info(format!(
                    "no answer within {} ms; the operation may or may not take effect",
                    timeout.as_millis()
                )),
                Ok(Err(_)) => OpResponse::info("node stopped while the operation was in flight"),
                Ok(Ok(Reply::Done(resp))) => resp,
                Ok(Ok(Reply::NotLeader(leader))) => {
                    let target = leader.and_then(|l| members.addr(l).map(|a| (l, a)));
                    match target {
                        Some((_, addr)) if !forwarded => forwarder.forward(addr, &req).await,
                        Some((l, _)) => OpResponse::fail(format!(
                            "not leader (forwarded here, but the leader is {})",
                            members.name(l)
                        )),
                        None => OpResponse::fail("not leader, and no leader is known"),
                    }
                }
            }
        })
    }

    fn health(&self) -> Value {
        let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let name = |n: Option<NodeId>| n.map(|n| self.members.name(n).to_string());
        let mut v = serde_json::json!({
            "node": self.id,
            "role": s.role,
            "term": s.term,
            "voted_for": name(s.voted_for),
            "leader": name(s.leader),
            "commit": s.commit,
            "applied": s.applied,
            "last_index": s.last_index,
            "snapshot_index": s.snapshot_index,
        });
        if let Some(map) = v.as_object_mut() {
            for (k, x) in &s.extra {
                map.insert((*k).to_string(), (*x).into());
            }
            for (k, x) in &self.health_extra {
                map.insert(k.clone(), x.clone());
            }
        }
        v
    }
}

/// Runs one node around `core` until SIGTERM or SIGINT, or until the driver stops (it
/// cannot persist, or the core is no longer safe). `args` must have been validated.
pub async fn run<C, S>(
    args: &NodeArgs,
    runtime: Runtime,
    core: C,
    storage: S,
) -> Result<(), RunError>
where
    C: Core,
    S: Storage<Persist = C::Persist> + Send + 'static,
{
    let members = Members::new(args);
    let me = members
        .node_id(&args.id)
        .ok_or_else(|| RunError::NotAMember(args.id.clone()))?;
    let clock = WallClock::new(args.clock_offset_file.clone());
    let _watcher = clock.spawn_watcher();
    let outboxes = transport::spawn_senders::<C::Message>(&members, me, runtime.name)?;

    let (inbox, inbox_rx) = std_mpsc::channel::<Input<C>>();
    let status = Arc::new(Mutex::new(Status::default()));
    // If the driver stops, the whole process must stop with it, not linger serving HTTP
    // (fail-stop).
    let (driver_done_tx, driver_done_rx) = oneshot::channel::<()>();
    let driver = {
        let status = status.clone();
        let members = members.clone();
        let tick = runtime.tick.max(Duration::from_millis(1));
        std::thread::Builder::new()
            .name(format!("{}-driver", runtime.name))
            .spawn(move || {
                let driver = Driver {
                    core,
                    storage,
                    outboxes,
                    status,
                    members,
                    clock,
                    tick,
                };
                let result = driver.drive(inbox_rx);
                let _ = driver_done_tx.send(());
                result
            })
            .map_err(RunError::Thread)?
    };

    let backend = Arc::new(CoreBackend::<C> {
        id: args.id.clone(),
        inbox: inbox.clone(),
        status,
        members,
        forwarder: Forwarder::new(runtime.op_timeout),
        op_timeout: runtime.op_timeout,
        health_extra: runtime.health_extra,
    });
    let router =
        crate::server::app(backend).merge(transport::router::<C>(runtime.name, inbox.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: args.listen,
            source,
        })?;
    tracing::info!(
        "serving on {} as {} of {} ({})",
        args.listen,
        args.id,
        args.peers.len(),
        runtime.banner
    );
    let name = runtime.name;
    let stop = async move {
        tokio::select! {
            () = crate::server::shutdown_signal() => {}
            _ = driver_done_rx => tracing::error!("the {name} driver stopped; shutting down"),
        }
    };
    crate::server::serve(listener, router, stop)
        .await
        .map_err(RunError::Serve)?;
    tracing::info!("shutting down");
    let _ = inbox.send(Input::Stop);
    driver.join().map_err(|_| RunError::Panicked(name))?
}

struct Driver<C: Core, S> {
    core: C,
    storage: S,
    outboxes: Outboxes<C::Message>,
    status: Arc<Mutex<Status>>,
    members: Members,
    clock: WallClock,
    tick: Duration,
}

impl<C, S> Driver<C, S>
where
    C: Core,
    S: Storage<Persist = C::Persist>,
{
    /// The driver loop: inputs in, ticks on time, then persist, send, answer, until `Stop`.
    fn drive(mut self, inbox: std_mpsc::Receiver<Input<C>>) -> Result<(), RunError> {
        let mut waiting: HashMap<ClientId, (oneshot::Sender<Reply>, Instant)> = HashMap::new();
        let mut next_client: ClientId = 1;
        let mut next_tick = Instant::now() + self.tick;
        let mut last_sweep = Instant::now();
        let mut last_seen: Option<(&'static str, u64, Option<NodeId>, Option<NodeId>)> = None;
        loop {
            let now = Instant::now();
            let first = match inbox.recv_timeout(next_tick.saturating_duration_since(now)) {
                Ok(input) => Some(input),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            };
            self.core.set_wall_ms(self.clock.now_ms());
            let mut inputs: Vec<Input<C>> = first.into_iter().collect();
            while inputs.len() < MAX_INPUTS_PER_ROUND {
                match inbox.try_recv() {
                    Ok(i) => inputs.push(i),
                    Err(_) => break,
                }
            }
            for input in inputs {
                match input {
                    Input::Stop => return Ok(()),
                    Input::Peer(batch) => {
                        for msg in batch {
                            self.core.step(msg);
                        }
                    }
                    Input::Client { op, reply } => {
                        let id = next_client;
                        next_client += 1;
                        match self.core.submit(id, op) {
                            Ok(()) => {
                                waiting.insert(id, (reply, Instant::now()));
                            }
                            Err(nl) => {
                                let _ = reply.send(Reply::NotLeader(nl.leader));
                            }
                        }
                    }
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.core.tick();
                next_tick += self.tick;
                if next_tick < now {
                    // Fell behind (the process was paused): do not replay the missed ticks.
                    next_tick = now + self.tick;
                }
            }
            while self.core.has_ready() {
                let out = self.core.ready();
                self.storage
                    .persist(&out.persist)
                    .map_err(RunError::Persist)?;
                self.core.advance();
                if let Some(reason) = self.core.fatal() {
                    return Err(RunError::Fatal(reason.to_string()));
                }
                for msg in out.messages {
                    if let Some(tx) = self.outboxes.get(&msg.to()) {
                        // A full queue means the peer is far behind or unreachable: drop.
                        let _ = tx.try_send(msg);
                    }
                }
                for (id, resp) in out.responses {
                    if let Some((tx, _)) = waiting.remove(&id) {
                        let _ = tx.send(Reply::Done(resp));
                    }
                }
            }
            if last_sweep.elapsed() > SWEEP_EVERY {
                // Answers that will never come (a deposed leader's proposals) must not pile
                // up; their clients have long given up.
                last_sweep = Instant::now();
                waiting.retain(|_, (tx, since)| !tx.is_closed() && since.elapsed() < MAX_WAIT);
            }
            let s = self.core.status();
            let seen = (s.role, s.term, s.voted_for, s.leader);
            if last_seen != Some(seen) {
                // Elections are what a person reads a node log for: one line per change.
                let name = |n: Option<NodeId>| n.map_or("none", |n| self.members.name(n));
                if !matches!(
                    s.role,
                    "leader" | "follower" | "candidate" | "pre-candidate"
                ) {
                    // A leaderless core (a Dynamo-style replica) has no term, vote or log.
                    tracing::info!("{}, leaderless: no term, vote or log", s.role);
                } else {
                    tracing::info!(
                        "term {} {}, voted for {}, leader {}, log {}..={}, commit {}",
                        s.term,
                        s.role,
                        name(s.voted_for),
                        name(s.leader),
                        s.snapshot_index + 1,
                        s.last_index,
                        s.commit
                    );
                }
                last_seen = Some(seen);
            }
            if let Ok(mut shared) = self.status.lock() {
                *shared = s;
            }
        }
    }
}
