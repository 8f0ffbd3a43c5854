//! Transactions as types: the micro-ops of a `txn` operation (shared/DESIGN.md section 2),
//! validated, with errors that name the line and the field.
//!
//! On the wire a txn's value is a list of `[f, key, value]` micro-ops: `["r", k, null]` on
//! invoke and `["r", k, v]` once it completed (a list for list-append keys, an integer or null
//! for registers), `["w", k, v]`, `["append", k, v]` and `["incr", k, n]`. Keys are strings
//! (integers are accepted and read as their decimal text, as Elle writes them); written values,
//! elements and increments are integers.

use crate::{EventType, History, HistoryError, Paired};
use serde_json::Value;
use std::fmt;

/// What a micro-op does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MopKind {
    /// `r`: read a key.
    Read,
    /// `w`: write a register.
    Write,
    /// `append`: append an element to a list.
    Append,
    /// `incr`: add to a counter.
    Incr,
}

impl MopKind {
    /// Every kind, by its name on the wire.
    pub const ALL: [(MopKind, &'static str); 4] = [
        (MopKind::Read, "r"),
        (MopKind::Write, "w"),
        (MopKind::Append, "append"),
        (MopKind::Incr, "incr"),
    ];

    /// The name on the wire: `r`, `w`, `append` or `incr`.
    pub fn name(self) -> &'static str {
        match self {
            MopKind::Read => "r",
            MopKind::Write => "w",
            MopKind::Append => "append",
            MopKind::Incr => "incr",
        }
    }

    /// The kind named `name` (`:r`-style keyword names with their colon are accepted too).
    pub fn parse(name: &str) -> Option<MopKind> {
        let name = name.strip_prefix(':').unwrap_or(name);
        MopKind::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(k, _)| *k)
    }
}

/// A micro-op's value: nothing (a read not yet answered, or a read of an absent key), an
/// integer (a written value, an element, an increment, a register's read), or a list (a read of
/// a list).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MopValue {
    Nil,
    Int(i64),
    List(Vec<i64>),
}

impl MopValue {
    /// The integer, for writes, appends and increments.
    pub fn int(&self) -> Option<i64> {
        match self {
            MopValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            MopValue::Nil => Value::Null,
            MopValue::Int(i) => Value::from(*i),
            MopValue::List(l) => Value::from(l.clone()),
        }
    }
}

impl fmt::Display for MopValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MopValue::Nil => f.write_str("nil"),
            MopValue::Int(i) => write!(f, "{i}"),
            MopValue::List(l) => {
                f.write_str("[")?;
                for (i, x) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One micro-op of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mop {
    pub f: MopKind,
    pub key: String,
    pub value: MopValue,
}

impl Mop {
    pub fn read(key: impl Into<String>) -> Mop {
        Mop {
            f: MopKind::Read,
            key: key.into(),
            value: MopValue::Nil,
        }
    }

    pub fn write(key: impl Into<String>, value: i64) -> Mop {
        Mop {
            f: MopKind::Write,
            key: key.into(),
            value: MopValue::Int(value),
        }
    }

    pub fn append(key: impl Into<String>, value: i64) -> Mop {
        Mop {
            f: MopKind::Append,
            key: key.into(),
            value: MopValue::Int(value),
        }
    }

    pub fn incr(key: impl Into<String>, value: i64) -> Mop {
        Mop {
            f: MopKind::Incr,
            key: key.into(),
            value: MopValue::Int(value),
        }
    }

    /// `["append","x",3]`.
    pub fn to_json(&self) -> Value {
        Value::Array(vec![
            Value::from(self.f.name()),
            Value::from(self.key.clone()),
            self.value.to_json(),
        ])
    }
}

impl fmt::Display for Mop {
    /// Elle's short form: `r(x)=[1 2]`, `w(x,3)`, `append(x,3)`, `incr(x,1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.f, &self.value) {
            (MopKind::Read, MopValue::Nil) => write!(f, "r({})=nil", self.key),
            (MopKind::Read, v) => write!(f, "r({})={v}", self.key),
            (k, v) => write!(f, "{}({},{v})", k.name(), self.key),
        }
    }
}

