//! The client side of Maelstrom's workloads (jepsen-io/maelstrom, `doc/workloads.md`): each
//! harness operation becomes the request a Maelstrom client would send for the workload being
//! run, through the harness's own Maelstrom network ([`maelstrom::Net`]), and the reply becomes
//! a completion.
//!
//! | workload | operation | request → reply |
//! |---|---|---|
//! | echo | `echo` v | `echo {echo}` → `echo_ok {echo}` |
//! | unique-ids | `generate` | `generate` → `generate_ok {id}` |
//! | broadcast | `add` v, `read` | `broadcast {message}` → `broadcast_ok`; `read` → `read_ok {messages}` |
//! | g-set | `add` v, `read` | `add {element}` → `add_ok`; `read` → `read_ok {value}` |
//! | g-counter, pn-counter | `incr` n, `read` | `add {delta}` → `add_ok`; `read` → `read_ok {value}` |
//! | lin-kv | `read`, `write`, `cas` | `read {key}`, `write {key, value}`, `cas {key, from, to}` |
//! | txn-list-append | `txn` | `txn {txn: [["r", k, null], ["append", k, v]]}` → `txn_ok {txn}` |
//! | kafka | `send`, `poll`, `commit_offsets`, `list_committed_offsets` | the same names |
//!
//! Register and transaction keys are the harness's names (`k3`); Maelstrom's workloads use
//! integers, so a name that is letters then digits goes on the wire as its number and comes
//! back as its name. Error bodies: a definite code (`doc/protocol.md`) is `fail` (22,
//! precondition-failed, on a cas is the register's `precondition`; 20, key-does-not-exist, on a
//! read is an ok read of nothing); any other code, a timeout or a crash is `info`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use maelstrom::msg::{error_of, ErrorCode};
use maelstrom::Net;
use serde_json::{json, Map, Value};

use crate::client::Completion;
use crate::Op;

/// Maelstrom's workloads, by the names `--workload` takes (those of the registry that say
/// what a Maelstrom node serving them is held to).
pub fn workloads() -> Vec<&'static str> {
    crate::WORKLOADS
        .iter()
        .filter(|w| !w.maelstrom_promises.is_empty())
        .map(|w| w.name)
        .collect()
}

/// What a Maelstrom node serving `workload` is held to, when its definition promises nothing
/// of its own (`Workload::maelstrom_promises`); None: not a Maelstrom workload.
pub fn promises(workload: &str) -> Option<&'static [&'static str]> {
    crate::registry::find(workload)
        .ok()
        .map(|w| w.maelstrom_promises)
        .filter(|p| !p.is_empty())
}

/// A Maelstrom client for one run: its network and the workload the operations belong to.
#[derive(Clone, Debug)]
pub struct Client {
    pub net: Net,
    pub workload: String,
}

impl Client {
    /// Sends `op` to the node at `addr` and classifies the reply.
    pub async fn invoke(&self, addr: SocketAddr, op: &Op, timeout: Duration) -> Completion {
        let Some(node) = self.net.node_at(addr) else {
            return Completion::fail(op, format!("no Maelstrom node at {addr}"));
        };
        let body = match request(&self.workload, op) {
            Ok(b) => b,
            Err(e) => return Completion::aborted(op, e),
        };
        match self.net.call(&node, body, timeout).await {
            Ok(reply) => completion(&self.workload, op, &reply),
            Err(e) if e.definite() => Completion::fail(op, e.to_string()),
            Err(e) => Completion::info(op, e.to_string()),
        }
    }
}

/// A register or transaction key as Maelstrom's workloads send it: `k12` → 12; a name of
/// another form as it is.
pub fn wire_key(key: &str) -> Value {
    let digits = key.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    match digits.parse::<u64>() {
        Ok(n) if !digits.is_empty() && digits.len() < key.len() && !digits.starts_with('+') => {
            json!(n)
        }
        _ => json!(key),
    }
}

