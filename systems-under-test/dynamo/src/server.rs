//! `dynamo-node`'s glue: its settings become a replica [`Config`], its data directory a
//! [`FileStorage`], and the [`Replica`] runs in the shared runtime of `node::runtime`
//! (driver loop, batched peer transport on `POST /dynamo`, members, /op and /health).

use std::time::Duration;

use node::config::{NodeArgs, TICK_MS};
use node::runtime::{Members, Runtime};
use node::storage::Storage;

use crate::core::{Bugs, Config, Replica, Session};
use crate::storage::FileStorage;
use crate::version::Conflict;

/// Everything `dynamo-node` needs beyond the shared node arguments.
#[derive(Clone, Debug)]
pub struct Settings {
    pub node: NodeArgs,
    pub n: usize,
    pub r: usize,
    pub w: usize,
    pub vnodes: usize,
    pub conflict: Conflict,
    pub session: Session,
    pub op_timeout: Duration,
    pub anti_entropy: Duration,
    pub fd_timeout: Duration,
    pub bugs: Bugs,
}

impl Settings {
    /// Checks what clap cannot; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        self.node.validate()?;
        let members = self.node.peers.len();
        if self.n == 0 || self.n > members {
            return Err(format!(
                "--n {}: must be between 1 and the number of nodes in --peers ({members})",
                self.n
            ));
        }
        for (flag, v) in [("--r", self.r), ("--w", self.w)] {
            if v == 0 || v > self.n {
                return Err(format!(
                    "{flag} {v}: must be between 1 and --n ({})",
                    self.n
                ));
            }
        }
        if self.session == Session::Causal && self.conflict == Conflict::Lww {
            return Err(
                "--session causal needs --conflict siblings: a causal read returns \
                        every concurrent version it must, and last-writer-wins drops them"
                    .into(),
            );
        }
        if self.op_timeout < Duration::from_millis(5 * TICK_MS) {
            return Err(format!(
                "--op-timeout-ms {}: at least {} ms",
                self.op_timeout.as_millis(),
                5 * TICK_MS
            ));
        }
        Ok(())
    }

    fn ticks(d: Duration) -> u64 {
        (d.as_millis() as u64 / TICK_MS).max(1)
    }
}

/// Runs a node until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    settings.validate().map_err(anyhow::Error::msg)?;
    let args = &settings.node;
    let members = Members::new(args);
    let me = members
        .node_id(&args.id)
        .expect("validate() checked that --id is among --peers");
    let storage = FileStorage::open(&args.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot open the data directory: {e}"))?;
    let named = members
        .all()
        .into_iter()
        .map(|id| (id, members.name(id).to_string()))
        .collect();
    let mut cfg = Config::new(me, named);
    cfg.n = settings.n;
    cfg.r = settings.r;
    cfg.w = settings.w;
    cfg.vnodes = settings.vnodes.max(1);
    cfg.conflict = settings.conflict;
    cfg.session = settings.session;
    cfg.bugs = settings.bugs;
    cfg.seed = node::runtime::boot_seed();
    // The core answers a little before the runtime would give up on it, so that its own
    // answer (with the replicas it reached) is the one the client sees.
    cfg.op_timeout_ticks = Settings::ticks(settings.op_timeout)
        .saturating_sub(5)
        .max(5);
    cfg.ae_ticks = Settings::ticks(settings.anti_entropy);
    cfg.fd_timeout_ticks = Settings::ticks(settings.fd_timeout);
    let state = storage.load();
    tracing::info!(
        "recovered {} objects, {} hints, incarnation {}",
        state.objects.len(),
        state.hints.len(),
        state.incarnation
    );
    let replica = Replica::new(cfg, state);
    let conflict = match settings.conflict {
        Conflict::Siblings => "siblings",
        Conflict::Lww => "lww",
    };
    let bugs = settings.bugs.names();
    let mut health_extra = serde_json::Map::new();
    health_extra.insert("n".into(), settings.n.into());
    health_extra.insert("r".into(), settings.r.into());
    health_extra.insert("w".into(), settings.w.into());
    health_extra.insert("conflict".into(), conflict.into());
    let session = match settings.session {
        Session::Key => "key",
        Session::Causal => "causal",
    };
    health_extra.insert("session".into(), session.into());
    health_extra.insert("bugs".into(), bugs.clone().into());
    let planted = if bugs.is_empty() {
        String::new()
    } else {
        format!(", BUGS: {}", bugs.join(","))
    };
    let runtime = Runtime {
        name: "dynamo",
        tick: Duration::from_millis(TICK_MS),
        op_timeout: settings.op_timeout,
        health_extra,
        banner: format!(
            "N={} R={} W={}, conflicts by {conflict}, {session} contexts{planted}",
            settings.n, settings.r, settings.w
        ),
    };
    node::runtime::run(args, runtime, replica, storage).await?;
    Ok(())
}
