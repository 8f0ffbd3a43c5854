//! `harness run`: a cluster in a sandbox, a workload, faults on a schedule, a recorded and
//! checked history (DESIGN section 4). Glue over `nemesis`, `workloads` and `checkers`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nemesis::schedule::{self, NemesisKind, NemesisPlan, Schedule};
use nemesis::Injector;
use serde_json::{json, Value};
use workloads::recorder::Recorder;
use workloads::runner::WorkloadConfig;

use crate::cluster::{Cluster, HistoryRecord, Probe, Setup, StartError};
use crate::systems::SystemDef;
use crate::Exit;
use history::units::parse_duration;
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
///   harness run --system raft --workload counter --nemesis partition,kill
///   harness run --system raft --workload list-append --nemesis partition --keys 5
///   harness run --system systems-under-test/external/postgres-serializable.toml --nodes 1 \
///       --workload rw-register --concurrency 20 --keys 5 --nemesis kill
///   harness run --system raft --nemesis clock --bug stale-read --seed 7
///   harness run --system raft --nemesis partition:majorities-ring+delay+kill:election-storm
///   harness run --system raft --nodes 3 --nemesis kill:after-vote --bug forget-vote
///   harness run --system maelstrom:./my-node --workload broadcast --topology tree4 \
///       --nodes 25 --nemesis partition,kill
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
    /// The system under test: raft, paxos or dynamo (bundled), a definition file FILE.toml
    /// (systems-under-test/external/README.md), or maelstrom:PATH, a node program that speaks
    /// Maelstrom's protocol (systems-under-test/external/maelstrom/README.md).
    #[arg(long, default_value = "raft")]
    pub system: String,
    // The help lists the workloads' registry, so a new workload needs no line here.
    #[arg(long, default_value = "register", help = workloads::registry::help())]
    pub workload: String,
    /// Faults that take turns, comma-separated: partition, pause, kill, clock, loss, slow,
    /// delay, disk; or all (every one but disk); or none. A list with a network fault
    /// (partition, loss, slow, delay) and a process fault (pause, kill) makes one window in
    /// three one of each at once. KIND:SHAPE picks a shape: partition:leader-churn|halves|
    /// isolate-one|isolate-leader|majorities-ring|bridge|one-way|figure-8, kill:down|leader|
    /// crash-loop|election-storm|after-vote|after-promise, clock:bump|strobe,
    /// disk:lose-unsynced|torn|fsync-error|slow (each node's data directory is served through
    /// the harness's FUSE filesystem: power losses that discard what was not fsynced, torn
    /// last writes, fsync failing with EIO, fsync taking 10-200 ms). A+B runs A and B together in every
    /// window, e.g. partition:majorities-ring+delay+kill:election-storm. Three shapes are
    /// staged, step by step, watching /health, and make their own partitions and delay:
    /// kill:after-vote (a Raft vote given twice; needs voted_for), kill:after-promise (a Paxos
    /// promise forgotten across a restart; needs commit) and partition:figure-8 (the Raft
    /// paper's Figure 8; needs commit).
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
    /// Keys of the register workload (set: set keys; list-append and rw-register: the keys
    /// active at any one time).
    #[arg(long, default_value_t = 10)]
    pub keys: usize,
    /// list-append and rw-register only: micro-ops per transaction, at most (each has 1 to
    /// this many, about half of them reads).
    #[arg(long, default_value_t = workloads::txn::DEFAULT_MAX_TXN_LENGTH, value_name = "N")]
    pub max_txn_length: usize,
    /// list-append and rw-register only: writes a key takes before it retires and a fresh key
    /// takes its place, so that reads stay short (Elle's key lifecycle). Default: 32 for
    /// list-append, 16 for rw-register.
    #[arg(long, value_name = "N")]
    pub max_writes_per_key: Option<u64>,
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
    /// forget-vote, early-ack, no-fsync).
    #[arg(long, value_name = "NAME")]
    pub bug: Option<String>,
    /// An extra argument for every node's command line (repeatable), for tuning the system
    /// under test, e.g. --node-arg=--max-batch=1.
    #[arg(long = "node-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Serve each node's data directory through the harness's FUSE filesystem even without
    /// disk faults (they always do with --nemesis disk), e.g. to measure what it costs.
    #[arg(long)]
    pub disk_fs: bool,
    /// Maelstrom's broadcast workload only: the topology each node is sent, in Maelstrom's
    /// shapes: grid (the default), line, tree (tree2), tree3, tree4, total.
    #[arg(long, value_name = "SHAPE")]
    pub topology: Option<String>,
}

