//! `raft-node`: one server of a Raft replicated key-value store, speaking the /op protocol.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use node::config::NodeArgs;
use raft::core::{Bugs, ReadMode};
use raft::server::{run, Settings};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReadModeArg {
    /// Confirm leadership with a heartbeat round before each batch of reads (linearizable).
    ReadIndex,
    /// Serve reads from the leader while its lease lasts, timed on this node's wall clock.
    /// Faster, but UNSAFE when clocks jump: a leader whose clock is set back keeps serving
    /// after it was deposed. The harness's clock nemesis exists to show exactly that.
    Lease,
}

#[derive(Parser, Debug)]
#[command(
    name = "raft-node",
    version,
    about = "One server of a Raft replicated key-value store (a bundled system under test of harness)",
    long_about = "One server of a Raft replicated key-value store, a bundled system under test of \
harness. It serves the /op protocol (read, write, cas, add, append, incr, txn) and /health on \
--listen, and talks to the other servers on the addresses of --peers (POST /raft).\n\n\
Follows the Raft paper (Ongaro and Ousterhout, 2014) and thesis: PreVote, fast log \
backtracking, the commit rule of section 5.4.2, snapshots with InstallSnapshot, and \
linearizable reads through ReadIndex (or a lease). Terms, votes and entries are fsynced to a \
write-ahead log in --data-dir before any reply.",
    after_help = "Example, a three-node cluster on one machine:\n  \
raft-node --id n1 --listen 127.0.0.1:7001 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 --data-dir /tmp/r/n1\n  \
(and the same with --id n2 --listen 127.0.0.1:7002, --id n3 --listen 127.0.0.1:7003)\n  \
curl -s localhost:7001/op -d '{\"f\":\"write\",\"key\":\"x\",\"value\":1}'"
)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,

    /// How linearizable reads are served.
    #[arg(long, value_enum, default_value = "read-index")]
    read_mode: ReadModeArg,

    /// Switch on a deliberate bug, for proving that the harness catches it (repeatable):
    /// stale-read (any node answers reads from its local state), commit-old-term (commits
    /// earlier-term entries by counting replicas, the paper's Figure 8), forget-vote (the vote
    /// is not persisted, so a restarted node can vote twice in a term), early-ack
    /// (acknowledges a write before it is committed).
    #[arg(long, value_name = "NAME")]
    bug: Vec<String>,

    /// Minimum election timeout; each timeout is drawn from [T, 2T).
    #[arg(long, value_name = "MS", default_value_t = 250)]
    election_timeout_ms: u64,

    /// Interval between the leader's heartbeats.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    heartbeat_ms: u64,

    /// Take a snapshot (and compact the log) after this many applied entries.
    #[arg(long, value_name = "ENTRIES", default_value_t = 10_000)]
    snapshot_every: u64,

    /// How long a client request waits for its outcome before it is answered `info`.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    op_timeout_ms: u64,

    /// Most entries in one AppendEntries message. Small values (with --max-inflight) make
    /// followers catch up slowly, which widens the windows some protocol bugs need.
    #[arg(long, value_name = "ENTRIES", default_value_t = 512)]
    max_batch: usize,

    /// Most entries sent to one follower and not yet acknowledged (pipelining depth).
    #[arg(long, value_name = "ENTRIES", default_value_t = 8192)]
    max_inflight: u64,

    /// Ask for pre-votes before a real election (thesis section 9.6), so that a server cut
    /// off from the leader cannot raise the term for nothing. On by default, as in etcd;
    /// raft-rs leaves it off. Off, every election timeout starts a new term at once.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pre_vote: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    node::logging::init_tracing(&cli.node.id);
    let mut bugs = Bugs::default();
    for name in &cli.bug {
        if let Err(e) = bugs.enable(name) {
            eprintln!("raft-node: --bug {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = cli.node.validate() {
        eprintln!("raft-node: {e}");
        return ExitCode::from(2);
    }
    if cli.heartbeat_ms * 2 > cli.election_timeout_ms {
        eprintln!(
            "raft-node: --heartbeat-ms {} must be well below --election-timeout-ms {} (at most half)",
            cli.heartbeat_ms, cli.election_timeout_ms
        );
        return ExitCode::from(2);
    }
    if cli.max_batch == 0 || cli.max_inflight == 0 {
        eprintln!("raft-node: --max-batch and --max-inflight must be at least 1");
        return ExitCode::from(2);
    }
    if matches!(cli.read_mode, ReadModeArg::Lease) && cli.election_timeout_ms < 100 {
        eprintln!(
            "raft-node: --read-mode lease needs --election-timeout-ms of at least 100 (10 ticks \
             of 10 ms); with less, no lease is safe even with perfect clocks"
        );
        return ExitCode::from(2);
    }
    let settings = Settings {
        node: cli.node,
        read_mode: match cli.read_mode {
            ReadModeArg::ReadIndex => ReadMode::ReadIndex,
            ReadModeArg::Lease => ReadMode::Lease,
        },
        bugs,
        tick_ms: 10,
        election_timeout_ms: cli.election_timeout_ms,
        heartbeat_ms: cli.heartbeat_ms,
        snapshot_every: cli.snapshot_every,
        op_timeout: Duration::from_millis(cli.op_timeout_ms),
        max_batch: cli.max_batch,
        max_inflight: cli.max_inflight,
        pre_vote: cli.pre_vote,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-node: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("raft-node: {e:#}");
            ExitCode::from(1)
        }
    }
}
