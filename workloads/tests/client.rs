//! How `OpClient` classifies each outcome (shared/DESIGN.md section 3).

mod common;

use common::{refused_addr, serve, serve_dropping, Mode};
use history::EventType;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use workloads::{Op, OpClient};

fn op(f: &str, key: &str, value: serde_json::Value) -> Op {
    Op {
        f: f.to_owned(),
        key: Some(key.to_owned()),
        value,
        local: false,
        context: None,
    }
}

#[tokio::test]
async fn ok_completions_carry_the_result() {
    let s = serve().await;
    let c = OpClient::new(Duration::from_secs(2));
    let r = c.invoke(s.addr, &Op::read("k")).await;
    assert_eq!(
        (r.kind, r.value, r.error),
        (EventType::Ok, json!(null), None)
    );
    let w = c.invoke(s.addr, &op("write", "k", json!(5))).await;
    assert_eq!(w.kind, EventType::Ok);
    assert_eq!(
        w.value,
        json!(5),
        "an ok without value keeps the invocation's"
    );
    let r = c.invoke(s.addr, &Op::read("k")).await;
    assert_eq!((r.kind, r.value), (EventType::Ok, json!(5)));
    let ok = c.invoke(s.addr, &op("cas", "k", json!([5, 6]))).await;
    assert_eq!((ok.kind, ok.value), (EventType::Ok, json!([5, 6])));
}

#[tokio::test]
async fn local_and_context_are_sent_and_siblings_and_context_come_back() {
    let s = serve().await;
    s.switches.dynamo.store(true, Ordering::SeqCst);
    let c = OpClient::new(Duration::from_secs(2));
    let w = c.invoke(s.addr, &op("write", "k", json!(5))).await;
    assert_eq!((w.kind, w.siblings), (EventType::Ok, false));
    assert_eq!(w.context.as_deref(), Some("k@1"));
    let mut read = Op::local_read("k");
    read.context = w.context.clone();
    let r = c.invoke(s.addr, &read).await;
    assert_eq!(
        (r.kind, r.value, r.siblings),
        (EventType::Ok, json!([5]), true)
    );
    assert_eq!(r.context.as_deref(), Some("k@2"));
    let sent = s.switches.received.lock().expect("lock").clone();
    assert_eq!(sent[0].get("local"), None, "unset fields are not sent");
    assert_eq!(sent[0].get("context"), None);
    assert_eq!(sent[1]["local"], json!(true));
    assert_eq!(sent[1]["context"], json!("k@1"));
}

#[tokio::test]
async fn fail_keeps_its_error_and_the_invocation_value() {
    let s = serve().await;
    let c = OpClient::new(Duration::from_secs(2));
    let r = c.invoke(s.addr, &op("cas", "k", json!([1, 2]))).await;
    assert_eq!(r.kind, EventType::Fail);
    assert_eq!(r.value, json!([1, 2]));
    assert_eq!(r.error.as_deref(), Some("precondition"));
    // A 400 with a completion body is taken as sent.
    let r = c.invoke(s.addr, &op("frobnicate", "k", json!(1))).await;
    assert_eq!(r.kind, EventType::Fail, "{r:?}");
    assert!(r.error.unwrap_or_default().contains("unknown f"));
}

#[tokio::test]
async fn info_from_the_node_is_info() {
    let s = serve().await;
    s.switches.set_mode(Mode::Info);
    let c = OpClient::new(Duration::from_secs(2));
    let r = c.invoke(s.addr, &op("write", "k", json!(3))).await;
    assert_eq!(r.kind, EventType::Info);
    assert_eq!(r.value, json!(3));
    assert_eq!(r.error.as_deref(), Some("the node does not know"));
}

