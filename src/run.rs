//! `harness run`: a cluster in a sandbox, a workload, faults on a schedule, a recorded and
//! checked history (DESIGN section 4). Glue over `nemesis`, `workloads` and `checkers`.

mod staged;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use history::EventType;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nemesis::clock::ClockFile;
use nemesis::net::{Mechanism, Network};
use nemesis::process::{NodeSpec, Supervisor};
use serde_json::{json, Value};
use workloads::recorder::Recorder;
use workloads::runner::WorkloadConfig;

use crate::schedule::{self, Fault, NemesisKind, NemesisPlan, Schedule, Target};
use crate::systems::{NodeVars, SystemDef};
use crate::units::parse_duration;
use crate::Exit;
use workloads::client::NodeRole;
use workloads::OpClient;

/// Start a cluster, run a workload against it while faults come and go, then check the history.
///
/// Each run happens inside namespaces of its own (PID, mount, network; a user namespace when
/// not root): every node gets its own network namespace on a private bridge with no uplink,
/// and when the harness exits or dies, every node, namespace and firewall rule goes with it.
///
/// Examples:
///   harness run --system raft --nemesis partition
///   harness run --system raft --workload set --nemesis all --time-limit 60s
///   harness run --system raft --nemesis clock --bug stale-read --seed 7
///   harness run --system raft --nemesis partition:majorities-ring+delay+kill:election-storm
///   harness run --system raft --nodes 3 --nemesis kill:after-vote --bug forget-vote
///   harness run --system raft --nodes 3 --workload set --nemesis partition:figure-8 \
///       --op-timeout 5s --node-arg=--max-batch=1 --node-arg=--max-inflight=1 \
///       --bug commit-old-term
///
/// The run folder is store/<system>-<workload>-<nemesis>/<UTC time>/ with run.json (config,
/// seed, schedule), history.jsonl (written as the run goes), results.json, report.html and
/// nodes/<n>/ (each node's log and data); store/latest points at the newest run.
///
/// Exit status: 0 every check passed; 1 an anomaly was found; 2 bad usage; 3 a checker could
/// not decide within its budget; 4 the harness itself failed (a node would not start, the
/// sandbox is not permitted).
#[derive(clap::Args, Debug, Clone)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    /// The system under test: raft.
    #[arg(long, default_value = "raft")]
    pub system: String,
    /// register (compare-and-set registers, checked for linearizability) or set (adds, then a
    /// final read from every node, checked for lost and unexpected elements).
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// Faults that take turns, comma-separated: partition, pause, kill, clock, loss, slow,
    /// delay; or all; or none. A list with a network fault (partition, loss, slow, delay) and a
    /// process fault (pause, kill) makes one window in three one of each at once.
    /// KIND:SHAPE picks a shape: partition:leader-churn|halves|isolate-one|isolate-leader|
    /// majorities-ring|bridge|one-way|figure-8, kill:down|crash-loop|election-storm|
    /// after-vote, clock:bump|strobe. A+B runs A and B together in every window, e.g.
    /// partition:majorities-ring+delay+kill:election-storm. Two shapes are staged, step by
    /// step, watching /health, and make their own partitions and delay: kill:after-vote (a
    /// vote given twice; needs voted_for) and partition:figure-8 (the Raft paper's Figure 8;
    /// needs commit).
    #[arg(long, default_value = "none")]
    pub nemesis: String,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Concurrent clients; client i talks to node i mod N.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// How long the workload runs while faults come and go (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Total operations per second across all clients (0: as fast as they can).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Keys of the register workload (set: set keys).
    #[arg(long, default_value_t = 10)]
    pub keys: usize,
    /// Length of each fault and of each quiet period between faults.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub nemesis_interval: Duration,
    /// Quiet time after every fault is healed, before the final reads and the end.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub recovery: Duration,
    /// A client gives up on an operation after this long and records it as info.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub op_timeout: Duration,
    /// Seed for the schedule and the operations (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run folders go.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Switch on a planted bug in the bundled nodes (raft: stale-read, commit-old-term,
    /// forget-vote, early-ack).
    #[arg(long, value_name = "NAME")]
    pub bug: Option<String>,
    /// An extra argument for every node's command line (repeatable), for tuning the system
    /// under test, e.g. --node-arg=--max-batch=1.
    #[arg(long = "node-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
}

/// What `run` has checked before entering the sandbox.
pub struct Prepared {
    args: RunArgs,
    system: SystemDef,
    program: PathBuf,
    plan: NemesisPlan,
    workload: &'static workloads::Workload,
    seed: u64,
}

