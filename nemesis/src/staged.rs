//! Staged faults: scenarios set up step by step instead of waited for.
//!
//! `kill:after-vote` stages a vote given twice.
//! A Raft voter that forgets its vote across a restart can elect two leaders in one term, but
//! only when several things line up: two candidates of the same term that cannot hear each
//! other, a voter they share that grants the first and dies before it reads the second's
//! request or the winner's first entries, and a restart in time for the rival's retry. The
//! election storm's random kills lined them up in 1 of 9 minute-long runs. This fault sets
//! each of them up in turn, watching the nodes' `/health` (role, term, `voted_for`,
//! `last_index`) between the steps, and repeats the attempt until its window ends. See
//! [`Fault::AfterVote`] for the steps. The cluster needs an odd size: only then can two
//! sides that share one node each be a majority.
//!
//! `partition:figure-8` stages the Raft paper's Figure 8 the same way; see
//! [`Fault::Figure8`].
//!
//! `kill:after-promise` stages a promise forgotten across a restart: Paxos acceptors that
//! promised a new leader's ballot, restarted, then reached by the old leader, still sending
//! at its lower ballot. See [`Fault::AfterPromise`].
//!
//! Each scenario declares the status fields it watches ([`Staged::needs`]); `harness run`
//! refuses it for a system whose definition or status lacks them.
//!
//! [`Fault::AfterVote`]: crate::schedule::Fault::AfterVote
//! [`Fault::Figure8`]: crate::schedule::Fault::Figure8
//! [`Fault::AfterPromise`]: crate::schedule::Fault::AfterPromise
//! [`Staged::needs`]: crate::schedule::Staged::needs

use std::time::{Duration, Instant};

use history::nemesis::{FaultKind, NemesisEvent};
use history::rng::SplitMix64;
use serde_json::{json, Value};

use crate::inject::{
    grudge_value, highest_leader, isolating, Ctx, Grudge, Hold, InjectError, Undo,
};
use crate::schedule::{cut_between, Staged};
use crate::status::{ClusterView, NodeStatus};

/// The network faults a staged task has set, so that its undo can lift them.
#[derive(Debug, Default)]
pub(crate) struct StagedNet {
    cut: bool,
    delayed: bool,
}

/// Which fields of `needs` the status of `nodes` lacks, asked of each node: the fields that no
/// answering node gives. Err when no node answers.
pub async fn missing_fields(
    view: &dyn ClusterView,
    nodes: &[String],
    needs: &[crate::status::StatusField],
) -> Result<Vec<crate::status::StatusField>, String> {
    let mut answered = false;
    let mut missing: Vec<crate::status::StatusField> = needs.to_vec();
    for n in nodes {
        if let Some(fields) = view.fields(n).await {
            answered = true;
            missing.retain(|f| !fields.contains(f));
        }
    }
    if answered {
        Ok(missing)
    } else {
        Err("no node answered its status call".into())
    }
}

/// Which of the plan's staged scenarios the cluster's status cannot serve, with the reason.
pub async fn refusal(
    view: &dyn ClusterView,
    nodes: &[String],
    staged: &[Staged],
) -> Option<String> {
    for s in staged {
        match missing_fields(view, nodes, s.needs()).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                let names: Vec<&str> = missing.iter().map(|f| f.name()).collect();
                return Some(format!(
                    "{s} needs the status field{} {}, which the nodes' status does not give",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ));
            }
            Err(e) => return Some(format!("{s}: cannot tell what the status gives: {e}")),
        }
    }
    None
}

/// Replaces the task's partition with `grudge` (an empty one heals it), recording the change.
/// False when the fault is being undone or the network refused.
fn set_cut(ctx: &Ctx, grudge: &Grudge) -> bool {
    let Ok(mut g) = ctx.state.lock() else {
        return false;
    };
    if g.tasks_stopped {
        return false;
    }
    // Refused, not dropped: a node's request across the cut fails at once, so it asks again
    // on a fresh connection as soon as the cut moves, instead of stalling for a second.
    if g.net.partition_with(grudge, true).is_err() {
        return false;
    }
    if g.staged.cut {
        ctx.record(NemesisEvent::stop(FaultKind::Partition, Value::Null));
    }
    g.staged.cut = !grudge.is_empty();
    if g.staged.cut {
        ctx.record(NemesisEvent::start(
            FaultKind::Partition,
            grudge_value(grudge),
        ));
    }
    true
}

