//! The deterministic key-value state machine every bundled store replicates.
//!
//! Replicas that apply the same operations in the same order reach the same state (no clock, no
//! randomness, no iteration over unordered maps), which is what makes state machine
//! replication work (Raft paper, section 5.3; Lamport's "Paxos Made Simple", section 3).
//!
//! A key holds one of: a plain value (written), a list (appended to, or written as a JSON
//! array), a set (added to), or an integer (written or incremented). Null means absent:
//! writing null removes the key, so a written null and a key never written are one state.
//!
//! Every operation first checks that it can apply in full and only then changes anything, so a
//! `fail` leaves the store exactly as it was, for a txn as for a single operation.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::op::{OpKind, OpRequest, OpResponse};

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The bytes are not a snapshot this module wrote.
    #[error("kv snapshot does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    /// The snapshot parses but breaks an invariant of the store.
    #[error("kv snapshot: key {key:?}: {reason}")]
    Invalid {
        /// The offending key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The replicated key-value state: see the module documentation for the semantics.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct KvStore {
    entries: BTreeMap<String, Entry>,
}

/// What a key holds. Invariant: `Value` never holds null (null is absence) nor an array
/// (a written array is a `List`, so that it can be appended to).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    Value(Value),
    List(Vec<Value>),
    /// Ordered so that add is O(log n) and a read is already sorted.
    Set(BTreeSet<Elem>),
}

impl Entry {
    fn from_written(value: Value) -> Option<Entry> {
        match value {
            Value::Null => None,
            Value::Array(items) => Some(Entry::List(items)),
            other => Some(Entry::Value(other)),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Entry::Value(v) => v.clone(),
            Entry::List(items) => Value::Array(items.clone()),
            Entry::Set(elems) => Value::Array(elems.iter().map(|e| e.0.clone()).collect()),
        }
    }
}

/// A set element: a JSON value under a total order (see [`cmp_values`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct Elem(Value);

impl PartialEq for Elem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Elem {}

impl PartialOrd for Elem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Elem {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_values(&self.0, &other.0)
    }
}

/// A total order on JSON values, consistent with `serde_json::Value`'s equality:
/// null < booleans < numbers < strings < arrays < objects; numbers by value (integers exactly,
/// an integer before a float of equal value, since serde_json holds `1` and `1.0` unequal);
/// strings by bytes; arrays lexicographically; objects as their entries sorted by key.
pub fn cmp_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => cmp_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                match cmp_values(p, q) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            // Sorting makes the order independent of serde_json's map flavour (preserve_order).
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((xk, xv), (yk, yv)) in xs.iter().zip(&ys) {
                match xk.cmp(yk).then_with(|| cmp_values(xv, yv)) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn exact_int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn float_of(n: &Number) -> f64 {
    n.as_f64()
        .expect("a serde_json number that is not an integer is an f64")
}

fn cmp_numbers(a: &Number, b: &Number) -> Ordering {
    match (exact_int(a), exact_int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => cmp_int_float(x, float_of(b)),
        (None, Some(y)) => cmp_int_float(y, float_of(a)).reverse(),
        (None, None) => float_of(a)
            .partial_cmp(&float_of(b))
            .expect("serde_json numbers are finite"),
    }
}

fn cmp_int_float(i: i128, f: f64) -> Ordering {
    // Rounding to f64 is monotonic, so a strict difference after rounding is a strict
    // difference before it; only a tie needs the exact comparison.
    match (i as f64)
        .partial_cmp(&f)
        .expect("serde_json numbers are finite")
    {
        Ordering::Equal => {
            // f equals a rounded i128 within u64/i64 range, so it is integral and in range.
            let exact = f as i128;
            i.cmp(&exact).then(Ordering::Less)
        }
        other => other,
    }
}

/// What a key holds, as far as deciding whether an operation can apply.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Absent,
    Int(i64),
    Scalar(&'static str),
    List,
    Set,
}

impl Shape {
    fn of_entry(entry: Option<&Entry>) -> Shape {
        match entry {
            None => Shape::Absent,
            Some(Entry::List(_)) => Shape::List,
            Some(Entry::Set(_)) => Shape::Set,
            Some(Entry::Value(v)) => Shape::of_written(v),
        }
    }

    fn of_written(value: &Value) -> Shape {
        match value {
            Value::Null => Shape::Absent,
            Value::Array(_) => Shape::List,
            Value::Bool(_) => Shape::Scalar("a boolean"),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Shape::Int(i),
                None if n.is_f64() => Shape::Scalar("a float"),
                None => Shape::Scalar("an integer beyond 64-bit signed range"),
            },
            Value::String(_) => Shape::Scalar("a string"),
            Value::Object(_) => Shape::Scalar("an object"),
        }
    }

    fn describe(self) -> String {
        match self {
            Shape::Absent => "nothing".to_string(),
            Shape::Int(i) => format!("an integer ({i})"),
            Shape::Scalar(what) => what.to_string(),
            Shape::List => "a list".to_string(),
            Shape::Set => "a set".to_string(),
        }
    }
}