/// Checks the arguments and finds (or builds) the node program: everything that must happen
/// outside the sandbox, whose network has no way out.
pub fn prepare(args: RunArgs) -> Result<Prepared, (Exit, String)> {
    let usage = |m: String| (Exit::BadInput, m);
    let system = SystemDef::load(&args.system).map_err(|e| usage(format!("--system: {e}")))?;
    let plan = NemesisPlan::parse(&args.nemesis).map_err(|e| usage(format!("--nemesis: {e}")))?;
    system.check_faults(&plan.kinds()).map_err(usage)?;
    let workload =
        workloads::registry::find(&args.workload).map_err(|e| usage(format!("--workload: {e}")))?;
    system.check_workload(workload).map_err(usage)?;
    if let Some(bug) = &args.bug {
        if !system.bugs.contains(bug) {
            return Err(usage(if system.bugs.is_empty() {
                format!("--bug: {} has no planted bugs", system.name)
            } else {
                format!(
                    "--bug: '{bug}' is not a bug of {}; its bugs are: {}",
                    system.name,
                    system.bugs.join(", ")
                )
            }));
        }
    }
    if args.nodes == 0 || args.nodes > 200 {
        return Err(usage(format!("--nodes {}: between 1 and 200", args.nodes)));
    }
    if args.concurrency == 0 {
        return Err(usage("--concurrency: at least 1 client".into()));
    }
    if args.time_limit.is_zero() {
        return Err(usage("--time-limit: must be positive".into()));
    }
    let program = system.locate_program().map_err(|e| (Exit::Failure, e))?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_007)
    });
    Ok(Prepared {
        args,
        system,
        program,
        plan,
        workload,
        seed,
    })
}

/// The run, inside the sandbox.
pub fn run_inside(p: Prepared) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run_async(p))
}

fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Shared state of the fault injector.
struct Faults {
    net: Network,
    sup: Supervisor,
    specs: HashMap<String, NodeSpec>,
    clocks: HashMap<String, ClockFile>,
    addrs: Vec<(String, SocketAddr)>,
    /// Nodes a fault's background task holds down ("kill") or frozen ("pause") right now.
    /// Kept under the same lock as the supervisor, so a node is in it exactly while it is held.
    held: BTreeMap<String, &'static str>,
    /// Set by the undo of such a fault: its tasks take no node any more.
    tasks_stopped: bool,
    /// The partition and delay a staged fault's task (`kill:after-vote`,
    /// `partition:figure-8`) has set.
    staged: staged::StagedNet,
}

async fn leader_of(addrs: &[(String, SocketAddr)], client: &OpClient) -> Option<String> {
    leader_among(addrs, &[], client).await
}

/// Every node's answer to the system's status call, asked of all at once, in name order;
/// nodes that do not answer are left out.
async fn roles_of(addrs: &[(String, SocketAddr)], client: &OpClient) -> Vec<(String, NodeRole)> {
    let mut asks = tokio::task::JoinSet::new();
    for (name, addr) in addrs.iter().cloned() {
        let client = client.clone();
        asks.spawn(async move { (name, client.role(addr).await) });
    }
    let mut roles = Vec::new();
    while let Some(answer) = asks.join_next().await {
        if let Ok((name, Some(role))) = answer {
            roles.push((name, role));
        }
    }
    roles.sort_by(|a, b| a.0.cmp(&b.0));
    roles
}

/// The node with the highest term among those that say they lead, and that term.
fn highest_leader(roles: &[(String, NodeRole)]) -> Option<(String, u64)> {
    roles
        .iter()
        .filter(|(_, r)| r.leader)
        .max_by_key(|(_, r)| r.term)
        .map(|(n, r)| (n.clone(), r.term))
}

/// The node with the highest term among those that say they lead (asked in the system's own
/// protocol), skipping `except`: a node cut off from the rest may believe it still leads.
async fn leader_among(
    addrs: &[(String, SocketAddr)],
    except: &[String],
    client: &OpClient,
) -> Option<String> {
    let asked: Vec<(String, SocketAddr)> = addrs
        .iter()
        .filter(|(n, _)| !except.contains(n))
        .cloned()
        .collect();
    highest_leader(&roles_of(&asked, client).await).map(|(n, _)| n)
}

/// A grudge that cuts `isolated` off from every other node, both ways.
fn isolating(isolated: &[String], nodes: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let rest: Vec<String> = nodes
        .iter()
        .filter(|n| !isolated.contains(n))
        .cloned()
        .collect();
    let mut g = BTreeMap::new();
    crate::schedule::cut_between(&mut g, isolated, &rest);
    g
}

/// Takes `node` for a fault task: freezes it (`"pause"`) or kills it (`"kill"`) and notes it
/// in `held`, under one lock. False when the fault is being undone or the supervisor refused.
fn take_node(f: &Mutex<Faults>, rec: &Recorder, node: &str, how: &'static str) -> bool {
    let Ok(mut g) = f.lock() else { return false };
    if g.tasks_stopped {
        return false;
    }
    let done = match how {
        "pause" => g.sup.pause(node),
        _ => g.sup.kill(node),
    };
    if done.is_err() {
        return false;
    }
    g.held.insert(node.to_string(), how);
    rec.nemesis(EventType::Info, &format!("start-{how}"), json!([node]));
    true
}

/// Locks the fault state and lets go of `node`, taken by [`take_node`]; None when the fault's
/// undo took it back first (and restarted it).
fn let_go<'a>(f: &'a Mutex<Faults>, node: &str) -> Option<std::sync::MutexGuard<'a, Faults>> {
    let mut g = f.lock().ok()?;
    g.held.remove(node)?;
    Some(g)
}

/// SIGKILLs `node`, keeps it down for `down_ms`, and restarts it on its data, recording both.
/// False when the fault is being undone (which then restarts the node) or the supervisor
/// refused.
async fn bounce(f: &Mutex<Faults>, rec: &Recorder, node: &str, down_ms: u64) -> bool {
    if !take_node(f, rec, node, "kill") {
        return false;
    }
    tokio::time::sleep(Duration::from_millis(down_ms)).await;
    restart_held(f, rec, node)
}