/// Delays every message between nodes by `mean_ms` ± a quarter (0 lifts the delay).
fn set_delay(ctx: &Ctx, mean_ms: u64, seed: u64) -> bool {
    let Ok(mut g) = ctx.state.lock() else {
        return false;
    };
    if g.tasks_stopped {
        return false;
    }
    if g.staged.delayed == (mean_ms > 0) {
        return true;
    }
    let jitter_ms = mean_ms / 4;
    if g.net.delay(mean_ms, jitter_ms, seed).is_err() {
        return false;
    }
    g.staged.delayed = mean_ms > 0;
    if g.staged.delayed {
        let value = json!({"mean_ms": mean_ms, "jitter_ms": jitter_ms});
        ctx.record(NemesisEvent::start(FaultKind::Delay, value));
    } else {
        ctx.record(NemesisEvent::stop(FaultKind::Delay, Value::Null));
    }
    true
}

/// Lifts whatever partition and delay the task left (the task itself is stopped).
pub(crate) fn lift(ctx: &Ctx) -> Result<(), InjectError> {
    let mut g = ctx.lock()?;
    if std::mem::take(&mut g.staged.cut) {
        g.net.partition(&Grudge::new())?;
        ctx.record(NemesisEvent::stop(FaultKind::Partition, Value::Null));
    }
    if std::mem::take(&mut g.staged.delayed) {
        g.net.delay(0, 0, 0)?;
        ctx.record(NemesisEvent::stop(FaultKind::Delay, Value::Null));
    }
    Ok(())
}

/// Asks every node's status every `every` until `done` holds of the answers, for at most
/// `limit`. The answers that satisfied it, or None.
async fn watch(
    ctx: &Ctx,
    limit: Duration,
    every: Duration,
    mut done: impl FnMut(&[(String, NodeStatus)]) -> bool,
) -> Option<Vec<(String, NodeStatus)>> {
    let until = Instant::now() + limit;
    let names = ctx.state.lock().map(|g| g.nodes.clone()).ok()?;
    while Instant::now() < until {
        let roles = ctx.statuses(&names).await;
        if done(&roles) {
            return Some(roles);
        }
        tokio::time::sleep(every).await;
    }
    None
}

fn role_of<'a>(roles: &'a [(String, NodeStatus)], node: &str) -> Option<&'a NodeStatus> {
    roles.iter().find(|(n, _)| n == node).map(|(_, r)| r)
}

/// Starts a staged fault's task, which runs attempts until the fault is undone (which aborts
/// it).
pub(crate) fn start(ctx: &Ctx, scenario: Staged, delay_ms: u64, hold_ms: u64, seed: u64) -> Undo {
    ctx.start_holding();
    Undo::Staged(tokio::spawn(attempts(
        ctx.clone(),
        scenario,
        delay_ms,
        hold_ms,
        seed,
    )))
}

async fn attempts(ctx: Ctx, scenario: Staged, delay_ms: u64, hold_ms: u64, seed: u64) {
    let mut rng = SplitMix64(seed);
    loop {
        let tried = match scenario {
            Staged::AfterVote => after_vote(&ctx, &mut rng, delay_ms, hold_ms).await,
            Staged::Figure8 => figure_8(&ctx, &mut rng, delay_ms, hold_ms).await,
            Staged::AfterPromise => after_promise(&ctx, hold_ms).await,
        };
        // Whatever happened, the next attempt starts from a healed network with every node
        // up, after a quiet moment in which the cluster settles on one leader.
        if !set_cut(&ctx, &Grudge::new()) || !set_delay(&ctx, 0, 0) {
            return;
        }
        let quiet = if tried { 1_000 } else { 100 };
        tokio::time::sleep(Duration::from_millis(quiet)).await;
    }
}