/// What `run` has checked before entering the sandbox.
pub struct Prepared {
    args: RunArgs,
    system: SystemDef,
    program: PathBuf,
    plan: NemesisPlan,
    workload: &'static workloads::Workload,
    seed: u64,
    /// Maelstrom's broadcast workload: the topology its nodes are sent.
    topology: Option<maelstrom::Topology>,
}

/// Checks the arguments and finds (or builds) the node program: everything that must happen
/// outside the sandbox, whose network has no way out.
pub fn prepare(args: RunArgs) -> Result<Prepared, (Exit, String)> {
    let usage = |m: String| (Exit::BadInput, m);
    let mut system = SystemDef::load(&args.system).map_err(|e| usage(format!("--system: {e}")))?;
    system.with_node_args(&args.node_args);
    let plan = NemesisPlan::parse(&args.nemesis).map_err(|e| usage(format!("--nemesis: {e}")))?;
    system.check_faults(&plan.kinds()).map_err(usage)?;
    if plan.kinds().contains(&NemesisKind::Disk) || args.disk_fs {
        // The device here; a probe mount inside the sandbox, before anything starts.
        fuse_device().map_err(|why| usage(disk_refusal(&why)))?;
    }
    system.check_status(&plan.staged()).map_err(usage)?;
    let workload =
        workloads::registry::find(&args.workload).map_err(|e| usage(format!("--workload: {e}")))?;
    system.check_workload(workload).map_err(usage)?;
    system.for_workload(workload);
    let maelstrom = system.protocol == workloads::Protocol::Maelstrom;
    let topology = match (&args.topology, maelstrom && workload.name == "broadcast") {
        (None, true) => Some(maelstrom::Topology::Grid),
        (Some(t), true) => Some(t.parse().map_err(|e| usage(format!("--topology: {e}")))?),
        (None, false) => None,
        (Some(_), false) => {
            return Err(usage(
                "--topology: only Maelstrom's broadcast workload has a topology (--system \
                 maelstrom:PATH --workload broadcast)"
                    .into(),
            ))
        }
    };
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
    if args.max_txn_length == 0 {
        return Err(usage("--max-txn-length: at least 1 micro-op".into()));
    }
    if args.max_writes_per_key == Some(0) {
        return Err(usage("--max-writes-per-key: at least 1 write".into()));
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
        topology,
    })
}

/// Whether /dev/fuse is there to open (what can be known before the sandbox is entered).
fn fuse_device() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(drop)
        .map_err(|e| format!("cannot open /dev/fuse: {e}"))
}

