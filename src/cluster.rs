//! A run's cluster: its sandbox network, one node process per name started from the system's
//! definition with its own data folder and clock file, and readiness (DESIGN section 4). Also
//! the two things the `nemesis` injector asks of `harness` through traits: each node's status,
//! in the system's own protocol ([`Probe`]), and the history to write its events to
//! ([`HistoryRecord`]).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use history::nemesis::NemesisEvent;
use history::EventType;
use nemesis::clock::ClockFile;
use nemesis::net::{Mechanism, Network};
use nemesis::process::{NodeSpec, Supervisor};
use nemesis::status::Boxed;
use nemesis::{ClusterView, Injector, NodeStatus, Record, StatusField};
use serde_json::Value;
use workloads::recorder::Recorder;
use workloads::{OpClient, Protocol};

use crate::systems::{NodeVars, SystemDef};

/// What a cluster is started from.
pub struct Setup<'a> {
    pub names: &'a [String],
    pub system: &'a SystemDef,
    pub program: &'a Path,
    /// Each node's folder is `<run_dir>/nodes/<name>`.
    pub run_dir: &'a Path,
    pub bug: Option<&'a str>,
    /// Extra arguments for every node (`--node-arg`).
    pub node_args: &'a [String],
    pub op_timeout: Duration,
    /// The plan loses packets, which only firewall rules can do.
    pub needs_drop_rules: bool,
    /// The nodes speak Maelstrom's protocol over stdin and stdout, through this network
    /// (which then also takes the partitions, loss and delay).
    pub maelstrom: Option<&'a maelstrom::Net>,
    /// Serve each node's data directory through the disk-fault filesystem (`--nemesis disk`).
    pub disks: bool,
}

/// Why a cluster did not come up.
pub enum StartError {
    /// The run asks for something this machine cannot do (exit 2).
    Usage(String),
    /// The sandbox or a node failed (exit 4).
    Failure(String),
    /// Interrupted while the nodes were starting; they are stopped.
    Interrupted,
}

/// A started cluster, every node ready.
pub struct Cluster {
    pub net: Network,
    pub sup: Supervisor,
    pub clocks: HashMap<String, ClockFile>,
    /// Each node's client address, in name order.
    pub addrs: Vec<(String, SocketAddr)>,
    /// Each node's data directory served through the disk-fault filesystem, when the run has
    /// disk faults.
    pub disks: Disks,
}

/// The disk-fault filesystems of a run, one per node: `nodes/<n>/data` (what the node uses)
/// served from `nodes/<n>/disk` (where the bytes are). Unmounted when dropped, which must
/// happen after the nodes are stopped.
#[derive(Default)]
pub struct Disks {
    mounts: Vec<(String, diskfs::Mount)>,
}

impl Disks {
    /// Serves each node's data directory through the filesystem.
    fn mount(names: &[String], run_dir: &Path) -> Result<Disks, String> {
        let mut mounts = Vec::new();
        for n in names {
            let dir = run_dir.join("nodes").join(n);
            let (backing, data) = (dir.join("disk"), dir.join("data"));
            std::fs::create_dir_all(&backing)
                .map_err(|e| format!("cannot create {}: {e}", backing.display()))?;
            let mount = diskfs::Mount::new(&backing, &data).map_err(|e| {
                format!(
                    "cannot serve {}'s data directory {} through the disk-fault filesystem: {e}",
                    n,
                    data.display()
                )
            })?;
            mounts.push((n.clone(), mount));
        }
        Ok(Disks { mounts })
    }

    /// Makes everything written so far durable on every node's filesystem.
    fn make_durable(&self) {
        for (_, m) in &self.mounts {
            m.control().make_durable();
        }
    }

    /// Each node's filesystem, as the injector's disk faults take it.
    fn controls(&self) -> HashMap<String, Arc<dyn nemesis::Disk>> {
        self.mounts
            .iter()
            .map(|(n, m)| {
                (
                    n.clone(),
                    Arc::new(DiskOf(m.control())) as Arc<dyn nemesis::Disk>,
                )
            })
            .collect()
    }
}

/// A node's disk-fault filesystem as the injector's [`nemesis::Disk`].
struct DiskOf(diskfs::Control);

impl nemesis::Disk for DiskOf {
    fn lose_unsynced(&self) -> std::io::Result<nemesis::Lost> {
        self.0.lose_unsynced().map(lost)
    }

    fn tear(&self, seed: u64) -> std::io::Result<nemesis::Lost> {
        self.0.tear(seed).map(lost)
    }

    fn set_fsync_error(&self, on: bool) {
        self.0.set_fsync_error(on);
    }

    fn set_fsync_delay(&self, range_ms: Option<(u64, u64)>, seed: u64) {
        self.0.set_fsync_delay(range_ms, seed);
    }
}

