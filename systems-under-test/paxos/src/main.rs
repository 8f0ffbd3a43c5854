//! `paxos-node`: one server of a Multi-Paxos replicated key-value store, speaking the /op
//! protocol.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use node::config::{ConsensusArgs, NodeArgs};
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
    after_help = "Bugs (--bug NAME, repeatable), each a classic Paxos mistake: forget-promise (the \
promise is kept in memory only), half-quorum (counts acks >= n/2), ignore-accepted (a new leader \
re-proposes its own votes instead of the highest-ballot ones reported), skip-hole (the executor \
skips a slot not known chosen after a short wait), stale-read (the leader answers reads locally, \
with no quorum round or lease).\n\n\
Example, a three-node cluster on one machine:\n  \
paxos-node --id n1 --listen 127.0.0.1:7001 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 --data-dir /tmp/p/n1\n  \
(and the same with --id n2 --listen 127.0.0.1:7002, --id n3 --listen 127.0.0.1:7003)\n  \
curl -s localhost:7001/op -d '{\"f\":\"write\",\"key\":\"x\",\"value\":1}'"
)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,

    #[command(flatten)]
    consensus: ConsensusArgs,

    /// How linearizable reads are served.
    #[arg(long, value_enum, default_value = "quorum")]
    read_mode: ReadModeArg,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    node::logging::init_tracing(&cli.node.id);
    let mut bugs = Bugs::default();
    for name in &cli.consensus.bug {
        if let Err(e) = bugs.enable(name) {
            eprintln!("paxos-node: --bug {e}");
            return ExitCode::from(2);
        }
    }
    let lease = matches!(cli.read_mode, ReadModeArg::Lease);
    if let Err(e) = cli.node.validate().and(cli.consensus.validate(lease)) {
        eprintln!("paxos-node: {e}");
        return ExitCode::from(2);
    }
    let settings = Settings {
        node: cli.node,
        consensus: cli.consensus,
        read_mode: if lease {
            ReadMode::Lease
        } else {
            ReadMode::Quorum
        },
        bugs,
    };
    node::runtime::main("paxos-node", run(settings))
}
