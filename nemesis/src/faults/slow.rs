//! A slow network: every link limited to a bandwidth.

use history::nemesis::{FaultKind, NemesisEvent};
use serde_json::{json, Value};

use crate::inject::{Ctx, InjectError, State, Undo};
use crate::status::Record;

pub(crate) fn apply(ctx: &Ctx, kbit: u32) -> Result<Undo, InjectError> {
    ctx.lock()?.net.slow(kbit)?;
    ctx.record(NemesisEvent::start(FaultKind::Slow, json!({"kbit": kbit})));
    Ok(Undo::Slow)
}

pub(crate) fn heal(g: &mut State, rec: &dyn Record) -> Result<(), InjectError> {
    g.net.slow(0)?;
    rec.nemesis(NemesisEvent::stop(FaultKind::Slow, Value::Null));
    Ok(())
}
