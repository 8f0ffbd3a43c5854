//! The clients' history, as the simulation records it: Jepsen's invoke / ok / fail / info
//! (DESIGN section 2), one event per line in the order they happened. Kept free of the
//! harness's own types; a core's tests convert it for whatever checker they use.

use node::op::OpKind;
use serde_json::Value;

/// What an event says about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The client sent it.
    Invoke,
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: it may have happened at any time after its invoke, or never.
    Info,
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// 0, 1, 2, ... in order.
    pub index: u64,
    /// Simulated nanoseconds since the run began.
    pub time: u64,
    /// The client process; after an `info` the client goes on under a new one.
    pub process: u64,
    /// Invoke or completion.
    pub kind: EventKind,
    /// The operation.
    pub f: OpKind,
    /// Its key.
    pub key: String,
    /// Invoke: the argument; ok: the result (a read's value).
    pub value: Value,
    /// The server the client talked to.
    pub node: Option<usize>,
    /// Why it failed or is unknown.
    pub error: Option<String>,
}
