//! The test network: one network namespace per node, a bridge in the sandbox, and link faults.
//!
//! Layout (setup (b) of `shared/notes/faults-measured.md`): the sandbox's own namespace holds the
//! bridge `br0` at 10.77.0.1/24, from which the harness talks to every node. Node *n* (0-based,
//! in the order given) lives in an anonymous network namespace held open by a placeholder
//! process (`sleep infinity`), with `eth0` = 10.77.0.(11+n)/24 on a veth whose other end is a
//! port of `br0`. The subnet exists only inside the sandbox and there is no uplink, so no packet
//! of a test can leave the machine.
//!
//! Faults follow Jepsen (`jepsen/src/jepsen/net.clj`): a partition is a *grudge*, for each node
//! the set of nodes it stops hearing from, enforced by silent DROP rules on the receiving node's
//! input (each node's namespace gets its own `inet nemesis` table, one atomic `nft -f` batch per
//! node; or one `iptables-restore` per node). Without nft or iptables, blackhole routes in the
//! senders' namespaces stop the same packets, though a sender's connect then fails at once
//! (EINVAL) instead of timing out. Rules only ever match node addresses, so harness-to-node
//! traffic is never cut.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use nix::sched::{unshare, CloneFlags};
use serde::{Deserialize, Serialize};

use crate::cmd::{spawn_long_lived, Cmd, CmdFailure, Running};

/// The harness's address on the bridge. Never the subject of a rule.
pub const HARNESS_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The bridge in the sandbox namespace.
pub const BRIDGE: &str = "br0";
/// Addresses run from 10.77.0.11 to 10.77.0.254.
pub const MAX_NODES: usize = 244;
const FIRST_HOST: u8 = 11;
const NFT_TABLE: &str = "inet nemesis";

/// How link faults are enforced, chosen when the network is created and recorded in run.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// nftables: an `inet nemesis` table per node namespace, replaced atomically by `nft -f`.
    Nft,
    /// iptables: the node namespace's `filter` table, replaced by `iptables-restore`.
    Iptables,
    /// Blackhole routes in the senders' namespaces (`ip route add blackhole`). Partitions only.
    Blackhole,
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mechanism::Nft => "nft",
            Mechanism::Iptables => "iptables",
            Mechanism::Blackhole => "blackhole",
        })
    }
}

/// What went wrong building the network or changing its faults.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Creating the network outside the sandbox would add a bridge and veths to the host.
    #[error(
        "the test network must be created inside the sandbox (call nemesis::sandbox::enter() at \
         the start of main); refusing to add a bridge and veth pairs to the host's namespace"
    )]
    NotSandboxed,
    /// The node list cannot be laid out.
    #[error("invalid node list: {0}")]
    InvalidNodes(String),
    /// A fault named a node that is not part of the network.
    #[error("unknown node {0:?} (the network has {1:?})")]
    UnknownNode(String, Vec<String>),
    /// A bad argument, such as a loss above 100%.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The requested fault or mechanism cannot be provided on this machine.
    #[error("{0}")]
    NotAvailable(String),
    /// A helper program could not be started.
    #[error("could not run `{cmd}` in {place}: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// "the sandbox namespace" or "node n2's namespace".
        place: String,
        /// Why.
        source: io::Error,
    },
    /// A helper program ran and failed.
    #[error("`{cmd}` in {place} failed ({status}): {stderr}{}", show_input(.input))]
    Command {
        /// The command line.
        cmd: String,
        /// "the sandbox namespace" or "node n2's namespace".
        place: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
        /// What it was fed on stdin (a rule set or an `ip -batch` script), if anything.
        input: String,
    },
    /// The sandbox already has a bridge of that name: one Network per sandbox at a time.
    #[error(
        "{BRIDGE} already exists in this namespace: only one Network can exist per sandbox at a \
         time (drop the previous one first)"
    )]
    BridgeExists,
    /// Creating a node's namespace failed.
    #[error("could not create the network namespace of node {node}: {source}")]
    Namespace {
        /// The node.
        node: String,
        /// Why.
        source: io::Error,
    },
}

