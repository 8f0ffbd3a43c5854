//! `paxos-node`: one server of a Multi-Paxos replicated key-value store, speaking the /op
//! protocol.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use node::config::NodeArgs;
use paxos::core::{Bugs, ReadMode};
use paxos::server::{run, Settings};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReadModeArg {
    /// Confirm leadership with a heartbeat round a majority acknowledges at the leader's
    /// ballot before each batch of reads (linearizable).
    Quorum,
    /// Serve reads from the leader while its lease lasts, timed on this node's wall clock.
    /// Faster, but UNSAFE when clocks jump: a leader whose clock is set back keeps serving
    /// after another was elected. The harness's clock nemesis exists to show exactly that.
    Lease,
}

#[derive(Parser, Debug)]
#[command(
    name = "paxos-node",
    version,
    about = "One server of a Multi-Paxos replicated key-value store (a bundled system under test of harness)",
    long_about = "One server of a Multi-Paxos replicated key-value store, a bundled system under \
test of harness. It serves the /op protocol (read, write, cas, add, append, incr, txn) and \
/health on --listen, and talks to the other servers on the addresses of --peers (POST /paxos).\n\n\
Every server is acceptor, learner and, when elected, the stable leader. A leader runs phase 1 \
(Prepare/Promise) once for every slot it does not know chosen, re-proposes the \
highest-ballot value reported in each, fills gaps with no-ops, then runs phase 2 \
(Accept/Accepted) per slot. Promises, votes and the proposer's round are fsynced to a \
write-ahead log in --data-dir before any reply that depends on them. Reads are confirmed by \
a quorum round (or a lease).",
    after_help = "Example, a three-node cluster on one machine:\n  \
paxos-node --id n1 --listen 127.0.0.1:7001 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 --data-dir /tmp/p/n1\n  \
(and the same with --id n2 --listen 127.0.0.1:7002, --id n3 --listen 127.0.0.1:7003)\n  \
curl -s localhost:7001/op -d '{\"f\":\"write\",\"key\":\"x\",\"value\":1}'"
)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,

    /// How linearizable reads are served.
    #[arg(long, value_enum, default_value = "quorum")]
    read_mode: ReadModeArg,

    /// Switch on a deliberate bug, for proving that the harness catches it (repeatable):
    /// forget-promise (the promise is kept in memory only), half-quorum (counts acks >= n/2),
    /// ignore-accepted (a new leader re-proposes its own votes instead of the highest-ballot
    /// ones reported), skip-hole (the executor skips a slot not known chosen after a short
    /// wait), stale-read (the leader answers reads locally, with no quorum round or lease).
    #[arg(long, value_name = "NAME")]
    bug: Vec<String>,

    /// Minimum election timeout; each timeout (and each back-off after a refused ballot) is
    /// drawn from [T, 2T).
    #[arg(long, value_name = "MS", default_value_t = 250)]
    election_timeout_ms: u64,

    /// Interval between the leader's heartbeats (the failure detector's input).
    #[arg(long, value_name = "MS", default_value_t = 50)]
    heartbeat_ms: u64,

    /// Take a snapshot (and drop the votes it covers) after this many executed slots.
    #[arg(long, value_name = "SLOTS", default_value_t = 10_000)]
    snapshot_every: u64,

    /// How long a client request waits for its outcome before it is answered `info`.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    op_timeout_ms: u64,

    /// Most slots in one Accept or Learn message.
    #[arg(long, value_name = "SLOTS", default_value_t = 512)]
    max_batch: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    node::logging::init_tracing(&cli.node.id);
    let mut bugs = Bugs::default();
    for name in &cli.bug {
        if let Err(e) = bugs.enable(name) {
            eprintln!("paxos-node: --bug {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = cli.node.validate() {
        eprintln!("paxos-node: {e}");
        return ExitCode::from(2);
    }
    if cli.heartbeat_ms * 2 > cli.election_timeout_ms {
        eprintln!(
            "paxos-node: --heartbeat-ms {} must be well below --election-timeout-ms {} (at most half)",
            cli.heartbeat_ms, cli.election_timeout_ms
        );
        return ExitCode::from(2);
    }
    if cli.max_batch == 0 {
        eprintln!("paxos-node: --max-batch must be at least 1");
        return ExitCode::from(2);
    }
    if matches!(cli.read_mode, ReadModeArg::Lease) && cli.election_timeout_ms < 100 {
        eprintln!(
            "paxos-node: --read-mode lease needs --election-timeout-ms of at least 100 (10 ticks \
             of 10 ms); with less, no lease is safe even with perfect clocks"
        );
        return ExitCode::from(2);
    }
    let settings = Settings {
        node: cli.node,
        read_mode: match cli.read_mode {
            ReadModeArg::Quorum => ReadMode::Quorum,
            ReadModeArg::Lease => ReadMode::Lease,
        },
        bugs,
        tick_ms: 10,
        election_timeout_ms: cli.election_timeout_ms,
        heartbeat_ms: cli.heartbeat_ms,
        snapshot_every: cli.snapshot_every,
        op_timeout: Duration::from_millis(cli.op_timeout_ms),
        max_batch: cli.max_batch,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paxos-node: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("paxos-node: {e:#}");
            ExitCode::from(1)
        }
    }
}
