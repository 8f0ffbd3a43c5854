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
//!
//! Measured facts this crate builds on are in `shared/notes/faults-measured.md`; the contracts
//! are in `shared/DESIGN.md` section 4. This crate knows nothing of workloads or checkers.

pub mod clock;
mod cmd;
pub mod net;
pub mod process;
pub mod sandbox;

pub use clock::ClockFile;
pub use net::{Mechanism, NetError, Network};
pub use process::{LogTail, NodeSpec, NodeState, ProcError, Supervisor};
pub use sandbox::{Entered, SandboxError};
