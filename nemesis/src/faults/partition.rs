//! Partitions: a grudge drawn by the schedule or cut around the leader, and leader churn, which
//! cuts off each new leader as soon as it leads.

use std::time::Duration;

use history::nemesis::{FaultKind, NemesisEvent};
use history::rng::SplitMix64;
use serde_json::Value;

use crate::inject::{grudge_value, isolating, Ctx, Grudge, InjectError, State, Undo};
use crate::schedule::Target;
use crate::status::Record;

/// Cuts `grudge`, or, with `isolate_leader`, the leader off from everyone.
pub(crate) async fn cut(
    ctx: &Ctx,
    grudge: &Grudge,
    isolate_leader: bool,
    fallback: usize,
) -> Result<Undo, InjectError> {
    let grudge = if isolate_leader {
        let l = ctx.resolve(&Target::Leader, fallback).await;
        isolating(&l, &ctx.names())
    } else {
        grudge.clone()
    };
    ctx.lock()?.net.partition(&grudge)?;
    // DESIGN section 2: the value is the grudge, who stops hearing whom; the shape is in
    // run.json's schedule.
    ctx.record(NemesisEvent::start(
        FaultKind::Partition,
        grudge_value(&grudge),
    ));
    Ok(Undo::Partition)
}

/// Isolates the leader, holds the cut up to `max_hold_ms`, then cuts off whoever leads next.
pub(crate) fn churn(ctx: &Ctx, max_hold_ms: u64, seed: u64) -> Undo {
    let ctx = ctx.clone();
    let mut rng = SplitMix64(seed);
    let task = tokio::spawn(async move {
        let mut isolated: Vec<String> = Vec::new();
        let mut looking = std::time::Instant::now();
        loop {
            let nodes = ctx.names();
            // A new leader, not the node cut off last time; none yet: look again soon, so that
            // a leader can be cut off within milliseconds of its election. A system in which
            // no node says it leads for a whole second (a leaderless one, like a Dynamo-style
            // store) gets a node drawn from the seed instead.
            let leader = ctx.leader_among(&isolated).await;
            let Some(l) = ctx.leader_or_drawn(leader, looking, Duration::ZERO, &isolated, &mut rng)
            else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            looking = std::time::Instant::now();
            if !isolated.is_empty() {
                ctx.record(NemesisEvent::stop(FaultKind::Partition, Value::Null));
            }
            isolated = vec![l];
            let grudge = isolating(&isolated, &nodes);
            let cut = ctx
                .state
                .lock()
                .map(|mut g| g.net.partition(&grudge).is_ok())
                .unwrap_or(false);
            if !cut {
                return;
            }
            ctx.record(NemesisEvent::start(
                FaultKind::Partition,
                grudge_value(&grudge),
            ));
            let hold = rng.below(max_hold_ms + 1);
            tokio::time::sleep(Duration::from_millis(hold)).await;
        }
    });
    Undo::Churn(task)
}

pub(crate) fn heal(g: &mut State, rec: &dyn Record) -> Result<(), InjectError> {
    g.net.heal()?;
    rec.nemesis(NemesisEvent::stop(FaultKind::Partition, Value::Null));
    Ok(())
}
