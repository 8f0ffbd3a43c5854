//! The HTTP side of a node: `POST /op` and `GET /health` (DESIGN section 3), graceful
//! shutdown, and forwarding an operation from a follower to the leader.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::op::{OpRequest, OpResponse};

/// Marks a request as forwarded by a follower, so the receiver does not forward it again
/// (one hop at most: a forwarding loop during an election would otherwise be possible).
pub const FORWARDED_HEADER: &str = "x-harness-forwarded";

/// How long a forwarder waits for a TCP connection before declaring the leader unreachable.
/// Short because nothing has been sent yet, so giving up early is a clean `fail`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// How long an idle pooled connection to a leader is kept. Short, so that after a partition or
/// leader change a forwarder does not keep writing into a connection that leads nowhere.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a store plugs into the HTTP server.
pub trait Backend: Send + Sync + 'static {
    /// Performs one operation. `forwarded` is true when the request carried
    /// [`FORWARDED_HEADER`], i.e. another node already forwarded it here.
    fn op(
        &self,
        req: OpRequest,
        forwarded: bool,
    ) -> Pin<Box<dyn Future<Output = OpResponse> + Send + 'static>>;

    /// The node's state for `GET /health`; must include `"node"` (the node id).
    fn health(&self) -> serde_json::Value;
}

/// The router serving `POST /op` and `GET /health`. Merge further routes (e.g. a consensus
/// peer route) into it with `Router::merge`.
pub fn app(backend: Arc<dyn Backend>) -> Router {
    Router::new()
        .route("/op", post(op_handler))
        .route("/health", get(health_handler))
        .with_state(backend)
}

async fn op_handler(
    State(backend): State<Arc<dyn Backend>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<OpResponse>) {
    // Parsed by hand rather than with the Json extractor so that any content type is accepted
    // and every refusal has the same shape: a `fail` body, since nothing was attempted.
    let req: OpRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => return bad_request(e.to_string()),
    };
    if let Err(e) = req.validate() {
        return bad_request(e);
    }
    let forwarded = headers.contains_key(FORWARDED_HEADER);
    (StatusCode::OK, Json(backend.op(req, forwarded).await))
}

fn bad_request(reason: String) -> (StatusCode, Json<OpResponse>) {
    (
        StatusCode::BAD_REQUEST,
        Json(OpResponse::fail(format!("bad request: {reason}"))),
    )
}

async fn health_handler(State(backend): State<Arc<dyn Backend>>) -> Json<serde_json::Value> {
    Json(backend.health())
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets
/// requests in flight finish (mini-redis's `run(listener, shutdown)`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves when the process receives SIGTERM (how the harness stops a node) or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let wait = |kind: SignalKind, name: &'static str| async move {
        match signal(kind) {
            Ok(mut stream) => {
                stream.recv().await;
                tracing::info!("received {name}, shutting down");
            }
            Err(e) => {
                // Without this handler the other signal still works; never resolve from here.
                tracing::warn!("cannot listen for {name}: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = wait(SignalKind::terminate(), "SIGTERM") => {}
        () = wait(SignalKind::interrupt(), "SIGINT") => {}
    }
}

/// Forwards operations to another node's `/op`, classifying failures the way the history needs:
/// `fail` only when the request certainly never left, `info` whenever it may have been applied.
#[derive(Clone, Debug)]
pub struct Forwarder {
    client: reqwest::Client,
}

impl Forwarder {
    /// A forwarder whose requests give up after `timeout` in total.
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // Node addresses live in the sandbox: a proxy from the environment would be wrong.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client without TLS has nothing that can fail to initialise");
        Forwarder { client }
    }

    /// POSTs `req` to `http://addr/op` marked with [`FORWARDED_HEADER`], and relays the answer.
    pub async fn forward(&self, addr: SocketAddr, req: &OpRequest) -> OpResponse {
        let sent = self
            .client
            .post(format!("http://{addr}/op"))
            .header(FORWARDED_HEADER, "1")
            .json(req)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                // No connection, so no byte of the request reached the leader.
                return OpResponse::fail(format!("leader {addr} unreachable: {}", chain(&e)));
            }
            Err(e) if e.is_timeout() => {
                return OpResponse::info(format!("leader {addr} timed out: {}", chain(&e)))
            }
            Err(e) => {
                return OpResponse::info(format!("forwarding to leader {addr}: {}", chain(&e)))
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return OpResponse::info(format!(
                    "leader {addr} answered HTTP {status} but the body was lost: {}",
                    chain(&e)
                ))
            }
        };
        // 200 carries the leader's completion and 400 a refusal of a bad request; both bodies
        // are OpResponses to relay as they are. Anything else is unknown.
        let relayable =
            status == reqwest::StatusCode::OK || status == reqwest::StatusCode::BAD_REQUEST;
        match serde_json::from_slice::<OpResponse>(&body) {
            Ok(resp) if relayable => resp,
            Ok(_) => OpResponse::info(format!("leader {addr} answered HTTP {status}")),
            Err(e) => OpResponse::info(format!(
                "leader {addr} answered HTTP {status} with a body that does not parse: {e}"
            )),
        }
    }
}

