//! `raft-node`: one server of a Raft replicated key-value store, speaking the /op protocol.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use node::config::{ConsensusArgs, NodeArgs};
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
    after_help = "Bugs (--bug NAME, repeatable): stale-read (any node answers reads from its local \
state), commit-old-term (commits earlier-term entries by counting replicas, the paper's Figure 8), \
forget-vote (the vote is not persisted, so a restarted node can vote twice in a term), early-ack \
(acknowledges a write before it is committed), no-fsync (the log is written but not fdatasynced \
before acknowledging: survives kill -9, not a power loss).\n\n\
Example, a three-node cluster on one machine:\n  \
raft-node --id n1 --listen 127.0.0.1:7001 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 --data-dir /tmp/r/n1\n  \
(and the same with --id n2 --listen 127.0.0.1:7002, --id n3 --listen 127.0.0.1:7003)\n  \
curl -s localhost:7001/op -d '{\"f\":\"write\",\"key\":\"x\",\"value\":1}'"
)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,

    #[command(flatten)]
    consensus: ConsensusArgs,

    /// How linearizable reads are served.
    #[arg(long, value_enum, default_value = "read-index")]
    read_mode: ReadModeArg,

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
    for name in &cli.consensus.bug {
        if let Err(e) = bugs.enable(name) {
            eprintln!("raft-node: --bug {e}");
            return ExitCode::from(2);
        }
    }
    if bugs.no_fsync {
        node::wal::skip_fdatasync_for_bug();
    }
    let lease = matches!(cli.read_mode, ReadModeArg::Lease);
    if let Err(e) = cli.node.validate().and(cli.consensus.validate(lease)) {
        eprintln!("raft-node: {e}");
        return ExitCode::from(2);
    }
    if cli.max_inflight == 0 {
        eprintln!("raft-node: --max-inflight must be at least 1");
        return ExitCode::from(2);
    }
    let settings = Settings {
        node: cli.node,
        consensus: cli.consensus,
        read_mode: if lease {
            ReadMode::Lease
        } else {
            ReadMode::ReadIndex
        },
        bugs,
        max_inflight: cli.max_inflight,
        pre_vote: cli.pre_vote,
    };
    node::runtime::main("raft-node", run(settings))
}