/// Lets go of `node`, killed by [`take_node`], and restarts it on its data, recording it.
fn restart_held(f: &Mutex<Faults>, rec: &Recorder, node: &str) -> bool {
    let Some(mut g) = let_go(f, node) else {
        return false;
    };
    let restarted = g.sup.restart(node).is_ok();
    rec.nemesis(EventType::Info, "stop-kill", json!([node]));
    restarted
}

/// SIGSTOPs `node` for `hold_ms`, then [`bounce`]s it: killed while frozen, it never reads
/// what reached it meanwhile.
async fn freeze_then_bounce(
    f: &Mutex<Faults>,
    rec: &Recorder,
    node: &str,
    hold_ms: u64,
    down_ms: u64,
) -> bool {
    if !take_node(f, rec, node, "pause") {
        return false;
    }
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    {
        let Some(_g) = let_go(f, node) else {
            return false;
        };
        rec.nemesis(EventType::Info, "stop-pause", json!([node]));
    }
    bounce(f, rec, node, down_ms).await
}

/// Stops a fault's background task, then restarts whatever node it still held.
async fn stop_holding(task: tokio::task::JoinHandle<()>, f: &Mutex<Faults>, rec: &Recorder) {
    let held = match f.lock() {
        Ok(mut g) => {
            g.tasks_stopped = true;
            std::mem::take(&mut g.held)
        }
        Err(_) => BTreeMap::new(),
    };
    stop_task(task).await;
    if let Ok(mut g) = f.lock() {
        for (n, how) in held {
            let _ = g.sup.restart(&n);
            rec.nemesis(EventType::Info, &format!("stop-{how}"), json!([n]));
        }
        // `tasks_stopped` stays set until the next such fault starts, so that no straggler
        // of this one can take a node after its undo.
    }
}

/// Lets a new fault task take nodes.
fn start_holding(f: &Mutex<Faults>) {
    if let Ok(mut g) = f.lock() {
        g.tasks_stopped = false;
    }
}

/// What a fault did, to undo it and to record it.
enum Applied {
    Partition,
    Churn(tokio::task::JoinHandle<()>),
    Paused(Vec<String>),
    Killed(Vec<String>),
    /// A task that kills (and freezes) nodes and restarts them; see [`take_node`].
    Holding(tokio::task::JoinHandle<()>),
    /// A staged fault's task: holds nodes like the above, and sets partitions and delay.
    Staged(tokio::task::JoinHandle<()>),
    Together(Vec<Applied>),
    Clock(Vec<String>, Option<tokio::task::JoinHandle<()>>),
    Loss,
    Slow,
    Delay,
}

async fn resolve(
    target: &Target,
    f: &Arc<Mutex<Faults>>,
    client: &OpClient,
    fallback: usize,
) -> Vec<String> {
    match target {
        Target::Nodes(n) => n.clone(),
        Target::Leader => {
            let addrs = f.lock().map(|f| f.addrs.clone()).unwrap_or_default();
            match leader_of(&addrs, client).await {
                Some(l) => vec![l],
                None => addrs
                    .get(fallback % addrs.len().max(1))
                    .map(|(n, _)| vec![n.clone()])
                    .unwrap_or_default(),
            }
        }
    }
}

/// A boxed future: `apply` and `undo` call themselves for faults run together.
type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

fn apply<'a>(
    fault: &'a Fault,
    f: &'a Arc<Mutex<Faults>>,
    rec: &'a Recorder,
    client: &'a OpClient,
    fallback: usize,
) -> Boxed<'a, anyhow::Result<Applied>> {
    Box::pin(apply_one(fault, f, rec, client, fallback))
}

