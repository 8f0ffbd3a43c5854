//! The network between Maelstrom nodes: the harness reads every line each node writes to
//! stdout and routes it by `dest` — to another node, to one of the services, or back to the
//! client waiting for it (`in_reply_to`) — and writes what reaches a node to its stdin, so
//! partitions, loss and delay act here, on the routing, as they do in Maelstrom.
//!
//! A node is attached with its process's pipes ([`Net::attach`]) each time it starts, is sent
//! `init` (and the workload's setup messages, such as broadcast's `topology`) before anything
//! else, and is ready when it has answered them. Its process may be paused (messages wait in
//! its pipe), or killed: its stdout ends, calls waiting on it are answered `crash`
//! (indefinite), and messages to it are dropped until it is attached again.
//!
//! Nothing a node writes can stop the routing: a line that is not a message, a body without
//! `type`, a reply nobody waits for, a message to an unknown node are each logged with the
//! node and line number, counted, and dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use history::rng::SplitMix64;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::msg::{self, error_of, Message};
use crate::services::{self, Services};

/// The client id the harness's setup messages (`init`, `topology`) come from.
pub const SETUP_CLIENT: &str = "c0";
/// The client id the workload's operations come from.
pub const CLIENT: &str = "c1";
/// How many timed-out request ids are remembered, so a late reply is told from a stray one.
const EXPIRED_KEPT: usize = 100_000;
/// The rng purpose of the routing's draws (loss, delay).
const NET_PURPOSE: u64 = 0x6e_6574;
/// How much of a malformed line the log and the warning keep.
const SHOWN_BYTES: usize = 300;

/// Why a call got no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No node of that name.
    UnknownNode(String),
    /// The node is not running or has not answered `init` yet: nothing was sent.
    NotReady(String),
    /// No reply within the timeout: the request may have taken effect.
    Timeout,
    /// The node's process ended with the request outstanding: it may have taken effect.
    Crashed,
}

impl CallError {
    /// Whether the request certainly had no effect (it was never sent).
    pub fn definite(&self) -> bool {
        matches!(self, CallError::UnknownNode(_) | CallError::NotReady(_))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::UnknownNode(n) => write!(f, "no node {n}"),
            CallError::NotReady(why) => write!(f, "not sent: {why}"),
            CallError::Timeout => f.write_str("timeout"),
            CallError::Crashed => f.write_str("crash: the node's process ended"),
        }
    }
}

/// Counts of what the network did, for the run's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages delivered from one node to another.
    pub between_nodes: u64,
    /// Requests the workload's clients sent to nodes.
    pub client_requests: u64,
    /// Replies nodes sent the clients.
    pub client_replies: u64,
    /// Requests nodes sent the services.
    pub service_requests: u64,
    /// Node-to-node messages dropped by a partition.
    pub dropped_partition: u64,
    /// Node-to-node messages dropped by packet loss.
    pub dropped_loss: u64,
    /// Messages to a node whose process was not running (or not reading: [`OUTBOX_MAX`]
    /// queued), lines its killed process wrote that
    /// were still being read after its restart, and delayed messages whose destination was
    /// restarted meanwhile (a crash loses what was in flight to it).
    pub dropped_down: u64,
    /// Replies to a request that had already timed out.
    pub late_replies: u64,
    /// Lines that were not messages, or messages with nowhere to go, per node.
    pub malformed: BTreeMap<String, u64>,
    /// Times a node was sent `init` (once per start).
    pub inits: u64,
}

impl Stats {
    /// The figures as JSON, for run.json.
    pub fn to_json(&self) -> Value {
        json!({
            "between_nodes": self.between_nodes,
            "client_requests": self.client_requests,
            "client_replies": self.client_replies,
            "service_requests": self.service_requests,
            "dropped_partition": self.dropped_partition,
            "dropped_loss": self.dropped_loss,
            "dropped_down": self.dropped_down,
            "late_replies": self.late_replies,
            "malformed": self.malformed,
            "inits": self.inits,
        })
    }

    /// Lines that were not messages, over every node.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().sum()
    }
}

