//! Pause: SIGSTOP of the target's process groups for the whole window, SIGCONT to heal.

use history::nemesis::FaultKind;

use crate::inject::{off_targets, Ctx, InjectError, State, Undo};
use crate::process::Supervisor;
use crate::schedule::Target;
use crate::status::Record;

pub(crate) async fn apply(
    ctx: &Ctx,
    target: &Target,
    fallback: usize,
) -> Result<Undo, InjectError> {
    let nodes = ctx
        .on_targets(target, fallback, FaultKind::Pause, Supervisor::pause)
        .await?;
    Ok(Undo::Paused(nodes))
}

pub(crate) fn heal(g: &mut State, rec: &dyn Record, nodes: &[String]) -> Result<(), InjectError> {
    off_targets(g, rec, nodes, FaultKind::Pause, Supervisor::resume)
}
