//! Packet loss on every link between nodes.

use history::nemesis::{FaultKind, NemesisEvent};
use serde_json::{json, Value};

use crate::inject::{Ctx, InjectError, State, Undo};
use crate::status::Record;

pub(crate) fn apply(ctx: &Ctx, percent: u8) -> Result<Undo, InjectError> {
    ctx.lock()?.net.loss(percent)?;
    ctx.record(NemesisEvent::start(
        FaultKind::Loss,
        json!({"percent": percent}),
    ));
    Ok(Undo::Loss)
}

pub(crate) fn heal(g: &mut State, rec: &dyn Record) -> Result<(), InjectError> {
    g.net.heal()?;
    rec.nemesis(NemesisEvent::stop(FaultKind::Loss, Value::Null));
    Ok(())
}
