//! Faults on one machine, the way Jepsen injects them on a cluster (jepsen-io/jepsen
//! `jepsen/src/jepsen/net.clj`, `nemesis.clj`), adapted to a single Linux host.
//!
//! - [`sandbox`]: the harness re-executes itself inside fresh user (when not root), PID, mount and
//!   network namespaces, so that the kernel removes every node process, namespace and firewall
//!   rule when the harness dies, even by SIGKILL.
//! - [`net`]: one network namespace per node, joined by veth pairs to a bridge `br0` in the
//!   sandbox; partitions ("grudges") and packet loss as nft / iptables DROP rules inside the
//!   receiving node's namespace, or blackhole routes when neither tool is installed.
//! - [`process`]: the cluster supervisor: start, stop, kill -9, restart, pause (SIGSTOP) and
//!   resume (SIGCONT) of node process groups, readiness polling, log tails.
//! - [`clock`]: the offset file bundled nodes read to skew their wall clock.
//! - [`schedule`]: what `--nemesis` may ask for (kinds and their shapes, typed), and the
//!   seeded schedule of faults a run injects.
//! - [`inject`]: the [`Injector`] that applies and heals them, one module of `faults` per
//!   fault kind, and the staged scenarios ([`staged`]) that set a bug's situation up step by
//!   step.
//! - [`status`]: what the injector needs to know of the cluster ([`ClusterView`]: each node's
//!   role, term, vote and commit index) and where it writes what it did ([`Record`]), as
//!   traits that `harness run` implements.
//!
//! How `harness run` is meant to use it:
//!
//! ```no_run
//! use std::collections::{BTreeMap, BTreeSet};
//! use std::time::Duration;
//! use nemesis::{sandbox, Entered, Network, NodeSpec, Supervisor};
//!
//! fn main() {
//!     // First thing, while single-threaded. The original process waits here.
//!     match sandbox::enter() {
//!         Ok(Entered::Inside) => {}
//!         Ok(Entered::ParentDone(code)) => std::process::exit(code),
//!         Err(e) => {
//!             eprintln!("{e}");
//!             std::process::exit(4)
//!         }
//!     }
//!     let rt = tokio::runtime::Runtime::new().expect("runtime");
//!     rt.block_on(async {
//!         // Inside, this process is PID 1: without handlers, SIGINT and SIGTERM are ignored.
//!         use tokio::signal::unix::{signal, SignalKind};
//!         let _sigint = signal(SignalKind::interrupt())?;
//!         let _sigterm = signal(SignalKind::terminate())?;
//!         let nodes = vec!["n1".to_string(), "n2".to_string(), "n3".to_string()];
//!         let mut net = Network::create(&nodes)?;
//!         let mut sup = Supervisor::new(net.netns_paths());
//!         for n in &nodes {
//!             let ip = net.ip(n).expect("a node of the network");
//!             sup.start(&NodeSpec {
//!                 name: n.clone(),
//!                 program: "raft-node".into(),
//!                 args: vec![format!("--listen={ip}:8000")],
//!                 env: vec![],
//!                 dir: format!("store/run/nodes/{n}").into(),
//!                 health_url: format!("http://{ip}:8000/health"),
//!             })?;
//!             sup.wait_ready(n, Duration::from_secs(10)).await?;
//!         }
//!         let grudge: BTreeMap<String, BTreeSet<String>> =
//!             [("n1".to_string(), ["n2".to_string(), "n3".to_string()].into())].into();
//!         net.partition(&grudge)?;
//!         net.heal()?;
//!         sup.stop_all(Duration::from_secs(5));
//!         Ok::<(), Box<dyn std::error::Error>>(())
//!     })
//!     .expect("run");
//! }
//! ```
//!
//! Measured facts this crate builds on are in `shared/notes/faults-measured.md`; the contracts
//! are in `shared/DESIGN.md` section 4. This crate knows nothing of workloads or checkers.

pub mod clock;
mod cmd;
mod delay;
pub mod disk;
mod faults;
pub mod inject;
pub mod net;
pub mod process;
pub mod sandbox;
pub mod schedule;
pub mod staged;
pub mod status;

pub use clock::ClockFile;
pub use disk::{Disk, Lost};
pub use inject::{Applied, InjectError, Injector};
pub use net::{Mechanism, NetError, Network};
pub use process::{LogTail, NodeSpec, NodeState, ProcError, Supervisor};
pub use sandbox::{Entered, SandboxError};
pub use schedule::{Fault, NemesisKind, NemesisPlan, Schedule, Staged};
pub use status::{ClusterView, NodeStatus, Record, StatusField};
