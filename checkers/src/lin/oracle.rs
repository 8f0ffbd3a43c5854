//! A brute-force oracle for tests: tries every order of the operations that respects real time
//! (indeterminate ones may be left out), with no memo and no reduction. Exponential; meant for
//! histories of about ten operations, to check the fast procedures against.

use crate::lin::model::{Model, INIT};
use crate::lin::search::KeyOp;

/// Whether `ops` can be linearized from the initial state.
pub fn brute_force<M: Model>(model: &mut M, ops: &[KeyOp]) -> bool {
    let mut placed = vec![false; ops.len()];
    go(model, ops, &mut placed, INIT)
}

fn go<M: Model>(model: &mut M, ops: &[KeyOp], placed: &mut [bool], state: u64) -> bool {
    let mut all_required = true;
    for (i, op) in ops.iter().enumerate() {
        if !placed[i] && op.prepared.required {
            all_required = false;
        }
    }
    if all_required {
        return true;
    }
    for i in 0..ops.len() {
        if placed[i] {
            continue;
        }
        // `i` may go next only if no other unplaced operation completed before it began.
        let blocked = ops
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && !placed[j] && o.ret < ops[i].call);
        if blocked {
            continue;
        }
        if let Some(ns) = model.step(state, ops[i].prepared.action) {
            placed[i] = true;
            let ok = go(model, ops, placed, ns);
            placed[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}
