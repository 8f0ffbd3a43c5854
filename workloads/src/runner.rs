//! The runner: concurrent clients against a cluster, as Jepsen drives them.
//!
//! Client `i` talks only to node `i % nodes.len()` and starts as process `i`. It loops: generate
//! an operation, record the invocation, send it, record the completion. After an `info`
//! completion the process may still have an operation in flight inside the system, so the client
//! continues under a fresh id, `i + k * concurrency` after its `k`-th retirement; ids are never
//! reused (shared/DESIGN.md section 2).
//!
//! Each process id is a session: for every key, the client keeps the last context the system
//! returned on an `ok` completion (shared/DESIGN.md section 3: a Dynamo-style vector clock) and
//! sends it with the session's next operation on that key; a workload that keeps a session
//! context ([`crate::Generator::session_context`], the `causal` workload) keeps one for all keys,
//! the last returned. A fresh process id starts a fresh session, with no context.

use crate::client::{Completion, OpClient};
use crate::recorder::Recorder;
use crate::registry::{RunSpec, Workload};
use crate::rng::SplitMix64;
use crate::txn::TxnSettings;
use crate::{Generator, Op};
use history::EventType;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Attempts of each final read before giving up on that node.
pub const FINAL_READ_ATTEMPTS: u64 = 5;

/// Pause between attempts of a final read.
pub const FINAL_READ_RETRY: Duration = Duration::from_secs(1);

const PURPOSE_STAGGER: u64 = 3;
const PURPOSE_BACKOFF: u64 = 4;

/// A refusal that came back faster than this was "at once": the node would not even try (no
/// leader known, connection refused by a killed node), so asking again at once only records
/// another refusal.
pub const INSTANT_REFUSAL: Duration = Duration::from_millis(50);
/// The first back-off after an instant refusal; each further one in a row doubles it, up to
/// [`MAX_BACKOFF`]. The sleep is drawn uniformly from the upper half, from the seed.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(2);
pub const MAX_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Concurrent clients.
    pub concurrency: usize,
    /// Total operations per second across all clients; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// The most an operation may take before it is recorded as `info`.
    pub op_timeout: Duration,
    pub seed: u64,
    pub keys: usize,
    pub workload: &'static Workload,
    /// What transactional workloads read (the others ignore it).
    pub txn: TxnSettings,
}

/// What the clients did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub elapsed: Duration,
    /// A process id above every id the clients used: where [`final_reads`] may start.
    pub next_process: u64,
}

#[derive(Default)]
struct ClientStats {
    ok: u64,
    fail: u64,
    info: u64,
}

/// Runs `cfg.concurrency` clients against `nodes` (name, address) until `stop` turns true (or
/// its sender is dropped), then waits for the operations in flight, each bounded by
/// `cfg.op_timeout`. The clients speak the /op protocol; [`run_clients_with`] takes a client for
/// another protocol.
pub async fn run_clients(
    cfg: &WorkloadConfig,
    nodes: &[(String, SocketAddr)],
    recorder: Recorder,
    stop: watch::Receiver<bool>,
) -> RunStats {
    let client = OpClient::new(cfg.op_timeout);
    run_clients_with(cfg, &client, nodes, recorder, stop).await
}