/// An error with its causes, since reqwest's own message omits the interesting part
/// ("error sending request" rather than "connection refused").
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvStore;
    use crate::op::{OpKind, Outcome};
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::{json, Value};
    use std::sync::Mutex;
    use tower::ServiceExt;

    /// A single-node store: the KV state machine behind a mutex, recording forwarded flags.
    struct LocalKv {
        kv: Mutex<KvStore>,
        forwarded: Mutex<Vec<bool>>,
    }

    impl LocalKv {
        fn new() -> Arc<LocalKv> {
            Arc::new(LocalKv {
                kv: Mutex::new(KvStore::new()),
                forwarded: Mutex::new(Vec::new()),
            })
        }
    }

    impl Backend for LocalKv {
        fn op(
            &self,
            req: OpRequest,
            forwarded: bool,
        ) -> Pin<Box<dyn Future<Output = OpResponse> + Send + 'static>> {
            self.forwarded.lock().expect("test lock").push(forwarded);
            let resp = self.kv.lock().expect("test lock").apply(&req);
            Box::pin(async move { resp })
        }

        fn health(&self) -> Value {
            json!({"node": "n1", "role": "single"})
        }
    }

    async fn call(router: Router, req: Request<Body>) -> (StatusCode, Value) {
        let resp = router.oneshot(req).await.expect("router is infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("JSON body"))
    }

    fn post_op(body: &str) -> Request<Body> {
        Request::post("/op")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    }

    #[tokio::test]
    async fn op_happy_path() {
        let backend = LocalKv::new();
        let router = app(backend.clone());
        let (s, v) = call(
            router.clone(),
            post_op(r#"{"f":"write","key":"k","value":5}"#),
        )
        .await;
        assert_eq!((s, v), (StatusCode::OK, json!({"type": "ok"})));
        let (s, v) = call(router.clone(), post_op(r#"{"f":"read","key":"k"}"#)).await;
        assert_eq!((s, v), (StatusCode::OK, json!({"type": "ok", "value": 5})));
        // No content type at all still works: clients should not need to get it right.
        let bare = Request::post("/op")
            .body(Body::from(r#"{"f":"read","key":"absent"}"#))
            .expect("request");
        let (s, v) = call(router.clone(), bare).await;
        assert_eq!(
            (s, v),
            (StatusCode::OK, json!({"type": "ok", "value": null}))
        );
        let (s, v) = call(router, post_op(r#"{"f":"cas","key":"k","value":[4,9]}"#)).await;
        assert_eq!(
            (s, v),
            (
                StatusCode::OK,
                json!({"type": "fail", "error": "precondition"})
            )
        );
        assert_eq!(*backend.forwarded.lock().expect("lock"), [false; 4]);
    }

    #[tokio::test]
    async fn bad_requests_are_400_with_a_fail_body() {
        let backend = LocalKv::new();
        let router = app(backend.clone());
        for body in [
            "not json",
            r#"{"f":"frobnicate","key":"k"}"#,
            r#"{"f":"cas","key":"k","value":5}"#,
            r#"{"f":"read"}"#,
        ] {
            let (s, v) = call(router.clone(), post_op(body)).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(v["type"], "fail", "{body}");
            let err = v["error"].as_str().expect("error text");
            assert!(err.starts_with("bad request: "), "{err}");
        }
        assert!(
            backend.forwarded.lock().expect("lock").is_empty(),
            "nothing reached the backend"
        );
    }

    #[tokio::test]
    async fn health_and_forwarded_flag() {
        let backend = LocalKv::new();
        let router = app(backend.clone());
        let req = Request::get("/health")
            .body(Body::empty())
            .expect("request");
        let (s, v) = call(router.clone(), req).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["node"], "n1");
        let req = Request::post("/op")
            .header(FORWARDED_HEADER, "1")
            .body(Body::from(r#"{"f":"read","key":"k"}"#))
            .expect("request");
        let (s, _) = call(router, req).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(*backend.forwarded.lock().expect("lock"), [true]);
    }

    async fn spawn_server(router: Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    #[tokio::test]
    async fn forwarder_relays_and_marks_requests() {
        let backend = LocalKv::new();
        let (addr, stop) = spawn_server(app(backend.clone())).await;
        let fwd = Forwarder::new(Duration::from_secs(2));
        let w = fwd
            .forward(addr, &OpRequest::new(OpKind::Write, "k", json!(1)))
            .await;
        assert_eq!(w, OpResponse::ok());
        let r = fwd
            .forward(addr, &OpRequest::new(OpKind::Read, "k", Value::Null))
            .await;
        assert_eq!(r, OpResponse::ok_value(json!(1)));
        let absent = fwd
            .forward(addr, &OpRequest::new(OpKind::Read, "nope", Value::Null))
            .await;
        assert_eq!(absent, OpResponse::ok_value(Value::Null));
        let bad = fwd
            .forward(addr, &OpRequest::new(OpKind::Cas, "k", json!(1)))
            .await;
        assert_eq!(
            bad.kind,
            Outcome::Fail,
            "a refused bad request relays as fail"
        );
        assert_eq!(*backend.forwarded.lock().expect("lock"), [true, true, true]);
        let _ = stop.send(());
    }

    #[tokio::test]
    async fn forwarder_to_a_closed_port_fails() {
        // Bind then drop, so the port is (almost certainly) closed.
        let addr = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            l.local_addr().expect("local addr")
        };
        let resp = Forwarder::new(Duration::from_secs(2))
            .forward(addr, &OpRequest::new(OpKind::Read, "k", Value::Null))
            .await;
        assert_eq!(resp.kind, Outcome::Fail, "{resp:?}");
        let err = resp.error.expect("reason");
        assert!(
            err.starts_with(&format!("leader {addr} unreachable: ")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn forwarder_timeout_and_garbage_are_info() {
        let slow = Router::new().route(
            "/op",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let (slow_addr, stop_slow) = spawn_server(slow).await;
        let fwd = Forwarder::new(Duration::from_millis(200));
        let resp = fwd
            .forward(slow_addr, &OpRequest::new(OpKind::Write, "k", json!(1)))
            .await;
        assert_eq!(resp.kind, Outcome::Info, "{resp:?}");

        let garbage = Router::new().route("/op", post(|| async { "not an op response" }));
        let (garbage_addr, stop_garbage) = spawn_server(garbage).await;
        let resp = fwd
            .forward(garbage_addr, &OpRequest::new(OpKind::Write, "k", json!(1)))
            .await;
        assert_eq!(resp.kind, Outcome::Info, "{resp:?}");
        assert!(
            resp.error
                .as_deref()
                .is_some_and(|e| e.contains("does not parse")),
            "{resp:?}"
        );

        // A 5xx is unknown even when its body looks like a completion.
        let broken = Router::new().route(
            "/op",
            post(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"type":"fail","error":"x"}"#,
                )
            }),
        );
        let (broken_addr, stop_broken) = spawn_server(broken).await;
        let resp = fwd
            .forward(broken_addr, &OpRequest::new(OpKind::Write, "k", json!(1)))
            .await;
        assert_eq!(resp.kind, Outcome::Info, "{resp:?}");
        let _ = stop_broken.send(());
        let _ = stop_slow.send(());
        let _ = stop_garbage.send(());
    }

    #[tokio::test]
    async fn serve_stops_on_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app(LocalKv::new()), async move {
            let _ = stopped.await;
        }));
        let _ = stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server stops promptly")
            .expect("server task did not panic");
        assert!(result.is_ok(), "{result:?}");
    }
}