async fn apply_one(
    fault: &Fault,
    f: &Arc<Mutex<Faults>>,
    rec: &Recorder,
    client: &OpClient,
    fallback: usize,
) -> anyhow::Result<Applied> {
    fn lock(f: &Arc<Mutex<Faults>>) -> anyhow::Result<std::sync::MutexGuard<'_, Faults>> {
        f.lock().map_err(|_| anyhow!("fault state poisoned"))
    }
    Ok(match fault {
        Fault::Partition {
            grudge,
            isolate_leader,
            ..
        } => {
            let grudge = if *isolate_leader {
                let nodes: Vec<String> = lock(f)?.addrs.iter().map(|(n, _)| n.clone()).collect();
                let l = resolve(&Target::Leader, f, client, fallback).await;
                isolating(&l, &nodes)
            } else {
                grudge.clone()
            };
            lock(f)?.net.partition(&grudge)?;
            // DESIGN section 2: the value is the grudge, who stops hearing whom; the shape is
            // in run.json's schedule.
            rec.nemesis(
                EventType::Info,
                "start-partition",
                serde_json::to_value(&grudge)?,
            );
            Applied::Partition
        }
        Fault::LeaderChurn { max_hold_ms, seed } => {
            let (f, rec, client) = (f.clone(), rec.clone(), client.clone());
            let (max_hold, mut rng) = (*max_hold_ms, workloads::rng::SplitMix64(*seed));
            let task = tokio::spawn(async move {
                let mut isolated: Vec<String> = Vec::new();
                loop {
                    let addrs = f.lock().map(|g| g.addrs.clone()).unwrap_or_default();
                    let nodes: Vec<String> = addrs.iter().map(|(n, _)| n.clone()).collect();
                    // A new leader, not the node cut off last time; none yet: look again soon,
                    // so that a leader can be cut off within milliseconds of its election.
                    let Some(l) = leader_among(&addrs, &isolated, &client).await else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    if !isolated.is_empty() {
                        rec.nemesis(EventType::Info, "stop-partition", Value::Null);
                    }
                    isolated = vec![l];
                    let grudge = isolating(&isolated, &nodes);
                    let cut = f
                        .lock()
                        .map(|mut g| g.net.partition(&grudge).is_ok())
                        .unwrap_or(false);
                    if !cut {
                        return;
                    }
                    rec.nemesis(
                        EventType::Info,
                        "start-partition",
                        serde_json::to_value(&grudge).unwrap_or(Value::Null),
                    );
                    let hold = rng.below(max_hold + 1);
                    tokio::time::sleep(Duration::from_millis(hold)).await;
                }
            });
            Applied::Churn(task)
        }
        Fault::Pause { target } => {
            let nodes = resolve(target, f, client, fallback).await;
            {
                let mut g = lock(f)?;
                for n in &nodes {
                    g.sup.pause(n)?;
                }
            }
            rec.nemesis(EventType::Info, "start-pause", json!(nodes));
            Applied::Paused(nodes)
        }
        Fault::Kill { target } => {
            let nodes = resolve(target, f, client, fallback).await;
            {
                let mut g = lock(f)?;
                for n in &nodes {
                    g.sup.kill(n)?;
                }
            }
            rec.nemesis(EventType::Info, "start-kill", json!(nodes));
            Applied::Killed(nodes)
        }
        Fault::CrashLoop {
            max_down_ms,
            max_up_ms,
            seed,
        } => {
            start_holding(f);
            let (f, rec) = (f.clone(), rec.clone());
            let (max_down, max_up) = (*max_down_ms, *max_up_ms);
            let mut rng = workloads::rng::SplitMix64(*seed);
            let task = tokio::spawn(async move {
                loop {
                    let names: Vec<String> = f
                        .lock()
                        .map(|g| g.addrs.iter().map(|(n, _)| n.clone()).collect())
                        .unwrap_or_default();
                    let Some(n) = rng.pick(&names) else {
                        return;
                    };
                    let down_ms = rng.below(max_down + 1);
                    if !bounce(&f, &rec, n, down_ms).await {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(rng.below(max_up + 1))).await;
                }
            });
            Applied::Holding(task)
        }
        Fault::ElectionStorm {
            leader_every_ms,
            max_hold_ms,
            max_down_ms,
            seed,
        } => {
            start_holding(f);
            let (f, rec, client) = (f.clone(), rec.clone(), client.clone());
            let every = Duration::from_millis(*leader_every_ms);
            let (max_hold, max_down) = (*max_hold_ms, *max_down_ms);
            let mut rng = workloads::rng::SplitMix64(*seed);
            let task = tokio::spawn(async move {
                let mut terms: HashMap<String, u64> = HashMap::new();
                // The first leader goes at once.
                let mut last_election = Instant::now()
                    .checked_sub(every)
                    .unwrap_or_else(Instant::now);
                // One task per node being frozen and killed; dropped (and so aborted) with
                // this task.
                let mut voters = tokio::task::JoinSet::new();
                loop {
                    while voters.try_join_next().is_some() {}
                    let addrs = f.lock().map(|g| g.addrs.clone()).unwrap_or_default();
                    let roles = roles_of(&addrs, &client).await;
                    let busy: BTreeSet<String> = f
                        .lock()
                        .map(|g| g.held.keys().cloned().collect())
                        .unwrap_or_default();
                    let mut moved = false;
                    for (name, role) in &roles {
                        let before = terms.insert(name.clone(), role.term);
                        // Term 0 is "not said yet" (a node still starting), not a term.
                        if !before.is_some_and(|t| t > 0 && role.term > t) {
                            continue;
                        }
                        moved = true;
                        if role.leader || role.campaigning || busy.contains(name) {
                            continue;
                        }
                        // A voter, right after its vote: frozen so that what comes next (the
                        // winner's first entries, another candidate's request) waits unread
                        // in its socket, then killed with all of that unread, and restarted.
                        let (f, rec, v) = (f.clone(), rec.clone(), name.clone());
                        let (hold, down_ms) = (rng.below(max_hold + 1), rng.below(max_down + 1));
                        voters.spawn(async move {
                            freeze_then_bounce(&f, &rec, &v, hold, down_ms).await;
                        });
                        terms.remove(name);
                    }
                    if moved {
                        last_election = Instant::now();
                    }
                    match highest_leader(&roles) {
                        Some((l, _)) if last_election.elapsed() >= every && !busy.contains(&l) => {
                            // Quiet for a while: kill the leader to start an election.
                            last_election = Instant::now();
                            let down_ms = rng.below(max_down + 1);
                            terms.remove(&l);
                            let (f, rec) = (f.clone(), rec.clone());
                            voters.spawn(async move {
                                bounce(&f, &rec, &l, down_ms).await;
                            });
                        }
                        _ => tokio::time::sleep(Duration::from_millis(2)).await,
                    }
                }
            });
            Applied::Holding(task)
        }
        Fault::AfterVote {
            delay_ms,
            hold_ms,
            seed,
        }
        | Fault::Figure8 {
            delay_ms,
            hold_ms,
            seed,
        } => {
            start_holding(f);
            let scenario = match fault {
                Fault::Figure8 { .. } => staged::Scenario::Figure8,
                _ => staged::Scenario::AfterVote,
            };
            let attempts = staged::attempts(
                f.clone(),
                rec.clone(),
                client.clone(),
                scenario,
                *delay_ms,
                *hold_ms,
                *seed,
            );
            Applied::Staged(tokio::spawn(attempts))
        }
        Fault::Together { faults } => {
            let mut done = Vec::new();
            for (i, one) in faults.iter().enumerate() {
                match apply(one, f, rec, client, fallback + i).await {
                    Ok(a) => done.push(a),
                    Err(e) => {
                        // Heal what was started before giving up.
                        for a in done.into_iter().rev() {
                            let _ = undo(a, f, rec).await;
                        }
                        return Err(e);
                    }
                }
            }
            Applied::Together(done)
        }
        Fault::ClockBump { target, offset_ms } => {
            let nodes = resolve(target, f, client, fallback).await;
            {
                let g = lock(f)?;
                for n in &nodes {
                    if let Some(c) = g.clocks.get(n) {
                        c.set(*offset_ms)?;
                    }
                }
            }
            rec.nemesis(
                EventType::Info,
                "start-clock",
                json!({"nodes": nodes, "offset_ms": offset_ms}),
            );
            Applied::Clock(nodes, None)
        }
        Fault::ClockStrobe {
            target,
            offset_ms,
            period_ms,
        } => {
            let nodes = resolve(target, f, client, fallback).await;
            let files: Vec<ClockFile> = {
                let g = lock(f)?;
                nodes
                    .iter()
                    .filter_map(|n| g.clocks.get(n).cloned())
                    .collect()
            };
            let (offset, period) = (*offset_ms, *period_ms);
            let task = tokio::spawn(async move {
                let mut on = false;
                loop {
                    on = !on;
                    for c in &files {
                        let _ = c.set(if on { offset } else { 0 });
                    }
                    tokio::time::sleep(Duration::from_millis(period.max(1))).await;
                }
            });
            rec.nemesis(
                EventType::Info,
                "start-clock-strobe",
                json!({"nodes": nodes, "offset_ms": offset_ms, "period_ms": period_ms}),
            );
            Applied::Clock(nodes, Some(task))
        }
        Fault::Loss { percent } => {
            lock(f)?.net.loss(*percent)?;
            rec.nemesis(EventType::Info, "start-loss", json!({"percent": percent}));
            Applied::Loss
        }
        Fault::Slow { kbit } => {
            lock(f)?.net.slow(*kbit)?;
            rec.nemesis(EventType::Info, "start-slow", json!({"kbit": kbit}));
            Applied::Slow
        }
        Fault::Delay {
            mean_ms,
            jitter_ms,
            seed,
        } => {
            lock(f)?.net.delay(*mean_ms, *jitter_ms, *seed)?;
            rec.nemesis(
                EventType::Info,
                "start-delay",
                json!({"mean_ms": mean_ms, "jitter_ms": jitter_ms}),
            );
            Applied::Delay
        }
    })
}