fn show_input(input: &str) -> String {
    if input.is_empty() {
        String::new()
    } else {
        format!("\n--- input ---\n{}", input.trim_end())
    }
}

pub(crate) fn net_err(place: &str, f: CmdFailure) -> NetError {
    match f {
        CmdFailure::Spawn { cmd, source } => NetError::Spawn {
            cmd,
            place: place.to_string(),
            source,
        },
        CmdFailure::Status {
            cmd,
            status,
            stderr,
            input,
        } => NetError::Command {
            cmd,
            place: place.to_string(),
            status,
            stderr,
            input,
        },
    }
}

const SANDBOX_PLACE: &str = "the sandbox namespace";

pub(crate) fn node_place(node: &str) -> String {
    format!("node {node}'s namespace")
}

struct Member {
    name: String,
    ip: Ipv4Addr,
    veth: String,
    holder: Child,
    netns: Arc<File>,
    /// The rule set last applied (nft / iptables); empty when none is loaded.
    applied_rules: String,
    /// Destinations currently blackholed from this node.
    applied_routes: BTreeSet<Ipv4Addr>,
}

/// The sandbox's test network. Dropping it kills the namespace holders (so the node namespaces
/// and their veths go away) and deletes the bridge.
pub struct Network {
    nodes: Vec<String>,
    members: Vec<Member>,
    mechanism: Mechanism,
    bridge_created: bool,
    grudge: BTreeMap<String, BTreeSet<String>>,
    /// Cut TCP connections are refused with a reset instead of silently dropped.
    refuse: bool,
    loss_percent: u8,
    /// Bandwidth limit on every link, kbit/s (0: none); see [`Network::slow`].
    slow_kbit: u32,
    /// Packets between nodes held back in userspace; see [`Network::delay`].
    delay: Option<crate::delay::DelayQueues>,
    /// Where the nodes' messages are routed by the harness itself (a Maelstrom network):
    /// partitions, loss and delay are applied there instead of to packets.
    routed: Option<Arc<dyn Links>>,
}

/// A network whose messages the harness routes itself (Maelstrom's nodes talk over stdin and
/// stdout, and the harness is the network between them): [`Network`]'s partitions, loss and
/// delay act on that routing once it is set with [`Network::route_through`].
pub trait Links: Send + Sync {
    /// Node `x` stops hearing from every node in `grudge[x]` (replacing any earlier cut).
    fn cut(&self, grudge: &BTreeMap<String, BTreeSet<String>>);
    /// Drops `percent`% of the messages between nodes.
    fn lose(&self, percent: u8);
    /// Holds every message between nodes for `mean_ms ± jitter_ms` (0: no delay).
    fn hold(&self, mean_ms: u64, jitter_ms: u64, seed: u64);
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("nodes", &self.nodes)
            .field("mechanism", &self.mechanism)
            .field("grudge", &self.grudge)
            .field("loss_percent", &self.loss_percent)
            .finish()
    }
}

impl Network {
    /// Builds the network for `nodes` with the best mechanism this machine has (nft, else
    /// iptables, else blackhole routes). Must run inside the sandbox.
    pub fn create(nodes: &[String]) -> Result<Network, NetError> {
        Network::create_with(nodes, None)
    }