/// [`run_clients`] through `client` (any [`crate::Protocol`]), whose own timeout bounds each
/// operation (build it with `cfg.op_timeout`).
pub async fn run_clients_with(
    cfg: &WorkloadConfig,
    client: &OpClient,
    nodes: &[(String, SocketAddr)],
    recorder: Recorder,
    stop: watch::Receiver<bool>,
) -> RunStats {
    let started = Instant::now();
    if nodes.is_empty() || cfg.concurrency == 0 {
        return RunStats {
            elapsed: started.elapsed(),
            ..RunStats::default()
        };
    }
    // Mean time between one client's operation starts, so that all together make `rate`.
    let interval = cfg
        .rate
        .filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| Duration::from_secs_f64(cfg.concurrency as f64 / r));
    // The largest process id any client has used, updated before the id is first used.
    let max_process = Arc::new(AtomicU64::new(cfg.concurrency as u64 - 1));
    // One for the whole run: what its workers' generators share.
    let run = Arc::new(RunSpec::new(cfg.seed, cfg.keys, cfg.txn));
    let mut tasks = JoinSet::new();
    for i in 0..cfg.concurrency {
        let (name, addr) = nodes[i % nodes.len()].clone();
        let worker = Worker {
            index: i as u64,
            concurrency: cfg.concurrency as u64,
            node: name,
            addr,
            client: client.clone(),
            recorder: recorder.clone(),
            generator: (cfg.workload.generator)(&run, i as u64),
            backoff: Backoff::new(SplitMix64::for_stream(cfg.seed, i as u64, PURPOSE_BACKOFF)),
            stagger: SplitMix64::for_stream(cfg.seed, i as u64, PURPOSE_STAGGER),
            interval,
            stop: stop.clone(),
            max_process: max_process.clone(),
        };
        tasks.spawn(worker.run());
    }
    let mut stats = RunStats::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(c) => {
                stats.ok += c.ok;
                stats.fail += c.fail;
                stats.info += c.info;
            }
            // A panicking client is a bug in the harness: say so, keep the others' figures.
            Err(e) => tracing::error!("a client task ended abnormally: {e}"),
        }
    }
    stats.elapsed = started.elapsed();
    stats.next_process = max_process.load(Ordering::SeqCst) + 1;
    stats
}

struct Worker {
    index: u64,
    concurrency: u64,
    node: String,
    addr: SocketAddr,
    client: OpClient,
    recorder: Recorder,
    generator: Box<dyn Generator>,
    stagger: SplitMix64,
    backoff: Backoff,
    interval: Option<Duration>,
    stop: watch::Receiver<bool>,
    max_process: Arc<AtomicU64>,
}

impl Worker {
    async fn run(mut self) -> ClientStats {
        let mut stats = ClientStats::default();
        let mut process = self.index;
        let mut retirements = 0u64;
        // The session's contexts, per key: the last one the system returned (one, under the
        // empty key, when the workload keeps a session context).
        let mut contexts: HashMap<String, String> = HashMap::new();
        let session = self.generator.session_context();
        // With a rate, a random first offset spreads the clients' starts over one interval.
        let mut next_start = tokio::time::Instant::now();
        if let Some(iv) = self.interval {
            next_start += iv.mul_f64(self.stagger.unit());
        }
        loop {
            if self.stopped() {
                break;
            }
            if self.interval.is_some() {
                tokio::select! {
                    () = tokio::time::sleep_until(next_start) => {}
                    () = wait_stop(&mut self.stop) => break,
                }
            }
            let began = tokio::time::Instant::now();
            let mut op = self.generator.next_op();
            // A session context is kept under the empty key.
            let slot = |op: &Op| match session {
                true => Some(String::new()),
                false => op.key.clone(),
            };
            if op.context.is_none() {
                op.context = slot(&op).and_then(|k| contexts.get(&k).cloned());
            }
            self.recorder.invoke(process, &op, &self.node);
            let c = self.client.invoke(self.addr, &op).await;
            self.recorder.complete(process, &op, &self.node, &c);
            self.generator.observe(&op, &c);
            let pause = self.backoff.after(&c, began.elapsed());
            match c.kind {
                EventType::Ok => {
                    stats.ok += 1;
                    if let (Some(k), Some(ctx)) = (slot(&op), &c.context) {
                        contexts.insert(k, ctx.clone());
                    }
                }
                EventType::Fail => stats.fail += 1,
                EventType::Info | EventType::Invoke => {
                    stats.info += 1;
                    contexts.clear();
                    retirements += 1;
                    process = self.index + retirements * self.concurrency;
                    self.max_process.fetch_max(process, Ordering::SeqCst);
                }
            }
            if let Some(iv) = self.interval {
                // Uniform in [0, 2 * interval): mean interval, no lockstep between clients.
                let gap = iv.mul_f64(2.0 * self.stagger.unit());
                next_start = next_start.max(began) + gap;
            }
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = wait_stop(&mut self.stop) => break,
                }
            }
        }
        stats
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }
}

/// A client's back-off after instant refusals: exponential, capped, jittered from the seed.
struct Backoff {
    rng: SplitMix64,
    /// Refusals in a row.
    streak: u32,
}

