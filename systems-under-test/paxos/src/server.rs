//! `paxos-node`'s glue: its settings become a Paxos [`Config`], its data directory a
//! [`FileStorage`], and the [`Replica`] runs in the shared runtime of `node::runtime` (driver
//! loop, batched peer transport on `POST /paxos`, members, /op and /health).

use node::config::{ConsensusArgs, NodeArgs, TICK_MS};
use node::runtime::{Members, Runtime};
use node::storage::Storage;

use crate::core::{Bugs, Config, ReadMode};
use crate::replica::Replica;
use crate::storage::FileStorage;

/// Everything `paxos-node` needs beyond the shared node arguments.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: NodeArgs,
    pub consensus: ConsensusArgs,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
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
    let c = &settings.consensus;
    let mut cfg = Config::new(me, members.all());
    cfg.tick_ms = TICK_MS;
    (cfg.election_ticks, cfg.heartbeat_ticks) = c.ticks();
    cfg.read_mode = settings.read_mode;
    cfg.max_batch = c.max_batch.max(1);
    cfg.bugs = settings.bugs;
    cfg.seed = node::runtime::boot_seed();
    let state = storage.load();
    tracing::info!(
        "recovered promise {} round {}, {} votes, snapshot at {}",
        state.promised,
        state.round,
        state.accepted.len(),
        state.snapshot.as_ref().map_or(0, |s| s.last_slot)
    );
    let replica = Replica::new(cfg, state, c.snapshot_every).map_err(anyhow::Error::msg)?;
    let read_mode = match settings.read_mode {
        ReadMode::Quorum => "quorum",
        ReadMode::Lease => "lease",
    };
    let runtime = Runtime::consensus("paxos", c.op_timeout(), read_mode, &settings.bugs.names());
    node::runtime::run(args, runtime, replica, storage).await?;
    Ok(())
}
