//! Three `raft-node` processes on loopback, fsync on: the shared cluster benchmark
//! (`harness_sim::bench`): writes and reads per second with p50/p99 at 1, 10 and 50 clients,
//! and failover after killing the leader.
//!
//! `cargo bench -p raft-node --bench cluster` (BENCH_SECS=n per measurement, default 5;
//! BENCH_QUICK=1 for a short smoke run; BENCH_ONLY=failover for the failover trials alone).

fn main() {
    harness_sim::bench::cluster(env!("CARGO_BIN_EXE_raft-node"), "raft-node");
}