/// The node other than `except` that leads in a term above `above`, if one says so.
fn leader_above(roles: &[(String, NodeStatus)], above: u64, except: &str) -> Option<(String, u64)> {
    roles
        .iter()
        .filter(|(n, r)| n != except && r.leader && r.term > above)
        .max_by_key(|(_, r)| r.term)
        .map(|(n, r)| (n.clone(), r.term))
}

/// A cluster of at least three nodes, every one answering, one of them leading.
struct Settled {
    names: Vec<String>,
    roles: Vec<(String, NodeStatus)>,
    leader: String,
    term: u64,
}

/// Waits up to 5 s for the cluster to be [`Settled`]; None if it is not (or is too small for a
/// staged fault).
async fn settled(ctx: &Ctx) -> Option<Settled> {
    let names: Vec<String> = ctx.state.lock().ok()?.nodes.clone();
    if names.len() < 3 {
        return None;
    }
    let roles = watch(
        ctx,
        Duration::from_secs(5),
        Duration::from_millis(20),
        |r| r.len() == names.len() && highest_leader(r).is_some(),
    )
    .await?;
    let (leader, term) = highest_leader(&roles)?;
    Some(Settled {
        names,
        roles,
        leader,
        term,
    })
}

/// One Figure 8 attempt (see [`Fault::Figure8`]). False when it gave up before cutting
/// anything.
///
/// [`Fault::Figure8`]: crate::schedule::Fault::Figure8
async fn figure_8(ctx: &Ctx, rng: &mut SplitMix64, delay_ms: u64, hold_ms: u64) -> bool {
    let Some(Settled {
        names,
        leader: a,
        term: term_a,
        ..
    }) = settled(ctx).await
    else {
        return false;
    };
    let alone = |n: &str| isolating(&[n.to_string()], &names);
    // 1. Isolate the leader A, with as many followers as leave the others a bare majority
    //    (none of 3, one of 5). A still takes writes, in its term, that only its side will
    //    hold.
    let mut followers: Vec<String> = names.iter().filter(|n| **n != a).cloned().collect();
    rng.shuffle(&mut followers);
    let mut minority = vec![a.clone()];
    minority.extend(followers.drain(..(names.len() - 3) / 2));
    if !set_cut(ctx, &isolating(&minority, &names))
        || !set_delay(ctx, delay_ms, rng.below(u64::MAX))
    {
        return true;
    }
    // 2. The moment the others elect B, isolate B instead, before its first entry (held by the
    //    delay) reaches anyone; A's side comes back.
    let Some(roles) = watch(ctx, Duration::from_secs(3), Duration::from_millis(1), |r| {
        leader_above(r, term_a, &a).is_some_and(|(b, _)| !minority.contains(&b))
    })
    .await
    else {
        return true;
    };
    let Some((b, term_b)) = leader_above(&roles, term_a, &a) else {
        return true;
    };
    if !set_cut(ctx, &alone(&b)) {
        return true;
    }
    // 3. A node of A's side, whose log is the longest, wins a later term and sends its old
    //    entries on. The moment its commit index moves, isolate it: with commit-old-term it
    //    has just committed (and acknowledged) entries of the old term that its new term's
    //    first entry does not protect yet.
    let Some(roles) = watch(ctx, Duration::from_secs(3), Duration::from_millis(1), |r| {
        leader_above(r, term_b, &b).is_some()
    })
    .await
    else {
        return true;
    };
    let Some((a2, term_a2)) = leader_above(&roles, term_b, &b) else {
        return true;
    };
    let commit = role_of(&roles, &a2).and_then(|r| r.commit).unwrap_or(0);
    let moved = watch(ctx, Duration::from_secs(2), Duration::from_millis(1), |r| {
        role_of(r, &a2).is_some_and(|r| r.commit.unwrap_or(0) > commit)
    })
    .await
    .is_some();
    if !moved || !set_cut(ctx, &alone(&a2)) {
        return true;
    }
    // 4. B, whose last entry's term is above all the others hold, wins and overwrites them.
    let _ = watch(ctx, Duration::from_secs(3), Duration::from_millis(5), |r| {
        leader_above(r, term_a2, &a2).is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    true
}

/// One after-vote attempt. False when it gave up before the voter voted (nothing to let
/// settle).
async fn after_vote(ctx: &Ctx, rng: &mut SplitMix64, delay_ms: u64, hold_ms: u64) -> bool {
    // 1. A leader, every node answering. The voter V is a follower with the shortest log, so
    //    that V's log check passes whichever side asks.
    let Some(Settled {
        names,
        roles,
        leader,
        term,
    }) = settled(ctx).await
    else {
        return false;
    };
    let followers: Vec<&(String, NodeStatus)> =
        roles.iter().filter(|(n, _)| *n != leader).collect();
    let shortest = followers
        .iter()
        .map(|(_, r)| r.last_index.unwrap_or(0))
        .min()
        .unwrap_or(0);
    let candidates: Vec<String> = followers
        .iter()
        .filter(|(_, r)| r.last_index.unwrap_or(0) == shortest)
        .map(|(n, _)| n.clone())
        .collect();
    let Some(v) = rng.pick(&candidates).cloned() else {
        return false;
    };
    // 2. Two sides that are each a majority with V: the leader's and the other.
    let mut rest: Vec<String> = names
        .iter()
        .filter(|n| **n != leader && **n != v)
        .cloned()
        .collect();
    rng.shuffle(&mut rest);
    let per_side = (names.len() - 1) / 2;
    let mut side_a = vec![leader.clone()];
    side_a.extend(rest.drain(..per_side.saturating_sub(1).min(rest.len())));
    let side_b = rest;
    let mut sides = Grudge::new();
    cut_between(&mut sides, &side_a, &side_b);
    // 3. Kill V and cut the sides apart: neither side can win now, so each campaigns, at the
    //    leader's term (pre-votes do not raise it).
    if !ctx.take_node(&v, Hold::Kill) {
        return false;
    }
    let cut = set_cut(ctx, &sides);
    let delayed = cut && set_delay(ctx, delay_ms, rng.below(u64::MAX));
    let campaigning = |r: &[(String, NodeStatus)], side: &[String]| {
        side.iter()
            .any(|n| role_of(r, n).is_some_and(|r| r.campaigning && r.term == term))
    };
    let both = delayed
        && watch(
            ctx,
            Duration::from_secs(3),
            Duration::from_millis(10),
            |r| campaigning(r, &side_a) && campaigning(r, &side_b),
        )
        .await
        .is_some();
    // 4. Restart V; it grants both sides' pre-votes, then the first real request it reads.
    let restarted = ctx.restart_held(&v);
    if !both || !restarted {
        return false;
    }
    let voted = |r: &[(String, NodeStatus)]| {
        role_of(r, &v).and_then(|r| (r.term > term).then(|| r.voted_for.clone()).flatten())
    };
    let Some(roles) = watch(ctx, Duration::from_secs(2), Duration::from_millis(1), |r| {
        voted(r).is_some()
    })
    .await
    else {
        return false;
    };
    // 5. Make V deaf to the rival's side at once: the rival's request is refused by V's
    //    network, not read, so the rival still counts V as silent and will ask again. V's
    //    grant gets out to the winner, which then leads. Freeze V the moment it does, while
    //    the delay still holds back the winner's first entries; make V deaf to the winner's
    //    side instead, lift the delay (the rival's retry and V's answer must now be quick,
    //    before the rival's election times out), kill V with all it has not read, and restart
    //    it. Deaf, not cut both ways: V's dying connections still close at the other end, so
    //    no sender waits out a request that can never be answered.
    let winner = voted(&roles).unwrap_or_default();
    let (won, lost) = if side_a.contains(&winner) {
        (&side_a, &side_b)
    } else if side_b.contains(&winner) {
        (&side_b, &side_a)
    } else {
        // V voted for itself: nothing to stage.
        return true;
    };
    let deaf_to = |side: &[String]| {
        let mut g = sides.clone();
        g.entry(v.clone()).or_default().extend(side.iter().cloned());
        g
    };
    if !set_cut(ctx, &deaf_to(lost)) {
        return true;
    }
    let leads = watch(ctx, Duration::from_secs(1), Duration::from_millis(1), |r| {
        role_of(r, &winner).is_some_and(|r| r.leader && r.term > term)
    })
    .await
    .is_some();
    if !leads || !ctx.take_node(&v, Hold::Pause) {
        return true;
    }
    let moved = set_cut(ctx, &deaf_to(won)) && set_delay(ctx, 0, 0);
    if !ctx.end_freeze(&v) {
        return true;
    }
    // Killed and restarted even if the cut did not move: a frozen V must not be left behind.
    let bounced = ctx.bounce(&v, 0).await;
    if !moved || !bounced {
        return true;
    }
    // 6. The rival's retry reaches a V that kept its term but, with the bug, not its vote.
    let regranted = watch(ctx, Duration::from_secs(1), Duration::from_millis(2), |r| {
        role_of(r, &v)
            .and_then(|r| r.voted_for.as_ref())
            .is_some_and(|w| lost.contains(w))
    })
    .await
    .is_some();
    // 7. Two leaders of one term, if V voted twice: join V to both sides and let each commit
    //    through it for a while.
    if regranted && set_cut(ctx, &sides) {
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    }
    true
}

/// One after-promise attempt (see [`Fault::AfterPromise`]). False when it gave up before
/// touching anything but the old leader.
///
/// [`Fault::AfterPromise`]: crate::schedule::Fault::AfterPromise
async fn after_promise(ctx: &Ctx, hold_ms: u64) -> bool {
    // 1. A leader L, every node answering.
    let Some(Settled {
        names,
        leader: old,
        term,
        ..
    }) = settled(ctx).await
    else {
        return false;
    };
    // 2. Cut L from everyone, then freeze it: the others stop hearing it and elect N with a
    //    higher ballot (term). Cut first, so that nothing of N's election waits in L's sockets
    //    for it to read when it thaws; frozen, so that L's own failure detector does not tell
    //    it that it lost its majority.
    let mut alone = Grudge::new();
    let rest: Vec<String> = names.iter().filter(|n| **n != old).cloned().collect();
    cut_between(&mut alone, std::slice::from_ref(&old), &rest);
    if !set_cut(ctx, &alone) || !ctx.take_node(&old, Hold::Pause) {
        return false;
    }
    let Some(roles) = watch(ctx, Duration::from_secs(5), Duration::from_millis(5), |r| {
        leader_above(r, term, &old).is_some()
    })
    .await
    else {
        ctx.thaw(&old);
        return true;
    };
    let (new, _) = leader_above(&roles, term, &old).unwrap_or_default();
    let commit = role_of(&roles, &new).and_then(|r| r.commit).unwrap_or(0);
    // 3. Let N choose something of its own in the slots L will use next.
    let _ = watch(ctx, Duration::from_secs(2), Duration::from_millis(5), |r| {
        role_of(r, &new).and_then(|r| r.commit).unwrap_or(0) > commit + 2
    })
    .await;
    // 4. Cut N from everyone instead, restart every node but L and N (each promised N's
    //    ballot, and one that forgets it now promises nothing), then thaw L: its Accepts at
    //    the old ballot reach acceptors that should refuse them, and no word of N's ballot
    //    reaches L.
    let others: Vec<String> = names
        .iter()
        .filter(|n| **n != old && **n != new)
        .cloned()
        .collect();
    let rest: Vec<String> = names.iter().filter(|n| **n != new).cloned().collect();
    let mut apart = Grudge::new();
    cut_between(&mut apart, std::slice::from_ref(&new), &rest);
    let cut = set_cut(ctx, &apart);
    for n in &others {
        if !ctx.bounce(n, 0).await {
            break;
        }
    }
    if !ctx.thaw(&old) || !cut {
        return true;
    }
    // 5. Hold: a correct acceptor refuses L; a forgetful one lets L choose, in slots N already
    //    chose, values of its own. Then everything heals and N's higher ballot wins again.
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    true
}
