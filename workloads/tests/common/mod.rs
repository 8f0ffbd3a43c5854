//! A tiny in-memory /op server (registers and sets, shared/DESIGN.md section 3) with switches
//! that make it misbehave: answer late, answer with another status, answer garbage.

#![allow(dead_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Normal = 0,
    Status500 = 1,
    Garbage = 2,
    /// `{"type":"info","error":"the node does not know"}`.
    Info = 3,
}

#[derive(Default)]
pub struct Switches {
    pub kv: Mutex<HashMap<String, Value>>,
    /// Each answer waits this long first.
    pub delay_ms: AtomicU64,
    /// When non-zero, every n-th operation (1-based) waits `slow_ms` first.
    pub slow_every: AtomicU64,
    pub slow_ms: AtomicU64,
    pub mode: AtomicU8,
    pub ops: AtomicU64,
    /// Dynamo-style answers: every ok read or write returns a context (`"<key>@<n>"`), and a
    /// read of a present value returns it as a one-element sibling list.
    pub dynamo: AtomicBool,
    /// A local read answers `fail` `not-a-replica`.
    pub not_a_replica: AtomicBool,
    /// Every request received, as sent.
    pub received: Mutex<Vec<Value>>,
}

impl Switches {
    pub fn set_mode(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::SeqCst);
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub switches: Arc<Switches>,
}

pub fn app(switches: Arc<Switches>) -> Router {
    Router::new().route("/op", post(op)).with_state(switches)
}

/// Serves `app` on 127.0.0.1:0.
pub async fn serve() -> TestServer {
    let switches = Arc::new(Switches::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app(switches.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    TestServer { addr, switches }
}

/// A server that reads a request and closes the connection without answering.
pub async fn serve_dropping() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                drop(sock);
            });
        }
    });
    addr
}

/// An address nobody listens on (connections are refused).
pub async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

async fn op(State(s): State<Arc<Switches>>, Json(req): Json<Value>) -> Response {
    let n = s.ops.fetch_add(1, Ordering::SeqCst) + 1;
    let delay = s.delay_ms.load(Ordering::SeqCst);
    let every = s.slow_every.load(Ordering::SeqCst);
    let slow = if every > 0 && n % every == 0 {
        s.slow_ms.load(Ordering::SeqCst)
    } else {
        0
    };
    if delay + slow > 0 {
        tokio::time::sleep(Duration::from_millis(delay + slow)).await;
    }
    match s.mode.load(Ordering::SeqCst) {
        1 => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        2 => return (StatusCode::OK, "{\"type\":").into_response(),
        3 => {
            return Json(json!({"type": "info", "error": "the node does not know"})).into_response()
        }
        _ => {}
    }
    s.received.lock().expect("lock").push(req.clone());
    if req["local"] == json!(true) && s.not_a_replica.load(Ordering::SeqCst) {
        return Json(json!({"type": "fail", "error": "not-a-replica: this node keeps other keys"}))
            .into_response();
    }
    let f = req["f"].as_str().unwrap_or("");
    let key = req["key"].as_str().unwrap_or("").to_owned();
    let value = req.get("value").cloned().unwrap_or(Value::Null);
    let mut kv = s.kv.lock().expect("lock");
    let body = match f {
        "read" => json!({"type": "ok", "value": kv.get(&key).cloned().unwrap_or(Value::Null)}),
        "write" => {
            kv.insert(key, value);
            json!({"type": "ok"})
        }
        "cas" => {
            let cur = kv.get(&key).cloned().unwrap_or(Value::Null);
            if value.get(0) == Some(&cur) {
                kv.insert(key, value.get(1).cloned().unwrap_or(Value::Null));
                json!({"type": "ok"})
            } else {
                json!({"type": "fail", "error": "precondition"})
            }
        }
        "add" => {
            let set = kv.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = set.as_array_mut() {
                if !a.contains(&value) {
                    a.push(value);
                }
            }
            json!({"type": "ok"})
        }
        other => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"type": "fail", "error": format!("unknown f {other:?}")})),
            )
                .into_response()
        }
    };
    let mut body = body;
    if s.dynamo.load(Ordering::SeqCst) && body["type"] == json!("ok") {
        body["context"] = json!(format!("{}@{n}", req["key"].as_str().unwrap_or("")));
        if f == "read" && !body["value"].is_null() {
            body["value"] = json!([body["value"].clone()]);
            body["siblings"] = json!(true);
        }
    }
    Json(body).into_response()
}