impl Backoff {
    fn new(rng: SplitMix64) -> Backoff {
        Backoff { rng, streak: 0 }
    }

    /// How long to wait before the next operation, after `c` came back in `took`: nothing
    /// unless it was refused at once ([`Completion::refused`]).
    fn after(&mut self, c: &Completion, took: Duration) -> Option<Duration> {
        if !c.refused || took >= INSTANT_REFUSAL {
            self.streak = 0;
            return None;
        }
        let ceiling = FIRST_BACKOFF
            .saturating_mul(1 << self.streak.min(16))
            .min(MAX_BACKOFF);
        self.streak += 1;
        Some(ceiling.mul_f64(0.5 + 0.5 * self.rng.unit()))
    }
}

/// Resolves when `stop` turns true or its sender is dropped.
async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    // wait_for returns Err when the sender is gone: nobody can stop us then, so stop now.
    let _ = stop.wait_for(|s| *s).await;
}

/// How a node that does not keep a key answers a local read of it (the error's start).
pub const NOT_A_REPLICA: &str = "not-a-replica";

/// How one (key, node) pair's final reads ended.
enum PairEnd {
    Ok,
    Failed,
    Skipped,
}

/// What [`final_reads`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FinalReads {
    /// (key, node) pairs read successfully.
    pub ok: u64,
    /// (key, node) pairs with no `ok` read after every attempt.
    pub failed: u64,
    /// (key, node) pairs the node answered `not-a-replica`: it does not keep that key, so
    /// there is nothing of it to read there.
    pub skipped: u64,
    /// A process id above every id the final reads used.
    pub next_process: u64,
}

/// After the faults heal: one read of every key from every node, each attempt as its own fresh
/// process (ids from `first_process` on), recorded like any operation. Each read asks for the
/// node's own replica (`"local": true`, shared/DESIGN.md section 3), which is what a
/// convergence check compares; a system that ignores the flag answers as for any read. A read
/// that fails or is `info` is tried again after [`FINAL_READ_RETRY`], up to
/// [`FINAL_READ_ATTEMPTS`] attempts in all, except a `fail` whose error starts with
/// [`NOT_A_REPLICA`]: that node does not keep the key, and the pair is skipped at once. Pairs are read concurrently; pair `j`'s attempts use processes
/// `first_process + j * FINAL_READ_ATTEMPTS + attempt`.
pub async fn final_reads(
    keys: &[String],
    nodes: &[(String, SocketAddr)],
    client: &OpClient,
    recorder: &Recorder,
    first_process: u64,
) -> FinalReads {
    let mut tasks = JoinSet::new();
    let mut pairs = 0u64;
    for key in keys {
        for (name, addr) in nodes {
            let base = first_process + pairs * FINAL_READ_ATTEMPTS;
            pairs += 1;
            let (key, name, addr) = (key.clone(), name.clone(), *addr);
            let (client, recorder) = (client.clone(), recorder.clone());
            tasks.spawn(async move {
                let op = Op::local_read(key);
                for attempt in 0..FINAL_READ_ATTEMPTS {
                    if attempt > 0 {
                        tokio::time::sleep(FINAL_READ_RETRY).await;
                    }
                    let process = base + attempt;
                    recorder.invoke(process, &op, &name);
                    let c: Completion = client.invoke(addr, &op).await;
                    recorder.complete(process, &op, &name, &c);
                    if c.kind == EventType::Ok {
                        return PairEnd::Ok;
                    }
                    let not_replica = c
                        .error
                        .as_deref()
                        .is_some_and(|e| e.starts_with(NOT_A_REPLICA));
                    if c.kind == EventType::Fail && not_replica {
                        return PairEnd::Skipped;
                    }
                }
                PairEnd::Failed
            });
        }
    }
    let mut out = FinalReads {
        next_process: first_process + pairs * FINAL_READ_ATTEMPTS,
        ..FinalReads::default()
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(PairEnd::Ok) => out.ok += 1,
            Ok(PairEnd::Failed) => out.failed += 1,
            Ok(PairEnd::Skipped) => out.skipped += 1,
            Err(e) => {
                tracing::error!("a final read task ended abnormally: {e}");
                out.failed += 1;
            }
        }
    }
    out
}