fn undo<'a>(
    applied: Applied,
    f: &'a Arc<Mutex<Faults>>,
    rec: &'a Recorder,
) -> Boxed<'a, anyhow::Result<()>> {
    Box::pin(undo_one(applied, f, rec))
}

/// Stops a fault's background task and waits until it has really stopped, so that it cannot
/// act after the fault is healed.
async fn stop_task(task: tokio::task::JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

async fn undo_one(applied: Applied, f: &Arc<Mutex<Faults>>, rec: &Recorder) -> anyhow::Result<()> {
    let applied = match applied {
        Applied::Together(all) => {
            let mut first_error = None;
            for a in all.into_iter().rev() {
                if let Err(e) = undo(a, f, rec).await {
                    first_error.get_or_insert(e);
                }
            }
            return first_error.map_or(Ok(()), Err);
        }
        Applied::Churn(task) => {
            stop_task(task).await;
            Applied::Partition
        }
        Applied::Holding(task) => {
            stop_holding(task, f, rec).await;
            return Ok(());
        }
        Applied::Staged(task) => {
            stop_holding(task, f, rec).await;
            return staged::lift(f, rec);
        }
        Applied::Clock(nodes, Some(task)) => {
            stop_task(task).await;
            Applied::Clock(nodes, None)
        }
        other => other,
    };
    let mut g = f.lock().map_err(|_| anyhow!("fault state poisoned"))?;
    match applied {
        Applied::Partition => {
            g.net.heal()?;
            rec.nemesis(EventType::Info, "stop-partition", Value::Null);
        }
        // Their tasks were stopped above; a churn was turned into a plain partition.
        Applied::Churn(_) | Applied::Holding(_) | Applied::Staged(_) | Applied::Together(_) => {}
        Applied::Loss => {
            g.net.heal()?;
            rec.nemesis(EventType::Info, "stop-loss", Value::Null);
        }
        Applied::Slow => {
            g.net.slow(0)?;
            rec.nemesis(EventType::Info, "stop-slow", Value::Null);
        }
        Applied::Delay => {
            g.net.delay(0, 0, 0)?;
            rec.nemesis(EventType::Info, "stop-delay", Value::Null);
        }
        Applied::Paused(nodes) => {
            for n in &nodes {
                g.sup.resume(n)?;
            }
            rec.nemesis(EventType::Info, "stop-pause", json!(nodes));
        }
        Applied::Killed(nodes) => {
            for n in &nodes {
                g.sup.restart(n)?;
            }
            rec.nemesis(EventType::Info, "stop-kill", json!(nodes));
        }
        Applied::Clock(nodes, _) => {
            for n in &nodes {
                if let Some(c) = g.clocks.get(n) {
                    c.reset()?;
                }
            }
            rec.nemesis(EventType::Info, "stop-clock", json!(nodes));
        }
    }
    Ok(())
}

/// Makes sure nothing is left broken: network healed, nodes resumed, restarted, clocks reset.
fn heal_everything(f: &Arc<Mutex<Faults>>) -> anyhow::Result<()> {
    let mut g = f.lock().map_err(|_| anyhow!("fault state poisoned"))?;
    g.net.heal()?;
    let names: Vec<String> = g.specs.keys().cloned().collect();
    for n in &names {
        match g.sup.state(n) {
            nemesis::process::NodeState::Paused => g.sup.resume(n)?,
            nemesis::process::NodeState::Stopped | nemesis::process::NodeState::Exited(_) => {
                g.sup.restart(n)?
            }
            nemesis::process::NodeState::Running => {}
        }
        if let Some(c) = g.clocks.get(n) {
            c.reset()?;
        }
    }
    Ok(())
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(v)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

async fn run_async(p: Prepared) -> anyhow::Result<Exit> {
    let mut signals = Signals::install();
    let args = &p.args;
    let names: Vec<String> = (1..=args.nodes).map(|i| format!("n{i}")).collect();
    let label = format!("{}-{}-{}", p.system.name, args.workload, p.plan.label());
    let run_dir = args.store.join(&label).join(utc_stamp());
    std::fs::create_dir_all(run_dir.join("nodes"))
        .with_context(|| format!("cannot create the run folder {}", run_dir.display()))?;
    let schedule: Schedule = schedule::generate(
        &p.plan,
        &names,
        args.time_limit.as_millis() as u64,
        args.nemesis_interval.as_millis() as u64,
        p.seed,
    );
    let tty = std::io::stderr().is_terminal();
    eprintln!(
        "harness: {} nodes of {}, workload {}, nemesis {}, seed {}; run folder {}",
        args.nodes,
        p.system.name,
        args.workload,
        p.plan.label(),
        p.seed,
        run_dir.display()
    );
    let mut run_json = json!({
        "system": p.system.name,
        "program": p.program,
        "workload": args.workload,
        "nemesis": p.plan.kinds().iter().map(|k| k.name()).collect::<Vec<_>>(),
        "nemesis_plan": p.plan.text(),
        "nodes": names,
        "concurrency": args.concurrency,
        "time_limit_ms": args.time_limit.as_millis() as u64,
        "rate": args.rate,
        "keys": args.keys,
        "recovery_ms": args.recovery.as_millis() as u64,
        "op_timeout_ms": args.op_timeout.as_millis() as u64,
        "seed": p.seed,
        "bug": args.bug,
        "schedule": schedule,
        "versions": {"harness": env!("CARGO_PKG_VERSION")},
        "node_args": args.node_args,
        "command": reproduce_command(&p),
        "started_at": utc_stamp(),
    });
    write_json(&run_dir.join("run.json"), &run_json)?;
    link_latest(&args.store, &run_dir);

    // The cluster.
    let t_start = Instant::now();
    let net = match Network::create(&names) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("harness: cannot build the sandbox network: {e}");
            return Ok(Exit::Failure);
        }
    };
    if p.plan.kinds().contains(&NemesisKind::Loss) && net.mechanism() == Mechanism::Blackhole {
        eprintln!(
            "harness: --nemesis loss: not available here: packet loss needs nft or iptables \
             (./scripts/install-deps, or apt-get install nftables); the other nemeses work without them"
        );
        return Ok(Exit::BadInput);
    }
    run_json["network"] = json!({
        "mechanism": net.mechanism(),
        "subnet": "10.77.0.0/24",
        "harness_ip": "10.77.0.1",
    });
    let mut addrs = Vec::new();
    let mut specs = HashMap::new();
    let mut clocks = HashMap::new();
    let mut netns = HashMap::new();
    let peers: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let ip = net.ip(n).map(|i| i.to_string()).unwrap_or_default();
            p.system.peer_entry(n, i + 1, &ip)
        })
        .collect();
    let peers = peers.join(",");
    for (index, n) in names.iter().enumerate() {
        let ip = net.ip(n).ok_or_else(|| anyhow!("no address for {n}"))?;
        let dir = run_dir.join("nodes").join(n);
        std::fs::create_dir_all(dir.join("data"))?;
        let clock_path = dir.join("clock-offset");
        let clock = ClockFile::new(clock_path.clone());
        clock.set(0)?;
        clocks.insert(n.clone(), clock);
        let ip_s = ip.to_string();
        let (node_args, env) = p.system.render(
            &NodeVars {
                node: n,
                index: index + 1,
                ip: &ip_s,
                data_dir: &dir.join("data"),
                peers: &peers,
                clock_offset_file: &clock_path,
                op_timeout_ms: (args.op_timeout.as_millis() as u64 * 3 / 4).max(1),
            },
            args.bug.as_deref(),
        );
        let node_args = [node_args, args.node_args.clone()].concat();
        let addr = SocketAddr::from((ip, p.system.port));
        specs.insert(
            n.clone(),
            NodeSpec {
                name: n.clone(),
                program: p.program.clone(),
                args: node_args,
                env,
                dir,
                health_url: format!("http://{addr}{}", p.system.ready_path),
            },
        );
        netns.insert(n.clone(), net.netns_path(n));
        addrs.push((n.clone(), addr));
    }
    let mut sup = Supervisor::new(netns);
    for n in &names {
        if let Err(e) = sup.start(&specs[n]) {
            eprintln!("harness: node {n} would not start: {e}");
            return Ok(Exit::Failure);
        }
    }
    let waits = names
        .iter()
        .map(|n| sup.wait_ready(n, p.system.ready_timeout));
    let ready = tokio::select! {
        r = futures_join_all(waits) => r,
        () = signals.recv() => {
            tokio::task::block_in_place(|| sup.stop_all(p.system.stop_grace));
            return Ok(Exit::Failure);
        }
    };
    for (n, r) in names.iter().zip(ready) {
        if let Err(e) = r {
            eprintln!("harness: node {n} did not become ready:\n{e}");
            tokio::task::block_in_place(|| sup.stop_all(p.system.stop_grace));
            return Ok(Exit::Failure);
        }
    }
    let startup = t_start.elapsed();
    run_json["startup_ms"] = json!(startup.as_millis() as u64);
    write_json(&run_dir.join("run.json"), &run_json)?;
    eprintln!(
        "harness: {} nodes ready in {} ms (network: {:?})",
        names.len(),
        startup.as_millis(),
        net.mechanism()
    );

    // The workload and the faults.
    let t0 = Instant::now();
    let workload_started_ms = crate::STARTED
        .get()
        .map_or(0, |s| t0.duration_since(*s).as_millis() as u64);
    let rec = Recorder::create(&run_dir.join("history.jsonl"), t0)?;
    let faults = Arc::new(Mutex::new(Faults {
        net,
        sup,
        specs,
        clocks,
        addrs: addrs.clone(),
        held: BTreeMap::new(),
        tasks_stopped: false,
        staged: Default::default(),
    }));
    let wcfg = WorkloadConfig {
        concurrency: args.concurrency,
        rate: (args.rate > 0.0).then_some(args.rate),
        op_timeout: args.op_timeout,
        seed: p.seed,
        keys: args.keys.max(1),
        workload: p.workload,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // One client for the workload, the final reads and the leader probes, in the system's
    // protocol.
    let http = OpClient::with_protocol(args.op_timeout, p.system.protocol);
    let clients = {
        let (wcfg, addrs, rec, client) = (wcfg.clone(), addrs.clone(), rec.clone(), http.clone());
        tokio::spawn(async move {
            workloads::runner::run_clients_with(&wcfg, &client, &addrs, rec, stop_rx).await
        })
    };
    let active = Arc::new(Mutex::new(String::from("quiet")));
    let total = args.time_limit + args.recovery;
    let bar = if tty {
        let b = ProgressBar::with_draw_target(
            Some(total.as_secs().max(1)),
            ProgressDrawTarget::stderr_with_hz(4),
        );
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let ticker = {
        let (rec, active, bar) = (rec.clone(), active.clone(), bar.clone());
        tokio::spawn(async move {
            let mut last_line = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let c = rec.counts();
                let elapsed = t0.elapsed();
                let fault = active.lock().map(|a| a.clone()).unwrap_or_default();
                let msg = format!("ok {} fail {} info {} | {}", c.ok, c.fail, c.info, fault);
                bar.set_position(elapsed.as_secs().min(total.as_secs()));
                bar.set_message(msg.clone());
                if !tty && last_line.elapsed() >= Duration::from_secs(5) {
                    last_line = Instant::now();
                    eprintln!(
                        "harness: {:>4.0}s of {:.0}s  {msg}",
                        elapsed.as_secs_f64(),
                        total.as_secs_f64()
                    );
                }
            }
        })
    };

    let mut interrupted = false;
    let ctrl_c = signals.recv();
    tokio::pin!(ctrl_c);
    let mut harness_error: Option<anyhow::Error> = None;
    for (i, step) in schedule.steps.iter().enumerate() {
        let at = t0 + Duration::from_millis(step.start_ms);
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => {}
            () = &mut ctrl_c => { interrupted = true; break; }
        }
        let applied = match apply(&step.fault, &faults, &rec, &http, i + p.seed as usize).await {
            Ok(a) => a,
            Err(e) => {
                harness_error = Some(e.context(format!("applying {}", step.fault.describe())));
                break;
            }
        };
        if let Ok(mut a) = active.lock() {
            *a = step.fault.describe();
        }
        let end = t0 + Duration::from_millis(step.end_ms);
        tokio::select! {
            () = tokio::time::sleep_until(end.into()) => {}
            () = &mut ctrl_c => { interrupted = true; }
        }
        if let Err(e) = undo(applied, &faults, &rec).await {
            harness_error = Some(e.context(format!("healing {}", step.fault.describe())));
            break;
        }
        if let Ok(mut a) = active.lock() {
            *a = "quiet".into();
        }
        if interrupted {
            break;
        }
    }
    if !interrupted && harness_error.is_none() {
        tokio::select! {
            () = tokio::time::sleep_until((t0 + args.time_limit).into()) => {}
            () = &mut ctrl_c => { interrupted = true; }
        }
    }
    // Every fault healed, then a recovery period.
    if let Err(e) = heal_everything(&faults) {
        harness_error.get_or_insert(e.context("healing every fault"));
    }
    if let Ok(mut a) = active.lock() {
        *a = "recovery".into();
    }
    if !interrupted {
        if p.workload.final_reads {
            let _ = stop_tx.send(true);
        }
        tokio::select! {
            () = tokio::time::sleep(args.recovery) => {}
            () = &mut ctrl_c => { interrupted = true; }
        }
    }
    let _ = stop_tx.send(true);
    clients.await.context("client tasks")?;
    if p.workload.final_reads && !interrupted {
        if let Ok(mut a) = active.lock() {
            *a = "final reads".into();
        }
        let keys = (p.workload.key_names)(args.keys);
        workloads::runner::final_reads(&keys, &addrs, &http, &rec, 1_000_000_000).await;
    }
    ticker.abort();
    bar.finish_and_clear();
    tokio::task::block_in_place(|| {
        if let Ok(mut g) = faults.lock() {
            g.sup.stop_all(p.system.stop_grace);
        }
    });
    rec.close().await.context("writing history.jsonl")?;
    let elapsed = t0.elapsed();

    // Checking.
    let checked =
        crate::checking::check_run(&run_dir.join("history.jsonl"), p.workload, &p.system)?;
    write_json(&run_dir.join("results.json"), &checked.results)?;
    let counts = rec.counts();
    let load = &checked.load;
    run_json["stats"] = json!({
        "counts": {"ok": counts.ok, "fail": counts.fail, "info": counts.info},
        "throughput_ok_per_s": load.ok_per_s,
        "latency_ok_ms": {"p50": load.p50_ms, "p99": load.p99_ms, "max": load.max_ms},
    });
    run_json["verdict"] = json!(checked.verdict);
    run_json["elapsed_ms"] = json!(elapsed.as_millis() as u64);
    run_json["workload_started_ms"] = json!(workload_started_ms);
    if let Some(first_ok_ns) = checked.first_ok_ns {
        run_json["first_ok_ms"] = json!(workload_started_ms + first_ok_ns / 1_000_000);
    }
    run_json["interrupted"] = json!(interrupted);
    write_json(&run_dir.join("run.json"), &run_json)?;
    let report_error = reports::render_run(&run_dir).err();

    // A person's view.
    println!();
    println!("{label} (seed {})", p.seed);
    println!(
        "  operations: {} ok, {} fail, {} info; {:.0} ok/s while clients ran; ok latency p50 \
         {:.1} ms, p99 {:.1} ms",
        counts.ok, counts.fail, counts.info, load.ok_per_s, load.p50_ms, load.p99_ms
    );
    println!(
        "  faults: {} injected ({})",
        schedule.steps.len(),
        p.plan.label()
    );
    if let Some(ms) = run_json["first_ok_ms"].as_u64() {
        println!(
            "  first operation acknowledged {ms} ms after the command started (nodes ready in {} ms)",
            startup.as_millis()
        );
    }
    crate::checking::print_results(&checked.results);
    if report_error.is_none() {
        println!("  report: {}", run_dir.join("report.html").display());
    }
    if interrupted {
        println!("  interrupted: the history is a prefix of the planned run");
    }
    if let Some(e) = harness_error {
        eprintln!("harness: {e:#}");
        return Ok(Exit::Failure);
    }
    if let Some(e) = report_error {
        eprintln!("harness: cannot write the report: {e}");
        return Ok(Exit::Failure);
    }
    Ok(Exit::of(checked.verdict))
}