/// One step of an operation: a single op is one micro-op, a txn several.
#[derive(Clone, Copy, Debug)]
enum Micro<'a> {
    Read,
    Write(&'a Value),
    Append(&'a Value),
    Add(&'a Value),
    Incr(i64),
}

impl Micro<'_> {
    /// The shape the key has after this step, or why the step cannot apply.
    fn check(self, key: &str, before: Shape) -> Result<Shape, String> {
        let mismatch = |verb: &str, needs: &str| {
            Err(format!(
                "key {key:?} holds {}; {verb} needs {needs}",
                before.describe()
            ))
        };
        match self {
            Micro::Read => Ok(before),
            Micro::Write(v) => Ok(Shape::of_written(v)),
            Micro::Append(_) => match before {
                Shape::Absent | Shape::List => Ok(Shape::List),
                _ => mismatch("append", "a list"),
            },
            Micro::Add(_) => match before {
                Shape::Absent | Shape::Set => Ok(Shape::Set),
                _ => mismatch("add", "a set"),
            },
            Micro::Incr(n) => match before {
                Shape::Absent => Ok(Shape::Int(n)),
                Shape::Int(i) => i.checked_add(n).map(Shape::Int).ok_or_else(|| {
                    format!("key {key:?} holds {i}; incr by {n} would overflow 64 bits")
                }),
                _ => mismatch("incr", "an integer"),
            },
        }
    }
}

impl KvStore {
    /// An empty store.
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// Applies one operation atomically: either all of it happens and the answer is `ok`, or
    /// nothing changes and the answer is `fail` with the reason.
    pub fn apply(&mut self, op: &OpRequest) -> OpResponse {
        if let Err(e) = op.validate() {
            return OpResponse::fail(format!("bad request: {e}"));
        }
        if op.f == OpKind::Txn {
            return self.apply_txn(&op.value);
        }
        let key = op
            .key
            .as_deref()
            .expect("validate() requires a key for every op but txn");
        let micro = match op.f {
            OpKind::Read => return self.read(key),
            OpKind::Cas => return self.cas(key, &op.value),
            OpKind::Write => Micro::Write(&op.value),
            OpKind::Append => Micro::Append(&op.value),
            OpKind::Add => Micro::Add(&op.value),
            OpKind::Incr => Micro::Incr(
                op.value
                    .as_i64()
                    .expect("validate() requires an integer incr value"),
            ),
            OpKind::Txn => unreachable!("txn handled above"),
        };
        match micro.check(key, Shape::of_entry(self.entries.get(key))) {
            Ok(_) => {
                self.apply_checked(key, micro);
                OpResponse::ok()
            }
            Err(e) => OpResponse::fail(e),
        }
    }

    /// Reads a key: `ok` with its value, or with null when absent. A set reads as a sorted array.
    pub fn read(&self, key: &str) -> OpResponse {
        OpResponse::ok_value(self.value_of(key))
    }

    /// Answers an operation that only reads (`OpRequest::is_read_only`) from the current
    /// state, without changing it: a read, or a txn of reads, each filled in.
    pub fn read_only(&self, op: &OpRequest) -> OpResponse {
        if op.f != OpKind::Txn {
            return self.read(op.key.as_deref().unwrap_or_default());
        }
        let mops = op.value.as_array().map(Vec::as_slice).unwrap_or_default();
        let completed = mops
            .iter()
            .map(|m| {
                let key = m.get(1).and_then(Value::as_str).unwrap_or_default();
                Value::Array(vec![Value::from("r"), Value::from(key), self.value_of(key)])
            })
            .collect();
        OpResponse::ok_value(Value::Array(completed))
    }

    /// The number of keys holding something.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key holds anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The whole state as bytes, for a snapshot; [`KvStore::restore`] reads them back.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&self.entries).expect("string keys and JSON values always serialise")
    }

    /// Rebuilds a store from [`KvStore::snapshot`] bytes, checking the store's invariants.
    pub fn restore(bytes: &[u8]) -> Result<KvStore, KvError> {
        let entries: BTreeMap<String, Entry> = serde_json::from_slice(bytes)?;
        for (key, entry) in &entries {
            if let Entry::Value(v @ (Value::Null | Value::Array(_))) = entry {
                return Err(KvError::Invalid {
                    key: key.clone(),
                    reason: format!(
                        "a plain value may not be {v} (null is absence, an array is a list)"
                    ),
                });
            }
        }
        Ok(KvStore { entries })
    }

    /// A deterministic 64-bit hash of the whole content (FNV-1a over a canonical encoding,
    /// stable across processes and Rust versions), for tests to compare replicas.
    pub fn digest(&self) -> u64 {
        let mut h = Fnv64::new();
        h.len(self.entries.len());
        for (key, entry) in &self.entries {
            h.str(key);
            match entry {
                Entry::Value(v) => {
                    h.tag(b'v');
                    h.value(v);
                }
                Entry::List(items) => {
                    h.tag(b'l');
                    h.len(items.len());
                    items.iter().for_each(|v| h.value(v));
                }
                Entry::Set(elems) => {
                    h.tag(b's');
                    h.len(elems.len());
                    elems.iter().for_each(|e| h.value(&e.0));
                }
            }
        }
        h.finish()
    }

    fn value_of(&self, key: &str) -> Value {
        self.entries.get(key).map_or(Value::Null, Entry::to_value)
    }

    fn cas(&mut self, key: &str, pair: &Value) -> OpResponse {
        let Some([from, to]) = pair.as_array().map(Vec::as_slice) else {
            unreachable!("validate() requires cas value [from, to]");
        };
        // Absent reads as null, so cas [null, x] succeeds on an absent key.
        if self.value_of(key) == *from {
            self.apply_checked(key, Micro::Write(to));
            OpResponse::ok()
        } else {
            OpResponse::fail("precondition")
        }
    }

    fn apply_txn(&mut self, value: &Value) -> OpResponse {
        let micro_ops = value
            .as_array()
            .expect("validate() requires a txn value to be an array");
        let mut steps = Vec::with_capacity(micro_ops.len());
        for m in micro_ops {
            let parts = m.as_array().expect("validate() checked each micro-op");
            let key = parts[1]
                .as_str()
                .expect("validate() checked micro-op keys are strings");
            let arg = &parts[2];
            let micro = match parts[0].as_str() {
                Some("r") => Micro::Read,
                Some("w") => Micro::Write(arg),
                Some("append") => Micro::Append(arg),
                Some("add") => Micro::Add(arg),
                Some("incr") => Micro::Incr(arg.as_i64().expect("validate() checked incr values")),
                other => unreachable!("validate() checked micro-op names, got {other:?}"),
            };
            steps.push((key, micro));
        }

        // Dry run on shapes only, so a failing step leaves nothing half-applied.
        let mut shapes: HashMap<&str, Shape> = HashMap::new();
        for (i, (key, micro)) in steps.iter().enumerate() {
            let before = match shapes.get(key) {
                Some(s) => *s,
                None => Shape::of_entry(self.entries.get(*key)),
            };
            match micro.check(key, before) {
                Ok(after) => {
                    shapes.insert(key, after);
                }
                Err(e) => return OpResponse::fail(format!("{e} (txn micro-op {i})")),
            }
        }

        let mut completed = Vec::with_capacity(steps.len());
        for ((key, micro), original) in steps.iter().zip(micro_ops) {
            match micro {
                Micro::Read => {
                    completed.push(Value::Array(vec![
                        Value::from("r"),
                        Value::from(*key),
                        self.value_of(key),
                    ]));
                }
                _ => {
                    self.apply_checked(key, *micro);
                    completed.push(original.clone());
                }
            }
        }
        OpResponse::ok_value(Value::Array(completed))
    }

    /// Applies a step that `Micro::check` accepted for the key's current shape.
    fn apply_checked(&mut self, key: &str, micro: Micro<'_>) {
        match micro {
            Micro::Read => {}
            Micro::Write(v) => match Entry::from_written(v.clone()) {
                Some(entry) => {
                    self.entries.insert(key.to_string(), entry);
                }
                None => {
                    self.entries.remove(key);
                }
            },
            Micro::Append(v) => {
                match self
                    .entries
                    .entry(key.to_string())
                    .or_insert_with(|| Entry::List(Vec::new()))
                {
                    Entry::List(items) => items.push(v.clone()),
                    other => unreachable!("append was checked against {other:?}"),
                }
            }
            Micro::Add(v) => {
                match self
                    .entries
                    .entry(key.to_string())
                    .or_insert_with(|| Entry::Set(BTreeSet::new()))
                {
                    Entry::Set(elems) => {
                        elems.insert(Elem(v.clone()));
                    }
                    other => unreachable!("add was checked against {other:?}"),
                }
            }
            Micro::Incr(n) => {
                let current = match self.entries.get(key) {
                    None => 0,
                    Some(Entry::Value(v)) => v.as_i64().expect("incr was checked: an integer"),
                    Some(other) => unreachable!("incr was checked against {other:?}"),
                };
                let next = current
                    .checked_add(n)
                    .expect("incr was checked not to overflow");
                self.entries
                    .insert(key.to_string(), Entry::Value(Value::from(next)));
            }
        }
    }
}