    /// Like [`Network::create`], with the fault mechanism forced when `mechanism` is Some
    /// (an error if that mechanism's tool does not work here).
    pub fn create_with(
        nodes: &[String],
        mechanism: Option<Mechanism>,
    ) -> Result<Network, NetError> {
        if !crate::sandbox::is_inside() {
            return Err(NetError::NotSandboxed);
        }
        validate_nodes(nodes)?;
        if Cmd::new("ip", &["link", "show", BRIDGE]).run().is_ok() {
            return Err(NetError::BridgeExists);
        }
        let started = Instant::now();
        let mechanism = match mechanism {
            None => detect_mechanism(),
            Some(Mechanism::Blackhole) => Mechanism::Blackhole,
            Some(m) => match probe(m) {
                Ok(()) => m,
                Err(why) => {
                    return Err(NetError::NotAvailable(format!(
                        "fault mechanism {m} was requested but does not work here: {why}"
                    )))
                }
            },
        };
        let mut net = Network {
            nodes: nodes.to_vec(),
            members: Vec::with_capacity(nodes.len()),
            mechanism,
            bridge_created: false,
            grudge: BTreeMap::new(),
            refuse: false,
            loss_percent: 0,
            slow_kbit: 0,
            delay: None,
            routed: None,
        };
        // From here on, an early return drops `net`, which kills the holders started so far.
        for (i, name) in nodes.iter().enumerate() {
            let holder = spawn_holder().map_err(|source| NetError::Namespace {
                node: name.clone(),
                source,
            })?;
            let path = PathBuf::from(format!("/proc/{}/ns/net", holder.id()));
            let netns = match File::open(&path) {
                Ok(f) => Arc::new(f),
                Err(source) => {
                    let mut holder = holder;
                    let _ = holder.kill();
                    let _ = holder.wait();
                    return Err(NetError::Namespace {
                        node: name.clone(),
                        source,
                    });
                }
            };
            net.members.push(Member {
                name: name.clone(),
                ip: node_ip(i),
                veth: format!("nm{i}"),
                holder,
                netns,
                applied_rules: String::new(),
                applied_routes: BTreeSet::new(),
            });
        }

        let mut script = format!(
            "link add {BRIDGE} type bridge\naddr add {HARNESS_IP}/24 dev {BRIDGE}\nlink set {BRIDGE} up\n"
        );
        for m in &net.members {
            script.push_str(&format!(
                "link add {v} type veth peer name eth0 netns {pid}\nlink set {v} master {BRIDGE}\nlink set {v} up\n",
                v = m.veth,
                pid = m.holder.id()
            ));
        }
        net.bridge_created = true;
        Cmd::new("ip", &["-batch", "-"])
            .stdin(script)
            .run()
            .map_err(|f| net_err(SANDBOX_PLACE, f))?;

        let running: Vec<(String, Result<Running, CmdFailure>)> = net
            .members
            .iter()
            .map(|m| {
                let script = format!(
                    "addr add {}/24 dev eth0\nlink set lo up\nlink set eth0 up\n",
                    m.ip
                );
                let run = Cmd::new("ip", &["-batch", "-"])
                    .stdin(script)
                    .netns(m.netns.clone())
                    .spawn();
                (m.name.clone(), run)
            })
            .collect();
        wait_all(running)?;
        tracing::debug!(
            nodes = nodes.len(),
            %mechanism,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "network created"
        );
        Ok(net)
    }

    /// The node's address, if it is part of the network.
    pub fn ip(&self, node: &str) -> Option<Ipv4Addr> {
        self.members.iter().find(|m| m.name == node).map(|m| m.ip)
    }

    /// The nodes, in the order given to [`Network::create`].
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// `/proc/<holder pid>/ns/net` of the node (an empty path for an unknown node). Pass it to
    /// `nsenter --net=` or to [`crate::process::Supervisor::new`].
    pub fn netns_path(&self, node: &str) -> PathBuf {
        self.members
            .iter()
            .find(|m| m.name == node)
            .map(|m| PathBuf::from(format!("/proc/{}/ns/net", m.holder.id())))
            .unwrap_or_default()
    }

    /// Every node's namespace path, ready for [`crate::process::Supervisor::new`].
    pub fn netns_paths(&self) -> HashMap<String, PathBuf> {
        self.nodes
            .iter()
            .map(|n| (n.clone(), self.netns_path(n)))
            .collect()
    }

    /// How faults are enforced on this network.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// From now on partitions, loss and delay act on `links` (the harness's own routing of
    /// the nodes' messages) instead of on packets; bandwidth limits are refused.
    pub fn route_through(&mut self, links: Arc<dyn Links>) {
        self.routed = Some(links);
    }

    /// The partition in force (empty when healed).
    pub fn grudge(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.grudge
    }

