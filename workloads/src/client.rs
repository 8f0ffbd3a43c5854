//! The client side of every node protocol, and how each outcome is classified for the history.
//!
//! Classification (the /op protocol, shared/DESIGN.md section 3): a completion the node sent is
//! taken as it is; `fail` is only ever ours when nothing was sent (the connection was never
//! made); everything else a client cannot be sure about — a timeout, a dropped connection, an
//! unexpected status, a body that does not parse — is `info`, because the operation may have
//! taken effect. Adapters for other protocols ([`crate::etcd`]) share the transport half of
//! these rules (`exchange`) and document how they read their protocol's answers.
//!
//! Adding an adapter for another system: write one module beside [`crate::etcd`] (or
//! [`crate::postgres`], for a protocol that is not HTTP) with an
//! `invoke` (an [`Op`] in, a [`Completion`] out) and a `role` (the leader probe), add a
//! [`Protocol`] variant with its name in [`Protocol::NAMES`] and [`Protocol::from_str`], and give
//! it its arm in the two matches that dispatch, in [`OpClient::invoke`] and [`OpClient::role`]
//! (both are exhaustive, so the compiler points at them, and at the harness's readiness and
//! status fields in `src/cluster.rs`). Callers keep using [`OpClient`].

use crate::postgres::{self, Isolation};
use crate::{etcd, Op};
use history::EventType;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection attempt may take before we call the node unreachable. Nothing has
/// been sent then, so the operation certainly did not happen.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest a leader probe ([`OpClient::role`]) waits for its answer (less when the client's
/// own timeout is shorter): nemeses probe every node in turn while faults are going on.
pub const ROLE_TIMEOUT: Duration = Duration::from_millis(500);

/// Which protocol a client speaks to the nodes (shared/DESIGN.md section 5: "which client
/// protocol to speak").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// The /op protocol (shared/DESIGN.md section 3), spoken natively by the bundled nodes.
    #[default]
    Op,
    /// etcd v3's JSON gateway ([`crate::etcd`]).
    Etcd {
        /// Reads ask for `"serializable": true`: the member answers from its own state without
        /// asking the leader, so a read can be stale.
        serializable: bool,
    },
    /// PostgreSQL's own protocol ([`crate::postgres`]): every operation one transaction.
    Postgres {
        /// The isolation level of every transaction.
        isolation: Isolation,
    },
    /// Maelstrom's JSON messages over the nodes' stdin and stdout ([`crate::maelstrom`]),
    /// through the harness's own network.
    Maelstrom,
}

impl Protocol {
    /// The names [`Protocol::from_str`] accepts.
    pub const NAMES: [&'static str; 4] = ["op", "etcd", "postgres", "maelstrom"];

    /// The protocol's name, as [`Protocol::from_str`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Op => "op",
            Protocol::Etcd { .. } => "etcd",
            Protocol::Postgres { .. } => "postgres",
            Protocol::Maelstrom => "maelstrom",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Etcd { serializable: true } => write!(f, "etcd (serializable reads)"),
            Protocol::Postgres { isolation } => write!(f, "postgres ({isolation})"),
            other => f.write_str(other.name()),
        }
    }
}

/// A protocol name that is not one of [`Protocol::NAMES`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown client protocol {name:?} (known: {known})", known = Protocol::NAMES.join(", "))]
pub struct UnknownProtocol {
    pub name: String,
}

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    /// `"op"`, `"etcd"` (with linearizable reads; set `serializable` on the variant for the
    /// other kind) or `"postgres"` (serializable; set `isolation` on the variant for another
    /// level).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "op" => Ok(Protocol::Op),
            "etcd" => Ok(Protocol::Etcd {
                serializable: false,
            }),
            "postgres" => Ok(Protocol::Postgres {
                isolation: Isolation::default(),
            }),
            "maelstrom" => Ok(Protocol::Maelstrom),
            other => Err(UnknownProtocol {
                name: other.to_owned(),
            }),
        }
    }
}

/// What a node says of itself, for nemeses that target "the leader".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeRole {
    /// The node believes it leads. A node cut off from the others may still believe so: prefer
    /// the highest `term` among several that say yes.
    pub leader: bool,
    /// The node's current term (0 when it did not say).
    pub term: u64,
    /// The node says it is running for leader (`/health` role `candidate` or
    /// `pre-candidate`); false when the system does not tell.
    pub campaigning: bool,
    /// Whom the node voted for in its current term (`/health` field `voted_for`); None when it
    /// has not voted or does not say.
    pub voted_for: Option<String>,
    /// The index of the last entry in the node's log (`/health` field `last_index`), when it
    /// says.
    pub last_index: Option<u64>,
    /// The node's commit index (`/health` field `commit`), when it says.
    pub commit: Option<u64>,
}

