//! The client side of the /op protocol (shared/DESIGN.md section 3) and how each outcome is
//! classified for the history: a completion the node sent is taken as it is; `fail` is only
//! ever ours when nothing was sent (the connection was never made); everything else a client
//! cannot be sure about — a timeout, a dropped connection, an unexpected status, a body that
//! does not parse — is `info`, because the operation may have taken effect.

use crate::Op;
use history::EventType;
use serde::Deserialize;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a connection attempt may take before we call the node unreachable. Nothing has
/// been sent then, so the operation certainly did not happen.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

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
}

impl Completion {
    fn info(op: &Op, error: String) -> Completion {
        Completion {
            kind: EventType::Info,
            value: op.value.clone(),
            error: Some(error),
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

/// A shared HTTP client for `/op` (cheap to clone: one connection pool per node).
#[derive(Clone, Debug)]
pub struct OpClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl OpClient {
    /// A client whose operations give up (as `info`) after `timeout` in total.
    pub fn new(timeout: Duration) -> OpClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            // Node addresses live in the sandbox: a proxy from the environment would be wrong.
            .no_proxy()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client without TLS has nothing that can fail to initialise");
        OpClient { http, timeout }
    }

    /// The total time an operation may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `op` to `http://addr/op` and classifies the outcome.
    pub async fn invoke(&self, addr: SocketAddr, op: &Op) -> Completion {
        let sent = self
            .http
            .post(format!("http://{addr}/op"))
            .json(op)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // The connection was never made, so no byte of the request left.
            Err(e) if e.is_connect() => {
                return Completion {
                    kind: EventType::Fail,
                    value: op.value.clone(),
                    error: Some(format!("connect: {}", chain(&e))),
                }
            }
            Err(e) if e.is_timeout() => {
                return Completion::info(op, format!("timeout: {}", chain(&e)))
            }
            Err(e) => return Completion::info(op, format!("request: {}", chain(&e))),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => {
                return Completion::info(
                    op,
                    format!("timeout reading the HTTP {status} body: {}", chain(&e)),
                )
            }
            Err(e) => {
                return Completion::info(op, format!("HTTP {status} body lost: {}", chain(&e)))
            }
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
                kind: EventType::Ok,
                value: match wire.value {
                    Some(v) => v,
                    None if op.f == "read" => Value::Null,
                    None => op.value.clone(),
                },
                error: None,
            },
            WireKind::Fail => Completion {
                kind: EventType::Fail,
                value: op.value.clone(),
                error: Some(error.unwrap_or_else(|| "fail (no reason given)".to_owned())),
            },
            WireKind::Info => Completion::info(
                op,
                error.unwrap_or_else(|| "info (no reason given)".to_owned()),
            ),
        }
    }
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
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
fn chain(e: &dyn std::error::Error) -> String {
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