/// FNV-1a, 64 bits: tiny, and its output never changes between builds (unlike std's hashers).
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn tag(&mut self, tag: u8) {
        self.bytes(&[tag]);
    }

    fn len(&mut self, len: usize) {
        self.bytes(&(len as u64).to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes(s.as_bytes());
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag(b'n'),
            Value::Bool(b) => self.tag(if *b { b't' } else { b'f' }),
            Value::Number(n) => match exact_int(n) {
                Some(i) => {
                    self.tag(b'i');
                    self.bytes(&i.to_le_bytes());
                }
                None => {
                    self.tag(b'd');
                    // -0.0 == 0.0 in serde_json, so they must hash alike.
                    let f = float_of(n);
                    let f = if f == 0.0 { 0.0 } else { f };
                    self.bytes(&f.to_bits().to_le_bytes());
                }
            },
            Value::String(s) => {
                self.tag(b's');
                self.str(s);
            }
            Value::Array(items) => {
                self.tag(b'a');
                self.len(items.len());
                items.iter().for_each(|v| self.value(v));
            }
            Value::Object(map) => {
                self.tag(b'o');
                self.len(map.len());
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|p, q| p.0.cmp(q.0));
                for (k, v) in entries {
                    self.str(k);
                    self.value(v);
                }
            }
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Reads a replication protocol has confirmed, each waiting for the state machine to reach
/// the index (log index, slot) it must reflect; every replica of a consensus store keeps one.
#[derive(Debug, Default)]
pub struct ReadQueue {
    waiting: Vec<(u64, crate::runtime::ClientId, OpRequest)>,
}

impl ReadQueue {
    /// Queues a confirmed read that must see everything up to `index`.
    pub fn push(&mut self, index: u64, client: crate::runtime::ClientId, op: OpRequest) {
        self.waiting.push((index, client, op));
    }

    /// Answers, from `kv`, every read whose index `applied` has reached.
    pub fn serve(
        &mut self,
        applied: u64,
        kv: &KvStore,
        out: &mut Vec<(crate::runtime::ClientId, OpResponse)>,
    ) {
        self.waiting.retain(|(index, client, op)| {
            if *index <= applied {
                out.push((*client, kv.read_only(op)));
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Outcome;
    use serde_json::json;

    fn op(f: OpKind, key: &str, value: Value) -> OpRequest {
        OpRequest::new(f, key, value)
    }

    fn read(kv: &KvStore, key: &str) -> Value {
        let r = kv.read(key);
        assert_eq!(r.kind, Outcome::Ok);
        r.value.expect("a read always carries a value")
    }

    fn must_ok(kv: &mut KvStore, req: OpRequest) -> OpResponse {
        let r = kv.apply(&req);
        assert_eq!(r.kind, Outcome::Ok, "{req:?} -> {r:?}");
        r
    }

    fn must_fail(kv: &mut KvStore, req: OpRequest) -> String {
        let before = kv.clone();
        let r = kv.apply(&req);
        assert_eq!(r.kind, Outcome::Fail, "{req:?} -> {r:?}");
        assert_eq!(*kv, before, "a failed {req:?} changed the store");
        r.error.expect("a fail carries an error")
    }

    #[test]
    fn read_of_absent_key_is_null() {
        let kv = KvStore::new();
        assert_eq!(kv.read("x"), OpResponse::ok_value(Value::Null));
        assert!(kv.is_empty());
    }

    #[test]
    fn write_then_read_and_null_removes() {
        let mut kv = KvStore::new();
        assert_eq!(
            must_ok(&mut kv, op(OpKind::Write, "x", json!(5))),
            OpResponse::ok()
        );
        assert_eq!(read(&kv, "x"), json!(5));
        must_ok(&mut kv, op(OpKind::Write, "x", json!({"a": [1, "b"]})));
        assert_eq!(read(&kv, "x"), json!({"a": [1, "b"]}));
        assert_eq!(kv.len(), 1);
        must_ok(&mut kv, op(OpKind::Write, "x", Value::Null));
        assert_eq!(read(&kv, "x"), Value::Null);
        assert_eq!(
            kv,
            KvStore::new(),
            "writing null is the same state as never writing"
        );
    }

    #[test]
    fn apply_read_returns_the_value() {
        let mut kv = KvStore::new();
        must_ok(&mut kv, op(OpKind::Write, "x", json!("v")));
        let r = must_ok(&mut kv, op(OpKind::Read, "x", Value::Null));
        assert_eq!(r.value, Some(json!("v")));
    }

    #[test]
    fn cas_succeeds_only_on_match() {
        let mut kv = KvStore::new();
        must_ok(&mut kv, op(OpKind::Cas, "x", json!([null, 1])));
        assert_eq!(read(&kv, "x"), json!(1));
        assert_eq!(
            must_fail(&mut kv, op(OpKind::Cas, "x", json!([2, 3]))),
            "precondition"
        );
        must_ok(&mut kv, op(OpKind::Cas, "x", json!([1, 2])));
        assert_eq!(read(&kv, "x"), json!(2));
        assert_eq!(
            must_fail(&mut kv, op(OpKind::Cas, "y", json!([0, 1]))),
            "precondition"
        );
        must_ok(&mut kv, op(OpKind::Cas, "x", json!([2, null])));
        assert!(kv.is_empty());
        assert_eq!(
            must_fail(&mut kv, op(OpKind::Cas, "z", json!([1.0, 2]))),
            "precondition"
        );
    }

    #[test]
    fn add_keeps_a_sorted_set() {
        let mut kv = KvStore::new();
        for e in [
            json!(10),
            json!(-2),
            json!(3),
            json!(10),
            json!("a"),
            json!(2.5),
            json!(null),
        ] {
            must_ok(&mut kv, op(OpKind::Add, "s", e));
        }
        assert_eq!(read(&kv, "s"), json!([null, -2, 2.5, 3, 10, "a"]));
    }

    #[test]
    fn add_scales_to_large_integer_sets() {
        let mut kv = KvStore::new();
        let n: i64 = 100_000;
        // Inserted in a scrambled order so a sorted-vector implementation would be quadratic.
        for i in 0..n {
            let e = (i * 7919) % n;
            must_ok(&mut kv, op(OpKind::Add, "s", json!(e)));
        }
        let v = read(&kv, "s");
        let items = v.as_array().expect("a set reads as an array");
        assert_eq!(items.len(), n as usize);
        assert!(items
            .iter()
            .enumerate()
            .all(|(i, e)| e.as_i64() == Some(i as i64)));
    }

    #[test]
    fn append_keeps_order_and_extends_written_arrays() {
        let mut kv = KvStore::new();
        for e in [3, 1, 2] {
            must_ok(&mut kv, op(OpKind::Append, "l", json!(e)));
        }
        assert_eq!(read(&kv, "l"), json!([3, 1, 2]));
        must_ok(&mut kv, op(OpKind::Write, "w", json!([9])));
        must_ok(&mut kv, op(OpKind::Append, "w", json!(8)));
        assert_eq!(read(&kv, "w"), json!([9, 8]));
    }

    #[test]
    fn incr_counts_from_zero() {
        let mut kv = KvStore::new();
        let r = must_ok(&mut kv, op(OpKind::Incr, "c", json!(5)));
        assert_eq!(r, OpResponse::ok(), "incr answers without a value");
        must_ok(&mut kv, op(OpKind::Incr, "c", json!(-2)));
        assert_eq!(read(&kv, "c"), json!(3));
        must_ok(&mut kv, op(OpKind::Write, "d", json!(i64::MAX - 1)));
        must_ok(&mut kv, op(OpKind::Incr, "d", json!(1)));
        let err = must_fail(&mut kv, op(OpKind::Incr, "d", json!(1)));
        assert!(err.contains("overflow"), "{err}");
    }

    #[test]
    fn type_mismatches_fail_naming_key_and_contents() {
        let mut kv = KvStore::new();
        must_ok(&mut kv, op(OpKind::Write, "i", json!(1)));
        must_ok(&mut kv, op(OpKind::Append, "l", json!(1)));
        must_ok(&mut kv, op(OpKind::Add, "s", json!(1)));
        must_ok(&mut kv, op(OpKind::Write, "str", json!("x")));
        let cases = [
            (
                op(OpKind::Append, "i", json!(2)),
                "key \"i\" holds an integer (1); append needs a list",
            ),
            (
                op(OpKind::Add, "i", json!(2)),
                "key \"i\" holds an integer (1); add needs a set",
            ),
            (
                op(OpKind::Incr, "l", json!(2)),
                "key \"l\" holds a list; incr needs an integer",
            ),
            (
                op(OpKind::Add, "l", json!(2)),
                "key \"l\" holds a list; add needs a set",
            ),
            (
                op(OpKind::Append, "s", json!(2)),
                "key \"s\" holds a set; append needs a list",
            ),
            (
                op(OpKind::Incr, "s", json!(2)),
                "key \"s\" holds a set; incr needs an integer",
            ),
            (
                op(OpKind::Incr, "str", json!(2)),
                "key \"str\" holds a string; incr needs an integer",
            ),
        ];
        for (req, want) in cases {
            assert_eq!(must_fail(&mut kv, req), want);
        }
    }

    #[test]
    fn invalid_requests_fail_as_bad_request() {
        let mut kv = KvStore::new();
        let err = must_fail(&mut kv, op(OpKind::Cas, "x", json!(1)));
        assert!(err.starts_with("bad request: value: cas"), "{err}");
        let err = must_fail(&mut kv, OpRequest::txn(json!([["x", "k", 1]])));
        assert!(err.starts_with("bad request: value[0][0]"), "{err}");
    }

    #[test]
    fn a_txn_of_reads_is_answered_without_a_change() {
        let mut kv = KvStore::new();
        must_ok(&mut kv, op(OpKind::Append, "x", json!(1)));
        let reads = OpRequest::txn(json!([["r", "x", null], ["r", "y", null]]));
        assert!(reads.is_read_only());
        assert!(!OpRequest::txn(json!([["r", "x", null], ["append", "x", 2]])).is_read_only());
        assert!(!op(OpKind::Write, "x", json!(1)).is_read_only());
        let before = kv.len();
        let r = kv.read_only(&reads);
        assert_eq!(r.value, Some(json!([["r", "x", [1]], ["r", "y", null]])));
        assert_eq!(kv.len(), before);
        assert_eq!(
            kv.read_only(&op(OpKind::Read, "x", json!(null))).value,
            Some(json!([1]))
        );
    }

    #[test]
    fn txn_fills_in_reads_in_order() {
        let mut kv = KvStore::new();
        must_ok(&mut kv, op(OpKind::Append, "x", json!(1)));
        must_ok(&mut kv, op(OpKind::Append, "x", json!(2)));
        let r = must_ok(
            &mut kv,
            OpRequest::txn(json!([
                ["r", "x", null],
                ["append", "y", 3],
                ["r", "y", null],
                ["w", "z", 7],
                ["incr", "z", 1],
                ["r", "z", null],
                ["add", "s", 4],
                ["r", "s", null],
                ["r", "nope", null]
            ])),
        );
        assert_eq!(
            r.value,
            Some(json!([
                ["r", "x", [1, 2]],
                ["append", "y", 3],
                ["r", "y", [3]],
                ["w", "z", 7],
                ["incr", "z", 1],
                ["r", "z", 8],
                ["add", "s", 4],
                ["r", "s", [4]],
                ["r", "nope", null]
            ]))
        );
        assert_eq!(read(&kv, "y"), json!([3]));
        assert_eq!(read(&kv, "z"), json!(8));
    }

    #[test]
    fn txn_is_all_or_nothing() {
        let mut kv = KvStore::new();
        must_ok(&mut kv, op(OpKind::Write, "n", json!(1)));
        // The failing step is last, after steps that would have changed three keys.
        let err = must_fail(
            &mut kv,
            OpRequest::txn(json!([
                ["append", "a", 1],
                ["w", "n", [5]],
                ["add", "s", 1],
                ["append", "n", 2],
                ["incr", "s", 1]
            ])),
        );
        assert_eq!(
            err,
            "key \"s\" holds a set; incr needs an integer (txn micro-op 4)"
        );
        // A shape created earlier in the same txn is what later steps see.
        let err = must_fail(
            &mut kv,
            OpRequest::txn(json!([["w", "q", "text"], ["append", "q", 1]])),
        );
        assert_eq!(
            err,
            "key \"q\" holds a string; append needs a list (txn micro-op 1)"
        );
        must_ok(&mut kv, OpRequest::txn(json!([])));
    }

    #[test]
    fn snapshot_restore_round_trips() {
        let mut kv = KvStore::new();
        must_ok(
            &mut kv,
            op(OpKind::Write, "x", json!({"b": 1, "a": [true, null]})),
        );
        must_ok(&mut kv, op(OpKind::Append, "l", json!("e")));
        for e in [5, 1, 3] {
            must_ok(&mut kv, op(OpKind::Add, "s", json!(e)));
        }
        must_ok(&mut kv, op(OpKind::Incr, "c", json!(-9)));
        let bytes = kv.snapshot();
        let back = KvStore::restore(&bytes).expect("restores");
        assert_eq!(back, kv);
        assert_eq!(back.digest(), kv.digest());
        assert_eq!(read(&back, "s"), json!([1, 3, 5]));
        assert_eq!(
            KvStore::restore(&KvStore::new().snapshot()).expect("empty"),
            KvStore::new()
        );
    }

    #[test]
    fn restore_rejects_garbage_and_broken_invariants() {
        let err = KvStore::restore(b"{\"x\":").expect_err("truncated");
        assert!(
            err.to_string().starts_with("kv snapshot does not parse"),
            "{err}"
        );
        let err = KvStore::restore(br#"{"x":{"value":null}}"#).expect_err("null value");
        assert!(err.to_string().contains("key \"x\""), "{err}");
    }

    #[test]
    fn digest_tells_states_apart() {
        let mut a = KvStore::new();
        let mut b = KvStore::new();
        assert_eq!(a.digest(), b.digest());
        must_ok(&mut a, op(OpKind::Add, "s", json!(1)));
        must_ok(&mut a, op(OpKind::Add, "s", json!(2)));
        must_ok(&mut b, op(OpKind::Add, "s", json!(2)));
        must_ok(&mut b, op(OpKind::Add, "s", json!(1)));
        assert_eq!(
            a.digest(),
            b.digest(),
            "a set's digest ignores insertion order"
        );

        let distinct = [
            (
                op(OpKind::Write, "k", json!([1, 2])),
                op(OpKind::Write, "k", json!([2, 1])),
            ),
            (
                op(OpKind::Write, "k", json!(1)),
                op(OpKind::Write, "k", json!(1.0)),
            ),
            (
                op(OpKind::Write, "k", json!("1")),
                op(OpKind::Write, "k", json!(1)),
            ),
            (
                op(OpKind::Append, "k", json!(1)),
                op(OpKind::Add, "k", json!(1)),
            ),
            (
                op(OpKind::Write, "k", json!(1)),
                op(OpKind::Write, "j", json!(1)),
            ),
        ];
        for (x, y) in distinct {
            let (mut p, mut q) = (a.clone(), a.clone());
            must_ok(&mut p, x.clone());
            must_ok(&mut q, y.clone());
            assert_ne!(p.digest(), q.digest(), "{x:?} vs {y:?}");
        }
        let (mut p, mut q) = (a.clone(), a.clone());
        must_ok(&mut p, op(OpKind::Write, "o", json!({"a": 1, "b": 2})));
        must_ok(&mut q, op(OpKind::Write, "o", json!({"b": 2, "a": 1})));
        assert_eq!(p.digest(), q.digest());
    }

    #[test]
    fn value_order_is_total_and_numeric() {
        let sorted = [
            json!(null),
            json!(false),
            json!(true),
            json!(i64::MIN),
            json!(-1.5),
            json!(-1),
            json!(0),
            json!(1),
            json!(1.0),
            json!(2),
            json!(9_007_199_254_740_993_u64),
            json!(u64::MAX),
            json!(1e300),
            json!(""),
            json!("a"),
            json!([]),
            json!([1]),
            json!([1, 0]),
            json!([2]),
            json!({}),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"b": 0}),
        ];
        for (i, x) in sorted.iter().enumerate() {
            for (j, y) in sorted.iter().enumerate() {
                assert_eq!(cmp_values(x, y), i.cmp(&j), "{x} vs {y}");
                assert_eq!(cmp_values(x, y) == Ordering::Equal, x == y, "{x} vs {y}");
            }
        }
        assert_eq!(cmp_values(&json!(0.0), &json!(-0.0)), Ordering::Equal);
    }
}
