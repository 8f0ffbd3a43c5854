//! Clock faults: a node's wall clock moved by an offset (a bump) or flipped back and forth (a
//! strobe), through the offset file bundled nodes read.

use std::time::Duration;

use history::nemesis::{FaultKind, NemesisEvent};
use serde_json::json;

use crate::clock::ClockFile;
use crate::inject::{Ctx, InjectError, State, Undo};
use crate::schedule::Target;
use crate::status::Record;

pub(crate) async fn bump(
    ctx: &Ctx,
    target: &Target,
    offset_ms: i64,
    fallback: usize,
) -> Result<Undo, InjectError> {
    let nodes = ctx.resolve(target, fallback).await;
    {
        let g = ctx.lock()?;
        for n in &nodes {
            if let Some(c) = g.clocks.get(n) {
                c.set(offset_ms)?;
            }
        }
    }
    ctx.record(NemesisEvent::start(
        FaultKind::Clock,
        json!({"nodes": nodes, "offset_ms": offset_ms}),
    ));
    Ok(Undo::Clock(nodes, None))
}

pub(crate) async fn strobe(
    ctx: &Ctx,
    target: &Target,
    offset_ms: i64,
    period_ms: u64,
    fallback: usize,
) -> Result<Undo, InjectError> {
    let nodes = ctx.resolve(target, fallback).await;
    let files: Vec<ClockFile> = {
        let g = ctx.lock()?;
        nodes
            .iter()
            .filter_map(|n| g.clocks.get(n).cloned())
            .collect()
    };
    let task = tokio::spawn(async move {
        let mut on = false;
        loop {
            on = !on;
            for c in &files {
                let _ = c.set(if on { offset_ms } else { 0 });
            }
            tokio::time::sleep(Duration::from_millis(period_ms.max(1))).await;
        }
    });
    ctx.record(NemesisEvent::start(
        FaultKind::ClockStrobe,
        json!({"nodes": nodes, "offset_ms": offset_ms, "period_ms": period_ms}),
    ));
    Ok(Undo::Clock(nodes, Some(task)))
}

/// Resets the clocks of `nodes` (a strobe's task is stopped first).
pub(crate) fn heal(g: &State, rec: &dyn Record, nodes: &[String]) -> Result<(), InjectError> {
    for n in nodes {
        if let Some(c) = g.clocks.get(n) {
            c.reset()?;
        }
    }
    rec.nemesis(NemesisEvent::stop(FaultKind::Clock, json!(nodes)));
    Ok(())
}