fn disk_refusal(why: &str) -> String {
    format!(
        "--nemesis disk (and --disk-fs): not available here: {why}; the other nemeses work \
         without FUSE"
    )
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
    history::time::UtcTime::now().compact()
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(v)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The run folder, its schedule and the first run.json, written before any node starts.
struct Opened {
    dir: PathBuf,
    label: String,
    schedule: Schedule,
    run_json: Value,
}

fn open_run(p: &Prepared, names: &[String]) -> anyhow::Result<Opened> {
    let args = &p.args;
    let label = format!("{}-{}-{}", p.system.name, args.workload, p.plan.label());
    let run_dir = args.store.join(&label).join(utc_stamp());
    std::fs::create_dir_all(run_dir.join("nodes"))
        .with_context(|| format!("cannot create the run folder {}", run_dir.display()))?;
    let schedule: Schedule = schedule::generate(
        &p.plan,
        names,
        args.time_limit.as_millis() as u64,
        args.nemesis_interval.as_millis() as u64,
        p.seed,
    );
    eprintln!(
        "harness: {} nodes of {}, workload {}, nemesis {}, seed {}; run folder {}",
        args.nodes,
        p.system.name,
        args.workload,
        p.plan.label(),
        p.seed,
        run_dir.display()
    );
    let run_json = json!({
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
        "max_txn_length": args.max_txn_length,
        "max_writes_per_key": args.max_writes_per_key,
        "recovery_ms": args.recovery.as_millis() as u64,
        "op_timeout_ms": args.op_timeout.as_millis() as u64,
        "seed": p.seed,
        "bug": args.bug,
        "schedule": schedule,
        "versions": {"harness": env!("CARGO_PKG_VERSION")},
        "node_args": args.node_args,
        "topology": p.topology.map(|t| t.to_string()),
        "disk_fs": p.plan.kinds().contains(&NemesisKind::Disk) || args.disk_fs,
        "command": reproduce_command(p),
        "started_at": utc_stamp(),
    });
    write_json(&run_dir.join("run.json"), &run_json)?;
    link_latest(&args.store, &run_dir);
    Ok(Opened {
        dir: run_dir,
        label,
        schedule,
        run_json,
    })
}

/// What the progress line shows as the current fault ("quiet", "recovery", ...).
type Active = Arc<Mutex<String>>;

fn set_active(active: &Active, what: String) {
    if let Ok(mut a) = active.lock() {
        *a = what;
    }
}

/// The progress bar on a terminal, a line every 5 s otherwise.
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(rec: Recorder, active: Active, t0: Instant, total: Duration) -> Progress {
        let tty = std::io::stderr().is_terminal();
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
            let bar = bar.clone();
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
        Progress { bar, ticker }
    }

    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// Applies each fault of the schedule at its time and heals it at its end. Whether the run was
/// interrupted, and the harness's own failure, if any.
async fn inject_schedule(
    schedule: &Schedule,
    injector: &Injector,
    active: &Active,
    t0: Instant,
    seed: u64,
    signals: &mut Signals,
) -> (bool, Option<anyhow::Error>) {
    for (i, step) in schedule.steps.iter().enumerate() {
        let at = t0 + Duration::from_millis(step.start_ms);
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => {}
            () = signals.recv() => return (true, None),
        }
        let applied = match injector.apply(&step.fault, i + seed as usize).await {
            Ok(a) => a,
            Err(e) => {
                let e =
                    anyhow::Error::new(e).context(format!("applying {}", step.fault.describe()));
                return (false, Some(e));
            }
        };
        set_active(active, step.fault.describe());
        let end = t0 + Duration::from_millis(step.end_ms);
        let mut interrupted = false;
        tokio::select! {
            () = tokio::time::sleep_until(end.into()) => {}
            () = signals.recv() => { interrupted = true; }
        }
        if let Err(e) = injector.undo(applied).await {
            let e = anyhow::Error::new(e).context(format!("healing {}", step.fault.describe()));
            return (interrupted, Some(e));
        }
        set_active(active, "quiet".into());
        if interrupted {
            return (true, None);
        }
    }
    (false, None)
}

/// Starts the cluster; the exit status when it did not come up.
async fn start_cluster(
    p: &Prepared,
    names: &[String],
    run_dir: &Path,
    maelstrom: Option<&maelstrom::Net>,
    signals: &mut Signals,
) -> Result<Cluster, Exit> {
    let setup = Setup {
        names,
        system: &p.system,
        program: &p.program,
        run_dir,
        bug: p.args.bug.as_deref(),
        node_args: &p.args.node_args,
        op_timeout: p.args.op_timeout,
        needs_drop_rules: p.plan.kinds().contains(&NemesisKind::Loss),
        maelstrom,
        disks: p.plan.kinds().contains(&NemesisKind::Disk) || p.args.disk_fs,
    };
    match Cluster::start(&setup, signals.recv()).await {
        Ok(c) => Ok(c),
        Err(StartError::Usage(m)) => {
            eprintln!("harness: {m}");
            Err(Exit::BadInput)
        }
        Err(StartError::Failure(m)) => {
            eprintln!("harness: {m}");
            Err(Exit::Failure)
        }
        Err(StartError::Interrupted) => Err(Exit::Failure),
    }
}

