//! `dynamo-node`: one server of a Dynamo-style eventually consistent key-value store,
//! speaking the /op protocol.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use dynamo::core::Bugs;
use dynamo::core::Session;
use dynamo::server::{run, Settings};
use dynamo::version::Conflict;
use node::config::NodeArgs;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SessionArg {
    /// A client's context is one key's (Dynamo's): a write carrying it supersedes what it
    /// says; reads may go back in time when they reach other replicas.
    Key,
    /// A client's context is its session's, across keys: each read returns a version at
    /// least as new as the session has seen, directly or through what it read (causal
    /// consistency, with the four session guarantees); a read no reachable replica can
    /// serve that way fails.
    Causal,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ConflictArg {
    /// Keep concurrent writes as siblings; a read returns them all with a context, and a
    /// write that carries that context replaces exactly them.
    Siblings,
    /// Last writer wins by the coordinator's wall clock (the offset file skews it): under
    /// clock skew, a write can lose to an older one. The harness's clock nemesis shows it.
    Lww,
}

#[derive(Parser, Debug)]
#[command(
    name = "dynamo-node",
    version,
    about = "One server of a Dynamo-style eventually consistent key-value store (a bundled system under test of harness)",
    long_about = "One server of a Dynamo-style eventually consistent key-value store (DeCandia et \
al., SOSP 2007), a bundled system under test of harness. It serves the /op protocol (read, \
write, add, incr; cas, append and txn are refused) and /health on --listen, and talks to the \
other servers on the addresses of --peers (POST /dynamo).\n\n\
Keys are placed on a consistent-hash ring with virtual nodes; each key's N replicas are the \
next N distinct nodes clockwise. Any node coordinates any request: a write goes to the first \
N reachable nodes of the key's walk and succeeds with W acknowledgements (a stand-in for an \
unreachable owner keeps a durable hint and hands the write back later); a read merges the \
first R replies and repairs stale replicas. Concurrent writes of a register become siblings \
(dotted version vectors) unless --conflict lww; `incr` keys are PN-counters and `add` keys \
OR-sets. With --session causal a client's context is its session's and every read is at \
least as new as what the session has seen (causal consistency). Merkle-tree anti-entropy with one random peer every --anti-entropy-ms; a heartbeat \
failure detector and gossip of membership. Every change is fsynced to a write-ahead log in \
--data-dir before it is acknowledged.\n\n\
A read with \"local\":true answers from this node's own replica (the harness's final \
convergence reads); a node that holds no replica of the key answers fail \"not-a-replica\".",
    after_help = "Bugs (--bug NAME, repeatable), each a classic mistake of such a store: \
lww-no-max (an LWW write's timestamp is the clock alone, not above the one it replaces), \
volatile-hints (hints kept in memory only), vclock-merge-min (version vectors merge by the \
minimum), repair-older (read repair overwrites replicas with the oldest copy), merkle-skip \
(after a restart or a peer's return, anti-entropy skips a quarter of the key space).\n\n\
Example, a three-node cluster on one machine:\n  \
dynamo-node --id n1 --listen 127.0.0.1:7001 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 --data-dir /tmp/d/n1\n  \
(and the same with --id n2 --listen 127.0.0.1:7002, --id n3 --listen 127.0.0.1:7003)\n  \
curl -s localhost:7001/op -d '{\"f\":\"write\",\"key\":\"x\",\"value\":1}'"
)]
struct Cli {
    #[command(flatten)]
    node: NodeArgs,

    /// Replicas of each key.
    #[arg(long, default_value_t = 3)]
    n: usize,

    /// Replies a read waits for.
    #[arg(long, default_value_t = 2)]
    r: usize,

    /// Acknowledgements a write waits for.
    #[arg(long, default_value_t = 2)]
    w: usize,

    /// Ring tokens per node.
    #[arg(long, default_value_t = 64)]
    vnodes: usize,

    /// How concurrent writes of a register are resolved.
    #[arg(long, value_enum, default_value = "siblings")]
    conflict: ConflictArg,

    /// What a client's context stands for: one key's, or its whole session's (causal).
    #[arg(long, value_enum, default_value = "key")]
    session: SessionArg,

    /// How long a client operation may take before it is answered info (a write) or fail
    /// (a read).
    #[arg(long, default_value_t = 2000)]
    op_timeout_ms: u64,

    /// Interval between two anti-entropy exchanges (with one random peer).
    #[arg(long, default_value_t = 500)]
    anti_entropy_ms: u64,

    /// A peer unheard for this long is taken for down.
    #[arg(long, default_value_t = 500)]
    fd_timeout_ms: u64,

    /// Plant a bug (repeatable); see below.
    #[arg(long, value_name = "NAME")]
    bug: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    node::logging::init_tracing(&cli.node.id);
    let mut bugs = Bugs::default();
    for name in &cli.bug {
        if let Err(e) = bugs.enable(name) {
            eprintln!("dynamo-node: --bug {e}");
            return ExitCode::from(2);
        }
    }
    let settings = Settings {
        node: cli.node,
        n: cli.n,
        r: cli.r,
        w: cli.w,
        vnodes: cli.vnodes,
        conflict: match cli.conflict {
            ConflictArg::Siblings => Conflict::Siblings,
            ConflictArg::Lww => Conflict::Lww,
        },
        session: match cli.session {
            SessionArg::Key => Session::Key,
            SessionArg::Causal => Session::Causal,
        },
        op_timeout: Duration::from_millis(cli.op_timeout_ms),
        anti_entropy: Duration::from_millis(cli.anti_entropy_ms),
        fd_timeout: Duration::from_millis(cli.fd_timeout_ms),
        bugs,
    };
    if let Err(e) = settings.validate() {
        eprintln!("dynamo-node: {e}");
        return ExitCode::from(2);
    }
    node::runtime::main("dynamo-node", run(settings))
}
