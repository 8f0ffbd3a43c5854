//! The seeded generator behind every random choice a workload makes, so that one seed replays
//! one sequence of operations: the workspace's one splitmix64, from `history` (shared/DESIGN.md
//! section 1), under the name the workloads have always used.

pub use history::rng::{splitmix64, SplitMix64};
