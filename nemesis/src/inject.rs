//! The injector: applies the faults of a [`Schedule`](crate::schedule::Schedule) to a running
//! cluster and heals them, writing a start and a stop event for each into the history. Each
//! fault kind is one module of [`crate::faults`]; this module holds what they share: the
//! cluster's network, supervisor and clocks under one lock, the nodes a fault's background
//! task holds down, and the leader probes over [`ClusterView`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use history::rng::SplitMix64;

use history::nemesis::{FaultKind, NemesisEvent};
use serde_json::{json, Value};

use crate::clock::ClockFile;
use crate::disk::Disk;
use crate::faults;
use crate::net::{NetError, Network};
use crate::process::{NodeState, ProcError, Supervisor};
use crate::schedule::{cut_between, Fault, Staged, Target};
use crate::staged::{self, StagedNet};
use crate::status::{Boxed, ClusterView, NodeStatus, Record};

/// Why a fault could not be applied or healed.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Process(#[from] ProcError),
    #[error("clock offset file: {0}")]
    Clock(#[from] std::io::Error),
    #[error("fault state poisoned (a fault task panicked)")]
    Poisoned,
    #[error("node {0}'s data directory is not served through the harness's filesystem (a disk fault needs it)")]
    NoDisk(String),
}

/// A grudge: `g[x]` is the set of nodes x stops hearing from.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// How a fault task holds a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Frozen (SIGSTOP).
    Pause,
    /// Killed, to be restarted on its data.
    Kill,
    /// Killed by a power loss, its unsynced writes discarded, to be restarted on its data.
    Disk,
}

impl Hold {
    fn kind(self) -> FaultKind {
        match self {
            Hold::Pause => FaultKind::Pause,
            Hold::Kill => FaultKind::Kill,
            Hold::Disk => FaultKind::Disk,
        }
    }
}

/// The cluster's fault state, under one lock.
pub(crate) struct State {
    pub(crate) net: Network,
    pub(crate) sup: Supervisor,
    /// Every node, in the order the network was created with.
    pub(crate) nodes: Vec<String>,
    pub(crate) clocks: HashMap<String, ClockFile>,
    /// Each node's data directory as a filesystem the disk faults act on (empty unless the
    /// run asks for disk faults).
    pub(crate) disks: HashMap<String, Arc<dyn Disk>>,
    /// Nodes a fault's background task holds down or frozen right now. Kept under the same
    /// lock as the supervisor, so a node is in it exactly while it is held.
    pub(crate) held: BTreeMap<String, Hold>,
    /// Set by the undo of such a fault: its tasks take no node any more.
    pub(crate) tasks_stopped: bool,
    /// The partition and delay a staged fault's task has set.
    pub(crate) staged: StagedNet,
}

/// How long the leader-aimed shapes look for a leader before taking the system for leaderless
/// and aiming at a node drawn from their seed.
pub(crate) const LEADERLESS_AFTER: Duration = Duration::from_secs(1);

/// What every fault module works with: the state, the cluster's view and the history.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) view: Arc<dyn ClusterView>,
    pub(crate) rec: Arc<dyn Record>,
}

/// What a fault did, to undo it.
pub(crate) enum Undo {
    Partition,
    Churn(tokio::task::JoinHandle<()>),
    Paused(Vec<String>),
    Killed(Vec<String>),
    /// A task that kills (and freezes) nodes and restarts them; see [`Ctx::take_node`].
    Holding(tokio::task::JoinHandle<()>),
    /// A staged fault's task: holds nodes like the above, and sets partitions and delay.
    Staged(tokio::task::JoinHandle<()>),
    Together(Vec<Undo>),
    Clock(Vec<String>, Option<tokio::task::JoinHandle<()>>),
    Loss,
    Slow,
    Delay,
    /// Failing or slow fsync on these nodes.
    Fsync(Vec<String>),
}

/// A fault that is on, to be given back to [`Injector::undo`].
pub struct Applied(Undo);

/// Applies and heals faults on one cluster.
pub struct Injector {
    ctx: Ctx,
}