/// The request for `op` in `workload`'s message shapes; an error for an operation the
/// workload has no message for (nothing is sent).
pub fn request(workload: &str, op: &Op) -> Result<Map<String, Value>, String> {
    let key = || op.key.as_deref().map(wire_key).unwrap_or(Value::Null);
    let body = match (op.f.as_str(), workload) {
        ("echo", _) => json!({"type": "echo", "echo": op.value}),
        ("generate", _) => json!({"type": "generate"}),
        ("add", "broadcast") => json!({"type": "broadcast", "message": op.value}),
        ("add", _) => json!({"type": "add", "element": op.value}),
        ("incr", _) => json!({"type": "add", "delta": op.value}),
        ("read", "lin-kv") => json!({"type": "read", "key": key()}),
        ("read", _) => json!({"type": "read"}),
        ("write", _) => json!({"type": "write", "key": key(), "value": op.value}),
        ("cas", _) => {
            let (from, to) = match op.value.as_array().map(Vec::as_slice) {
                Some([from, to]) => (from.clone(), to.clone()),
                _ => return Err(format!("a cas's value is [from, to], not {}", op.value)),
            };
            json!({"type": "cas", "key": key(), "from": from, "to": to})
        }
        ("txn", _) => {
            let micro = op
                .value
                .as_array()
                .ok_or("a txn's value is a list of micro-ops")?;
            let txn: Vec<Value> = micro
                .iter()
                .map(|m| match m.as_array().map(Vec::as_slice) {
                    Some([f, Value::String(k), v]) => Ok(json!([f, wire_key(k), v])),
                    _ => Err(format!("a micro-op is [f, key, value], not {m}")),
                })
                .collect::<Result<_, _>>()?;
            json!({"type": "txn", "txn": txn})
        }
        ("send", _) => json!({"type": "send", "key": op.key, "msg": op.value}),
        ("poll", _) => json!({"type": "poll", "offsets": op.value}),
        ("commit_offsets", _) => json!({"type": "commit_offsets", "offsets": op.value}),
        ("list_committed_offsets", _) => {
            json!({"type": "list_committed_offsets", "keys": op.value})
        }
        (f, w) => {
            return Err(format!(
                "the Maelstrom workload {w} has no message for `{f}`"
            ))
        }
    };
    match body {
        Value::Object(m) => Ok(m),
        _ => unreachable!("every request above is an object"),
    }
}

