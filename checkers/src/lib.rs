//! Checkers for harness histories. Each returns `Valid`, `Invalid { witness }` or
//! `Unknown { reason }` (shared/DESIGN.md section 7), never a bare bool.
//!
//! Linearizability (Herlihy & Wing, 1990) is checked per key (P-compositionality, Horn &
//! Kroening 2015) with two procedures: a polynomial graph path for registers whose written
//! values are unique (Gibbons & Korach 1997), and a memoised just-in-time linearization search
//! (Wing & Gong 1993; Lowe 2017) for everything else. See `linear` for the entry point.

use std::path::PathBuf;

pub mod graph;
pub mod linear;
pub mod model;
pub mod oracle;
pub mod rng;
pub mod search;
pub mod set;
pub mod strings;
pub mod synth;
pub mod witness;

pub use linear::{check, Options, Report, Strategy, Verdict};
pub use model::ModelKind;

/// A history that cannot be checked against the chosen model; names file, line and field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: field `{field}`: {message}", file.display())]
pub struct CheckError {
    pub file: PathBuf,
    pub line: usize,
    pub field: String,
    pub message: String,
}
