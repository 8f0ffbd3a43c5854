//! The /op wire types (DESIGN section 3): one operation in, one completion out.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Which operation a request asks for; serialised lowercase (`"read"`, `"cas"`, ...).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Read a key: the value, or null when absent.
    Read,
    /// Overwrite a key with `value`.
    Write,
    /// Compare-and-set: `value` is `[from, to]`.
    Cas,
    /// Add `value` to the set held by a key.
    Add,
    /// Append `value` to the list held by a key.
    Append,
    /// Add the integer `value` to the counter held by a key.
    Incr,
    /// A list of micro-operations `[f, key, value]`, applied all or nothing.
    Txn,
}

impl OpKind {
    /// The wire name, as in `"f":"cas"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Cas => "cas",
            OpKind::Add => "add",
            OpKind::Append => "append",
            OpKind::Incr => "incr",
            OpKind::Txn => "txn",
        }
    }
}

/// The micro-operation names a txn may contain, in the order the error message lists them.
pub const TXN_MICRO_OPS: [&str; 5] = ["r", "w", "append", "add", "incr"];

/// The body of `POST /op`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OpRequest {
    /// The operation.
    pub f: OpKind,
    /// The key; required for every operation except `txn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The argument: written value, `[from, to]` for cas, element, increment, or txn micro-ops.
    #[serde(default)]
    pub value: Value,
    /// Read this node's own replica, without coordinating with others (DESIGN section 3: the
    /// final per-node convergence reads). Stores that replicate everything everywhere through
    /// a log may ignore it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// The session context the system returned for this key (opaque), sent back so that a
    /// write supersedes exactly what the session saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl OpRequest {
    /// Whether it only reads: a `read`, or a `txn` whose micro-ops are all `r` (a consensus
    /// store may serve it without writing to its log, as a read).
    pub fn is_read_only(&self) -> bool {
        match self.f {
            OpKind::Read => true,
            OpKind::Txn => self.value.as_array().is_some_and(|mops| {
                mops.iter()
                    .all(|m| m.get(0).and_then(Value::as_str) == Some("r"))
            }),
            _ => false,
        }
    }

    /// A request with a key, as a client or test writes it.
    pub fn new(f: OpKind, key: impl Into<String>, value: Value) -> OpRequest {
        OpRequest {
            f,
            key: Some(key.into()),
            value,
            local: false,
            context: None,
        }
    }

    /// A txn request over the given micro-operations.
    pub fn txn(micro_ops: Value) -> OpRequest {
        OpRequest {
            f: OpKind::Txn,
            key: None,
            value: micro_ops,
            local: false,
            context: None,
        }
    }

    /// Checks the shape of the request before anything is proposed, so that a malformed request
    /// is refused with `fail` (it certainly did not happen) instead of reaching the log.
    /// The message names the field that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let f = self.f.as_str();
        if self.f != OpKind::Txn && self.key.is_none() {
            return Err(format!("key: required for {f}"));
        }
        match self.f {
            OpKind::Read | OpKind::Write | OpKind::Add | OpKind::Append => Ok(()),
            OpKind::Cas => match &self.value {
                Value::Array(pair) if pair.len() == 2 => Ok(()),
                other => Err(format!(
                    "value: cas needs a 2-element array [from, to], got {}",
                    brief(other)
                )),
            },
            OpKind::Incr => {
                if self.value.as_i64().is_some() {
                    Ok(())
                } else {
                    Err(format!(
                        "value: incr needs a 64-bit integer, got {}",
                        brief(&self.value)
                    ))
                }
            }
            OpKind::Txn => validate_txn(&self.value),
        }
    }
}