/// The completion of `op` from the node's `reply`.
pub fn completion(workload: &str, op: &Op, reply: &Map<String, Value>) -> Completion {
    let sent = request(workload, op)
        .ok()
        .and_then(|b| b.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if let Some((code, text)) = error_of(reply) {
        let why = format!("error {} ({}): {text}", code.0, code.name());
        return match (op.f.as_str(), code) {
            // lin-kv's registers start absent: its "no such key" is a read of the initial
            // value. Any other workload's read has no key to miss, so the error is an error
            // (a node passing on a seq-kv refusal), not an empty read.
            ("read", ErrorCode::KEY_DOES_NOT_EXIST) if workload == "lin-kv" => {
                Completion::ok(Value::Null)
            }
            ("cas", ErrorCode::PRECONDITION_FAILED | ErrorCode::KEY_DOES_NOT_EXIST) => {
                Completion::precondition_failed(op, "precondition".to_owned())
            }
            // Maelstrom's "try again": back off as from any refusal.
            (_, ErrorCode::TEMPORARILY_UNAVAILABLE) => Completion::fail(op, why),
            _ if code.definite() => Completion::aborted(op, why),
            _ => Completion::info(op, why),
        };
    }
    let got = reply.get("type").and_then(Value::as_str).unwrap_or("");
    if got != format!("{sent}_ok") {
        return Completion::info(
            op,
            format!("{sent} was answered with `{got}`, not `{sent}_ok`"),
        );
    }
    let field = |name: &str| -> Result<Value, Completion> {
        reply.get(name).cloned().ok_or_else(|| {
            Completion::info(
                op,
                format!(
                    "{got} without its `{name}`: {}",
                    Value::Object(reply.clone())
                ),
            )
        })
    };
    let value = match (op.f.as_str(), workload) {
        ("echo", _) => field("echo"),
        ("generate", _) => field("id"),
        ("read", "broadcast") => field("messages"),
        ("read", _) => field("value"),
        ("txn", _) => field("txn").map(|t| txn_keys_back(op, t)),
        ("send", _) => field("offset").map(|o| json!([o, op.value])),
        ("poll", _) => field("msgs"),
        ("list_committed_offsets", _) => field("offsets"),
        _ => Ok(op.value.clone()),
    };
    match value {
        Ok(v) => Completion::ok(v),
        Err(c) => c,
    }
}

/// A txn reply's micro-ops with the keys the harness named them by.
fn txn_keys_back(op: &Op, txn: Value) -> Value {
    let names: HashMap<String, &str> = op
        .value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.get(1)?.as_str())
        .map(|k| (wire_key(k).to_string(), k))
        .collect();
    match txn {
        Value::Array(micro) => Value::Array(
            micro
                .into_iter()
                .map(|m| match m {
                    Value::Array(mut parts) if parts.len() == 3 => {
                        if let Some(name) = names.get(&parts[1].to_string()) {
                            parts[1] = json!(name);
                        }
                        Value::Array(parts)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::EventType;

    fn op(f: &str, key: Option<&str>, value: Value) -> Op {
        Op {
            f: f.into(),
            key: key.map(str::to_owned),
            value,
            local: false,
            context: None,
        }
    }

    fn reply(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn keys_go_as_numbers_when_they_are_letters_then_digits() {
        assert_eq!(wire_key("k12"), json!(12));
        assert_eq!(wire_key("x"), json!("x"));
        assert_eq!(wire_key("12"), json!("12"));
        assert_eq!(wire_key("k1a"), json!("k1a"));
    }

    #[test]
    fn each_workload_has_its_message_shapes() {
        let add = op("add", Some("s0"), json!(7));
        assert_eq!(
            Value::Object(request("broadcast", &add).unwrap()),
            json!({"type": "broadcast", "message": 7})
        );
        assert_eq!(
            Value::Object(request("g-set", &add).unwrap()),
            json!({"type": "add", "element": 7})
        );
        let incr = op("incr", Some("c0"), json!(-3));
        assert_eq!(
            Value::Object(request("pn-counter", &incr).unwrap()),
            json!({"type": "add", "delta": -3})
        );
        let cas = op("cas", Some("k2"), json!([1, 2]));
        assert_eq!(
            Value::Object(request("lin-kv", &cas).unwrap()),
            json!({"type": "cas", "key": 2, "from": 1, "to": 2})
        );
        let read = op("read", Some("k2"), Value::Null);
        assert_eq!(
            Value::Object(request("lin-kv", &read).unwrap()),
            json!({"type": "read", "key": 2})
        );
        assert_eq!(
            Value::Object(request("broadcast", &read).unwrap()),
            json!({"type": "read"})
        );
        let txn = op("txn", None, json!([["r", "k1", null], ["append", "k2", 5]]));
        assert_eq!(
            Value::Object(request("txn-list-append", &txn).unwrap()),
            json!({"type": "txn", "txn": [["r", 1, null], ["append", 2, 5]]})
        );
        assert!(request("echo", &op("frobnicate", None, Value::Null))
            .unwrap_err()
            .contains("frobnicate"));
    }

    #[test]
    fn replies_become_completions() {
        let read = op("read", None, Value::Null);
        let c = completion(
            "broadcast",
            &read,
            &reply(json!({"type": "read_ok", "messages": [1, 2]})),
        );
        assert_eq!((c.kind, c.value), (EventType::Ok, json!([1, 2])));
        let c = completion(
            "g-counter",
            &read,
            &reply(json!({"type": "read_ok", "value": 9})),
        );
        assert_eq!(c.value, json!(9));
        // A reply of the wrong type or without its field: unknown.
        let c = completion("g-counter", &read, &reply(json!({"type": "add_ok"})));
        assert_eq!(c.kind, EventType::Info);
        let c = completion("g-counter", &read, &reply(json!({"type": "read_ok"})));
        assert_eq!(c.kind, EventType::Info);
        let txn = op("txn", None, json!([["r", "k1", null], ["append", "k2", 5]]));
        let c = completion(
            "txn-list-append",
            &txn,
            &reply(json!({"type": "txn_ok", "txn": [["r", 1, [3, 4]], ["append", 2, 5]]})),
        );
        assert_eq!(c.value, json!([["r", "k1", [3, 4]], ["append", "k2", 5]]));
        let send = op("send", Some("k1"), json!(44));
        let c = completion(
            "kafka",
            &send,
            &reply(json!({"type": "send_ok", "offset": 3})),
        );
        assert_eq!(c.value, json!([3, 44]));
        let echo = op("echo", None, json!("hi"));
        let c = completion(
            "echo",
            &echo,
            &reply(json!({"type": "echo_ok", "echo": "hx"})),
        );
        assert_eq!(
            c.value,
            json!("hx"),
            "the checker judges the echo, not the adapter"
        );
    }

    #[test]
    fn error_codes_map_to_fail_or_info() {
        let err = |code: i64| reply(json!({"type": "error", "code": code, "text": "t"}));
        let cas = op("cas", Some("k1"), json!([1, 2]));
        let c = completion("lin-kv", &cas, &err(22));
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (EventType::Fail, Some("precondition"))
        );
        let read = op("read", Some("k1"), Value::Null);
        let c = completion("lin-kv", &read, &err(20));
        assert_eq!((c.kind, c.value), (EventType::Ok, Value::Null));
        // A counter or a set has no key to miss: a node passing on a seq-kv "no such key" has
        // not read the empty state.
        let c = completion("g-counter", &read, &err(20));
        assert_eq!(c.kind, EventType::Fail);
        let c = completion("broadcast", &read, &err(20));
        assert_eq!(c.kind, EventType::Fail);
        let write = op("write", Some("k1"), json!(3));
        for (code, kind) in [
            (0, EventType::Info),
            (13, EventType::Info),
            (1000, EventType::Info),
            (11, EventType::Fail),
            (14, EventType::Fail),
            (30, EventType::Fail),
        ] {
            let c = completion("lin-kv", &write, &err(code));
            assert_eq!(c.kind, kind, "code {code}");
            assert!(c.error.unwrap().contains(&format!("error {code}")));
        }
        assert!(completion("lin-kv", &write, &err(11)).refused);
        assert!(!completion("lin-kv", &write, &err(30)).refused);
    }
}
