//! A laggard below a peer's snapshot fetches at every heartbeat or Accept; the peer answers
//! with the snapshot once per resend period, not once per Fetch. Sending every time piled
//! copies of a multi-megabyte snapshot up in the peer queue, ahead of the Accepted and
//! heartbeat replies a new leader needs, so it lost its majority and elections churned for
//! seconds (seen in `processes.rs`, `a_follower_far_behind_catches_up_through_a_snapshot`).

use paxos::core::{Config, Envelope, Message, NodeId, Paxos, Persisted, Snapshot};

/// The snapshots `p` sends to each peer in its next `Ready`.
fn snapshots_sent(p: &mut Paxos) -> Vec<NodeId> {
    p.take_ready()
        .messages
        .into_iter()
        .filter(|e| {
            matches!(
                e.msg,
                Message::Learn {
                    snapshot: Some(_),
                    ..
                }
            )
        })
        .map(|e| e.to)
        .collect()
}

fn fetch(from: NodeId, slot: u64) -> Envelope {
    Envelope {
        from,
        to: NodeId(0),
        msg: Message::Fetch { from: slot },
    }
}

#[test]
fn a_snapshot_goes_to_a_laggard_once_per_resend_period() {
    let cfg = Config::new(NodeId(0), vec![NodeId(0), NodeId(1), NodeId(2)]);
    let resend_ticks = cfg.election_ticks * 2;
    let state = Persisted {
        snapshot: Some(Snapshot {
            last_slot: 10,
            data: vec![7; 1_000],
        }),
        ..Persisted::default()
    };
    let mut p = Paxos::new(cfg, state);
    let (laggard, other) = (NodeId(1), NodeId(2));

    p.step(fetch(laggard, 3));
    assert_eq!(snapshots_sent(&mut p), vec![laggard]);
    // It asks again at every tick while the first copy is on its way: no second copy.
    for tick in 1..resend_ticks {
        p.tick();
        p.step(fetch(laggard, 3));
        assert_eq!(snapshots_sent(&mut p), vec![], "tick {tick}");
    }
    // Another laggard gets its own at once.
    p.step(fetch(other, 1));
    assert_eq!(snapshots_sent(&mut p), vec![other]);
    // After the period, a copy that may have been lost goes again.
    p.tick();
    p.step(fetch(laggard, 3));
    assert_eq!(snapshots_sent(&mut p), vec![laggard]);
    // A Fetch above the snapshot is answered from the log, never with the snapshot.
    p.step(fetch(laggard, 11));
    assert_eq!(snapshots_sent(&mut p), vec![]);
}