#[tokio::test]
async fn a_timeout_is_info_and_bounded() {
    let s = serve().await;
    s.switches.delay_ms.store(2_000, Ordering::SeqCst);
    let c = OpClient::new(Duration::from_millis(200));
    let t0 = Instant::now();
    let r = c.invoke(s.addr, &op("write", "k", json!(1))).await;
    assert!(
        t0.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(r.kind, EventType::Info, "{r:?}");
    assert!(r.error.unwrap_or_default().contains("timeout"));
}

#[tokio::test]
async fn a_dropped_connection_is_info() {
    let addr = serve_dropping().await;
    let c = OpClient::new(Duration::from_secs(2));
    let r = c.invoke(addr, &op("write", "k", json!(1))).await;
    assert_eq!(r.kind, EventType::Info, "{r:?}");
    assert_eq!(r.value, json!(1));
}

#[tokio::test]
async fn other_statuses_and_garbage_are_info() {
    let s = serve().await;
    let c = OpClient::new(Duration::from_secs(2));
    s.switches.set_mode(Mode::Status500);
    let r = c.invoke(s.addr, &op("write", "k", json!(1))).await;
    assert_eq!(r.kind, EventType::Info);
    assert!(r.error.unwrap_or_default().contains("500"));
    s.switches.set_mode(Mode::Garbage);
    let r = c.invoke(s.addr, &Op::read("k")).await;
    assert_eq!(r.kind, EventType::Info);
    assert!(r.error.unwrap_or_default().contains("does not parse"));
}

#[tokio::test]
async fn a_refused_connection_is_fail() {
    let addr = refused_addr().await;
    let c = OpClient::new(Duration::from_secs(2));
    let r = c.invoke(addr, &op("write", "k", json!(1))).await;
    assert_eq!(r.kind, EventType::Fail, "{r:?}");
    assert!(r.error.unwrap_or_default().starts_with("connect: "));
}

#[test]
fn protocols_parse_by_name_and_unknown_names_list_the_known() {
    use workloads::Protocol;
    assert_eq!("op".parse::<Protocol>(), Ok(Protocol::Op));
    assert_eq!(
        "etcd".parse::<Protocol>(),
        Ok(Protocol::Etcd {
            serializable: false
        })
    );
    assert_eq!(
        "postgres".parse::<Protocol>(),
        Ok(Protocol::Postgres {
            isolation: workloads::postgres::Isolation::Serializable
        })
    );
    assert_eq!(Protocol::default(), Protocol::Op);
    let e = "zookeeper".parse::<Protocol>().expect_err("not a protocol");
    assert_eq!(
        e.to_string(),
        "unknown client protocol \"zookeeper\" (known: op, etcd, postgres, maelstrom)"
    );
    assert_eq!("maelstrom".parse::<Protocol>(), Ok(Protocol::Maelstrom));
    for name in Protocol::NAMES {
        let p: Protocol = name.parse().expect("every listed name parses");
        assert_eq!(p.name(), name);
    }
    assert_eq!(
        OpClient::new(Duration::from_secs(1)).protocol(),
        Protocol::Op
    );
}

#[tokio::test]
async fn the_op_leader_probe_reads_role_and_term_from_health() {
    use axum::routing::get;
    use workloads::NodeRole;
    async fn serve_health(body: serde_json::Value) -> std::net::SocketAddr {
        let app =
            axum::Router::new().route("/health", get(move || async move { axum::Json(body) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
    let c = OpClient::new(Duration::from_secs(2));
    let leader = serve_health(json!({"node": "n1", "role": "leader", "term": 7})).await;
    assert_eq!(
        c.role(leader).await,
        Some(NodeRole {
            leader: true,
            term: 7,
            campaigning: false,
            ..Default::default()
        })
    );
    let follower = serve_health(json!({"node": "n2", "role": "follower", "term": 7})).await;
    assert_eq!(
        c.role(follower).await,
        Some(NodeRole {
            leader: false,
            term: 7,
            campaigning: false,
            ..Default::default()
        })
    );
    let candidate = serve_health(json!({"node": "n4", "role": "pre-candidate", "term": 8})).await;
    assert_eq!(
        c.role(candidate).await,
        Some(NodeRole {
            leader: false,
            term: 8,
            campaigning: true,
            ..Default::default()
        })
    );
    let voter = serve_health(
        json!({"node": "n5", "role": "follower", "term": 9, "voted_for": "n4", "last_index": 31, "commit": 30}),
    )
    .await;
    assert_eq!(
        c.role(voter).await,
        Some(NodeRole {
            leader: false,
            term: 9,
            campaigning: false,
            voted_for: Some("n4".into()),
            last_index: Some(31),
            commit: Some(30),
        })
    );
    // A node that says nothing of roles is no leader.
    let silent = serve_health(json!({"node": "n3"})).await;
    assert_eq!(
        c.role(silent).await,
        Some(NodeRole {
            leader: false,
            term: 0,
            campaigning: false,
            ..Default::default()
        })
    );
    assert_eq!(c.role(refused_addr().await).await, None);
}

#[tokio::test]
async fn the_etcd_adapter_classifies_transport_failures_as_op_does() {
    use workloads::Protocol;
    let etcd = OpClient::with_protocol(
        Duration::from_millis(300),
        Protocol::Etcd {
            serializable: false,
        },
    );
    let r = etcd
        .invoke(refused_addr().await, &op("write", "k", json!(1)))
        .await;
    assert_eq!(r.kind, EventType::Fail, "{r:?}");
    assert!(r.error.unwrap_or_default().starts_with("connect: "));
    let r = etcd
        .invoke(serve_dropping().await, &op("add", "s", json!(1)))
        .await;
    assert_eq!((r.kind, r.value), (EventType::Info, json!(1)));
    // Something that answers but is not etcd: a 404 proves nothing about a write.
    let s = serve().await;
    let r = etcd.invoke(s.addr, &op("write", "k", json!(1))).await;
    assert_eq!(r.kind, EventType::Info, "{r:?}");
    assert!(r.error.unwrap_or_default().contains("404"));
    let r = etcd.invoke(s.addr, &Op::read("k")).await;
    assert_eq!(r.kind, EventType::Fail, "{r:?}");
    assert_eq!(etcd.role(s.addr).await, None);
}

/// A refusal (the node would not even try) is told apart from the system's answer that a
/// cas's precondition did not hold: the runner backs off only after the first.
#[tokio::test]
async fn refusals_are_told_apart_from_failed_preconditions() {
    let c = OpClient::new(Duration::from_secs(2));
    let refused = c
        .invoke(refused_addr().await, &op("write", "k", json!(1)))
        .await;
    assert!(refused.refused, "{refused:?}");
    let s = serve().await;
    let cas = c
        .invoke(s.addr, &op("cas", "nothing-here", json!([5, 6])))
        .await;
    assert_eq!(cas.kind, EventType::Fail, "{cas:?}");
    assert_eq!(cas.error.as_deref(), Some("precondition"));
    assert!(!cas.refused, "{cas:?}");
}