impl Injector {
    /// An injector over a started cluster: its network, its supervisor and each node's clock
    /// file. `view` answers status questions; `rec` records every start and stop.
    pub fn new(
        net: Network,
        sup: Supervisor,
        clocks: HashMap<String, ClockFile>,
        view: Arc<dyn ClusterView>,
        rec: Arc<dyn Record>,
    ) -> Injector {
        let nodes = net.nodes().to_vec();
        Injector {
            ctx: Ctx {
                state: Arc::new(Mutex::new(State {
                    net,
                    sup,
                    nodes,
                    clocks,
                    disks: HashMap::new(),
                    held: BTreeMap::new(),
                    tasks_stopped: false,
                    staged: StagedNet::default(),
                })),
                view,
                rec,
            },
        }
    }

    /// Gives the disk faults each node's data directory (see [`Disk`]).
    pub fn with_disks(self, disks: HashMap<String, Arc<dyn Disk>>) -> Injector {
        if let Ok(mut g) = self.ctx.state.lock() {
            g.disks = disks;
        }
        self
    }

    /// Starts `fault`. `fallback` picks the node hit when a fault aimed at the leader finds
    /// none.
    pub async fn apply(&self, fault: &Fault, fallback: usize) -> Result<Applied, InjectError> {
        apply(&self.ctx, fault, fallback).await.map(Applied)
    }

    /// Heals what [`Injector::apply`] started, and stops its tasks.
    pub async fn undo(&self, applied: Applied) -> Result<(), InjectError> {
        undo(&self.ctx, applied.0).await
    }

    /// Makes sure nothing is left broken: network healed, nodes resumed or restarted, clocks
    /// reset.
    pub fn heal_everything(&self) -> Result<(), InjectError> {
        let mut g = self.ctx.lock()?;
        g.net.heal()?;
        for n in g.nodes.clone() {
            match g.sup.state(&n) {
                NodeState::Paused => g.sup.resume(&n)?,
                NodeState::Stopped | NodeState::Exited(_) => g.sup.restart(&n)?,
                NodeState::Running => {}
            }
            if let Some(c) = g.clocks.get(&n) {
                c.reset()?;
            }
        }
        Ok(())
    }

    /// Stops every node (SIGTERM, then SIGKILL after `grace`). Blocks.
    pub fn stop_all(&self, grace: Duration) {
        if let Ok(mut g) = self.ctx.state.lock() {
            g.sup.stop_all(grace);
        }
    }
}

fn apply<'a>(
    ctx: &'a Ctx,
    fault: &'a Fault,
    fallback: usize,
) -> Boxed<'a, Result<Undo, InjectError>> {
    // Boxed: faults run together apply each other.
    Box::pin(async move {
        Ok(match fault {
            Fault::Partition {
                grudge,
                isolate_leader,
                ..
            } => faults::partition::cut(ctx, grudge, *isolate_leader, fallback).await?,
            Fault::LeaderChurn { max_hold_ms, seed } => {
                faults::partition::churn(ctx, *max_hold_ms, *seed)
            }
            Fault::Pause { target } => faults::pause::apply(ctx, target, fallback).await?,
            Fault::Kill { target } => faults::kill::apply(ctx, target, fallback).await?,
            Fault::CrashLoop {
                max_down_ms,
                max_up_ms,
                seed,
            } => faults::kill::crash_loop(ctx, *max_down_ms, *max_up_ms, *seed),
            Fault::ElectionStorm {
                leader_every_ms,
                max_hold_ms,
                max_down_ms,
                seed,
            } => faults::kill::election_storm(
                ctx,
                *leader_every_ms,
                *max_hold_ms,
                *max_down_ms,
                *seed,
            ),
            Fault::AfterVote {
                delay_ms,
                hold_ms,
                seed,
            } => staged::start(ctx, Staged::AfterVote, *delay_ms, *hold_ms, *seed),
            Fault::Figure8 {
                delay_ms,
                hold_ms,
                seed,
            } => staged::start(ctx, Staged::Figure8, *delay_ms, *hold_ms, *seed),
            Fault::AfterPromise { hold_ms, seed } => {
                staged::start(ctx, Staged::AfterPromise, 0, *hold_ms, *seed)
            }
            Fault::Together { faults } => {
                let mut done = Vec::new();
                for (i, one) in faults.iter().enumerate() {
                    match apply(ctx, one, fallback + i).await {
                        Ok(a) => done.push(a),
                        Err(e) => {
                            // Heal what was started before giving up.
                            for a in done.into_iter().rev() {
                                let _ = undo(ctx, a).await;
                            }
                            return Err(e);
                        }
                    }
                }
                Undo::Together(done)
            }
            Fault::ClockBump { target, offset_ms } => {
                faults::clock::bump(ctx, target, *offset_ms, fallback).await?
            }
            Fault::ClockStrobe {
                target,
                offset_ms,
                period_ms,
            } => faults::clock::strobe(ctx, target, *offset_ms, *period_ms, fallback).await?,
            Fault::Loss { percent } => faults::loss::apply(ctx, *percent)?,
            Fault::Slow { kbit } => faults::slow::apply(ctx, *kbit)?,
            Fault::Delay {
                mean_ms,
                jitter_ms,
                seed,
            } => faults::delay::apply(ctx, *mean_ms, *jitter_ms, *seed)?,
            Fault::PowerLoss {
                torn,
                gap_ms,
                max_down_ms,
                seed,
            } => faults::disk::power_losses(ctx, *torn, *gap_ms, *max_down_ms, *seed),
            Fault::FsyncError { target } => {
                faults::disk::fsync_fault(ctx, target, fallback, None).await?
            }
            Fault::SlowFsync {
                target,
                min_ms,
                max_ms,
                seed,
            } => {
                faults::disk::fsync_fault(ctx, target, fallback, Some((*min_ms, *max_ms, *seed)))
                    .await?
            }
        })
    })
}

