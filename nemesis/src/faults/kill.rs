//! Kills: SIGKILL of the target for the whole window and a restart on its data to heal; the
//! crash loop, which kills one node after another; and the election storm, which kills each
//! voter right after its vote and the leader when elections stop.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use history::nemesis::FaultKind;
use history::rng::SplitMix64;

use crate::inject::{highest_leader, off_targets, Ctx, InjectError, State, Undo};
use crate::process::Supervisor;
use crate::schedule::Target;
use crate::status::Record;

pub(crate) async fn apply(
    ctx: &Ctx,
    target: &Target,
    fallback: usize,
) -> Result<Undo, InjectError> {
    let nodes = ctx
        .on_targets(target, fallback, FaultKind::Kill, Supervisor::kill)
        .await?;
    Ok(Undo::Killed(nodes))
}

pub(crate) fn heal(g: &mut State, rec: &dyn Record, nodes: &[String]) -> Result<(), InjectError> {
    off_targets(g, rec, nodes, FaultKind::Kill, Supervisor::restart)
}

/// Kills one node at a time, over and over (see `Fault::CrashLoop`).
pub(crate) fn crash_loop(ctx: &Ctx, max_down_ms: u64, max_up_ms: u64, seed: u64) -> Undo {
    ctx.start_holding();
    let ctx = ctx.clone();
    let mut rng = SplitMix64(seed);
    let task = tokio::spawn(async move {
        loop {
            let names = ctx.names();
            let Some(n) = rng.pick(&names) else {
                return;
            };
            let down_ms = rng.below(max_down_ms + 1);
            if !ctx.bounce(n, down_ms).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(rng.below(max_up_ms + 1))).await;
        }
    });
    Undo::Holding(task)
}

/// An election storm (see `Fault::ElectionStorm`).
pub(crate) fn election_storm(
    ctx: &Ctx,
    leader_every_ms: u64,
    max_hold_ms: u64,
    max_down_ms: u64,
    seed: u64,
) -> Undo {
    ctx.start_holding();
    let ctx = ctx.clone();
    let every = Duration::from_millis(leader_every_ms);
    let mut rng = SplitMix64(seed);
    let task = tokio::spawn(async move {
        let mut terms: HashMap<String, u64> = HashMap::new();
        // The first leader goes at once.
        let mut last_election = Instant::now()
            .checked_sub(every)
            .unwrap_or_else(Instant::now);
        // One task per node being frozen and killed; dropped (and so aborted) with this task.
        let mut voters = tokio::task::JoinSet::new();
        loop {
            while voters.try_join_next().is_some() {}
            let statuses = ctx.statuses(&ctx.names()).await;
            let busy: BTreeSet<String> = ctx
                .state
                .lock()
                .map(|g| g.held.keys().cloned().collect())
                .unwrap_or_default();
            let mut moved = false;
            for (name, status) in &statuses {
                let before = terms.insert(name.clone(), status.term);
                // Term 0 is "not said yet" (a node still starting), not a term.
                if !before.is_some_and(|t| t > 0 && status.term > t) {
                    continue;
                }
                moved = true;
                if status.leader || status.campaigning || busy.contains(name) {
                    continue;
                }
                // A voter, right after its vote: frozen so that what comes next (the winner's
                // first entries, another candidate's request) waits unread in its socket, then
                // killed with all of that unread, and restarted.
                let (ctx, v) = (ctx.clone(), name.clone());
                let (hold, down_ms) = (rng.below(max_hold_ms + 1), rng.below(max_down_ms + 1));
                voters.spawn(async move {
                    ctx.freeze_then_bounce(&v, hold, down_ms).await;
                });
                terms.remove(name);
            }
            if moved {
                last_election = Instant::now();
            }
            // A leaderless system (no node has said it leads for a second) has a node drawn
            // from the seed bounced instead, at the same pace.
            let leader = highest_leader(&statuses).map(|(l, _)| l);
            let leader = ctx.leader_or_drawn(leader, last_election, every, &[], &mut rng);
            match leader {
                Some(l) if last_election.elapsed() >= every && !busy.contains(&l) => {
                    // Quiet for a while: kill the leader to start an election.
                    last_election = Instant::now();
                    let down_ms = rng.below(max_down_ms + 1);
                    terms.remove(&l);
                    let ctx = ctx.clone();
                    voters.spawn(async move {
                        ctx.bounce(&l, down_ms).await;
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    });
    Undo::Holding(task)
}
