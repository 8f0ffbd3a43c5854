//! `--session causal` in a scripted cluster: a session that read a version whose writer had
//! seen another key is never served an older version of that key, not even where the only
//! replicas it can reach are empty; with per-key contexts (the default) it is.

mod sim;

use dynamo::core::Session;
use node::op::{OpKind, OpRequest, OpResponse};
use serde_json::json;
use sim::{Dynamo, Net};

const NODES: usize = 5;

fn with(ctx: Option<&String>, mut op: OpRequest) -> OpRequest {
    op.context = ctx.cloned();
    op
}

/// Session A (at n0) writes x=1 then y=2; session B (at n4) reads y=2, is then cut off from
/// every replica of x, and reads x. Returns B's read of y and of x, and of x after the heal.
fn scenario(session: Session) -> (OpResponse, OpResponse, OpResponse) {
    // A key x that n0 replicates and n4 does not: x's replicas are then all of n4's way to it.
    let x = (0..200)
        .map(|k| format!("x{k}"))
        .find(|k| {
            let o = sim::owners(NODES, k);
            o.contains(&0) && !o.contains(&4)
        })
        .expect("such a key");
    let holders = sim::owners(NODES, &x);
    let mut system = Dynamo::new(NODES);
    system.session = session;
    let mut net = Net::new(system, 11);
    net.run(20);
    let w1 = net.op(0, OpRequest::new(OpKind::Write, x.clone(), json!(1)));
    assert!(w1.is_ok(), "{w1:?}");
    let w2 = net.op(
        0,
        with(
            w1.context.as_ref(),
            OpRequest::new(OpKind::Write, "y", json!(2)),
        ),
    );
    assert!(w2.is_ok(), "{w2:?}");
    let ry = net.op(
        4,
        OpRequest::new(OpKind::Read, "y", serde_json::Value::Null),
    );
    for &h in &holders {
        net.cut.insert((4, h));
        net.cut.insert((h, 4));
    }
    // Long enough for n4's failure detector to give x's replicas up.
    net.run(100);
    let read_x = || OpRequest::new(OpKind::Read, x.clone(), serde_json::Value::Null);
    let rx = net.op(4, with(ry.context.as_ref(), read_x()));
    net.cut.clear();
    net.run(100);
    let healed = net.op(4, with(ry.context.as_ref(), read_x()));
    (ry, rx, healed)
}

#[test]
fn a_causal_session_never_reads_older_than_what_it_saw() {
    let (ry, rx, healed) = scenario(Session::Causal);
    assert_eq!(ry.value, Some(json!(2)), "{ry:?}");
    let ctx = ry.context.clone().unwrap_or_default();
    assert!(
        ctx.starts_with("s:") && ctx.contains("\"x"),
        "y's version carries x: {ctx}"
    );
    assert!(
        !rx.is_ok(),
        "no reachable node has x=1, so the read fails: {rx:?}"
    );
    assert!(
        rx.error
            .as_deref()
            .unwrap_or_default()
            .contains("caught up"),
        "{rx:?}"
    );
    assert_eq!(healed.value, Some(json!(1)), "{healed:?}");
}

#[test]
fn per_key_contexts_let_a_session_go_back_in_time() {
    let (ry, rx, _) = scenario(Session::Key);
    assert_eq!(ry.value, Some(json!(2)), "{ry:?}");
    assert!(rx.is_ok(), "{rx:?}");
    assert_eq!(
        rx.value,
        Some(serde_json::Value::Null),
        "the default serves the empty stand-ins' answer: x's initial value, though the \
         session read y, written after x=1"
    );
}