/// A Maelstrom network for a fixed set of nodes. Cheap to clone.
#[derive(Clone)]
pub struct Net {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("maelstrom::Net")
            .field("nodes", &self.inner.nodes)
            .finish()
    }
}

struct Inner {
    nodes: Vec<String>,
    started: Instant,
    next_id: AtomicU64,
    runtime: tokio::runtime::Handle,
    init_timeout: Duration,
    state: Mutex<State>,
    log: Option<Mutex<BufWriter<File>>>,
}

struct State {
    links: HashMap<String, Link>,
    pending: HashMap<u64, Pending>,
    expired: HashSet<u64>,
    expired_order: VecDeque<u64>,
    grudge: BTreeMap<String, BTreeSet<String>>,
    loss_percent: u8,
    delay: Option<(u64, u64)>,
    rng: SplitMix64,
    services: Services,
    stats: Stats,
    /// Bodies sent to a node after `init`, each time it starts (broadcast's `topology`).
    setup: BTreeMap<String, Vec<Map<String, Value>>>,
    addrs: HashMap<SocketAddr, String>,
}

/// Messages queued for one node's stdin at most: a node that stops reading (SIGSTOP) holds
/// up to this many (about 20 MB of typical messages), and what comes after is dropped.
pub const OUTBOX_MAX: usize = 100_000;

#[derive(Default)]
struct Link {
    /// Counts the node's starts; tasks of an earlier start leave a later one alone.
    generation: u64,
    outbox: Option<mpsc::Sender<String>>,
    ready: bool,
    /// Why the last start never became ready.
    init_error: Option<String>,
}

struct Pending {
    node: String,
    tx: oneshot::Sender<Reply>,
}

/// A reply body, or why there was none.
type Reply = Result<Map<String, Value>, CallError>;

/// How a network is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seeds packet loss, delay and the services' stale reads.
    pub seed: u64,
    /// How long a node may take to answer `init` and its setup messages.
    pub init_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            init_timeout: Duration::from_secs(10),
        }
    }
}

