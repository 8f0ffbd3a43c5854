//! Disk faults, through each node's [`Disk`](crate::disk::Disk): power losses over and over
//! for a window, and fsync that fails or is slow for a window. Each start and stop is a
//! `disk` event in the history, naming the shape and the nodes (and, for a power loss, what
//! each node lost).

use std::time::Duration;

use history::nemesis::{FaultKind, NemesisEvent};
use history::rng::SplitMix64;
use serde_json::json;

use crate::inject::{Ctx, Hold, InjectError, State, Undo};
use crate::process::NodeState;
use crate::schedule::Target;
use crate::status::Record;

/// Power losses, over and over, until undone (see `Fault::PowerLoss`).
pub(crate) fn power_losses(
    ctx: &Ctx,
    torn: bool,
    gap_ms: u64,
    max_down_ms: u64,
    seed: u64,
) -> Undo {
    ctx.start_holding();
    let ctx = ctx.clone();
    let mut rng = SplitMix64(seed);
    let task = tokio::spawn(async move {
        // The first power loss comes within half a gap of the window's start, so that even a
        // short window has one.
        let mut wait_ms = rng.below(gap_ms / 2 + 1);
        loop {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            wait_ms = gap_ms / 2 + rng.below(gap_ms + 1);
            let names = ctx.names();
            let mut shuffled = names.clone();
            rng.shuffle(&mut shuffled);
            // The whole cluster one time in three (a datacenter's power), a majority, or one.
            let hit = match rng.below(3) {
                0 => names.len(),
                1 => names.len() / 2 + 1,
                _ => 1,
            };
            let mut nodes: Vec<String> = shuffled.into_iter().take(hit).collect();
            nodes.sort();
            let loss_seed = rng.below(u64::MAX);
            if !power_off(&ctx, &nodes, torn, loss_seed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(rng.below(max_down_ms + 1))).await;
            if !power_on(&ctx, &nodes) {
                return;
            }
        }
    });
    Undo::Holding(task)
}

/// Kills `nodes` and discards what they had not made durable, holding them down; records the
/// start of the fault with what each lost. False when the fault is being undone.
fn power_off(ctx: &Ctx, nodes: &[String], torn: bool, seed: u64) -> bool {
    let Ok(mut g) = ctx.state.lock() else {
        return false;
    };
    if g.tasks_stopped {
        return false;
    }
    let mut lost = serde_json::Map::new();
    for (i, n) in nodes.iter().enumerate() {
        if g.sup.kill(n).is_err() {
            continue;
        }
        g.held.insert(n.clone(), Hold::Disk);
        let Some(disk) = g.disks.get(n).cloned() else {
            continue;
        };
        let result = if torn {
            disk.tear(seed.wrapping_add(i as u64))
        } else {
            disk.lose_unsynced()
        };
        match result {
            Ok(l) => {
                lost.insert(n.clone(), json!(l));
            }
            Err(e) => {
                tracing::warn!(node = %n, "power loss: discarding unsynced writes failed: {e}");
                lost.insert(n.clone(), json!({"error": e.to_string()}));
            }
        }
    }
    let shape = if torn { "torn" } else { "lose-unsynced" };
    ctx.record(NemesisEvent::start(
        FaultKind::Disk,
        json!({"shape": shape, "nodes": nodes, "lost": lost}),
    ));
    true
}

/// Restarts `nodes`, held down by [`power_off`], recording the stop. False when the undo took
/// them back first.
fn power_on(ctx: &Ctx, nodes: &[String]) -> bool {
    let Ok(mut g) = ctx.state.lock() else {
        return false;
    };
    let mut restarted = Vec::new();
    for n in nodes {
        if g.held.remove(n).is_some() {
            let _ = g.sup.restart(n);
            restarted.push(n.clone());
        }
    }
    if restarted.is_empty() {
        return false;
    }
    ctx.record(NemesisEvent::stop(FaultKind::Disk, json!(restarted)));
    true
}

/// Turns failing or slow fsync on for the target's disks.
pub(crate) async fn fsync_fault(
    ctx: &Ctx,
    target: &Target,
    fallback: usize,
    delay: Option<(u64, u64, u64)>,
) -> Result<Undo, InjectError> {
    let nodes = ctx.resolve(target, fallback).await;
    {
        let g = ctx.lock()?;
        for n in &nodes {
            let disk = g
                .disks
                .get(n)
                .ok_or_else(|| InjectError::NoDisk(n.clone()))?;
            match delay {
                Some((min, max, seed)) => disk.set_fsync_delay(Some((min, max)), seed),
                None => disk.set_fsync_error(true),
            }
        }
    }
    let shape = if delay.is_some() {
        "slow"
    } else {
        "fsync-error"
    };
    ctx.record(NemesisEvent::start(
        FaultKind::Disk,
        json!({"shape": shape, "nodes": nodes}),
    ));
    Ok(Undo::Fsync(nodes))
}

/// Lifts failing or slow fsync; a node that stopped because its fsync failed (the right
/// reaction) is restarted on its data.
pub(crate) fn heal_fsync(
    g: &mut State,
    rec: &dyn Record,
    nodes: &[String],
) -> Result<(), InjectError> {
    for n in nodes {
        if let Some(disk) = g.disks.get(n) {
            disk.set_fsync_error(false);
            disk.set_fsync_delay(None, 0);
        }
        if let NodeState::Exited(_) = g.sup.state(n) {
            g.sup.restart(n)?;
        }
    }
    rec.nemesis(NemesisEvent::stop(FaultKind::Disk, json!(nodes)));
    Ok(())
}