/// A list of micro-ops as the JSON value of a txn.
pub fn to_json(mops: &[Mop]) -> Value {
    Value::Array(mops.iter().map(Mop::to_json).collect())
}

/// Reads a txn's value: a list of `[f, key, value]`. `answered` says whether reads carry their
/// results (an `ok` completion) or not (an invocation). The error names the micro-op, by
/// position, and what is wrong with it.
pub fn parse_mops(value: &Value) -> Result<Vec<Mop>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "a txn's value is a list of [f, key, value] micro-ops, got {}",
            short(value)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            parse_mop(item).map_err(|e| format!("micro-op {i} ({}): {e}", short(item)))
        })
        .collect()
}

fn parse_mop(item: &Value) -> Result<Mop, String> {
    let Value::Array(parts) = item else {
        return Err("expected [f, key, value]".into());
    };
    let [f, key, value] = parts.as_slice() else {
        return Err(format!(
            "expected 3 elements [f, key, value], got {}",
            parts.len()
        ));
    };
    let names = || {
        MopKind::ALL
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let f = match f {
        Value::String(s) => MopKind::parse(s)
            .ok_or_else(|| format!("unknown micro-op {s:?} (known: {})", names()))?,
        other => return Err(format!("f must be one of {}, got {other}", names())),
    };
    let key = match key {
        Value::String(s) if !s.is_empty() => s.strip_prefix(':').unwrap_or(s).to_owned(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(format!(
                "the key must be a string or an integer, got {other}"
            ))
        }
    };
    let int = |v: &Value| -> Result<i64, String> {
        v.as_i64()
            .ok_or_else(|| format!("{} needs an integer value, got {v}", f.name()))
    };
    let value = match (f, value) {
        (MopKind::Read, Value::Null) => MopValue::Nil,
        (MopKind::Read, Value::Number(_)) => MopValue::Int(int(value)?),
        (MopKind::Read, Value::Array(xs)) => MopValue::List(
            xs.iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_i64().ok_or_else(|| {
                        format!("element {i} of the read list must be an integer, got {x}")
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        (MopKind::Read, other) => {
            return Err(format!(
                "a read's value is null, an integer or a list of integers, got {other}"
            ))
        }
        (_, v) => MopValue::Int(int(v)?),
    };
    Ok(Mop { f, key, value })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// One transaction of a history: its micro-ops as they completed (reads filled in for `ok`;
/// as invoked for `fail` and `info`), and where it sits in the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Txn {
    /// Position of the operation in [`Paired::ops`].
    pub op: usize,
    pub process: u64,
    /// `Ok`, `Fail` or `Info`.
    pub kind: EventType,
    /// Positions in `History::events` of the invocation and the completion.
    pub invoke: usize,
    pub complete: Option<usize>,
    pub mops: Vec<Mop>,
}

/// The transactions of a paired history, in invocation order; other operations are skipped.
/// A malformed txn, or an `ok` completion whose micro-ops do not match its invocation's (other
/// than reads being filled in), is an error naming the line and the `value` field.
pub fn txns(history: &History, paired: &Paired) -> Result<Vec<Txn>, HistoryError> {
    let line_of = |pos: usize| history.lines.get(pos).copied().unwrap_or(pos + 1);
    let err = |pos: usize, msg: String| {
        HistoryError::new(&history.file, line_of(pos), Some("value"), msg)
    };
    let mut out = Vec::new();
    for (i, op) in paired.ops.iter().enumerate() {
        if op.f != "txn" {
            continue;
        }
        let invoked = parse_mops(&op.input).map_err(|e| err(op.invoke, e))?;
        let mops = match (op.kind, op.complete) {
            (EventType::Ok, Some(pos)) => {
                let done = parse_mops(&op.output).map_err(|e| err(pos, e))?;
                check_completion(&invoked, &done).map_err(|e| err(pos, e))?;
                done
            }
            _ => invoked,
        };
        out.push(Txn {
            op: i,
            process: op.process,
            kind: op.kind,
            invoke: op.invoke,
            complete: op.complete,
            mops,
        });
    }
    Ok(out)
}

/// An `ok` txn completes the micro-ops it was invoked with, in order, with reads answered.
pub fn check_completion(invoked: &[Mop], done: &[Mop]) -> Result<(), String> {
    if invoked.len() != done.len() {
        return Err(format!(
            "the completion has {} micro-ops but the invocation had {}",
            done.len(),
            invoked.len()
        ));
    }
    for (i, (a, b)) in invoked.iter().zip(done).enumerate() {
        let same = a.f == b.f && a.key == b.key && (a.f == MopKind::Read || a.value == b.value);
        if !same {
            return Err(format!(
                "micro-op {i} completed as {b} but was invoked as {a}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_kind_and_prints_them_short() {
        let mops = parse_mops(&json!([
            ["r", "x", [1, 2]],
            ["w", "y", 3],
            ["append", 5, 4],
            ["incr", "c", -1],
            [":r", ":z", null]
        ]))
        .unwrap();
        let shown: Vec<String> = mops.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            shown,
            [
                "r(x)=[1 2]",
                "w(y,3)",
                "append(5,4)",
                "incr(c,-1)",
                "r(z)=nil"
            ]
        );
        assert_eq!(mops[0].to_json(), json!(["r", "x", [1, 2]]));
    }

    #[test]
    fn errors_name_the_micro_op_and_what_is_wrong() {
        let cases = [
            (json!({"r": 1}), "a txn's value is a list"),
            (json!([["r", "x"]]), "micro-op 0"),
            (
                json!([["r", "x", null], ["put", "x", 1]]),
                "unknown micro-op \"put\"",
            ),
            (
                json!([["append", "x", "a"]]),
                "append needs an integer value",
            ),
            (json!([["r", "x", [1, "b"]]]), "element 1 of the read list"),
            (
                json!([["w", null, 1]]),
                "the key must be a string or an integer",
            ),
            (json!([["r", "x", {"a": 1}]]), "a read's value is null"),
        ];
        for (v, want) in cases {
            let e = parse_mops(&v).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
    }

    fn history(lines: &[&str]) -> History {
        let mut h = History::new("h.jsonl");
        for (i, l) in lines.iter().enumerate() {
            h.push(serde_json::from_str(l).unwrap(), i + 1);
        }
        h
    }

    #[test]
    fn txns_take_reads_from_ok_completions_and_check_they_match() {
        let h = history(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["r","x",null],["append","x",1]]}"#,
            r#"{"index":1,"time":1,"process":1,"type":"invoke","f":"txn","value":[["w","y",2]]}"#,
            r#"{"index":2,"time":2,"process":0,"type":"ok","f":"txn","value":[["r","x",[]],["append","x",1]]}"#,
            r#"{"index":3,"time":3,"process":1,"type":"fail","f":"txn","value":[["w","y",2]]}"#,
        ]);
        let t = txns(&h, &crate::pair(&h).unwrap()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].mops[0].value, MopValue::List(vec![]));
        assert_eq!((t[1].kind, t[1].complete), (EventType::Fail, Some(3)));

        let bad = history(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["append","x",1]]}"#,
            r#"{"index":1,"time":1,"process":0,"type":"ok","f":"txn","value":[["append","x",2]]}"#,
        ]);
        let e = txns(&bad, &crate::pair(&bad).unwrap()).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("value")));
        assert!(
            e.message
                .contains("completed as append(x,2) but was invoked as append(x,1)"),
            "{e}"
        );
    }
}