fn lost(l: diskfs::Loss) -> nemesis::Lost {
    nemesis::Lost {
        files: l.files,
        bytes: l.bytes,
        dir_ops: l.dir_ops,
        torn: l.torn,
    }
}

impl Cluster {
    /// Builds the network, starts every node and waits until each is ready, or until
    /// `interrupted` resolves.
    pub async fn start(
        setup: &Setup<'_>,
        interrupted: impl Future<Output = ()>,
    ) -> Result<Cluster, StartError> {
        let mut net = Network::create(setup.names)
            .map_err(|e| StartError::Failure(format!("cannot build the sandbox network: {e}")))?;
        if let Some(m) = setup.maelstrom {
            net.route_through(Arc::new(Routed(m.clone())));
        }
        if setup.needs_drop_rules
            && setup.maelstrom.is_none()
            && net.mechanism() == Mechanism::Blackhole
        {
            return Err(StartError::Usage(
                "--nemesis loss: not available here: packet loss needs nft or iptables \
                 (./scripts/install-deps, or apt-get install nftables); the other nemeses work \
                 without them"
                    .into(),
            ));
        }
        let (specs, clocks, addrs) = node_specs(setup, &net).map_err(StartError::Failure)?;
        let disks = if setup.disks {
            Disks::mount(setup.names, setup.run_dir).map_err(StartError::Failure)?
        } else {
            Disks::default()
        };
        let mut sup = Supervisor::new(net.netns_paths());
        if let Some(m) = setup.maelstrom {
            m.set_addresses(&addrs);
            let m = m.clone();
            sup.set_stdio_hook(Arc::new(move |node, stdin, stdout| {
                m.attach(node, stdin, stdout)
            }));
        }
        for (n, _) in &addrs {
            if let Err(e) = sup.start(&specs[n]) {
                return Err(StartError::Failure(format!(
                    "node {n} would not start: {e}"
                )));
            }
        }
        let grace = setup.system.stop_grace;
        let timeout = setup.system.ready_timeout;
        let protocol = setup.system.protocol;
        let ready = {
            let sup = &sup;
            let waits = addrs.iter().map(|(n, addr)| async move {
                match protocol {
                    Protocol::Op | Protocol::Etcd { .. } => sup.wait_ready(n, timeout).await,
                    // A Maelstrom node is ready once it answered init (and its setup).
                    Protocol::Maelstrom => {
                        let Some(m) = setup.maelstrom else {
                            return sup.wait_ready(n, timeout).await;
                        };
                        sup.wait_ready_with(n, timeout, "init", |_| async move {
                            m.ready(n).map(|()| Value::Null)
                        })
                        .await
                    }
                    // PostgreSQL speaks no HTTP: a connection that answers a SELECT.
                    Protocol::Postgres { .. } => {
                        let what = format!("{protocol} at {addr}");
                        sup.wait_ready_with(n, timeout, &what, |per_try| {
                            workloads::postgres::ready(*addr, per_try)
                        })
                        .await
                    }
                }
            });
            tokio::select! {
                r = join_in_order(waits) => Some(r),
                () = interrupted => None,
            }
        };
        let Some(ready) = ready else {
            tokio::task::block_in_place(|| sup.stop_all(grace));
            return Err(StartError::Interrupted);
        };
        for ((n, _), r) in addrs.iter().zip(ready) {
            if let Err(e) = r {
                tokio::task::block_in_place(|| sup.stop_all(grace));
                return Err(StartError::Failure(format!(
                    "node {n} did not become ready:\n{e}"
                )));
            }
        }
        // What the nodes made of their data directories while starting is on disk, as a
        // journal commit would have made it within seconds: a power loss takes only what was
        // written since (etcd 3.4 never fsyncs the directories it creates at start-up).
        disks.make_durable();
        Ok(Cluster {
            net,
            sup,
            clocks,
            addrs,
            disks,
        })
    }

    /// Hands the cluster to the fault injector, which owns it from then on; the disk-fault
    /// filesystems stay with the caller, to be dropped once the nodes are stopped.
    pub fn into_injector(
        self,
        view: Arc<dyn ClusterView>,
        rec: Arc<dyn Record>,
    ) -> (Injector, Disks) {
        let controls = self.disks.controls();
        let injector =
            Injector::new(self.net, self.sup, self.clocks, view, rec).with_disks(controls);
        (injector, self.disks)
    }
}

type Specs = (
    HashMap<String, NodeSpec>,
    HashMap<String, ClockFile>,
    Vec<(String, SocketAddr)>,
);

