//! Pause: SIGSTOP of the target's process groups for the whole window, SIGCONT to heal.

use history::nemesis::{FaultKind, NemesisEvent};
use serde_json::json;

use crate::inject::{Ctx, InjectError, State, Undo};
use crate::schedule::Target;
use crate::status::Record;

pub(crate) async fn apply(
    ctx: &Ctx,
    target: &Target,
    fallback: usize,
) -> Result<Undo, InjectError> {
    let nodes = ctx.resolve(target, fallback).await;
    {
        let mut g = ctx.lock()?;
        for n in &nodes {
            g.sup.pause(n)?;
        }
    }
    ctx.record(NemesisEvent::start(FaultKind::Pause, json!(nodes)));
    Ok(Undo::Paused(nodes))
}

pub(crate) fn heal(g: &mut State, rec: &dyn Record, nodes: &[String]) -> Result<(), InjectError> {
    for n in nodes {
        g.sup.resume(n)?;
    }
    rec.nemesis(NemesisEvent::stop(FaultKind::Pause, json!(nodes)));
    Ok(())
}
