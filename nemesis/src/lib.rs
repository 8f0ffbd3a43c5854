//! Faults on one machine.