async fn run_async(p: Prepared) -> anyhow::Result<Exit> {
    let mut signals = Signals::install();
    let args = &p.args;
    let final_reads = crate::checking::wants_final_reads(p.workload, &p.system);
    let names: Vec<String> = (1..=args.nodes).map(|i| format!("n{i}")).collect();
    if p.plan.kinds().contains(&NemesisKind::Disk) || args.disk_fs {
        let probe = tokio::task::spawn_blocking(diskfs::available).await;
        if let Err(why) = probe.unwrap_or_else(|e| Err(e.to_string())) {
            eprintln!("harness: {}", disk_refusal(&why));
            return Ok(Exit::BadInput);
        }
    }
    let Opened {
        dir: run_dir,
        label,
        schedule,
        mut run_json,
    } = open_run(&p, &names)?;

    // The cluster.
    let t_start = Instant::now();
    let maelstrom = match p.system.protocol {
        workloads::Protocol::Maelstrom => Some(maelstrom_net(&p, &names, &run_dir)?),
        _ => None,
    };
    let cluster = match start_cluster(&p, &names, &run_dir, maelstrom.as_ref(), &mut signals).await
    {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    run_json["network"] = json!({
        "mechanism": cluster.net.mechanism(),
        "subnet": "10.77.0.0/24",
        "harness_ip": "10.77.0.1",
    });
    let startup = t_start.elapsed();
    run_json["startup_ms"] = json!(startup.as_millis() as u64);
    write_json(&run_dir.join("run.json"), &run_json)?;
    eprintln!(
        "harness: {} nodes ready in {} ms (network: {:?})",
        names.len(),
        startup.as_millis(),
        cluster.net.mechanism()
    );
    // One client for the workload, the final reads and the leader probes, in the system's
    // protocol.
    let http = match &maelstrom {
        Some(net) => OpClient::maelstrom(args.op_timeout, net.clone(), p.workload.name),
        None => OpClient::with_protocol(args.op_timeout, p.system.protocol),
    };
    let addrs = cluster.addrs.clone();
    let probe = Arc::new(Probe::new(http.clone(), &addrs));
    // The definition may not say what the status gives; the nodes do.
    if let Some(reason) = nemesis::staged::refusal(&*probe, &names, &p.plan.staged()).await {
        eprintln!("harness: --nemesis: {reason}");
        let mut sup = cluster.sup;
        tokio::task::block_in_place(|| sup.stop_all(p.system.stop_grace));
        return Ok(Exit::BadInput);
    }

    // The workload and the faults.
    let t0 = Instant::now();
    let workload_started_ms = crate::STARTED
        .get()
        .map_or(0, |s| t0.duration_since(*s).as_millis() as u64);
    let rec = Recorder::create(&run_dir.join("history.jsonl"), t0)?;
    let (injector, disks) = cluster.into_injector(probe, Arc::new(HistoryRecord(rec.clone())));
    let wcfg = WorkloadConfig {
        concurrency: args.concurrency,
        rate: (args.rate > 0.0).then_some(args.rate),
        op_timeout: args.op_timeout,
        seed: p.seed,
        keys: args.keys.max(1),
        workload: p.workload,
        txn: workloads::TxnSettings {
            max_txn_length: args.max_txn_length,
            max_writes_per_key: args.max_writes_per_key,
        },
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let clients = {
        let (wcfg, addrs, rec, client) = (wcfg.clone(), addrs.clone(), rec.clone(), http.clone());
        tokio::spawn(async move {
            workloads::runner::run_clients_with(&wcfg, &client, &addrs, rec, stop_rx).await
        })
    };
    let active: Active = Arc::new(Mutex::new(String::from("quiet")));
    let total = args.time_limit + args.recovery;
    let progress = Progress::start(rec.clone(), active.clone(), t0, total);

    let (mut interrupted, mut harness_error) =
        inject_schedule(&schedule, &injector, &active, t0, p.seed, &mut signals).await;
    if !interrupted && harness_error.is_none() {
        tokio::select! {
            () = tokio::time::sleep_until((t0 + args.time_limit).into()) => {}
            () = signals.recv() => { interrupted = true; }
        }
    }
    // Every fault healed, then a recovery period.
    if let Err(e) = injector.heal_everything() {
        harness_error.get_or_insert(anyhow::Error::new(e).context("healing every fault"));
    }
    set_active(&active, "recovery".into());
    if !interrupted {
        if final_reads {
            let _ = stop_tx.send(true);
        }
        tokio::select! {
            () = tokio::time::sleep(args.recovery) => {}
            () = signals.recv() => { interrupted = true; }
        }
    }
    let _ = stop_tx.send(true);
    clients.await.context("client tasks")?;
    let mut final_done = None;
    if final_reads && !interrupted {
        set_active(&active, "final reads".into());
        let keys = (p.workload.key_names)(args.keys);
        final_done =
            Some(workloads::runner::final_reads(&keys, &addrs, &http, &rec, 1_000_000_000).await);
    }
    progress.finish();
    if let Some(done) = final_done.filter(|d| d.failed + d.skipped > 0) {
        eprintln!(
            "harness: final reads: {} (key, node) pairs read, {} failed, {} skipped (the node \
             keeps no replica of the key)",
            done.ok, done.failed, done.skipped
        );
    }
    tokio::task::block_in_place(|| injector.stop_all(p.system.stop_grace));
    // Unmounted only now that no node uses its data directory.
    drop(disks);
    if let Some(net) = &maelstrom {
        net.flush_log();
        run_json["maelstrom"] = maelstrom_figures(net);
    }
    let ended = Ended {
        rec,
        run_dir,
        label,
        run_json,
        t0,
        workload_started_ms,
        startup,
        faults: schedule.steps.len(),
        interrupted,
        harness_error,
    };
    finish(&p, ended).await
}

/// The run's Maelstrom network: every message logged to `messages.jsonl` in the run folder;
/// for broadcast, each node is sent its topology after `init`.
fn maelstrom_net(p: &Prepared, names: &[String], run_dir: &Path) -> anyhow::Result<maelstrom::Net> {
    let log = run_dir.join("messages.jsonl");
    let net = maelstrom::Net::new(
        names,
        Some(&log),
        maelstrom::Options {
            seed: p.seed,
            init_timeout: p.system.ready_timeout,
        },
    )
    .with_context(|| format!("cannot create {}", log.display()))?;
    if let Some(t) = p.topology {
        // Every node is sent the whole map, as Maelstrom does.
        let map = json!(t.neighbours(names));
        for node in names {
            let mut body = serde_json::Map::new();
            body.insert("type".into(), "topology".into());
            body.insert("topology".into(), map.clone());
            net.set_setup(node, vec![body]);
        }
    }
    Ok(net)
}

/// What the Maelstrom network did, for run.json: its counts, and messages between nodes per
/// client operation (the figure Maelstrom's broadcast challenge asks for).
fn maelstrom_figures(net: &maelstrom::Net) -> Value {
    let stats = net.stats();
    let mut v = stats.to_json();
    let per_op = stats.between_nodes as f64 / stats.client_requests.max(1) as f64;
    v["messages_per_op"] = json!((per_op * 100.0).round() / 100.0);
    v["services"] = json!(net.services_served());
    v
}

fn print_maelstrom(m: &Value, run_dir: &Path) {
    let n = |k: &str| m[k].as_u64().unwrap_or(0);
    println!(
        "  maelstrom network: {} messages between nodes ({} per client operation), {} client \
         requests, {} service requests; dropped {} by partitions, {} by loss, {} to or \
         from nodes that were down; {} late replies",
        n("between_nodes"),
        m["messages_per_op"],
        n("client_requests"),
        n("service_requests"),
        n("dropped_partition"),
        n("dropped_loss"),
        n("dropped_down"),
        n("late_replies"),
    );
    let malformed: u64 = m["malformed"]
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    if malformed > 0 {
        println!(
            "  maelstrom: {malformed} lines the nodes wrote were not messages that could be \
             routed ({}); each is in {} with its node and line",
            m["malformed"],
            run_dir.join("messages.jsonl").display()
        );
    }
}

/// A run whose workload is over and whose nodes are stopped.
struct Ended {
    rec: Recorder,
    run_dir: PathBuf,
    label: String,
    run_json: Value,
    t0: Instant,
    workload_started_ms: u64,
    startup: Duration,
    /// Faults injected.
    faults: usize,
    interrupted: bool,
    harness_error: Option<anyhow::Error>,
}

/// Checks the history, writes results.json, run.json and the report, and says how it went.
async fn finish(p: &Prepared, e: Ended) -> anyhow::Result<Exit> {
    let Ended {
        rec,
        run_dir,
        label,
        mut run_json,
        t0,
        workload_started_ms,
        startup,
        faults: injected,
        interrupted,
        harness_error,
    } = e;
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
    println!("  faults: {} injected ({})", injected, p.plan.label());
    if let Some(ms) = run_json["first_ok_ms"].as_u64() {
        println!(
            "  first operation acknowledged {ms} ms after the command started (nodes ready in {} ms)",
            startup.as_millis()
        );
    }
    if let Some(m) = run_json.get("maelstrom") {
        print_maelstrom(m, &run_dir);
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
    if a.max_txn_length != workloads::txn::DEFAULT_MAX_TXN_LENGTH {
        cmd.push_str(&format!(" --max-txn-length {}", a.max_txn_length));
    }
    if let Some(n) = a.max_writes_per_key {
        cmd.push_str(&format!(" --max-writes-per-key {n}"));
    }
    if let Some(b) = &a.bug {
        cmd.push_str(&format!(" --bug {b}"));
    }
    for n in &a.node_args {
        cmd.push_str(&format!(" --node-arg={n}"));
    }
    if let Some(t) = p.topology {
        cmd.push_str(&format!(" --topology {t}"));
    }
    if a.disk_fs {
        cmd.push_str(" --disk-fs");
    }
    cmd
}
