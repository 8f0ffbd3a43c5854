//! The runtime around a [`Replica`]: one driver thread owns the replica and its storage and
//! does all the protocol work (so fsyncs batch naturally: everything that arrived while the
//! last one ran is persisted by the next); tokio serves HTTP and carries peer messages.
//!
//! Peer traffic is `POST /raft` with a postcard-encoded batch of envelopes, one request at a
//! time per peer, each carrying everything queued for that peer. A request that fails or
//! times out is dropped: Raft tolerates lost messages, and a fresh connection after a
//! timeout avoids waiting out TCP's retransmission back-off once a partition heals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use node::clock::WallClock;
use node::config::NodeArgs;
use node::op::{OpRequest, OpResponse};
use node::server::{Backend, Forwarder};
use tokio::sync::{mpsc, oneshot};

use crate::core::{Bugs, Config, Envelope, NodeId, ReadMode, Role};
use crate::replica::{ClientId, Replica};
use crate::storage::{FileStorage, Storage};

/// Everything `raft-node` needs beyond the shared node arguments.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: NodeArgs,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
    pub tick_ms: u64,
    pub election_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub snapshot_every: u64,
    /// How long a client request may wait for its answer before it is `info`.
    pub op_timeout: Duration,
    /// Entries per AppendEntries, and unacknowledged entries per follower.
    pub max_batch: usize,
    pub max_inflight: u64,
    /// Pre-vote before each election.
    pub pre_vote: bool,
}

/// The answer of the driver to a client request.
enum Reply {
    Done(OpResponse),
    NotLeader(Option<NodeId>),
}

enum Input {
    Client {
        op: OpRequest,
        reply: oneshot::Sender<Reply>,
    },
    Peer(Vec<Envelope>),
    Stop,
}

/// What `/health` shows; refreshed by the driver after every round.
#[derive(Clone, Debug, Default)]
struct Status {
    role: &'static str,
    term: u64,
    /// Whom this server voted for in `term`.
    voted_for: Option<String>,
    leader: Option<String>,
    commit: u64,
    applied: u64,
    last_index: u64,
    snapshot_index: u64,
}

/// The cluster's ids, numbered by their sorted order so every server agrees.
#[derive(Clone, Debug)]
struct Members {
    ids: Vec<String>,
    addrs: Vec<SocketAddr>,
}

impl Members {
    fn new(args: &NodeArgs) -> Members {
        let mut peers = args.peers.clone();
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        Members {
            ids: peers.iter().map(|p| p.id.clone()).collect(),
            addrs: peers.iter().map(|p| p.addr).collect(),
        }
    }
    fn node_id(&self, id: &str) -> Option<NodeId> {
        self.ids
            .iter()
            .position(|i| i == id)
            .map(|i| NodeId(i as u64))
    }
    fn name(&self, n: NodeId) -> &str {
        self.ids.get(n.0 as usize).map_or("?", String::as_str)
    }
    fn addr(&self, n: NodeId) -> Option<SocketAddr> {
        self.addrs.get(n.0 as usize).copied()
    }
}

struct RaftBackend {
    id: String,
    inbox: std_mpsc::Sender<Input>,
    status: Arc<Mutex<Status>>,
    members: Members,
    forwarder: Forwarder,
    op_timeout: Duration,
    read_mode: ReadMode,
    bugs: Vec<&'static str>,
}