impl Net {
    /// A network for `nodes`, logging every message to `log` (JSON Lines) when given. Must be
    /// called inside a tokio runtime, which runs its tasks.
    pub fn new(nodes: &[String], log: Option<&Path>, options: Options) -> std::io::Result<Net> {
        let log = match log {
            Some(p) => Some(Mutex::new(BufWriter::with_capacity(
                256 * 1024,
                File::create(p)?,
            ))),
            None => None,
        };
        let state = State {
            links: nodes.iter().map(|n| (n.clone(), Link::default())).collect(),
            pending: HashMap::new(),
            expired: HashSet::new(),
            expired_order: VecDeque::new(),
            grudge: BTreeMap::new(),
            loss_percent: 0,
            delay: None,
            rng: SplitMix64::for_stream(options.seed, 1, NET_PURPOSE),
            services: Services::new(options.seed),
            stats: Stats::default(),
            setup: BTreeMap::new(),
            addrs: HashMap::new(),
        };
        Ok(Net {
            inner: Arc::new(Inner {
                nodes: nodes.to_vec(),
                started: Instant::now(),
                next_id: AtomicU64::new(1),
                runtime: tokio::runtime::Handle::current(),
                init_timeout: options.init_timeout,
                state: Mutex::new(state),
                log,
            }),
        })
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> &[String] {
        &self.inner.nodes
    }

    /// Messages every start of `node` is sent after `init` (and must answer) before it is
    /// ready: broadcast's `topology`.
    pub fn set_setup(&self, node: &str, bodies: Vec<Map<String, Value>>) {
        self.inner.lock().setup.insert(node.to_owned(), bodies);
    }

    /// Which node each client address stands for (the harness's clients name nodes by
    /// address).
    pub fn set_addresses(&self, addrs: &[(String, SocketAddr)]) {
        self.inner.lock().addrs = addrs.iter().map(|(n, a)| (*a, n.clone())).collect();
    }

    /// The node at a client address.
    pub fn node_at(&self, addr: SocketAddr) -> Option<String> {
        self.inner.lock().addrs.get(&addr).cloned()
    }

    /// Connects a freshly started process of `node`: `stdin` is where messages to it go,
    /// `stdout` where its messages come from. Sends it `init` (and its setup) at once; calls
    /// still waiting on an earlier process of the node are answered [`CallError::Crashed`].
    pub fn attach(&self, node: &str, stdin: OwnedFd, stdout: OwnedFd) {
        let inner = &self.inner;
        let (tx, rx) = mpsc::channel(OUTBOX_MAX);
        let init_id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        let generation = {
            let mut st = inner.lock();
            let Some(link) = st.links.get_mut(node) else {
                tracing::warn!(node, "attach: not a node of this network");
                return;
            };
            link.generation += 1;
            link.outbox = Some(tx.clone());
            link.ready = false;
            link.init_error = None;
            let generation = link.generation;
            st.fail_pending(node);
            st.stats.inits += 1;
            // `init` is the first line the process reads.
            let mut body = Map::new();
            body.insert("type".into(), "init".into());
            body.insert("msg_id".into(), init_id.into());
            body.insert("node_id".into(), node.into());
            body.insert("node_ids".into(), json!(inner.nodes));
            let line = Message {
                src: SETUP_CLIENT.into(),
                dest: node.into(),
                body,
            }
            .to_line();
            inner.log_line("send", None, &line);
            let _ = tx.try_send(line);
            st.pending.insert(
                init_id,
                Pending {
                    node: node.into(),
                    tx: reply_tx,
                },
            );
            generation
        };
        let _enter = inner.runtime.enter();
        inner.runtime.spawn(write_loop(rx, stdin));
        inner
            .runtime
            .spawn(read_loop(self.clone(), node.to_owned(), generation, stdout));
        inner.runtime.spawn(initialize(
            self.clone(),
            node.to_owned(),
            generation,
            reply_rx,
        ));
    }

    /// Ok once the node's current process has answered `init` and its setup; otherwise why
    /// not yet.
    pub fn ready(&self, node: &str) -> Result<(), String> {
        let st = self.inner.lock();
        match st.links.get(node) {
            None => Err(format!("{node} is not a node of this network")),
            Some(l) if l.ready => Ok(()),
            Some(l) => Err(match &l.init_error {
                Some(e) => e.clone(),
                None if l.outbox.is_none() => format!("{node} is not running"),
                None => format!("{node} has not answered init yet"),
            }),
        }
    }

    /// Sends `body` (a request; its `msg_id` is set here) from the workload's client to
    /// `node` and waits up to `timeout` for the reply body, which may be an error body.
    pub async fn call(
        &self,
        node: &str,
        body: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Map<String, Value>, CallError> {
        let rx = self.inner.send_request(node, CLIENT, body, true)?;
        self.inner.wait(rx.0, rx.1, timeout).await
    }

    /// Node `x` stops hearing from every node in `grudge[x]`; replaces any earlier partition.
    pub fn set_grudge(&self, grudge: &BTreeMap<String, BTreeSet<String>>) {
        self.inner.lock().grudge = grudge.clone();
    }

    /// Drops `percent`% of the messages between nodes (0: none).
    pub fn set_loss(&self, percent: u8) {
        self.inner.lock().loss_percent = percent.min(100);
    }

    /// Holds every message between nodes for `mean_ms ± jitter_ms` (0 lifts it).
    pub fn set_delay(&self, mean_ms: u64, jitter_ms: u64, seed: u64) {
        let mut st = self.inner.lock();
        st.delay = (mean_ms > 0).then_some((mean_ms, jitter_ms));
        st.rng = SplitMix64::for_stream(seed, 2, NET_PURPOSE);
    }

    /// Lifts every partition, loss and delay.
    pub fn heal(&self) {
        let mut st = self.inner.lock();
        st.grudge.clear();
        st.loss_percent = 0;
        st.delay = None;
    }

    /// What the network has done so far.
    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Requests served per service.
    pub fn services_served(&self) -> BTreeMap<String, u64> {
        let st = self.inner.lock();
        st.services
            .served
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    /// Writes out what the message log holds in memory.
    pub fn flush_log(&self) {
        if let Some(log) = &self.inner.log {
            let _ = log.lock().unwrap_or_else(|p| p.into_inner()).flush();
        }
    }

    /// Routes one line `node` wrote (its `number`th, for messages about it). Public for tests
    /// that drive the network without processes.
    pub fn route_line(&self, node: &str, number: u64, line: &[u8]) {
        self.route(node, None, number, line);
    }
}

impl Net {
    /// Routes a line `node`'s process `generation` wrote (`None`: whichever runs now).
    fn route(&self, node: &str, generation: Option<u64>, number: u64, line: &[u8]) {
        let inner = &*self.inner;
        let message = match msg::parse(line) {
            Ok(m) => m,
            Err(e) => {
                let mut st = inner.lock();
                inner.malformed(&mut st, node, number, &e.to_string(), line);
                return;
            }
        };
        let raw = || String::from_utf8_lossy(line).into_owned();
        let mut st = inner.lock();
        let now = st.links.get(node).map(|l| l.generation);
        if generation.is_some_and(|g| now != Some(g)) {
            // The killed process's last lines, read after its successor started: that
            // process is gone, and its replies would match the new one's requests.
            st.stats.dropped_down += 1;
            inner.log_line("drop", Some("written by a process since killed"), &raw());
            return;
        }
        if message.src != node {
            let why = format!("src is {:?}, but the message came from {node}", message.src);
            inner.malformed(&mut st, node, number, &why, line);
            return;
        }
        let dest = message.dest.as_str();
        if st.links.contains_key(dest) {
            if st.grudge.get(dest).is_some_and(|g| g.contains(node)) {
                st.stats.dropped_partition += 1;
                inner.log_line("drop", Some("partition"), &raw());
                return;
            }
            if st.loss_percent > 0 && st.rng.below(100) < u64::from(st.loss_percent) {
                st.stats.dropped_loss += 1;
                inner.log_line("drop", Some("loss"), &raw());
                return;
            }
            if let Some((mean, jitter)) = st.delay {
                let low = mean.saturating_sub(jitter);
                let ms = low + st.rng.below(mean + jitter - low + 1);
                let sent_to = st.links.get(dest).map(|l| l.generation);
                drop(st);
                let net = self.clone();
                let dest = dest.to_owned();
                let line = raw();
                inner.runtime.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let mut st = net.inner.lock();
                    if st.links.get(&dest).map(|l| l.generation) != sent_to {
                        // In flight to a process that has since been killed: lost with it.
                        st.stats.dropped_down += 1;
                        net.inner
                            .log_line("drop", Some("its destination restarted"), &line);
                        return;
                    }
                    net.inner.deliver(&mut st, &dest, line, true);
                });
                return;
            }
            inner.deliver(&mut st, dest, raw(), true);
        } else if services::is_service(dest) {
            st.stats.service_requests += 1;
            inner.log_line("send", None, &raw());
            let reply = st.services.handle(dest, node, &message.body);
            let line = Message {
                src: dest.into(),
                dest: node.into(),
                body: reply,
            }
            .to_line();
            inner.deliver(&mut st, node, line, false);
        } else if dest == CLIENT || dest == SETUP_CLIENT {
            let Some(id) = message.in_reply_to() else {
                let why =
                    format!("a message to client {dest} that is not a reply (no `in_reply_to`)");
                inner.malformed(&mut st, node, number, &why, line);
                return;
            };
            match st.pending.remove(&id) {
                Some(p) => {
                    if dest == CLIENT {
                        st.stats.client_replies += 1;
                    }
                    inner.log_line("send", None, &raw());
                    let _ = p.tx.send(Ok(message.body));
                }
                None if st.expired.contains(&id) => {
                    st.stats.late_replies += 1;
                    inner.log_line("late", Some("the request had timed out"), &raw());
                }
                None => {
                    let why = format!("a reply to msg_id {id}, which no client is waiting for");
                    inner.malformed(&mut st, node, number, &why, line);
                }
            }
        } else {
            let why = format!(
                "a message to {dest:?}, which is neither a node ({}), a service ({}) nor a client",
                inner.nodes.join(", "),
                services::NAMES.join(", ")
            );
            inner.malformed(&mut st, node, number, &why, line);
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// One line of the message log: `{"t": ms, "event": ..., "msg": <the message>}`, plus the
    /// reason for a drop.
    fn log_line(&self, event: &str, why: Option<&str>, raw: &str) {
        let Some(log) = &self.log else { return };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        let _ = match why {
            None => writeln!(
                log,
                "{{\"t\":{:.3},\"event\":\"{event}\",\"msg\":{raw}}}",
                self.now_ms()
            ),
            Some(why) => writeln!(
                log,
                "{{\"t\":{:.3},\"event\":\"{event}\",\"why\":{},\"msg\":{raw}}}",
                self.now_ms(),
                Value::String(why.to_owned())
            ),
        };
    }

    fn send_request(
        &self,
        node: &str,
        client: &str,
        mut body: Map<String, Value>,
        require_ready: bool,
    ) -> Result<(u64, oneshot::Receiver<Reply>), CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        body.insert("msg_id".into(), id.into());
        let line = Message {
            src: client.into(),
            dest: node.into(),
            body,
        }
        .to_line();
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        let link = st
            .links
            .get(node)
            .ok_or_else(|| CallError::UnknownNode(node.into()))?;
        if require_ready && !link.ready {
            return Err(CallError::NotReady(match link.outbox {
                None => format!("{node} is not running"),
                Some(_) => format!("{node} has not answered init yet"),
            }));
        }
        let Some(outbox) = &link.outbox else {
            return Err(CallError::NotReady(format!("{node} is not running")));
        };
        self.log_line("send", None, &line);
        match outbox.try_send(line) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(CallError::NotReady(format!(
                    "{node} is not reading its input ({OUTBOX_MAX} messages wait for it)"
                )))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(CallError::NotReady(format!("{node} is not running")))
            }
        }
        st.pending.insert(
            id,
            Pending {
                node: node.into(),
                tx,
            },
        );
        if client == CLIENT {
            st.stats.client_requests += 1;
        }
        Ok((id, rx))
    }

