//! Checkers for harness histories. Each returns `Valid`, `Invalid` with witnesses or
//! `Unknown` with the reason (shared/DESIGN.md section 7), never a bare bool, in one shape
//! for all: [`result::CheckerResult`]. A checker is one module plus one line of
//! [`registry::CHECKERS`].
//!
//! - `lin/`: linearizability (Herlihy & Wing, 1990), checked per key (P-compositionality,
//!   Horn & Kroening 2015) with a polynomial path for registers whose written values are
//!   unique (Gibbons & Korach 1997) and a memoised just-in-time linearization search (Wing &
//!   Gong 1993; Lowe 2017) for everything else.
//! - `causal`: causal consistency of registers (CC, CCv, CM and the session guarantees) by
//!   the bad patterns of Bouajjani et al. (POPL 2017), over vector clocks of the causal order.
//! - `set`: Jepsen's set-full checker: lost, unexpected, vanished elements.
//! - `counter`: Jepsen's counter checker: every read lies between what was surely added and
//!   what may have been.
//! - `convergence`: every node's own replica of a key reads the same, and only what writes
//!   produced (DeCandia et al., "Dynamo", SOSP 2007: eventual consistency).
//! - `siblings`: registers with concurrent versions and causal contexts: a version a write
//!   superseded is never returned beside it, nor after it was acknowledged.
//! - `unique-ids`, `echo`: Maelstrom's first two workloads (jepsen-io/maelstrom,
//!   doc/workloads.md): every acknowledged id distinct; every echo answered with what it sent.
//! - `kafka`: Maelstrom's kafka workload, checked as Jepsen's jepsen.tests.kafka does: offsets
//!   agree, polls move forward without skipping, no write lost, committed offsets never go back.
//! - `txn/`: Elle's transactional checkers, list-append and rw-register: dependency graphs
//!   over transactions, their cycles (G0 to G2-item) and the consistency models they rule out;
//!   read committed, read atomic and causal consistency as Biswas and Enea define them
//!   (OOPSLA 2019), checked by saturation as AWDIT does (PLDI 2025).

use std::path::PathBuf;

pub mod causal;
pub mod convergence;
pub mod counter;
pub mod echo;
pub mod kafka;
pub mod lin;
pub mod registry;
pub mod result;
pub mod rng;
pub mod set;
pub mod siblings;
#[cfg(test)]
mod testkit;
pub mod txn;
pub mod unique_ids;

pub use lin::model::ModelKind;
pub use lin::{check, Options, Report, Strategy, Verdict};
pub use registry::{Checker, CHECKERS};
pub use result::{Anomaly, CheckerResult, Edge, Judgement};

/// A history that cannot be checked against the chosen model; names file, line and field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: field `{field}`: {message}", file.display())]
pub struct CheckError {
    pub file: PathBuf,
    pub line: usize,
    pub field: String,
    pub message: String,
}
