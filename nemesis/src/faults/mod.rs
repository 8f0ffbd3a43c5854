//! One module per fault kind, each with the apply and the heal of its faults. They share the
//! injector's state and helpers ([`crate::inject`]); the staged scenarios, which move
//! partitions, delay and kills in turn, are in [`crate::staged`].

pub(crate) mod clock;
pub(crate) mod delay;
pub(crate) mod disk;
pub(crate) mod kill;
pub(crate) mod loss;
pub(crate) mod partition;
pub(crate) mod pause;
pub(crate) mod slow;
