//! The command-line arguments every bundled node takes (DESIGN section 5's `{node}`, `{ip}`,
//! `{port}`, `{data_dir}`, `{peers}` fill them in).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One member of the cluster: its id and the address its /op and peer routes listen on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The node id, e.g. `n1`.
    pub id: String,
    /// Where the node listens, e.g. `10.0.0.1:8001`.
    pub addr: SocketAddr,
}

/// Arguments shared by every bundled node binary; flatten them into the binary's own parser
/// with `#[command(flatten)]`.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeArgs {
    /// This node's id; must be one of the ids in --peers (e.g. n1).
    #[arg(long, value_name = "ID")]
    pub id: String,

    /// Address to serve /op, /health and peer traffic on (e.g. 10.0.0.1:8001 or 0.0.0.0:8001).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: SocketAddr,

    /// Every member of the cluster including this one, as comma-separated ID=IP:PORT entries,
    /// the same list on every node (e.g. n1=10.0.0.1:8001,n2=10.0.0.2:8001,n3=10.0.0.3:8001).
    #[arg(long, value_name = "ID=IP:PORT,...", value_parser = parse_peers)]
    // Spelled out so clap takes the whole list as one value instead of repeating the flag.
    pub peers: ::std::vec::Vec<Peer>,

    /// Directory for this node's durable state (write-ahead log, snapshots); keep it across
    /// restarts, since a restarted node recovers from it.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,

    /// File holding this node's clock offset in milliseconds (e.g. -120000), written by the
    /// harness to skew the node's wall clock; re-read continually. Missing file: no skew.
    #[arg(long, value_name = "FILE")]
    pub clock_offset_file: Option<PathBuf>,
}

impl NodeArgs {
    /// Checks what clap cannot: that --id names one of --peers.
    pub fn validate(&self) -> Result<(), String> {
        if self.peers.iter().any(|p| p.id == self.id) {
            return Ok(());
        }
        let ids: Vec<&str> = self.peers.iter().map(|p| p.id.as_str()).collect();
        Err(format!(
            "--id {}: not among --peers, whose ids are {}",
            self.id,
            ids.join(", ")
        ))
    }

    /// The other members of the cluster.
    pub fn others(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().filter(move |p| p.id != self.id)
    }
}

/// Parses `n1=IP:PORT,n2=IP:PORT,...`. Errors name the entry (counting from 1) and what is
/// wrong; duplicate ids and duplicate addresses are refused.
pub fn parse_peers(s: &str) -> Result<Vec<Peer>, String> {
    if s.trim().is_empty() {
        return Err("--peers: empty; expected ID=IP:PORT,ID=IP:PORT,...".to_string());
    }
    let mut peers: Vec<Peer> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    for (i, raw) in s.split(',').enumerate() {
        let n = i + 1;
        let entry = raw.trim();
        let bad = |why: &str| format!("--peers: entry {n} '{entry}': {why}");
        let Some((id, addr)) = entry.split_once('=') else {
            return Err(bad("expected ID=IP:PORT"));
        };
        let (id, addr) = (id.trim(), addr.trim());
        if id.is_empty() {
            return Err(bad("expected ID=IP:PORT (the ID is empty)"));
        }
        let Ok(addr) = addr.parse::<SocketAddr>() else {
            return Err(bad("expected ID=IP:PORT"));
        };
        if let Some(first) = by_id.insert(id.to_string(), n) {
            return Err(bad(&format!("id {id} is already used by entry {first}")));
        }
        if let Some(first) = by_addr.insert(addr, n) {
            return Err(bad(&format!(
                "address {addr} is already used by entry {first}"
            )));
        }
        peers.push(Peer {
            id: id.to_string(),
            addr,
        });
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn parses_a_peer_list() {
        let peers = parse_peers("n1=10.0.0.1:8001, n2=10.0.0.2:8001,n3=[::1]:9000").expect("valid");
        assert_eq!(
            peers,
            vec![
                Peer {
                    id: "n1".into(),
                    addr: addr("10.0.0.1:8001")
                },
                Peer {
                    id: "n2".into(),
                    addr: addr("10.0.0.2:8001")
                },
                Peer {
                    id: "n3".into(),
                    addr: addr("[::1]:9000")
                },
            ]
        );
    }

    #[test]
    fn peer_errors_name_the_entry() {
        let cases = [
            (
                "n1=1.2.3.4:1,n2=1.2.3",
                "--peers: entry 2 'n2=1.2.3': expected ID=IP:PORT",
            ),
            ("n1=1.2.3.4:1,", "--peers: entry 2 '': expected ID=IP:PORT"),
            ("n1", "--peers: entry 1 'n1': expected ID=IP:PORT"),
            (
                "=1.2.3.4:1",
                "--peers: entry 1 '=1.2.3.4:1': expected ID=IP:PORT (the ID is empty)",
            ),
            (
                "n1=host:80",
                "--peers: entry 1 'n1=host:80': expected ID=IP:PORT",
            ),
            (
                "n1=1.2.3.4:1,n2=1.2.3.4:2,n1=1.2.3.4:3",
                "--peers: entry 3 'n1=1.2.3.4:3': id n1 is already used by entry 1",
            ),
            (
                "n1=1.2.3.4:1,n2=1.2.3.4:1",
                "--peers: entry 2 'n2=1.2.3.4:1': address 1.2.3.4:1 is already used by entry 1",
            ),
            ("", "--peers: empty; expected ID=IP:PORT,ID=IP:PORT,..."),
        ];
        for (input, want) in cases {
            assert_eq!(parse_peers(input), Err(want.to_string()), "{input:?}");
        }
    }

    #[test]
    fn node_args_parse_and_validate() {
        let cli = Cli::try_parse_from([
            "node",
            "--id",
            "n2",
            "--listen",
            "0.0.0.0:8001",
            "--peers",
            "n1=10.0.0.1:8001,n2=10.0.0.2:8001,n3=10.0.0.3:8001",
            "--data-dir",
            "/tmp/n2",
            "--clock-offset-file",
            "/tmp/n2.offset",
        ])
        .expect("valid arguments");
        let args = cli.node;
        assert_eq!(args.peers.len(), 3);
        assert_eq!(args.listen, addr("0.0.0.0:8001"));
        assert_eq!(
            args.clock_offset_file,
            Some(PathBuf::from("/tmp/n2.offset"))
        );
        assert_eq!(args.validate(), Ok(()));
        let others: Vec<&str> = args.others().map(|p| p.id.as_str()).collect();
        assert_eq!(others, ["n1", "n3"]);

        let stranger = NodeArgs {
            id: "n9".into(),
            ..args
        };
        assert_eq!(
            stranger.validate(),
            Err("--id n9: not among --peers, whose ids are n1, n2, n3".to_string())
        );
    }

    #[test]
    fn help_shows_every_flag_with_an_example() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for want in [
            "--id <ID>",
            "--listen <IP:PORT>",
            "--peers <ID=IP:PORT,...>",
            "--data-dir <DIR>",
            "--clock-offset-file <FILE>",
            "n1=10.0.0.1:8001,n2=10.0.0.2:8001",
        ] {
            assert!(help.contains(want), "help lacks {want:?}:\n{help}");
        }
    }

    #[test]
    fn bad_peers_surface_through_clap() {
        let err = Cli::try_parse_from([
            "node",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--peers",
            "n1=x",
            "--data-dir",
            "d",
        ])
        .expect_err("bad --peers");
        assert!(
            err.to_string()
                .contains("--peers: entry 1 'n1=x': expected ID=IP:PORT"),
            "{err}"
        );
        let cli = Cli::try_parse_from([
            "node",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--peers",
            "n1=127.0.0.1:1",
            "--data-dir",
            "d",
        ])
        .expect("offset file is optional");
        assert_eq!(cli.node.clock_offset_file, None);
    }
}

