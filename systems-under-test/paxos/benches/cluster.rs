//! Three `paxos-node` processes on loopback, fsync on: the shared cluster benchmark
//! (`harness_sim::bench`), the same code that measures raft-node.
//!
//! `cargo bench -p paxos-node --bench cluster` (BENCH_SECS=n per measurement, default 5;
//! BENCH_QUICK=1 for a short smoke run; BENCH_ONLY=failover for the failover trials alone).

fn main() {
    harness_sim::bench::cluster(env!("CARGO_BIN_EXE_paxos-node"), "paxos-node");
}