    async fn wait(
        &self,
        id: u64,
        rx: oneshot::Receiver<Reply>,
        timeout: Duration,
    ) -> Result<Map<String, Value>, CallError> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(CallError::Crashed),
            Err(_) => {
                let mut st = self.lock();
                if st.pending.remove(&id).is_some() {
                    st.expired.insert(id);
                    st.expired_order.push_back(id);
                    if st.expired_order.len() > EXPIRED_KEPT {
                        if let Some(old) = st.expired_order.pop_front() {
                            st.expired.remove(&old);
                        }
                    }
                }
                Err(CallError::Timeout)
            }
        }
    }

    fn malformed(&self, st: &mut State, node: &str, number: u64, why: &str, line: &[u8]) {
        *st.stats.malformed.entry(node.to_owned()).or_default() += 1;
        let shown = String::from_utf8_lossy(&line[..line.len().min(SHOWN_BYTES)]).into_owned();
        tracing::warn!(node, line = number, "maelstrom: {why}: {shown}");
        let why = format!("{node}, line {number} of its output: {why}");
        self.log_line("malformed", Some(&why), &Value::String(shown).to_string());
    }

    /// Puts `line` in `dest`'s stdin queue, or drops it when `dest` is not running or has
    /// [`OUTBOX_MAX`] messages waiting (paused: as a full socket buffer would).
    fn deliver(&self, st: &mut State, dest: &str, line: String, between_nodes: bool) {
        let dropped = match st.links.get(dest).and_then(|l| l.outbox.as_ref()) {
            None => Some("not running"),
            Some(o) => match o.try_send(line.clone()) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some("its input is full"),
                Err(mpsc::error::TrySendError::Closed(_)) => Some("not running"),
            },
        };
        match dropped {
            Some(why) => {
                st.stats.dropped_down += 1;
                self.log_line("drop", Some(why), &line);
            }
            None => {
                self.log_line("send", None, &line);
                if between_nodes {
                    st.stats.between_nodes += 1;
                }
            }
        }
    }

    /// Why `node`'s process `generation` is not ready, if that process still runs.
    fn set_init_error(&self, node: &str, generation: u64, why: String) {
        let mut st = self.lock();
        if let Some(link) = st.links.get_mut(node) {
            if link.generation == generation {
                tracing::warn!(node, "maelstrom: {why}");
                link.init_error = Some(why);
            }
        }
    }

    fn detach(&self, node: &str, generation: u64) {
        let mut st = self.lock();
        let Some(link) = st.links.get_mut(node) else {
            return;
        };
        if link.generation != generation {
            return;
        }
        link.outbox = None;
        link.ready = false;
        st.fail_pending(node);
    }
}

