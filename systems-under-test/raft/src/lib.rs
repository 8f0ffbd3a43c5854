//! Raft (Ongaro and Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014).