/// Each node's command line, folder and clock file (set to no offset), from the definition.
fn node_specs(setup: &Setup<'_>, net: &Network) -> Result<Specs, String> {
    let system = setup.system;
    let peers: Vec<String> = setup
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let ip = net.ip(n).map(|i| i.to_string()).unwrap_or_default();
            system.peer_entry(n, i + 1, &ip)
        })
        .collect();
    let peers = peers.join(",");
    let (mut specs, mut clocks, mut addrs) = (HashMap::new(), HashMap::new(), Vec::new());
    for (index, n) in setup.names.iter().enumerate() {
        let ip = net.ip(n).ok_or_else(|| format!("no address for {n}"))?;
        let dir = setup.run_dir.join("nodes").join(n);
        let data: PathBuf = dir.join("data");
        std::fs::create_dir_all(&data)
            .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        let clock_path = dir.join("clock-offset");
        let clock = ClockFile::new(clock_path.clone());
        clock
            .set(0)
            .map_err(|e| format!("cannot write {}: {e}", clock_path.display()))?;
        clocks.insert(n.clone(), clock);
        let ip_s = ip.to_string();
        let (node_args, env) = system.render(
            &NodeVars {
                node: n,
                index: index + 1,
                ip: &ip_s,
                data_dir: &data,
                peers: &peers,
                clock_offset_file: &clock_path,
                op_timeout_ms: (setup.op_timeout.as_millis() as u64 * 3 / 4).max(1),
            },
            setup.bug,
        );
        let addr = SocketAddr::from((ip, system.port));
        specs.insert(
            n.clone(),
            NodeSpec {
                name: n.clone(),
                program: setup.program.to_path_buf(),
                args: [node_args, setup.node_args.to_vec()].concat(),
                env,
                dir,
                // Unused by protocols that are made ready by their own probe.
                health_url: format!("http://{addr}{}", system.ready_path),
            },
        );
        addrs.push((n.clone(), addr));
    }
    Ok((specs, clocks, addrs))
}

/// Awaits each future in turn; the results in the same order.
async fn join_in_order<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futs {
        out.push(f.await);
    }
    out
}

/// Each node's status, asked through the workload's client in the system's protocol.
pub struct Probe {
    client: OpClient,
    http: reqwest::Client,
    addrs: HashMap<String, SocketAddr>,
}

impl Probe {
    pub fn new(client: OpClient, addrs: &[(String, SocketAddr)]) -> Probe {
        Probe {
            client,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
            addrs: addrs.iter().cloned().collect(),
        }
    }
}

impl ClusterView for Probe {
    fn status<'a>(&'a self, node: &'a str) -> Boxed<'a, Option<NodeStatus>> {
        Box::pin(async move {
            let role = self.client.role(*self.addrs.get(node)?).await?;
            Some(NodeStatus {
                leader: role.leader,
                campaigning: role.campaigning,
                term: role.term,
                voted_for: role.voted_for,
                last_index: role.last_index,
                commit: role.commit,
            })
        })
    }

    fn fields<'a>(&'a self, node: &'a str) -> Boxed<'a, Option<BTreeSet<StatusField>>> {
        Box::pin(async move {
            let addr = *self.addrs.get(node)?;
            match self.client.protocol() {
                // The etcd adapter reads the leader and the term from etcd's status, and
                // nothing else.
                Protocol::Etcd { .. } => Some([StatusField::Role, StatusField::Term].into()),
                // The postgres adapter knows whether the server is a primary; no term.
                Protocol::Postgres { .. } => Some([StatusField::Role].into()),
                // Maelstrom's nodes have no status call.
                Protocol::Maelstrom => Some(BTreeSet::new()),
                Protocol::Op => {
                    let response = self
                        .http
                        .get(format!("http://{addr}/health"))
                        .timeout(workloads::client::ROLE_TIMEOUT)
                        .send()
                        .await
                        .ok()?;
                    let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
                    let keys = body.as_object()?.keys();
                    Some(keys.filter_map(|k| k.parse().ok()).collect())
                }
            }
        })
    }
}

/// A Maelstrom network as the sandbox network's links: partitions, loss and delay act on its
/// routing.
struct Routed(maelstrom::Net);

impl nemesis::net::Links for Routed {
    fn cut(&self, grudge: &std::collections::BTreeMap<String, BTreeSet<String>>) {
        self.0.set_grudge(grudge);
    }

    fn lose(&self, percent: u8) {
        self.0.set_loss(percent);
    }

    fn hold(&self, mean_ms: u64, jitter_ms: u64, seed: u64) {
        self.0.set_delay(mean_ms, jitter_ms, seed);
    }
}

/// The run's history, as the injector's [`Record`].
pub struct HistoryRecord(pub Recorder);

impl Record for HistoryRecord {
    fn nemesis(&self, event: NemesisEvent) {
        // Always `info`: a fault's effect is never certain.
        self.0.nemesis(EventType::Info, &event.f(), event.value);
    }
}