/// The length of one logical tick of a consensus core, in ms.
pub const TICK_MS: u64 = 10;

/// Arguments every consensus node (Raft, Multi-Paxos) takes beyond [`NodeArgs`]: timing,
/// batching, snapshots and planted bugs. Flatten them into the binary's parser.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsensusArgs {
    /// Switch on a deliberate bug, for proving that the harness catches it (repeatable; the
    /// bugs are listed at the end of this help).
    #[arg(long, value_name = "NAME")]
    pub bug: Vec<String>,

    /// Minimum election timeout; each timeout (and each back-off after a lost election) is
    /// drawn from [T, 2T).
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub election_timeout_ms: u64,

    /// Interval between the leader's heartbeats (the failure detector's input).
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub heartbeat_ms: u64,

    /// Take a snapshot (and compact the log) after this many applied entries.
    #[arg(long, value_name = "ENTRIES", default_value_t = 10_000)]
    pub snapshot_every: u64,

    /// How long a client request waits for its outcome before it is answered `info`.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub op_timeout_ms: u64,

    /// Most entries (slots) in one replication message. Small values make followers catch up
    /// slowly, which widens the windows some protocol bugs need.
    #[arg(long, value_name = "ENTRIES", default_value_t = 512)]
    pub max_batch: usize,
}

impl ConsensusArgs {
    /// Checks what clap cannot; `lease` when reads are served under a leader lease.
    pub fn validate(&self, lease: bool) -> Result<(), String> {
        if self.heartbeat_ms * 2 > self.election_timeout_ms {
            return Err(format!(
                "--heartbeat-ms {} must be well below --election-timeout-ms {} (at most half)",
                self.heartbeat_ms, self.election_timeout_ms
            ));
        }
        if self.max_batch == 0 {
            return Err("--max-batch must be at least 1".into());
        }
        if lease && self.election_timeout_ms < 100 {
            return Err(
                "--read-mode lease needs --election-timeout-ms of at least 100 (10 ticks of \
                 10 ms); with less, no lease is safe even with perfect clocks"
                    .into(),
            );
        }
        Ok(())
    }

    /// Election timeout and heartbeat interval in ticks of [`TICK_MS`].
    pub fn ticks(&self) -> (u32, u32) {
        (
            (self.election_timeout_ms / TICK_MS).max(2) as u32,
            (self.heartbeat_ms / TICK_MS).max(1) as u32,
        )
    }

    /// How long a client operation may wait for its answer.
    pub fn op_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.op_timeout_ms)
    }
}
