//! Each planted bug of dynamo-node, hunted in the simulation within a bounded number of
//! seeds, and caught with its own signature; the same hunts without the bug stay clean.

mod sim;

use harness_sim::{Sim, SimConfig};
use sim::{config, judge, Dynamo};

const NODES: usize = 5;

/// The problems of one run: a broken invariant first, then the end state's.
fn problems(cfg: SimConfig, system: Dynamo) -> Vec<String> {
    let r = Sim::new(cfg, system).run();
    let mut p = judge(NODES, &r.system.end, &r.history);
    p.extend(sim::checked(&r.history));
    if let Some(v) = r.violation {
        p.insert(0, v);
    }
    p
}

/// Runs seeds 1..=bound until one shows `signature`; panics with what was seen otherwise.
fn hunt(bug: &str, signature: &str, bound: u64, cfg: impl Fn(u64) -> SimConfig) -> u64 {
    let mut seen = Vec::new();
    for seed in 1..=bound {
        let p = problems(cfg(seed), Dynamo::new(NODES).with_bug(bug));
        if p.iter().any(|x| x.contains(signature)) {
            return seed;
        }
        seen.push((seed, p.into_iter().take(2).collect::<Vec<_>>()));
    }
    panic!("--bug {bug}: no {signature} within {bound} seeds; saw {seen:#?}");
}

/// Seeds a hunt may take at most.
const BOUND: u64 = 20;

#[test]
fn vclock_merge_min_leaves_a_sibling_its_own_context_never_saw() {
    let seed = hunt("vclock-merge-min", sim::DOT_COVERED, BOUND, |s| {
        config(NODES, s)
    });
    eprintln!("vclock-merge-min caught at seed {seed}");
}

#[test]
fn repair_older_moves_a_counter_backwards() {
    let seed = hunt("repair-older", sim::COUNTER_MONOTONE, BOUND, |s| {
        config(NODES, s)
    });
    eprintln!("repair-older caught at seed {seed}");
}

#[test]
fn merkle_skip_leaves_replicas_diverged_after_the_quiet_end() {
    let seed = hunt("merkle-skip", "DIVERGED", BOUND, |s| config(NODES, s));
    eprintln!("merkle-skip caught at seed {seed}");
}

#[test]
fn the_hunts_without_bugs_stay_clean() {
    for seed in 1..=BOUND {
        let p = problems(config(NODES, seed), Dynamo::new(NODES));
        assert!(p.is_empty(), "seed {seed}: {p:#?}");
    }
}

/// The scripted scenario both hint tests share: the three owners of a set key cut off from
/// the two other servers, which acknowledge an add as stand-ins; both stand-ins crash and
/// restart; the partition heals. Returns what each owner holds at the end.
pub fn stand_ins_restart_before_handing_back(system: Dynamo) -> Vec<serde_json::Value> {
    use node::op::{OpKind, OpRequest};
    let key = (0..100)
        .map(|k| format!("s{k}"))
        .find(|k| {
            let o = sim::owners(NODES, k);
            o.contains(&0) && o.contains(&1) && o.contains(&2)
        })
        .expect("some key is owned by n0, n1 and n2");
    let mut net = sim::Net::new(system, 7);
    net.run(20);
    net.isolate(&[3, 4]);
    net.run(80);
    let r = net.op(
        3,
        OpRequest::new(OpKind::Add, key.clone(), serde_json::json!(42)),
    );
    assert!(r.is_ok(), "the minority side stays available: {r:?}");
    net.crash(3);
    net.crash(4);
    net.start(3);
    net.start(4);
    net.cut.clear();
    net.run(1_000);
    (0..3)
        .map(|o| net.local(o, &key).value.unwrap_or_default())
        .collect()
}

#[test]
fn volatile_hints_lose_a_write_whose_stand_ins_restart() {
    let held = stand_ins_restart_before_handing_back(Dynamo::new(NODES));
    for v in &held {
        assert_eq!(
            v,
            &serde_json::json!([42]),
            "durable hints hand the add back: {held:?}"
        );
    }
    let lost = stand_ins_restart_before_handing_back(Dynamo::new(NODES).with_bug("volatile-hints"));
    for v in &lost {
        assert_eq!(
            v,
            &serde_json::Value::Null,
            "hints kept in memory are gone after the restart, and the owners never hear of \
             the add: {lost:?}"
        );
    }
}

/// LWW under clock skew: a write made with the context of the value it replaces must win
/// over it even when its coordinator's clock is behind.
fn causally_later_write_under_skew(system: Dynamo) -> serde_json::Value {
    use node::op::{OpKind, OpRequest};
    let mut net = sim::Net::new(system, 3);
    net.offsets[0] = 10_000;
    net.run(20);
    let w = net.op(0, OpRequest::new(OpKind::Write, "k", serde_json::json!(1)));
    assert!(w.is_ok(), "{w:?}");
    let r = net.op(
        1,
        OpRequest::new(OpKind::Read, "k", serde_json::Value::Null),
    );
    assert_eq!(r.value, Some(serde_json::json!(1)));
    let mut w2 = OpRequest::new(OpKind::Write, "k", serde_json::json!(2));
    w2.context = r.context.clone();
    assert!(net.op(1, w2).is_ok());
    net.run(200);
    net.op(
        2,
        OpRequest::new(OpKind::Read, "k", serde_json::Value::Null),
    )
    .value
    .unwrap_or_default()
}

#[test]
fn lww_no_max_loses_a_causally_later_write_to_a_fast_clock() {
    let mut lww = Dynamo::new(NODES);
    lww.conflict = dynamo::version::Conflict::Lww;
    assert_eq!(causally_later_write_under_skew(lww), serde_json::json!(2));
    let mut bug = Dynamo::new(NODES).with_bug("lww-no-max");
    bug.conflict = dynamo::version::Conflict::Lww;
    assert_eq!(
        causally_later_write_under_skew(bug),
        serde_json::json!(1),
        "the write stamped by a clock 10 s behind loses to the value it replaced"
    );
}

#[test]
fn lww_no_max_resurrects_a_replaced_value_under_random_clock_jumps() {
    // The random hunt: LWW, clocks up to 5 s apart that jump now and then; the sibling
    // checker sees a final read holding a value that an acknowledged write, made with the
    // context of a read of that value, replaced.
    let cfg = |seed| {
        let mut c = config(NODES, seed);
        c.clock_skew_ms = 5_000;
        c.clock_jump = 0.01;
        c
    };
    let lww = |bug: Option<&str>| {
        let mut d = Dynamo::new(NODES);
        d.conflict = dynamo::version::Conflict::Lww;
        if let Some(b) = bug {
            d = d.with_bug(b);
        }
        d
    };
    let mut caught = None;
    for seed in 1..=BOUND {
        let p = problems(cfg(seed), lww(Some("lww-no-max")));
        if p.iter().any(|x| x.contains("resurrected")) {
            caught = Some(seed);
            break;
        }
    }
    assert!(
        caught.is_some(),
        "lww-no-max: no resurrected value within {BOUND} seeds"
    );
    for seed in 1..=5 {
        let p = problems(cfg(seed), lww(None));
        assert!(p.is_empty(), "LWW without the bug, seed {seed}: {p:#?}");
    }
}