fn validate_txn(value: &Value) -> Result<(), String> {
    let Value::Array(micro_ops) = value else {
        return Err(format!(
            "value: txn needs an array of [f, key, value] micro-ops, got {}",
            brief(value)
        ));
    };
    for (i, micro) in micro_ops.iter().enumerate() {
        let Value::Array(parts) = micro else {
            return Err(format!(
                "value[{i}]: expected a micro-op [f, key, value], got {}",
                brief(micro)
            ));
        };
        if parts.len() != 3 {
            return Err(format!(
                "value[{i}]: expected a micro-op [f, key, value] of 3 elements, got {}",
                parts.len()
            ));
        }
        let f = match &parts[0] {
            Value::String(f) if TXN_MICRO_OPS.contains(&f.as_str()) => f.as_str(),
            other => {
                return Err(format!(
                    "value[{i}][0]: f must be one of {}, got {}",
                    TXN_MICRO_OPS
                        .iter()
                        .map(|f| format!("\"{f}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    brief(other)
                ))
            }
        };
        if !parts[1].is_string() {
            return Err(format!(
                "value[{i}][1]: key must be a string, got {}",
                brief(&parts[1])
            ));
        }
        if f == "incr" && parts[2].as_i64().is_none() {
            return Err(format!(
                "value[{i}][2]: incr needs a 64-bit integer, got {}",
                brief(&parts[2])
            ));
        }
    }
    Ok(())
}

/// A short rendering of a value for error messages: bounded so that a huge request does not
/// produce a huge error.
fn brief(value: &Value) -> String {
    const MAX_CHARS: usize = 80;
    let text = value.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}...")
    }
}

/// How an operation completed; serialised lowercase as the history's `type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened.
    Ok,
    /// It certainly did not happen and never will.
    Fail,
    /// Unknown: it may have happened, or may yet.
    Info,
}

/// The body of the answer to `POST /op`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OpResponse {
    /// ok, fail or info.
    #[serde(rename = "type")]
    pub kind: Outcome,
    /// The result, where there is one. `Some(Value::Null)` is a read of an absent key and is
    /// sent as `"value":null`; `None` leaves the field out. Deserialising keeps that
    /// difference (serde's default would turn `null` into `None`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_value"
    )]
    pub value: Option<Value>,
    /// Why the operation failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The read found concurrent versions: `value` is the list of them (DESIGN section 3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub siblings: bool,
    /// The session context to send back with the next operation on this key (opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// A field that is present is `Some`, even when it is `null`; `#[serde(default)]` covers absence.