/// How one operation completed, ready to be recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// `Ok`, `Fail` or `Info` (never `Invoke`).
    pub kind: EventType,
    /// For `ok`: the node's result (a read's value, null when absent), or the invocation's value
    /// when the node sent none (a write). For `fail` and `info`: the invocation's value.
    pub value: Value,
    /// Why the operation failed or is unknown.
    pub error: Option<String>,
    /// A `fail` because the system would not even try (no leader known, a connection refused),
    /// as opposed to its answer (a cas whose precondition did not hold): the runner backs off
    /// after instant refusals. Not recorded in the history.
    pub refused: bool,
    /// On `ok`: `value` is the list of concurrent versions (`"siblings": true`).
    pub siblings: bool,
    /// On `ok`: the context the system returned, for the session's next operation on the key.
    pub context: Option<String>,
}

impl Completion {
    /// `info` (unknown) with the invocation's value.
    pub(crate) fn info(op: &Op, error: String) -> Completion {
        Completion {
            kind: EventType::Info,
            value: op.value.clone(),
            error: Some(error),
            refused: false,
            siblings: false,
            context: None,
        }
    }

    /// `fail` (certainly did not happen) with the invocation's value: a refusal.
    pub(crate) fn fail(op: &Op, error: String) -> Completion {
        Completion {
            kind: EventType::Fail,
            value: op.value.clone(),
            error: Some(error),
            refused: true,
            siblings: false,
            context: None,
        }
    }

    /// `fail` because the operation's precondition did not hold: the system's answer.
    pub(crate) fn precondition_failed(op: &Op, error: String) -> Completion {
        Completion::aborted(op, error)
    }

    /// `fail` because the system answered that it did not do it (a transaction it rolled
    /// back), or because the client gave up on it before asking for it to take effect: not a
    /// refusal to back off from.
    pub(crate) fn aborted(op: &Op, error: String) -> Completion {
        Completion {
            refused: false,
            ..Completion::fail(op, error)
        }
    }

    /// `ok` with `value`.
    pub(crate) fn ok(value: Value) -> Completion {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
            refused: false,
            siblings: false,
            context: None,
        }
    }
}

