//! `raft-node`'s glue: its settings become a Raft [`Config`], its data directory a
//! [`FileStorage`], and the [`Replica`] runs in the shared runtime of `node::runtime` (driver
//! loop, batched peer transport on `POST /raft`, members, /op and /health).

use node::config::{ConsensusArgs, NodeArgs, TICK_MS};
use node::runtime::{Members, Runtime};
use node::storage::Storage;

use crate::core::{Bugs, Config, ReadMode};
use crate::replica::Replica;
use crate::storage::FileStorage;

/// Everything `raft-node` needs beyond the shared node arguments.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: NodeArgs,
    pub consensus: ConsensusArgs,
    pub read_mode: ReadMode,
    pub bugs: Bugs,
    /// Unacknowledged entries per follower.
    pub max_inflight: u64,
    /// Pre-vote before each election.
    pub pre_vote: bool,
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
    cfg.max_batch = c.max_batch;
    cfg.max_inflight = settings.max_inflight;
    cfg.pre_vote = settings.pre_vote;
    cfg.bugs = settings.bugs;
    cfg.seed = node::runtime::boot_seed();
    let state = storage.load();
    tracing::info!(
        "recovered term {} vote {:?}, {} log entries, snapshot at {}",
        state.hard_state.term,
        state.hard_state.vote.map(|v| members.name(v).to_string()),
        state.entries.len(),
        state.snapshot.as_ref().map_or(0, |s| s.last_index)
    );
    let replica = Replica::new(cfg, state, c.snapshot_every).map_err(anyhow::Error::msg)?;
    let read_mode = match settings.read_mode {
        ReadMode::ReadIndex => "read-index",
        ReadMode::Lease => "lease",
    };
    let runtime = Runtime::consensus("raft", c.op_timeout(), read_mode, &settings.bugs.names());
    node::runtime::run(args, runtime, replica, storage).await?;
    Ok(())
}
