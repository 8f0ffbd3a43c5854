//! Delay: every message between nodes held back, with jitter that reorders them.

use history::nemesis::{FaultKind, NemesisEvent};
use serde_json::{json, Value};

use crate::inject::{Ctx, InjectError, State, Undo};
use crate::status::Record;

pub(crate) fn apply(
    ctx: &Ctx,
    mean_ms: u64,
    jitter_ms: u64,
    seed: u64,
) -> Result<Undo, InjectError> {
    ctx.lock()?.net.delay(mean_ms, jitter_ms, seed)?;
    ctx.record(NemesisEvent::start(
        FaultKind::Delay,
        json!({"mean_ms": mean_ms, "jitter_ms": jitter_ms}),
    ));
    Ok(Undo::Delay)
}

pub(crate) fn heal(g: &mut State, rec: &dyn Record) -> Result<(), InjectError> {
    g.net.delay(0, 0, 0)?;
    rec.nemesis(NemesisEvent::stop(FaultKind::Delay, Value::Null));
    Ok(())
}