/// The body of an answer to `POST /op`. `value` keeps "present but null" apart from "absent".
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: WireKind,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    siblings: bool,
    #[serde(default)]
    context: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireKind {
    Ok,
    Fail,
    Info,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A shared client for one protocol (cheap to clone: one connection pool per node, shared by
/// the clones).
#[derive(Clone, Debug)]
pub struct OpClient {
    http: reqwest::Client,
    /// The idle PostgreSQL connections (empty for the other protocols).
    pg: Arc<postgres::Pool>,
    timeout: Duration,
    protocol: Protocol,
    /// The run's Maelstrom network and workload (for [`Protocol::Maelstrom`] only).
    maelstrom: Option<crate::maelstrom::Client>,
}

impl OpClient {
    /// An /op client whose operations give up (as `info`) after `timeout` in total.
    pub fn new(timeout: Duration) -> OpClient {
        OpClient::with_protocol(timeout, Protocol::Op)
    }

    /// A client that speaks `protocol`; its operations give up after `timeout` in total.
    pub fn with_protocol(timeout: Duration, protocol: Protocol) -> OpClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            // Node addresses live in the sandbox: a proxy from the environment would be wrong.
            .no_proxy()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client without TLS has nothing that can fail to initialise");
        OpClient {
            http,
            pg: Arc::default(),
            timeout,
            protocol,
            maelstrom: None,
        }
    }

    /// A client for Maelstrom nodes on `net`, whose operations are `workload`'s.
    pub fn maelstrom(timeout: Duration, net: maelstrom::Net, workload: &str) -> OpClient {
        OpClient {
            maelstrom: Some(crate::maelstrom::Client {
                net,
                workload: workload.to_owned(),
            }),
            ..OpClient::with_protocol(timeout, Protocol::Maelstrom)
        }
    }

    /// The total time an operation may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The protocol this client speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sends `op` to the node at `addr` and classifies the outcome.
    pub async fn invoke(&self, addr: SocketAddr, op: &Op) -> Completion {
        match self.protocol {
            Protocol::Op => self.invoke_op(addr, op).await,
            Protocol::Etcd { serializable } => {
                etcd::invoke(&self.http, addr, op, serializable).await
            }
            Protocol::Postgres { isolation } => {
                postgres::invoke(&self.pg, addr, op, isolation, self.timeout).await
            }
            Protocol::Maelstrom => match &self.maelstrom {
                Some(m) => m.invoke(addr, op, self.timeout).await,
                None => Completion::fail(op, "no Maelstrom network to send through".into()),
            },
        }
    }

    /// Asks the node at `addr` whether it leads, and in which term; `None` when it cannot be
    /// asked or its answer does not parse. Waits at most [`ROLE_TIMEOUT`].
    pub async fn role(&self, addr: SocketAddr) -> Option<NodeRole> {
        let timeout = ROLE_TIMEOUT.min(self.timeout);
        match self.protocol {
            Protocol::Op => op_role(&self.http, addr, timeout).await,
            Protocol::Etcd { .. } => etcd::role(&self.http, addr, timeout).await,
            Protocol::Postgres { .. } => postgres::role(&self.pg, addr, timeout).await,
            // Maelstrom's nodes say nothing of roles.
            Protocol::Maelstrom => None,
        }
    }

    /// Sends `op` to `http://addr/op`.
    async fn invoke_op(&self, addr: SocketAddr, op: &Op) -> Completion {
        let request = self.http.post(format!("http://{addr}/op")).json(op);
        let (status, body) = match exchange(request, op).await {
            Ok(answer) => answer,
            Err(c) => return c,
        };
        // 200 carries a completion and 400 a refusal of a bad request; both are taken as sent.
        if status != reqwest::StatusCode::OK && status != reqwest::StatusCode::BAD_REQUEST {
            return Completion::info(op, format!("HTTP {status}: {}", snippet(&body)));
        }
        let wire: Wire = match serde_json::from_slice(&body) {
            Ok(w) => w,
            Err(e) => {
                return Completion::info(
                    op,
                    format!(
                        "HTTP {status} with a body that does not parse ({e}): {}",
                        snippet(&body)
                    ),
                )
            }
        };
        let error = wire.error.map(|e| match e {
            Value::String(s) => s,
            other => other.to_string(),
        });
        match wire.kind {
            WireKind::Ok => Completion {
                siblings: wire.siblings,
                context: wire.context,
                ..Completion::ok(match wire.value {
                    Some(v) => v,
                    None if op.f == "read" => Value::Null,
                    None => op.value.clone(),
                })
            },
            // DESIGN section 3: a cas whose value did not match says "precondition".
            WireKind::Fail if error.as_deref() == Some("precondition") => {
                Completion::precondition_failed(op, "precondition".to_owned())
            }
            WireKind::Fail => Completion::fail(
                op,
                error.unwrap_or_else(|| "fail (no reason given)".to_owned()),
            ),
            WireKind::Info => Completion::info(
                op,
                error.unwrap_or_else(|| "info (no reason given)".to_owned()),
            ),
        }
    }
}

/// The /op protocol's leader probe: `GET /health`, whose `"role"` and `"term"` the bundled nodes
/// fill in (absent fields: not a leader, term 0).
async fn op_role(http: &reqwest::Client, addr: SocketAddr, timeout: Duration) -> Option<NodeRole> {
    let response = http
        .get(format!("http://{addr}/health"))
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let health: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    let role = health.get("role").and_then(Value::as_str).unwrap_or("");
    Some(NodeRole {
        leader: role == "leader",
        term: health.get("term").and_then(Value::as_u64).unwrap_or(0),
        campaigning: matches!(role, "candidate" | "pre-candidate" | "precandidate"),
        voted_for: health
            .get("voted_for")
            .and_then(Value::as_str)
            .map(str::to_string),
        last_index: health.get("last_index").and_then(Value::as_u64),
        commit: health.get("commit").and_then(Value::as_u64),
    })
}

/// Sends `request` (which carries `op`) and reads the whole answer. The transport half of the
/// classification, the same for every protocol: the connection never made is `fail` (no byte of
/// the request left); a timeout or a connection lost before the whole answer arrived is `info`.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    op: &Op,
) -> Result<(reqwest::StatusCode, Vec<u8>), Completion> {
    let response = match request.send().await {
        Ok(r) => r,
        // The connection was never made, so no byte of the request left.
        Err(e) if e.is_connect() => {
            return Err(Completion::fail(op, format!("connect: {}", chain(&e))))
        }
        Err(e) if e.is_timeout() => {
            return Err(Completion::info(op, format!("timeout: {}", chain(&e))))
        }
        Err(e) => return Err(Completion::info(op, format!("request: {}", chain(&e)))),
    };
    let status = response.status();
    match response.bytes().await {
        // Usually no copy: the buffer is handed over when nothing else holds it.
        Ok(body) => Ok((status, Vec::from(body))),
        Err(e) if e.is_timeout() => Err(Completion::info(
            op,
            format!("timeout reading the HTTP {status} body: {}", chain(&e)),
        )),
        Err(e) => Err(Completion::info(
            op,
            format!("HTTP {status} body lost: {}", chain(&e)),
        )),
    }
}

/// The start of a body, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX_CHARS: usize = 120;
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().count() > MAX_CHARS {
        out.push_str("...");
    }
    out
}

/// An error with its causes: reqwest's own message omits the interesting part ("error sending
/// request" rather than "connection refused").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
