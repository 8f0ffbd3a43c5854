//! The mixing function and seeded generator the checker, its benchmark generator and its tests
//! share: the workspace's one splitmix64, from `history`. Deterministic, so every seeded run
//! replays exactly.

pub use history::rng::{splitmix64, SplitMix64};