fn undo(ctx: &Ctx, applied: Undo) -> Boxed<'_, Result<(), InjectError>> {
    Box::pin(async move {
        // First the faults with tasks: stopped, and waited for, before anything is healed.
        let applied = match applied {
            Undo::Together(all) => {
                let mut first_error = None;
                for a in all.into_iter().rev() {
                    if let Err(e) = undo(ctx, a).await {
                        first_error.get_or_insert(e);
                    }
                }
                return first_error.map_or(Ok(()), Err);
            }
            Undo::Churn(task) => {
                stop_task(task).await;
                Undo::Partition
            }
            Undo::Holding(task) => {
                ctx.stop_holding(task).await;
                return Ok(());
            }
            Undo::Staged(task) => {
                ctx.stop_holding(task).await;
                return staged::lift(ctx);
            }
            Undo::Clock(nodes, Some(task)) => {
                stop_task(task).await;
                Undo::Clock(nodes, None)
            }
            other => other,
        };
        let mut g = ctx.lock()?;
        let rec = &*ctx.rec;
        match applied {
            Undo::Partition => faults::partition::heal(&mut g, rec)?,
            // Their tasks were stopped above; a churn was turned into a plain partition.
            Undo::Churn(_) | Undo::Holding(_) | Undo::Staged(_) | Undo::Together(_) => {}
            Undo::Loss => faults::loss::heal(&mut g, rec)?,
            Undo::Slow => faults::slow::heal(&mut g, rec)?,
            Undo::Delay => faults::delay::heal(&mut g, rec)?,
            Undo::Paused(nodes) => faults::pause::heal(&mut g, rec, &nodes)?,
            Undo::Killed(nodes) => faults::kill::heal(&mut g, rec, &nodes)?,
            Undo::Clock(nodes, _) => faults::clock::heal(&g, rec, &nodes)?,
            Undo::Fsync(nodes) => faults::disk::heal_fsync(&mut g, rec, &nodes)?,
        }
        Ok(())
    })
}

/// Stops a fault's background task and waits until it has really stopped, so that it cannot
/// act after the fault is healed.
pub(crate) async fn stop_task(task: tokio::task::JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

/// A grudge as the history records it.
pub(crate) fn grudge_value(grudge: &Grudge) -> Value {
    serde_json::to_value(grudge).unwrap_or(Value::Null)
}

/// A grudge that cuts `isolated` off from every other node, both ways.
pub(crate) fn isolating(isolated: &[String], nodes: &[String]) -> Grudge {
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| !isolated.contains(n))
        .cloned()
        .collect();
    let mut g = BTreeMap::new();
    cut_between(&mut g, isolated, &rest);
    g
}