impl Backend for RaftBackend {
    fn op(
        &self,
        req: OpRequest,
        forwarded: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = OpResponse> + Send + 'static>> {
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

    fn health(&self) -> serde_json::Value {
        let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        serde_json::json!({
            "node": self.id,
            "role": s.role,
            "term": s.term,
            "voted_for": s.voted_for,
            "leader": s.leader,
            "commit": s.commit,
            "applied": s.applied,
            "last_index": s.last_index,
            "snapshot_index": s.snapshot_index,
            "read_mode": match self.read_mode { ReadMode::ReadIndex => "read-index", ReadMode::Lease => "lease" },
            "bugs": self.bugs,
        })
    }
}

async fn raft_handler(State(inbox): State<std_mpsc::Sender<Input>>, body: Bytes) -> StatusCode {
    match postcard::from_bytes::<Vec<Envelope>>(&body) {
        Ok(batch) => {
            if inbox.send(Input::Peer(batch)).is_err() {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            StatusCode::NO_CONTENT
        }
        Err(e) => {
            tracing::warn!("peer message does not decode: {e}");
            StatusCode::BAD_REQUEST
        }
    }
}

/// A POST to a peer stops growing past this many bytes of entry and snapshot data.
const MAX_PEER_BATCH_BYTES: usize = 8 << 20;

/// The largest body `/raft` accepts: a whole snapshot travels in one message.
const MAX_PEER_BODY_BYTES: usize = 1 << 30;

fn envelope_bytes(e: &Envelope) -> usize {
    use crate::core::Message;
    64 + match &e.msg {
        Message::AppendEntries { entries, .. } => entries.iter().map(|e| e.data.len() + 24).sum(),
        Message::InstallSnapshot { snapshot, .. } => snapshot.data.len(),
        _ => 0,
    }
}

/// Sends queued envelopes to one peer, one request at a time, each with all that is queued.
async fn peer_sender(addr: SocketAddr, mut rx: mpsc::Receiver<Envelope>, client: reqwest::Client) {
    let url = format!("http://{addr}/raft");
    while let Some(first) = rx.recv().await {
        // Everything queued, up to a count and a size (messages carry entries, snapshots).
        let mut bytes = envelope_bytes(&first);
        let mut batch = vec![first];
        while batch.len() < 1024 && bytes < MAX_PEER_BATCH_BYTES {
            match rx.try_recv() {
                Ok(e) => {
                    bytes += envelope_bytes(&e);
                    batch.push(e);
                }
                Err(_) => break,
            }
        }
        let body = postcard::to_allocvec(&batch).expect("envelopes always serialise");
        match client.post(&url).body(body).send().await {
            Err(e) => tracing::debug!("to {addr}: {e}"),
            Ok(resp) if !resp.status().is_success() => {
                // Lost like any message, but worth a line in the log: it is not the network.
                tracing::warn!("to {addr}: peer answered {}", resp.status());
            }
            Ok(_) => {}
        }
    }
}

/// Runs a node until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let args = &settings.node;
    args.validate().map_err(anyhow::Error::msg)?;
    let members = Members::new(args);
    let me = members
        .node_id(&args.id)
        .expect("validate() checked that --id is among --peers");
    let storage = FileStorage::open(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot open the data directory: {e}"))?;
    let mut cfg = Config::new(me, (0..members.ids.len() as u64).map(NodeId).collect());
    cfg.tick_ms = settings.tick_ms.max(1);
    cfg.election_ticks = (settings.election_timeout_ms / cfg.tick_ms).max(2) as u32;
    cfg.heartbeat_ticks = (settings.heartbeat_ms / cfg.tick_ms).max(1) as u32;
    cfg.read_mode = settings.read_mode;
    cfg.max_batch = settings.max_batch;
    cfg.max_inflight = settings.max_inflight;
    cfg.pre_vote = settings.pre_vote;
    cfg.bugs = settings.bugs;
    cfg.seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let state = storage.load();
    tracing::info!(
        "recovered term {} vote {:?}, {} log entries, snapshot at {}",
        state.hard_state.term,
        state.hard_state.vote.map(|v| members.name(v).to_string()),
        state.entries.len(),
        state.snapshot.as_ref().map_or(0, |s| s.last_index)
    );
    let replica = Replica::new(cfg, state, settings.snapshot_every).map_err(anyhow::Error::msg)?;

    let clock = WallClock::new(args.clock_offset_file.clone());
    let _watcher = clock.spawn_watcher();

    let peer_client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(1000))
        .connect_timeout(node::server::CONNECT_TIMEOUT)
        .pool_idle_timeout(node::server::POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .build()?;
    let mut outboxes: HashMap<NodeId, mpsc::Sender<Envelope>> = HashMap::new();
    for (i, addr) in members.addrs.iter().enumerate() {
        let n = NodeId(i as u64);
        if n == me {
            continue;
        }
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(peer_sender(*addr, rx, peer_client.clone()));
        outboxes.insert(n, tx);
    }

    let (inbox, inbox_rx) = std_mpsc::channel::<Input>();
    let status = Arc::new(Mutex::new(Status::default()));
    // If the driver stops (it cannot persist, or the replica is no longer safe), the whole
    // process must stop with it, not linger serving HTTP (fail-stop).
    let (driver_done_tx, driver_done_rx) = oneshot::channel::<()>();
    let driver = {
        let status = status.clone();
        let members = members.clone();
        let tick = Duration::from_millis(settings.tick_ms.max(1));
        std::thread::Builder::new()
            .name("raft-driver".into())
            .spawn(move || {
                let result = drive(
                    replica, storage, inbox_rx, outboxes, status, members, clock, tick,
                );
                let _ = driver_done_tx.send(());
                result
            })?
    };

    let backend = Arc::new(RaftBackend {
        id: args.id.clone(),
        inbox: inbox.clone(),
        status,
        members,
        forwarder: Forwarder::new(settings.op_timeout),
        op_timeout: settings.op_timeout,
        read_mode: settings.read_mode,
        bugs: settings.bugs.names(),
    });
    let router = node::server::app(backend).merge(
        Router::new()
            .route("/raft", post(raft_handler))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_PEER_BODY_BYTES))
            .with_state(inbox.clone()),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {}: cannot bind: {e}", args.listen))?;
    tracing::info!(
        "serving on {} as {} of {} ({:?} reads{})",
        args.listen,
        args.id,
        args.peers.len(),
        settings.read_mode,
        if settings.bugs == Bugs::default() {
            String::new()
        } else {
            format!(", BUGS: {}", settings.bugs.names().join(","))
        }
    );
    let stop = async move {
        tokio::select! {
            () = node::server::shutdown_signal() => {}
            _ = driver_done_rx => tracing::error!("the raft driver stopped; shutting down"),
        }
    };
    node::server::serve(listener, router, stop).await?;
    tracing::info!("shutting down");
    let _ = inbox.send(Input::Stop);
    let result = driver
        .join()
        .map_err(|_| anyhow::anyhow!("the raft driver thread panicked"))?;
    result
}

/// The driver loop: inputs in, ticks on time, then persist, send, answer, until `Stop`.
#[allow(clippy::too_many_arguments)]
fn drive(
    mut replica: Replica,
    mut storage: FileStorage,
    inbox: std_mpsc::Receiver<Input>,
    outboxes: HashMap<NodeId, mpsc::Sender<Envelope>>,
    status: Arc<Mutex<Status>>,
    members: Members,
    clock: WallClock,
    tick: Duration,
) -> anyhow::Result<()> {
    let mut waiting: HashMap<ClientId, (oneshot::Sender<Reply>, Instant)> = HashMap::new();
    let mut next_client: ClientId = 1;
    let mut next_tick = Instant::now() + tick;
    let mut last_sweep = Instant::now();
    let mut last_seen = (Role::Follower, crate::core::Term(u64::MAX), None, None);
    loop {
        let now = Instant::now();
        let first = match inbox.recv_timeout(next_tick.saturating_duration_since(now)) {
            Ok(input) => Some(input),
            Err(std_mpsc::RecvTimeoutError::Timeout) => None,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        replica.set_wall_ms(clock.now_ms());
        let mut inputs: Vec<Input> = first.into_iter().collect();
        while inputs.len() < 4096 {
            match inbox.try_recv() {
                Ok(i) => inputs.push(i),
                Err(_) => break,
            }
        }
        for input in inputs {
            match input {
                Input::Stop => return Ok(()),
                Input::Peer(batch) => {
                    for env in batch {
                        replica.step(env);
                    }
                }
                Input::Client { op, reply } => {
                    let id = next_client;
                    next_client += 1;
                    match replica.submit(id, op) {
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
            replica.tick();
            next_tick += tick;
            if next_tick < now {
                // Fell behind (the process was paused): do not replay the missed ticks.
                next_tick = now + tick;
            }
        }
        while replica.has_ready() {
            let out = replica.take_ready();
            if let Err(e) = storage.persist(&out.persist) {
                // A server that cannot make its state durable must stop (fail-stop).
                anyhow::bail!("cannot persist: {e}");
            }
            replica.advance();
            if let Some(reason) = replica.fatal() {
                anyhow::bail!("{reason}");
            }
            for env in out.messages {
                if let Some(tx) = outboxes.get(&env.to) {
                    // A full queue means the peer is far behind or unreachable: drop.
                    let _ = tx.try_send(env);
                }
            }
            for (id, resp) in out.responses {
                if let Some((tx, _)) = waiting.remove(&id) {
                    let _ = tx.send(Reply::Done(resp));
                }
            }
        }
        if last_sweep.elapsed() > Duration::from_secs(5) {
            // Answers that will never come (a deposed leader's proposals) must not pile up;
            // their clients have long given up.
            last_sweep = Instant::now();
            waiting.retain(|_, (tx, since)| {
                !tx.is_closed() && since.elapsed() < Duration::from_secs(60)
            });
        }
        let raft = replica.raft();
        let seen = (raft.role(), raft.term(), raft.vote(), raft.leader());
        if seen != last_seen {
            // Elections are what a person reads a node log for: one line per change.
            let name = |n: Option<NodeId>| n.map_or("none", |n| members.name(n));
            tracing::info!(
                "term {} {:?}, voted for {}, leader {}, log {}..={}, commit {}",
                seen.1 .0,
                seen.0,
                name(seen.2),
                name(seen.3),
                raft.log().snapshot_index() + 1,
                raft.log().last_index(),
                raft.commit_index()
            );
            last_seen = seen;
        }
        if let Ok(mut s) = status.lock() {
            *s = Status {
                role: match raft.role() {
                    Role::Leader => "leader",
                    Role::Candidate => "candidate",
                    Role::PreCandidate => "pre-candidate",
                    Role::Follower => "follower",
                },
                term: raft.term().0,
                voted_for: raft.vote().map(|v| members.name(v).to_string()),
                leader: raft.leader().map(|l| members.name(l).to_string()),
                commit: raft.commit_index(),
                applied: replica.applied(),
                last_index: raft.log().last_index(),
                snapshot_index: raft.log().snapshot_index(),
            };
        }
    }
}
