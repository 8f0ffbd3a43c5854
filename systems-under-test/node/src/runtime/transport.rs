//! The peer transport: `POST /<name>` with a postcard-encoded batch of messages, one request
//! at a time per peer, each carrying everything queued for that peer (up to a count and a
//! size). A request that fails or times out is dropped: the cores tolerate lost messages, and
//! a fresh connection after a timeout avoids waiting out TCP's retransmission back-off once a
//! partition heals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::sync::mpsc;

use super::driver::Input;
use super::{Core, Members, NodeId, PeerMessage};

/// A POST to a peer stops growing past this many bytes of entry and snapshot data.
pub const MAX_PEER_BATCH_BYTES: usize = 8 << 20;

/// The largest body the peer route accepts: a whole snapshot travels in one message.
pub const MAX_PEER_BODY_BYTES: usize = 1 << 30;

/// Messages in one POST, at most.
const MAX_PEER_BATCH_MESSAGES: usize = 1024;

/// Messages queued for one peer, at most; beyond it the peer is far behind or unreachable,
/// and new messages are dropped.
const PEER_QUEUE: usize = 65_536;

/// How long one POST to a peer may take before it counts as lost.
const PEER_TIMEOUT: Duration = Duration::from_millis(1000);

/// Where the driver puts messages for each peer.
pub(super) type Outboxes<M> = HashMap<NodeId, mpsc::Sender<M>>;

/// Starts one sender task per peer other than `me`; must run inside a tokio runtime.
pub(super) fn spawn_senders<M: PeerMessage>(
    members: &Members,
    me: NodeId,
    path: &str,
) -> Result<Outboxes<M>, reqwest::Error> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(PEER_TIMEOUT)
        .connect_timeout(crate::server::CONNECT_TIMEOUT)
        .pool_idle_timeout(crate::server::POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .build()?;
    let mut outboxes = HashMap::new();
    for n in members.all() {
        if n == me {
            continue;
        }
        let Some(addr) = members.addr(n) else {
            continue;
        };
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        tokio::spawn(peer_sender(addr, path.to_string(), rx, client.clone()));
        outboxes.insert(n, tx);
    }
    Ok(outboxes)
}

/// Sends queued messages to one peer, one request at a time, each with all that is queued.
async fn peer_sender<M: PeerMessage>(
    addr: SocketAddr,
    path: String,
    mut rx: mpsc::Receiver<M>,
    client: reqwest::Client,
) {
    let url = format!("http://{addr}/{path}");
    while let Some(first) = rx.recv().await {
        // Everything queued, up to a count and a size (messages carry entries, snapshots).
        let mut bytes = first.size_bytes();
        let mut batch = vec![first];
        while batch.len() < MAX_PEER_BATCH_MESSAGES && bytes < MAX_PEER_BATCH_BYTES {
            match rx.try_recv() {
                Ok(m) => {
                    bytes += m.size_bytes();
                    batch.push(m);
                }
                Err(_) => break,
            }
        }
        let body = postcard::to_allocvec(&batch).expect("peer messages always serialise");
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

/// The peer route, `POST /<path>`, handing each decoded batch to the driver.
pub(super) fn router<C: Core>(path: &str, inbox: std_mpsc::Sender<Input<C>>) -> Router {
    Router::new()
        .route(&format!("/{path}"), post(peer_handler::<C>))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PEER_BODY_BYTES))
        .with_state(inbox)
}

async fn peer_handler<C: Core>(
    State(inbox): State<std_mpsc::Sender<Input<C>>>,
    body: Bytes,
) -> StatusCode {
    match postcard::from_bytes::<Vec<C::Message>>(&body) {
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