impl State {
    /// Answers every call waiting on `node` with [`CallError::Crashed`].
    fn fail_pending(&mut self, node: &str) {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.node == node)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(p) = self.pending.remove(&id) {
                let _ = p.tx.send(Err(CallError::Crashed));
            }
        }
    }
}

/// Writes what is queued for a node to its stdin, a batch at a time.
async fn write_loop(mut rx: mpsc::Receiver<String>, stdin: OwnedFd) {
    let Ok(mut pipe) = pipe::Sender::from_owned_fd(stdin) else {
        return;
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(line) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        while buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(line) => {
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                }
                Err(_) => break,
            }
        }
        if pipe.write_all(&buf).await.is_err() {
            return;
        }
    }
}

/// Reads a node's stdout line by line and routes each; at its end, the node is down.
async fn read_loop(net: Net, node: String, generation: u64, stdout: OwnedFd) {
    if let Ok(pipe) = pipe::Receiver::from_owned_fd(stdout) {
        let mut reader = BufReader::with_capacity(64 * 1024, pipe);
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            number += 1;
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            net.route(&node, Some(generation), number, &line);
        }
    }
    net.inner.detach(&node, generation);
}

/// Waits for `init_ok`, then sends the node's setup messages one by one; the node is ready
/// when each was answered.
async fn initialize(
    net: Net,
    node: String,
    generation: u64,
    mut init_reply: oneshot::Receiver<Reply>,
) {
    let inner = &net.inner;
    let outcome: Result<(), String> = async {
        let ended = |_| format!("{node} did not answer init: its process ended");
        let reply = match tokio::time::timeout(inner.init_timeout, &mut init_reply).await {
            Ok(r) => r.map_err(ended)?,
            Err(_) => {
                // Late: say why the node is not ready, and keep waiting (a node paused right
                // after a restart answers when it is resumed), until this process ends.
                let late = format!(
                    "{node} did not answer init within {} ms",
                    inner.init_timeout.as_millis()
                );
                inner.set_init_error(&node, generation, late);
                init_reply.await.map_err(ended)?
            }
        };
        let reply = reply.map_err(|e| format!("{node} did not answer init: {e}"))?;
        expect_ok(&node, "init", &reply)?;
        let setup = inner.lock().setup.get(&node).cloned().unwrap_or_default();
        for body in setup {
            let kind = body
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned();
            let (id, rx) = inner
                .send_request(&node, SETUP_CLIENT, body, false)
                .map_err(|e| format!("{node}: {kind}: {e}"))?;
            let reply = inner
                .wait(id, rx, inner.init_timeout)
                .await
                .map_err(|e| format!("{node} did not answer {kind}: {e}"))?;
            expect_ok(&node, &kind, &reply)?;
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            let mut st = inner.lock();
            if let Some(link) = st.links.get_mut(&node) {
                if link.generation == generation {
                    link.ready = true;
                    link.init_error = None;
                }
            }
        }
        Err(e) => inner.set_init_error(&node, generation, e),
    }
}

fn expect_ok(node: &str, kind: &str, reply: &Map<String, Value>) -> Result<(), String> {
    if let Some((code, text)) = error_of(reply) {
        return Err(format!(
            "{node} answered {kind} with error {} ({}): {text}",
            code.0,
            code.name()
        ));
    }
    let got = reply.get("type").and_then(Value::as_str).unwrap_or("");
    if got != format!("{kind}_ok") {
        return Err(format!(
            "{node} answered {kind} with `{got}`, not `{kind}_ok`"
        ));
    }
    Ok(())
}