/// The node with the highest term among those that say they lead, and that term.
pub(crate) fn highest_leader(statuses: &[(String, NodeStatus)]) -> Option<(String, u64)> {
    statuses
        .iter()
        .filter(|(_, r)| r.leader)
        .max_by_key(|(_, r)| r.term)
        .map(|(n, r)| (n.clone(), r.term))
}

/// Undoes what [`Ctx::on_targets`] did: `act` (resume, restart) on each of `nodes`, and
/// records the stop of `kind`.
pub(crate) fn off_targets(
    g: &mut State,
    rec: &dyn Record,
    nodes: &[String],
    kind: FaultKind,
    act: fn(&mut Supervisor, &str) -> Result<(), ProcError>,
) -> Result<(), InjectError> {
    for n in nodes {
        act(&mut g.sup, n)?;
    }
    rec.nemesis(NemesisEvent::stop(kind, json!(nodes)));
    Ok(())
}

impl Ctx {
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, State>, InjectError> {
        self.state.lock().map_err(|_| InjectError::Poisoned)
    }

    /// Every node, in the order the network was created with.
    pub(crate) fn names(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|g| g.nodes.clone())
            .unwrap_or_default()
    }

    pub(crate) fn record(&self, event: NemesisEvent) {
        self.rec.nemesis(event);
    }

    /// The statuses of `nodes`, asked of all at once, in name order; nodes that do not answer
    /// are left out.
    pub(crate) async fn statuses(&self, nodes: &[String]) -> Vec<(String, NodeStatus)> {
        let mut asks = tokio::task::JoinSet::new();
        for name in nodes.iter().cloned() {
            let view = self.view.clone();
            asks.spawn(async move {
                let status = view.status(&name).await;
                (name, status)
            });
        }
        let mut out = Vec::new();
        while let Some(answer) = asks.join_next().await {
            if let Ok((name, Some(status))) = answer {
                out.push((name, status));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The node with the highest term among those that say they lead, skipping `except`: a
    /// node cut off from the rest may believe it still leads.
    pub(crate) async fn leader_among(&self, except: &[String]) -> Option<String> {
        let asked: Vec<String> = self
            .names()
            .into_iter()
            .filter(|n| !except.contains(n))
            .collect();
        highest_leader(&self.statuses(&asked).await).map(|(n, _)| n)
    }

    /// Whom a leader-aimed loop aims at: `leader` when some node says it leads; when none has
    /// since `since` for `wait` (and at least [`LEADERLESS_AFTER`]), a node drawn by `rng`
    /// among those not in `except`, since a leaderless system (a Dynamo-style store) still gets
    /// the fault at the same pace; `None` meanwhile (look again soon).
    pub(crate) fn leader_or_drawn(
        &self,
        leader: Option<String>,
        since: Instant,
        wait: Duration,
        except: &[String],
        rng: &mut SplitMix64,
    ) -> Option<String> {
        if leader.is_some() || since.elapsed() < wait.max(LEADERLESS_AFTER) {
            return leader;
        }
        let names = self.names();
        let others: Vec<&String> = names.iter().filter(|n| !except.contains(n)).collect();
        if others.is_empty() {
            return None;
        }
        Some(others[rng.below(others.len() as u64) as usize].clone())
    }

    /// The nodes `target` names now: the leader (or, when none says it leads, the node
    /// `fallback` picks), or the listed nodes.
    pub(crate) async fn resolve(&self, target: &Target, fallback: usize) -> Vec<String> {
        match target {
            Target::Nodes(n) => n.clone(),
            Target::Leader => match self.leader_among(&[]).await {
                Some(l) => vec![l],
                None => {
                    let names = self.names();
                    names
                        .get(fallback % names.len().max(1))
                        .map(|n| vec![n.clone()])
                        .unwrap_or_default()
                }
            },
        }
    }

    /// Does `act` (pause, kill) to every node `target` names now, under one lock, and records
    /// the start of `kind` on them.
    pub(crate) async fn on_targets(
        &self,
        target: &Target,
        fallback: usize,
        kind: FaultKind,
        act: fn(&mut Supervisor, &str) -> Result<(), ProcError>,
    ) -> Result<Vec<String>, InjectError> {
        let nodes = self.resolve(target, fallback).await;
        {
            let mut g = self.lock()?;
            for n in &nodes {
                act(&mut g.sup, n)?;
            }
        }
        self.record(NemesisEvent::start(kind, json!(nodes)));
        Ok(nodes)
    }

    /// Takes `node` for a fault task: freezes or kills it and notes it in `held`, under one
    /// lock. False when the fault is being undone or the supervisor refused.
    pub(crate) fn take_node(&self, node: &str, how: Hold) -> bool {
        let Ok(mut g) = self.state.lock() else {
            return false;
        };
        if g.tasks_stopped {
            return false;
        }
        let done = match how {
            Hold::Pause => g.sup.pause(node),
            Hold::Kill | Hold::Disk => g.sup.kill(node),
        };
        if done.is_err() {
            return false;
        }
        g.held.insert(node.to_string(), how);
        self.record(NemesisEvent::start(how.kind(), json!([node])));
        true
    }

    /// Locks the fault state and lets go of `node`, taken by [`Ctx::take_node`]; None when
    /// the fault's undo took it back first (and restarted it).
    pub(crate) fn let_go(&self, node: &str) -> Option<MutexGuard<'_, State>> {
        let mut g = self.state.lock().ok()?;
        g.held.remove(node)?;
        Some(g)
    }

    /// SIGKILLs `node`, keeps it down for `down_ms`, and restarts it on its data, recording
    /// both. False when the fault is being undone (which then restarts the node) or the
    /// supervisor refused.
    pub(crate) async fn bounce(&self, node: &str, down_ms: u64) -> bool {
        if !self.take_node(node, Hold::Kill) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(down_ms)).await;
        self.restart_held(node)
    }

    /// Lets go of `node`, killed by [`Ctx::take_node`], and restarts it on its data, recording
    /// it.
    pub(crate) fn restart_held(&self, node: &str) -> bool {
        let Some(mut g) = self.let_go(node) else {
            return false;
        };
        let restarted = g.sup.restart(node).is_ok();
        self.record(NemesisEvent::stop(FaultKind::Kill, json!([node])));
        restarted
    }

    /// Lets go of `node`, frozen by [`Ctx::take_node`], without resuming it (it is about to be
    /// killed), recording the end of the pause. False when the undo took it back first.
    pub(crate) fn end_freeze(&self, node: &str) -> bool {
        match self.let_go(node) {
            Some(_g) => {
                self.record(NemesisEvent::stop(FaultKind::Pause, json!([node])));
                true
            }
            None => false,
        }
    }

    /// Lets go of `node`, frozen by [`Ctx::take_node`], and resumes it (SIGCONT), recording
    /// the end of the pause. False when the undo took it back first (and resumed it) or the
    /// supervisor refused.
    pub(crate) fn thaw(&self, node: &str) -> bool {
        let Some(mut g) = self.let_go(node) else {
            return false;
        };
        let resumed = g.sup.resume(node).is_ok();
        self.record(NemesisEvent::stop(FaultKind::Pause, json!([node])));
        resumed
    }

    /// SIGSTOPs `node` for `hold_ms`, then [`Ctx::bounce`]s it: killed while frozen, it never
    /// reads what reached it meanwhile.
    pub(crate) async fn freeze_then_bounce(&self, node: &str, hold_ms: u64, down_ms: u64) -> bool {
        if !self.take_node(node, Hold::Pause) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        if !self.end_freeze(node) {
            return false;
        }
        self.bounce(node, down_ms).await
    }

    /// Lets a new fault task take nodes.
    pub(crate) fn start_holding(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.tasks_stopped = false;
        }
    }

    /// Stops a fault's background task, then restarts whatever node it still held.
    pub(crate) async fn stop_holding(&self, task: tokio::task::JoinHandle<()>) {
        let held = match self.state.lock() {
            Ok(mut g) => {
                g.tasks_stopped = true;
                std::mem::take(&mut g.held)
            }
            Err(_) => BTreeMap::new(),
        };
        stop_task(task).await;
        if let Ok(mut g) = self.state.lock() {
            for (n, how) in held {
                let _ = g.sup.restart(&n);
                self.record(NemesisEvent::stop(how.kind(), json!([n])));
            }
            // `tasks_stopped` stays set until the next such fault starts, so that no
            // straggler of this one can take a node after its undo.
        }
    }
}