async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futs {
        out.push(f.await);
    }
    out
}

/// SIGINT and SIGTERM, listened for from the start: inside the sandbox the harness is PID 1
/// of its PID namespace, and the kernel drops signals PID 1 has no handler for.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn recv(&mut self) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = one(&mut self.int) => {}
            () = one(&mut self.term) => {}
        }
        eprintln!(
            "harness: interrupted; healing faults, stopping nodes and checking what was recorded"
        );
    }
}

fn link_latest(store: &Path, run_dir: &Path) {
    let latest = store.join("latest");
    let Ok(rel) = run_dir.strip_prefix(store) else {
        return;
    };
    let tmp = store.join(".latest.tmp");
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink(rel, &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, &latest);
    }
}

/// The command line that repeats this run: every setting that shapes the schedule, the
/// operations or the nodes.
fn reproduce_command(p: &Prepared) -> String {
    let a = &p.args;
    let mut cmd = format!(
        "harness run --system {} --workload {} --nemesis {} --nodes {} --concurrency {} \
         --time-limit {}s --rate {} --keys {} --nemesis-interval {}s --recovery {}s \
         --op-timeout {}s --seed {}",
        a.system,
        a.workload,
        p.plan.text(),
        a.nodes,
        a.concurrency,
        a.time_limit.as_secs_f64(),
        a.rate,
        a.keys,
        a.nemesis_interval.as_secs_f64(),
        a.recovery.as_secs_f64(),
        a.op_timeout.as_secs_f64(),
        p.seed
    );
    if let Some(b) = &a.bug {
        cmd.push_str(&format!(" --bug {b}"));
    }
    for n in &a.node_args {
        cmd.push_str(&format!(" --node-arg={n}"));
    }
    cmd
}