    /// Replaces any previous partition: node `x` stops hearing from every node in `grudge[x]`.
    /// Packet loss set by [`Network::loss`] stays in force.
    pub fn partition(
        &mut self,
        grudge: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<(), NetError> {
        self.partition_with(grudge, false)
    }

    /// [`Network::partition`], where `refuse` answers each TCP packet across a cut with a
    /// reset, as a host whose process is gone would, instead of dropping it: a sender then
    /// learns at once that its request failed, and tries again on a fresh connection rather
    /// than waiting out TCP's retransmissions. Other packets are dropped. With blackhole
    /// routes every cut is refused at the sender anyway.
    pub fn partition_with(
        &mut self,
        grudge: &BTreeMap<String, BTreeSet<String>>,
        refuse: bool,
    ) -> Result<(), NetError> {
        self.refuse = refuse;
        for (x, from) in grudge {
            self.check_node(x)?;
            for y in from {
                self.check_node(y)?;
            }
        }
        let mut clean = BTreeMap::new();
        for (x, from) in grudge {
            let from: BTreeSet<String> = from.iter().filter(|y| *y != x).cloned().collect();
            if !from.is_empty() {
                clean.insert(x.clone(), from);
            }
        }
        self.grudge = clean;
        if let Some(links) = &self.routed {
            links.cut(&self.grudge);
            return Ok(());
        }
        self.apply()
    }

    /// Drops `percent`% of the packets between every pair of nodes, at random (0 removes the
    /// loss). Needs nft or iptables.
    pub fn loss(&mut self, percent: u8) -> Result<(), NetError> {
        if percent > 100 {
            return Err(NetError::InvalidArgument(format!(
                "packet loss must be 0..=100 percent, got {percent}"
            )));
        }
        if let Some(links) = &self.routed {
            self.loss_percent = percent;
            links.lose(percent);
            return Ok(());
        }
        if self.mechanism == Mechanism::Blackhole && percent > 0 {
            return Err(NetError::NotAvailable(
                "packet loss needs nft or iptables (apt-get install nftables); this network uses \
                 blackhole routes, which can only cut links"
                    .to_string(),
            ));
        }
        self.loss_percent = percent;
        self.apply()
    }

    /// Removes every partition, loss rule, bandwidth limit and delay.
    pub fn heal(&mut self) -> Result<(), NetError> {
        self.grudge.clear();
        self.refuse = false;
        self.loss_percent = 0;
        if let Some(links) = &self.routed {
            links.cut(&self.grudge);
            links.lose(0);
            links.hold(0, 0, 0);
            return Ok(());
        }
        let rules = self.apply();
        let slow = self.slow(0);
        let delay = self.delay(0, 0, 0);
        rules.and(slow).and(delay)
    }

    /// Holds every packet from one node to another for `mean_ms ± jitter_ms` (drawn per
    /// packet from `seed`), the way `netem delay` would; 0 lifts the delay and lets every held
    /// packet go. This kernel has no netem, so packets go through NFQUEUE to threads of this
    /// process (see the `delay` module); needs iptables. Traffic with the harness is not
    /// delayed.
    pub fn delay(&mut self, mean_ms: u64, jitter_ms: u64, seed: u64) -> Result<(), NetError> {
        if let Some(links) = &self.routed {
            links.hold(mean_ms, jitter_ms, seed);
            return Ok(());
        }
        let lifted = match self.delay.take() {
            Some(d) => d.stop(),
            None => Ok(()),
        };
        if mean_ms == 0 {
            return lifted;
        }
        let targets = self
            .members
            .iter()
            .map(|m| crate::delay::DelayTarget {
                name: m.name.clone(),
                netns: m.netns.clone(),
                peers: self
                    .members
                    .iter()
                    .filter(|p| p.name != m.name)
                    .map(|p| p.ip)
                    .collect(),
            })
            .collect();
        self.delay = Some(crate::delay::DelayQueues::start(
            targets, mean_ms, jitter_ms, seed,
        )?);
        lifted
    }

    /// Limits every node's links to `kbit` kbit/s each way (0 lifts the limit), with a token
    /// bucket (`tbf`) on both ends of each node's veth. This kernel has no netem, so this is how
    /// a run gets a slow, congested network: messages queue behind each other, followers fall
    /// behind their leader, and an answer can arrive long after the question.
    pub fn slow(&mut self, kbit: u32) -> Result<(), NetError> {
        if kbit == self.slow_kbit {
            return Ok(());
        }
        if self.routed.is_some() {
            return Err(NetError::NotAvailable(
                "a bandwidth limit acts on packets, and these nodes' messages are routed by \
                 the harness, not sent as packets"
                    .to_string(),
            ));
        }
        let mut running = Vec::new();
        for m in &self.members {
            let (inside, outside) = if kbit == 0 {
                (
                    "qdisc del dev eth0 root\n".to_string(),
                    format!("qdisc del dev {} root\n", m.veth),
                )
            } else {
                // A burst of a few packets, and a queue of up to a second before drops.
                let tbf = format!("root tbf rate {kbit}kbit burst 16kb latency 1000ms");
                (
                    format!("qdisc replace dev eth0 {tbf}\n"),
                    format!("qdisc replace dev {} {tbf}\n", m.veth),
                )
            };
            let node = Cmd::new("tc", &["-force", "-batch", "-"])
                .stdin(inside)
                .netns(m.netns.clone());
            running.push((m.name.clone(), node.spawn()));
            let host = Cmd::new("tc", &["-force", "-batch", "-"]).stdin(outside);
            running.push((m.name.clone(), host.spawn()));
        }
        let outcome = wait_all_each(running);
        self.slow_kbit = kbit;
        match outcome.first_error {
            // Lifting a limit that a dead namespace took with it is not a failure.
            Some(_) if kbit == 0 => Ok(()),
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn check_node(&self, node: &str) -> Result<(), NetError> {
        if self.nodes.iter().any(|n| n == node) {
            Ok(())
        } else {
            Err(NetError::UnknownNode(node.to_string(), self.nodes.clone()))
        }
    }

    fn ip_of(&self, node: &str) -> Ipv4Addr {
        self.ip(node)
            .expect("grudge nodes are checked against the network before use")
    }

    /// Brings every namespace's rules in line with `self.grudge` and `self.loss_percent`,
    /// touching only the namespaces whose rules change. Commands for all namespaces are started
    /// before any is waited on, so the change lands in all of them within a few milliseconds.
    fn apply(&mut self) -> Result<(), NetError> {
        let started = Instant::now();
        let all_ips: Vec<Ipv4Addr> = self.members.iter().map(|m| m.ip).collect();
        let mut running = Vec::new();
        let mut pending_rules: Vec<(usize, String)> = Vec::new();
        let mut pending_routes: Vec<(usize, BTreeSet<Ipv4Addr>)> = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            match self.mechanism {
                Mechanism::Nft | Mechanism::Iptables => {
                    let drop_from: Vec<Ipv4Addr> = self
                        .grudge
                        .get(&m.name)
                        .map(|s| s.iter().map(|y| self.ip_of(y)).collect())
                        .unwrap_or_default();
                    let others: Vec<Ipv4Addr> =
                        all_ips.iter().copied().filter(|ip| *ip != m.ip).collect();
                    let loss = (self.loss_percent > 0).then_some((self.loss_percent, &others[..]));
                    let (desired, cmd) = if self.mechanism == Mechanism::Nft {
                        let rules = render_nft(&drop_from, self.refuse, loss);
                        let script = if rules.is_empty() {
                            format!("table {NFT_TABLE}\ndelete table {NFT_TABLE}\n")
                        } else {
                            rules.clone()
                        };
                        (rules, Cmd::new("nft", &["-f", "-"]).stdin(script))
                    } else {
                        let rules = render_iptables(&drop_from, self.refuse, loss);
                        let script = if rules.is_empty() {
                            render_iptables_table(&[])
                        } else {
                            rules.clone()
                        };
                        (rules, Cmd::new("iptables-restore", &["-w"]).stdin(script))
                    };
                    if desired != m.applied_rules {
                        running.push((m.name.clone(), cmd.netns(m.netns.clone()).spawn()));
                        pending_rules.push((i, desired));
                    }
                }
                Mechanism::Blackhole => {
                    let desired = blackhole_targets(&self.grudge, &m.name)
                        .into_iter()
                        .map(|x| self.ip_of(x))
                        .collect::<BTreeSet<_>>();
                    if desired != m.applied_routes {
                        let mut script = String::new();
                        for gone in m.applied_routes.difference(&desired) {
                            script.push_str(&format!("route del blackhole {gone}/32\n"));
                        }
                        for new in desired.difference(&m.applied_routes) {
                            script.push_str(&format!("route replace blackhole {new}/32\n"));
                        }
                        let cmd = Cmd::new("ip", &["-batch", "-"])
                            .stdin(script)
                            .netns(m.netns.clone());
                        running.push((m.name.clone(), cmd.spawn()));
                        pending_routes.push((i, desired));
                    }
                }
            }
        }
        let changed = running.len();
        let outcome = wait_all_each(running);
        // Record what did land, so that a retry (or heal) after a partial failure still knows
        // which namespaces hold rules.
        for ((i, rules), ok) in pending_rules.into_iter().zip(outcome.iter()) {
            if *ok {
                self.members[i].applied_rules = rules;
            }
        }
        for ((i, routes), ok) in pending_routes.into_iter().zip(outcome.iter()) {
            if *ok {
                self.members[i].applied_routes = routes;
            }
        }
        tracing::debug!(
            mechanism = %self.mechanism,
            namespaces_changed = changed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "network faults applied"
        );
        match outcome.first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Some(d) = self.delay.take() {
            let _ = d.stop();
        }
        for m in &mut self.members {
            let _ = m.holder.kill();
            let _ = m.holder.wait();
        }
        // A veth pair dies with its namespace, but asynchronously (netns cleanup runs in a kernel
        // work queue): delete them now so that a new Network in this sandbox can reuse the names.
        let mut script: String = self
            .members
            .iter()
            .map(|m| format!("link del {}\n", m.veth))
            .collect();
        if self.bridge_created {
            script.push_str(&format!("link del {BRIDGE}\n"));
        }
        if !script.is_empty() {
            if let Err(f) = Cmd::new("ip", &["-force", "-batch", "-"])
                .stdin(script)
                .run()
            {
                // Expected when a veth already went with its namespace.
                tracing::debug!(error = %net_err(SANDBOX_PLACE, f), "network teardown");
            }
        }
    }
}

struct Outcome {
    oks: Vec<bool>,
    first_error: Option<NetError>,
}

impl Outcome {
    fn iter(&self) -> std::slice::Iter<'_, bool> {
        self.oks.iter()
    }
}

fn wait_all_each(running: Vec<(String, Result<Running, CmdFailure>)>) -> Outcome {
    let mut oks = Vec::with_capacity(running.len());
    let mut first_error = None;
    for (node, run) in running {
        let result = run.and_then(Running::wait);
        oks.push(result.is_ok());
        if let Err(f) = result {
            if first_error.is_none() {
                first_error = Some(net_err(&node_place(&node), f));
            }
        }
    }
    Outcome { oks, first_error }
}

fn wait_all(running: Vec<(String, Result<Running, CmdFailure>)>) -> Result<(), NetError> {
    match wait_all_each(running).first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn validate_nodes(nodes: &[String]) -> Result<(), NetError> {
    if nodes.is_empty() {
        return Err(NetError::InvalidNodes("no nodes".into()));
    }
    if nodes.len() > MAX_NODES {
        return Err(NetError::InvalidNodes(format!(
            "{} nodes; at most {MAX_NODES} fit in 10.77.0.0/24",
            nodes.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for n in nodes {
        if n.is_empty() {
            return Err(NetError::InvalidNodes("a node name is empty".into()));
        }
        if !seen.insert(n) {
            return Err(NetError::InvalidNodes(format!("node {n:?} appears twice")));
        }
    }
    Ok(())
}

/// The address of the n-th node (0-based): 10.77.0.(11+n).
pub fn node_ip(n: usize) -> Ipv4Addr {
    let host = FIRST_HOST as usize + n;
    assert!(host <= 254, "node index {n} is outside 10.77.0.0/24");
    Ipv4Addr::new(10, 77, 0, host as u8)
}

/// A placeholder process whose only job is to hold a fresh network namespace open.
fn spawn_holder() -> io::Result<Child> {
    let mut cmd = Command::new("sleep");
    cmd.arg("infinity")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group: Ctrl-C at the terminal must not take the node's network away while the
        // harness is still shutting down gracefully.
        .process_group(0);
    // SAFETY: unshare(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from));
    }
    spawn_long_lived(cmd)
}

/// Which mechanism works here: nft, else iptables, else blackhole routes.
fn detect_mechanism() -> Mechanism {
    for m in [Mechanism::Nft, Mechanism::Iptables] {
        match probe(m) {
            Ok(()) => return m,
            Err(why) => tracing::debug!(mechanism = %m, %why, "fault mechanism unavailable"),
        }
    }
    Mechanism::Blackhole
}

fn probe(m: Mechanism) -> Result<(), String> {
    let result = match m {
        Mechanism::Nft => Cmd::new("nft", &["list", "tables"]).run().map(drop),
        Mechanism::Iptables => Cmd::new("iptables", &["-w", "-n", "-L", "INPUT"])
            .run()
            .and_then(|_| Cmd::new("iptables-restore", &["--version"]).run())
            .map(drop),
        Mechanism::Blackhole => Ok(()),
    };
    result.map_err(|f| net_err(SANDBOX_PLACE, f).to_string())
}

/// The nodes that node `sender` must not reach under `grudge` (for blackhole routes, which act
/// on the sending side): every `x` with `sender` in `grudge[x]`.
pub fn blackhole_targets<'a>(
    grudge: &'a BTreeMap<String, BTreeSet<String>>,
    sender: &str,
) -> BTreeSet<&'a String> {
    grudge
        .iter()
        .filter(|(x, from)| x.as_str() != sender && from.contains(sender))
        .map(|(x, _)| x)
        .collect()
}

fn ip_set(ips: &[Ipv4Addr]) -> String {
    let list: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
    format!("{{ {} }}", list.join(", "))
}

/// The `nft -f` script for one node: drop everything from `drop_from`, and `loss.0`% of what
/// comes from `loss.1`. Empty when there is nothing to drop. The leading `table` + `delete table`
/// pair makes the batch replace any previous table atomically.
pub fn render_nft(drop_from: &[Ipv4Addr], refuse: bool, loss: Option<(u8, &[Ipv4Addr])>) -> String {
    let mut rules = String::new();
    if !drop_from.is_empty() {
        if refuse {
            rules.push_str(&format!(
                "\t\tip saddr {} meta l4proto tcp reject with tcp reset\n",
                ip_set(drop_from)
            ));
        }
        rules.push_str(&format!("\t\tip saddr {} drop\n", ip_set(drop_from)));
    }
    if let Some((percent, from)) = loss {
        if percent > 0 && !from.is_empty() {
            rules.push_str(&format!(
                "\t\tip saddr {} numgen random mod 100 < {percent} drop\n",
                ip_set(from)
            ));
        }
    }
    if rules.is_empty() {
        return String::new();
    }
    format!(
        "table {NFT_TABLE}\ndelete table {NFT_TABLE}\ntable {NFT_TABLE} {{\n\tchain input {{\n\t\ttype filter hook input priority 0; policy accept;\n{rules}\t}}\n}}\n"
    )
}

/// The `iptables-restore` input for one node (the namespace's whole `filter` table, which only
/// this crate uses). Empty when there is nothing to drop.
pub fn render_iptables(
    drop_from: &[Ipv4Addr],
    refuse: bool,
    loss: Option<(u8, &[Ipv4Addr])>,
) -> String {
    let mut rules = Vec::new();
    for ip in drop_from {
        if refuse {
            rules.push(format!(
                "-A INPUT -s {ip}/32 -p tcp -j REJECT --reject-with tcp-reset"
            ));
        }
        rules.push(format!("-A INPUT -s {ip}/32 -j DROP"));
    }
    if let Some((percent, from)) = loss {
        if percent > 0 {
            let p = f64::from(percent) / 100.0;
            for ip in from {
                rules.push(format!(
                    "-A INPUT -s {ip}/32 -m statistic --mode random --probability {p:.4} -j DROP"
                ));
            }
        }
    }
    if rules.is_empty() {
        return String::new();
    }
    render_iptables_table(&rules)
}

fn render_iptables_table(rules: &[String]) -> String {
    let mut s =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for r in rules {
        s.push_str(r);
        s.push('\n');
    }
    s.push_str("COMMIT\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(pairs: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        pairs
            .iter()
            .map(|(x, ys)| (x.to_string(), ys.iter().map(|y| y.to_string()).collect()))
            .collect()
    }

    #[test]
    fn node_ips_start_at_eleven() {
        assert_eq!(node_ip(0), Ipv4Addr::new(10, 77, 0, 11));
        assert_eq!(node_ip(4), Ipv4Addr::new(10, 77, 0, 15));
        assert_eq!(node_ip(MAX_NODES - 1), Ipv4Addr::new(10, 77, 0, 254));
    }

    #[test]
    fn nft_script_drops_grudge_and_loss() {
        let a = Ipv4Addr::new(10, 77, 0, 12);
        let b = Ipv4Addr::new(10, 77, 0, 13);
        let s = render_nft(&[a, b], false, Some((30, &[a, b])));
        assert!(s.starts_with("table inet nemesis\ndelete table inet nemesis\n"));
        assert!(s.contains("ip saddr { 10.77.0.12, 10.77.0.13 } drop"));
        assert!(s.contains("numgen random mod 100 < 30 drop"));
        assert!(
            !s.contains("10.77.0.1 "),
            "the harness address never appears"
        );
        assert!(!s.contains("reject"));
        let refused = render_nft(&[a], true, None);
        assert!(refused.contains(
            "ip saddr { 10.77.0.12 } meta l4proto tcp reject with tcp reset\n\t\tip saddr { 10.77.0.12 } drop"
        ));
        assert_eq!(render_nft(&[], false, None), "");
        assert_eq!(render_nft(&[], true, Some((0, &[a]))), "");
    }

    #[test]
    fn iptables_script_is_a_whole_filter_table() {
        let a = Ipv4Addr::new(10, 77, 0, 12);
        let s = render_iptables(&[a], false, Some((25, &[a])));
        assert!(s.starts_with("*filter\n:INPUT ACCEPT"));
        assert!(s.contains("-A INPUT -s 10.77.0.12/32 -j DROP\n"));
        assert!(s.contains("--probability 0.2500 -j DROP"));
        assert!(s.ends_with("COMMIT\n"));
        assert!(!s.contains("REJECT"));
        let refused = render_iptables(&[a], true, None);
        assert!(refused.contains(
            "-A INPUT -s 10.77.0.12/32 -p tcp -j REJECT --reject-with tcp-reset\n-A INPUT -s 10.77.0.12/32 -j DROP\n"
        ));
        assert_eq!(render_iptables(&[], false, None), "");
    }

    #[test]
    fn blackholes_sit_on_the_senders() {
        let grudge = g(&[("n1", &["n2", "n3"]), ("n2", &["n1"]), ("n3", &["n1"])]);
        let t = |s: &str| -> Vec<String> {
            blackhole_targets(&grudge, s).into_iter().cloned().collect()
        };
        assert_eq!(t("n1"), vec!["n2", "n3"]);
        assert_eq!(t("n2"), vec!["n1"]);
        assert_eq!(t("n3"), vec!["n1"]);
        let one_way = g(&[("n2", &["n1"])]);
        assert_eq!(
            blackhole_targets(&one_way, "n1")
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["n2"]
        );
        assert!(blackhole_targets(&one_way, "n2").is_empty());
    }

    #[test]
    fn create_refuses_outside_the_sandbox() {
        if crate::sandbox::is_inside() {
            return;
        }
        let err = Network::create(&["n1".to_string()]).expect_err("must refuse on the host");
        assert!(matches!(err, NetError::NotSandboxed), "{err}");
    }

    #[test]
    fn mechanism_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Mechanism::Iptables).expect("serialises"),
            "\"iptables\""
        );
        let m: Mechanism = serde_json::from_str("\"blackhole\"").expect("parses");
        assert_eq!(m, Mechanism::Blackhole);
    }
}
