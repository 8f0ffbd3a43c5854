//! `paxos-node`'s glue: its settings become a Paxos [`Config`], its data directory a
//! [`FileStorage`], and the [`Replica`] runs in the shared runtime of `node::runtime` (driver
//! loop, batched peer transport on `POST /paxos`, members, /op and /health).

use std::time::Duration;

use node::config::NodeArgs;
use node::runtime::{Members, Runtime};
use node::storage::Storage;

use crate::core::{Bugs, Config, ReadMode};
use crate::replica::Replica;
use crate::storage::FileStorage;

/// Everything `paxos-node` needs beyond the shared node arguments.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: NodeArgs,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
    pub tick_ms: u64,
    pub election_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub snapshot_every: u64,
    /// How long a client request may wait for its answer before it is `info`.
    pub op_timeout: Duration,
    /// Slots per Accept or Learn message.
    pub max_batch: usize,
}

/// Runs a node until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let args = &settings.node;
    args.validate().map_err(anyhow::Error::msg)?;
    let members = Members::new(args);
    let me = members
        .node_id(&args.id)
        .expect("validate() checked that --id is among --peers");
    let storage = FileStorage::open(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot open the data directory: {e}"))?;
    let mut cfg = Config::new(me, members.all());
    cfg.tick_ms = settings.tick_ms.max(1);
    cfg.election_ticks = (settings.election_timeout_ms / cfg.tick_ms).max(2) as u32;
    cfg.heartbeat_ticks = (settings.heartbeat_ms / cfg.tick_ms).max(1) as u32;
    cfg.read_mode = settings.read_mode;
    cfg.max_batch = settings.max_batch.max(1);
    cfg.bugs = settings.bugs;
    cfg.seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let state = storage.load();
    tracing::info!(
        "recovered promise {} round {}, {} votes, snapshot at {}",
        state.promised,
        state.round,
        state.accepted.len(),
        state.snapshot.as_ref().map_or(0, |s| s.last_slot)
    );
    let replica = Replica::new(cfg, state, settings.snapshot_every).map_err(anyhow::Error::msg)?;

    let read_mode = match settings.read_mode {
        ReadMode::Quorum => "quorum",
        ReadMode::Lease => "lease",
    };
    let mut health_extra = serde_json::Map::new();
    health_extra.insert("read_mode".into(), read_mode.into());
    health_extra.insert("bugs".into(), settings.bugs.names().into());
    let runtime = Runtime {
        name: "paxos",
        tick: Duration::from_millis(settings.tick_ms.max(1)),
        op_timeout: settings.op_timeout,
        health_extra,
        banner: format!(
            "{read_mode} reads{}",
            if settings.bugs == Bugs::default() {
                String::new()
            } else {
                format!(", BUGS: {}", settings.bugs.names().join(","))
            }
        ),
    };
    node::runtime::run(args, runtime, replica, storage).await?;
    Ok(())
}