fn present_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl OpResponse {
    /// `{"type":"ok"}`.
    pub fn ok() -> OpResponse {
        OpResponse {
            kind: Outcome::Ok,
            value: None,
            error: None,
            siblings: false,
            context: None,
        }
    }

    /// `{"type":"ok","value":v}`; `v` may be null (a read of an absent key).
    pub fn ok_value(value: Value) -> OpResponse {
        OpResponse {
            kind: Outcome::Ok,
            value: Some(value),
            error: None,
            siblings: false,
            context: None,
        }
    }

    /// `{"type":"fail","error":...}`: a promise that the operation did not and will not happen.
    pub fn fail(error: impl Into<String>) -> OpResponse {
        OpResponse {
            kind: Outcome::Fail,
            value: None,
            error: Some(error.into()),
            siblings: false,
            context: None,
        }
    }

    /// `{"type":"info","error":...}`: the operation may or may not have happened.
    pub fn info(error: impl Into<String>) -> OpResponse {
        OpResponse {
            kind: Outcome::Info,
            value: None,
            error: Some(error.into()),
            siblings: false,
            context: None,
        }
    }

    /// Whether the operation happened.
    pub fn is_ok(&self) -> bool {
        self.kind == Outcome::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> OpRequest {
        serde_json::from_str(text).expect("test request parses")
    }

    #[test]
    fn request_wire_format_matches_design_section_3() {
        let req = parse(r#"{"f":"cas","key":"k","value":[5,6]}"#);
        assert_eq!(req, OpRequest::new(OpKind::Cas, "k", json!([5, 6])));
        let read = parse(r#"{"f":"read","key":"k"}"#);
        assert_eq!(read.value, Value::Null);
        let txn = OpRequest::txn(json!([["r", "x", null]]));
        assert_eq!(
            serde_json::to_string(&txn).expect("serialises"),
            r#"{"f":"txn","value":[["r","x",null]]}"#
        );
        for f in ["read", "write", "cas", "add", "append", "incr", "txn"] {
            let kind: OpKind = serde_json::from_value(json!(f)).expect("known kind");
            assert_eq!(kind.as_str(), f);
        }
        assert!(serde_json::from_str::<OpRequest>(r#"{"f":"Read","key":"k"}"#).is_err());
    }

    #[test]
    fn read_of_absent_key_keeps_null_on_the_wire_both_ways() {
        let absent = OpResponse::ok_value(Value::Null);
        let text = serde_json::to_string(&absent).expect("serialises");
        assert_eq!(text, r#"{"type":"ok","value":null}"#);
        let back: OpResponse = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, absent);

        let plain = serde_json::to_string(&OpResponse::ok()).expect("serialises");
        assert_eq!(plain, r#"{"type":"ok"}"#);
        let back: OpResponse = serde_json::from_str(&plain).expect("parses");
        assert_eq!(back.value, None);

        let fail = serde_json::to_string(&OpResponse::fail("precondition")).expect("serialises");
        assert_eq!(fail, r#"{"type":"fail","error":"precondition"}"#);
        let info = serde_json::to_string(&OpResponse::info("timeout")).expect("serialises");
        assert_eq!(info, r#"{"type":"info","error":"timeout"}"#);
    }

    #[test]
    fn validate_accepts_well_formed_requests() {
        for req in [
            OpRequest::new(OpKind::Read, "k", Value::Null),
            OpRequest::new(OpKind::Write, "k", json!({"any": [1]})),
            OpRequest::new(OpKind::Cas, "k", json!([null, 1])),
            OpRequest::new(OpKind::Add, "s", json!(7)),
            OpRequest::new(OpKind::Append, "l", json!("x")),
            OpRequest::new(OpKind::Incr, "c", json!(-3)),
            OpRequest::txn(json!([])),
            OpRequest::txn(json!([
                ["r", "x", null],
                ["w", "x", 1],
                ["append", "y", 3],
                ["add", "s", 4],
                ["incr", "c", 2]
            ])),
        ] {
            assert_eq!(req.validate(), Ok(()), "{req:?}");
        }
    }

    #[test]
    fn validate_names_the_wrong_field() {
        let cases = [
            (parse(r#"{"f":"read"}"#), "key: required for read"),
            (
                OpRequest::new(OpKind::Cas, "k", json!(5)),
                "value: cas needs a 2-element array",
            ),
            (
                OpRequest::new(OpKind::Cas, "k", json!([1, 2, 3])),
                "value: cas needs",
            ),
            (
                OpRequest::new(OpKind::Incr, "k", json!(1.5)),
                "value: incr needs a 64-bit integer, got 1.5",
            ),
            (
                OpRequest::new(OpKind::Incr, "k", Value::Null),
                "value: incr needs",
            ),
            (OpRequest::txn(json!({"r": 1})), "value: txn needs an array"),
            (OpRequest::txn(json!([5])), "value[0]: expected a micro-op"),
            (
                OpRequest::txn(json!([["r", "x"]])),
                "value[0]: expected a micro-op [f, key, value] of 3 elements, got 2",
            ),
            (
                OpRequest::txn(json!([["r", "x", null], ["read", "x", null]])),
                "value[1][0]: f must be one of \"r\", \"w\", \"append\", \"add\", \"incr\", got \"read\"",
            ),
            (
                OpRequest::txn(json!([["w", 5, 1]])),
                "value[0][1]: key must be a string, got 5",
            ),
            (
                OpRequest::txn(json!([["incr", "c", "1"]])),
                "value[0][2]: incr needs a 64-bit integer",
            ),
        ];
        for (req, want) in cases {
            let err = req.validate().expect_err("request is invalid");
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn errors_quote_huge_values_briefly() {
        let big = json!(vec![1; 10_000]);
        let err = OpRequest::new(OpKind::Incr, "k", big)
            .validate()
            .expect_err("invalid");
        assert!(err.len() < 200, "{err}");
        assert!(err.ends_with("..."));
    }
}
