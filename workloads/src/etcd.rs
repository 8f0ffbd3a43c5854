//! The etcd adapter: each [`Op`] as a request to the JSON gateway of etcd 3.4 (`POST /v3/kv/…`,
//! the gRPC API of `rpc.proto` with JSON bodies), and the gateway's answer as a [`Completion`]
//! classified as shared/DESIGN.md section 3 asks. Measured against etcd 3.4.23:
//! shared/notes/faults-measured.md section 6.
//!
//! # The mapping
//!
//! | op                 | request                                                         | ok when |
//! |--------------------|-----------------------------------------------------------------|---------|
//! | `read k`           | `range` from `k` to `k0` (see below), `serializable` if asked   | 200 |
//! | `write k v`        | `put` `k` = text(v)                                             | 200 |
//! | `cas k [old, new]` | `txn`: if value(`k`) = text(old) then put `k` = text(new), else range `k`; old null: if `k` is absent (`create_revision` = 0) | `succeeded` |
//! | `add k e`          | `put` `k/`text(e) = text(e)                                      | 200 |
//!
//! The text of a value is an integer's decimal digits or a string itself; other values (null,
//! floats, arrays…) cannot be stored and fail before anything is sent. What is read back is an
//! integer when the text parses as one, otherwise the string. A cas whose compare is false fails:
//! "cas: k is 7, not 5" (an absent key fails a value compare, as a register that reads null
//! fails `cas [5, …]` under /op).
//!
//! # Registers and sets share one read
//!
//! A register `k` is the etcd key `k`; the elements of a set `k` are the keys `k/<element>`, so an
//! add is one put that never conflicts with another. A read is told nothing about which of the two
//! `k` is: it ranges from `k` to `k0` (`0` is the byte after `/`), one request at one revision,
//! which holds exactly the key `k`, every `k/…`, and keys such as `k.x` that no workload writes and
//! the read ignores. The answer says which it is:
//!
//! - key `k`: a register, its value;
//! - keys `k/…`: a set, its elements sorted ascending (integers by value: etcd returns keys in
//!   byte order, where `s/10` comes before `s/9`);
//! - neither: `null`, as /op answers for an absent register and for a set never added to;
//! - both: `k` was used as both, which /op would have refused; the read fails and says so.
//!
//! So the adapter needs no knowledge of the workload, and no setting exists that a caller could
//! forget to pass (a register client asked to read a set would otherwise read `null` and make a
//! correct system look as if it had lost every element).
//!
//! # Classification
//!
//! - No connection, timeout, dropped connection: as for /op ([`crate::client`]): `fail` when the
//!   connection was never made, `info` otherwise.
//! - An answer other than 200 (the gateway's `{"error", "message", "code"}`, `code` a gRPC
//!   status code): a read `fail`s, whatever it says, because a read changes nothing (Jepsen's
//!   tutorial etcd client fails reads that time out for the same reason). A write, cas or add
//!   `fail`s only for the codes in [`DEFINITE_CODES`], which etcd returns for requests refused
//!   before they could be proposed or that no member applies; any other code — `Unavailable`
//!   ("request timed out", which etcd also says when a proposal was made and its fate is
//!   unknown), `Unknown` ("context deadline exceeded", the gateway's own timeout), no code at
//!   all — is `info`.
//! - A 200 whose body does not parse: a read `fail`s (same reason); a write, cas or add is
//!   `info`, as is a 200 without the `header` that every etcd answer carries.
//!
//! # Wire quirks
//!
//! Keys and values are base64; 64-bit integers arrive as strings (numbers are accepted too);
//! fields that are false, empty or zero are left out (`succeeded`, `kvs`, `count`, a `value` that
//! is empty, a status's `leader` when there is none); the kv answers use snake_case field names
//! and the status answer camelCase (`raftTerm`), and both are accepted everywhere.
//!
//! # Readiness (for whoever starts the cluster)
//!
//! `GET /health` answers 200 `{"health":"true"}` once the member has a leader. Measured on
//! 3.4.23: before the cluster first forms, a member accepts connections on its client port but
//! does not answer at all (a request held open got its 200 when a quorum formed, 7 s later), so
//! a readiness probe needs a short timeout and retries; a formed cluster that has lost its
//! quorum answers 503 `{"health":"false"}`.

use crate::client::{exchange, snippet, Completion, NodeRole};
use crate::Op;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

/// gRPC status codes (`google.golang.org/grpc/codes`) after which a write, cas or add certainly
/// did not take effect:
///
/// - 3 `InvalidArgument`: refused by validation before any proposal (no key, a request too
///   large, bad base64 or JSON in the gateway);
/// - 7 `PermissionDenied` and 16 `Unauthenticated`: refused by authentication, which every
///   member checks the same way;
/// - 8 `ResourceExhausted`: "too many requests" (refused before proposing when applying lags
///   far behind) and "database space exceeded" (the quota check, before proposing);
/// - 12 `Unimplemented`: no such method.
pub const DEFINITE_CODES: [i64; 5] = [3, 7, 8, 12, 16];

/// What the adapter asks the gateway.
#[derive(Clone, Debug, PartialEq)]
enum Call {
    /// A `range` from `key` to the end of `key/`: register and set at once.
    Read { key: String },
    /// A `put` (write and add): ok when answered.
    Put,
    /// A `txn` guarded by a compare on `key`; `expected` is the text the compare wants, `None`
    /// for "absent".
    Cas {
        key: String,
        expected: Option<String>,
    },
}

/// A request ready to send: the gateway path, its JSON body, and how to read the answer.
#[derive(Clone, Debug, PartialEq)]
struct Request {
    path: &'static str,
    body: Value,
    call: Call,
}

/// Sends `op` to the gateway at `addr` and classifies the outcome.
pub(crate) async fn invoke(
    http: &reqwest::Client,
    addr: SocketAddr,
    op: &Op,
    serializable: bool,
) -> Completion {
    let request = match request(op, serializable) {
        Ok(r) => r,
        Err(reason) => return Completion::fail(op, reason),
    };
    let sent = http
        .post(format!("http://{addr}{}", request.path))
        .json(&request.body);
    match exchange(sent, op).await {
        Ok((status, body)) => complete(op, &request.call, status.as_u16(), &body),
        Err(c) => c,
    }
}

/// The leader probe: `POST /v3/maintenance/status`. The member leads when the leader it names is
/// itself (`header.member_id`); the term is `raftTerm`.
pub(crate) async fn role(
    http: &reqwest::Client,
    addr: SocketAddr,
    timeout: Duration,
) -> Option<NodeRole> {
    let response = http
        .post(format!("http://{addr}/v3/maintenance/status"))
        .json(&json!({}))
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::OK {
        return None;
    }
    parse_role(&response.bytes().await.ok()?)
}

/// A status answer as a role; `None` when it does not parse or names no member.
fn parse_role(body: &[u8]) -> Option<NodeRole> {
    let status: StatusResponse = serde_json::from_slice(body).ok()?;
    let member = status.header?.member_id;
    if member == 0 {
        return None;
    }
    Some(NodeRole {
        // 0, or left out: the member knows of no leader.
        leader: status.leader != 0 && status.leader == member,
        term: status.raft_term,
        // etcd's status does not say whether a member campaigns.
        campaigning: false,
        ..Default::default()
    })
}

/// The request for `op`, or why the adapter cannot express it (nothing is sent then).
fn request(op: &Op, serializable: bool) -> Result<Request, String> {
    let key = match op.key.as_deref() {
        Some(k) if !k.is_empty() => k,
        _ => return Err(format!("etcd adapter: {} needs a non-empty key", op.f)),
    };
    match op.f.as_str() {
        "read" => {
            let mut body = json!({
                "key": b64(key.as_bytes()),
                "range_end": b64(&prefix_end(format!("{key}/").as_bytes())),
            });
            if serializable {
                body["serializable"] = json!(true);
            }
            Ok(Request {
                path: "/v3/kv/range",
                body,
                call: Call::Read {
                    key: key.to_owned(),
                },
            })
        }
        "write" => Ok(Request {
            path: "/v3/kv/put",
            body: put(key, &stored_text(op, &op.value)?),
            call: Call::Put,
        }),
        "add" => {
            let element = stored_text(op, &op.value)?;
            Ok(Request {
                path: "/v3/kv/put",
                body: put(&format!("{key}/{element}"), &element),
                call: Call::Put,
            })
        }
        "cas" => {
            let (old, new) = match op.value.as_array().map(Vec::as_slice) {
                Some([old, new]) => (old, new),
                _ => {
                    return Err(format!(
                        "etcd adapter: cas needs [expected, new], not {}",
                        op.value
                    ))
                }
            };
            let expected = match old {
                Value::Null => None,
                v => Some(stored_text(op, v)?),
            };
            let compare = match &expected {
                Some(text) => json!({
                    "key": b64(key.as_bytes()),
                    "target": "VALUE",
                    "result": "EQUAL",
                    "value": b64(text.as_bytes()),
                }),
                // Absent reads as null, so cas [null, x] succeeds exactly on an absent key.
                None => json!({
                    "key": b64(key.as_bytes()),
                    "target": "CREATE",
                    "result": "EQUAL",
                    "create_revision": "0",
                }),
            };
            Ok(Request {
                path: "/v3/kv/txn",
                body: json!({
                    "compare": [compare],
                    "success": [{"request_put": put(key, &stored_text(op, new)?)}],
                    // Only to say in the failure what the key held instead.
                    "failure": [{"request_range": {"key": b64(key.as_bytes())}}],
                }),
                call: Call::Cas {
                    key: key.to_owned(),
                    expected,
                },
            })
        }
        other => Err(format!(
            "etcd adapter: {other:?} is not supported (read, write, cas, add are)"
        )),
    }
}

fn put(key: &str, value: &str) -> Value {
    json!({"key": b64(key.as_bytes()), "value": b64(value.as_bytes())})
}

/// How a value is stored: an integer as its decimal digits, a string as itself.
fn stored_text(op: &Op, v: &Value) -> Result<String, String> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "etcd adapter: {} can store integers and strings, not {other}",
            op.f
        )),
    }
}

fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// The first key after every key that starts with `prefix` (etcd's convention for a prefix
/// range: the last byte below 0xff incremented, what follows it dropped; `\0` means "to the end").
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Reads the gateway's answer to `call` (made for `op`).
fn complete(op: &Op, call: &Call, status: u16, body: &[u8]) -> Completion {
    if status != 200 {
        return gateway_error(op, call, status, body);
    }
    match call {
        Call::Read { key } => match serde_json::from_slice::<RangeResponse>(body) {
            Ok(range) => match read_value(key, &range) {
                Ok(value) => Completion::ok(value),
                Err(reason) => Completion::fail(op, reason),
            },
            // A read changes nothing, so an answer we cannot read is a read that did not happen.
            Err(e) => Completion::fail(op, unparseable(e, body)),
        },
        Call::Put => match serde_json::from_slice::<PutResponse>(body) {
            Ok(PutResponse { header: Some(_) }) => Completion::ok(op.value.clone()),
            Ok(PutResponse { header: None }) => Completion::info(op, no_header(body)),
            Err(e) => Completion::info(op, unparseable(e, body)),
        },
        Call::Cas { key, expected } => match serde_json::from_slice::<TxnResponse>(body) {
            Ok(TxnResponse { header: None, .. }) => Completion::info(op, no_header(body)),
            Ok(txn) if txn.succeeded => Completion::ok(op.value.clone()),
            // The txn ran and its compare was false: the put in `success` did not.
            Ok(txn) => {
                Completion::precondition_failed(op, cas_reason(key, expected.as_deref(), &txn))
            }
            Err(e) => Completion::info(op, unparseable(e, body)),
        },
    }
}

fn unparseable(e: serde_json::Error, body: &[u8]) -> String {
    format!(
        "HTTP 200 with a body that does not parse ({e}): {}",
        snippet(body)
    )
}

fn no_header(body: &[u8]) -> String {
    format!("HTTP 200 without an etcd header: {}", snippet(body))
}

/// A non-200 answer: `{"error", "message", "code"}` from the gateway, or anything else.
fn gateway_error(op: &Op, call: &Call, status: u16, body: &[u8]) -> Completion {
    let parsed = serde_json::from_slice::<GatewayError>(body).ok();
    let code = parsed.as_ref().and_then(|e| e.code);
    let text = parsed
        .and_then(|e| e.error.or(e.message))
        .unwrap_or_else(|| snippet(body));
    let reason = match code {
        Some(c) => format!("HTTP {status}: {text} (gRPC code {c})"),
        None => format!("HTTP {status}: {text}"),
    };
    let definite =
        matches!(call, Call::Read { .. }) || code.is_some_and(|c| DEFINITE_CODES.contains(&c));
    if definite {
        Completion::fail(op, reason)
    } else {
        Completion::info(op, reason)
    }
}

/// Why a cas failed, naming what the key held when the failure branch says so.
fn cas_reason(key: &str, expected: Option<&str>, txn: &TxnResponse) -> String {
    let wanted = expected.unwrap_or("absent");
    let found = txn
        .responses
        .first()
        .and_then(|r| r.response_range.as_ref())
        .map(|range| match range.kvs.first() {
            Some(kv) => decode(&kv.value).map(|v| scalar(&v).to_string()),
            None => Ok("absent".to_owned()),
        });
    match found {
        Some(Ok(held)) => format!("cas: {key} is {held}, not {wanted}"),
        _ => format!("cas: {key} is not {wanted}"),
    }
}

/// A range answer as a read's value (see the module documentation), or why it is none.
fn read_value(key: &str, range: &RangeResponse) -> Result<Value, String> {
    if range.more {
        return Err(format!(
            "read {key}: the gateway answered part of the range (more: true)"
        ));
    }
    let set_prefix = format!("{key}/");
    let mut register = None;
    let mut elements = BTreeSet::new();
    for kv in &range.kvs {
        let k = decode(&kv.key).map_err(|e| format!("read {key}: a key is {e}"))?;
        if k == key.as_bytes() {
            let v = decode(&kv.value).map_err(|e| format!("read {key}: its value is {e}"))?;
            register = Some(scalar(&v));
        } else if k.starts_with(set_prefix.as_bytes()) {
            let v =
                decode(&kv.value).map_err(|e| format!("read {key}: an element's value is {e}"))?;
            elements.insert(Element::of(&v));
        }
    }
    match (register, elements.is_empty()) {
        (None, true) => Ok(Value::Null),
        (Some(v), true) => Ok(v),
        (None, false) => Ok(Value::Array(
            elements.into_iter().map(Element::into_json).collect(),
        )),
        (Some(v), false) => Err(format!(
            "read {key}: the key holds both a value ({v}) and {} set elements",
            elements.len()
        )),
    }
}

fn decode(text: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(text)
        .map_err(|e| format!("not base64 ({e}): {text:?}"))
}

/// Stored text read back: an integer when it parses as one, otherwise the string.
fn scalar(bytes: &[u8]) -> Value {
    Element::of(bytes).into_json()
}

/// A set element, ordered as a set read lists them: integers ascending, then strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Element {
    Int(i64),
    /// Above `i64::MAX`.
    Big(u64),
    Text(String),
}

impl Element {
    fn of(bytes: &[u8]) -> Element {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(i) = text.parse::<i64>() {
            Element::Int(i)
        } else if let Ok(u) = text.parse::<u64>() {
            Element::Big(u)
        } else {
            Element::Text(text.into_owned())
        }
    }

    fn into_json(self) -> Value {
        match self {
            Element::Int(i) => json!(i),
            Element::Big(u) => json!(u),
            Element::Text(s) => Value::String(s),
        }
    }
}

// The gateway's answers. Every field is optional (left out when false, empty or zero) and
// answers in either case convention.

#[derive(Deserialize, Default)]
#[serde(default)]
struct Header {
    #[serde(alias = "memberId", deserialize_with = "u64_text")]
    member_id: u64,
}

#[derive(Deserialize)]
struct KeyValue {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RangeResponse {
    kvs: Vec<KeyValue>,
    more: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PutResponse {
    header: Option<Header>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TxnResponse {
    header: Option<Header>,
    succeeded: bool,
    responses: Vec<ResponseOp>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseOp {
    #[serde(alias = "responseRange")]
    response_range: Option<RangeResponse>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusResponse {
    header: Option<Header>,
    #[serde(deserialize_with = "u64_text")]
    leader: u64,
    #[serde(alias = "raftTerm", deserialize_with = "u64_text")]
    raft_term: u64,
}

#[derive(Deserialize)]
struct GatewayError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<i64>,
}

/// A 64-bit integer as protobuf's JSON mapping writes it (a string), or as a number.
fn u64_text<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Number(u64),
        Text(String),
    }
    match Wire::deserialize(d)? {
        Wire::Number(n) => Ok(n),
        Wire::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::EventType;

    fn op(f: &str, key: &str, value: Value) -> Op {
        Op {
            f: f.to_owned(),
            key: Some(key.to_owned()),
            value,
            local: false,
            context: None,
        }
    }

    fn read_call(key: &str) -> Call {
        Call::Read {
            key: key.to_owned(),
        }
    }

    fn kv(key: &str, value: &str) -> Value {
        json!({"key": b64(key.as_bytes()), "value": b64(value.as_bytes()),
               "create_revision": "2", "mod_revision": "2", "version": "1"})
    }

    fn range_body(kvs: Vec<Value>) -> Vec<u8> {
        let count = kvs.len().to_string();
        serde_json::to_vec(&json!({
            "header": {"cluster_id": "1", "member_id": "2", "revision": "9", "raft_term": "3"},
            "kvs": kvs,
            "count": count,
        }))
        .expect("a JSON value serialises")
    }

    fn read(key: &str, body: &[u8]) -> Completion {
        complete(&Op::read(key), &read_call(key), 200, body)
    }

    const HEADER: &str =
        r#""header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"25"}"#;

    #[test]
    fn requests_are_base64_with_int64s_as_text() {
        let r = request(&op("write", "foo", json!(5)), false).expect("a valid write");
        assert_eq!(r.path, "/v3/kv/put");
        assert_eq!(r.body, json!({"key": "Zm9v", "value": "NQ=="}));
        let r = request(&Op::read("foo"), false).expect("a valid read");
        // "foo0" is where "foo/…" ends.
        assert_eq!(r.body, json!({"key": "Zm9v", "range_end": "Zm9vMA=="}));
        let r = request(&Op::read("foo"), true).expect("a valid read");
        assert_eq!(r.body["serializable"], json!(true));
        let r = request(&op("add", "s", json!(12)), false).expect("a valid add");
        assert_eq!(r.body, json!({"key": b64(b"s/12"), "value": b64(b"12")}));
        let r = request(&op("cas", "foo", json!([null, 2])), false).expect("a valid cas");
        assert_eq!(r.body["compare"][0]["target"], json!("CREATE"));
        assert_eq!(r.body["compare"][0]["create_revision"], json!("0"));
        let r = request(&op("cas", "foo", json!([1, 2])), false).expect("a valid cas");
        assert_eq!(
            r.body["compare"][0],
            json!({"key": "Zm9v", "target": "VALUE", "result": "EQUAL", "value": b64(b"1")})
        );
        assert_eq!(
            r.body["success"][0]["request_put"],
            json!({"key": "Zm9v", "value": b64(b"2")})
        );
    }

    #[test]
    fn what_cannot_be_expressed_fails_before_sending() {
        for (f, value) in [
            ("write", json!(null)),
            ("write", json!(1.5)),
            ("cas", json!([1])),
            ("cas", json!([1, [2]])),
            ("add", json!({"a": 1})),
            ("append", json!(1)),
            ("txn", json!([])),
        ] {
            assert!(
                request(&op(f, "k", value.clone()), false).is_err(),
                "{f} {value}"
            );
        }
        let no_key = Op {
            f: "read".to_owned(),
            key: None,
            value: Value::Null,
            local: false,
            context: None,
        };
        assert!(request(&no_key, false).is_err());
    }

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"k1/"), b"k10");
        assert_eq!(prefix_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn a_missing_kvs_reads_null() {
        let body = format!("{{{HEADER}}}");
        let c = read("foo", body.as_bytes());
        assert_eq!(
            (c.kind, c.value, c.error),
            (EventType::Ok, Value::Null, None)
        );
    }

    #[test]
    fn a_register_reads_as_an_integer_or_else_a_string() {
        let c = read("k1", &range_body(vec![kv("k1", "42")]));
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(42)));
        let c = read("k1", &range_body(vec![kv("k1", "-7")]));
        assert_eq!(c.value, json!(-7));
        let c = read("k1", &range_body(vec![kv("k1", "18446744073709551615")]));
        assert_eq!(c.value, json!(u64::MAX));
        let c = read("k1", &range_body(vec![kv("k1", "forty-two")]));
        assert_eq!((c.kind, c.value), (EventType::Ok, json!("forty-two")));
        // An empty value is left out of the kv altogether.
        let body = format!(
            r#"{{{HEADER},"kvs":[{{"key":"{}","create_revision":"5"}}],"count":"1"}}"#,
            b64(b"k1")
        );
        let c = read("k1", body.as_bytes());
        assert_eq!((c.kind, c.value), (EventType::Ok, json!("")));
    }

    #[test]
    fn a_set_reads_its_elements_in_numeric_order() {
        // Byte order, as etcd returns them: "s0/10" < "s0/3" < "s0/9".
        let body = range_body(vec![kv("s0/10", "10"), kv("s0/3", "3"), kv("s0/9", "9")]);
        let c = read("s0", &body);
        assert_eq!((c.kind, c.value), (EventType::Ok, json!([3, 9, 10])));
    }

    #[test]
    fn a_read_ignores_neighbours_and_refuses_a_key_of_both_kinds() {
        let body = range_body(vec![kv("k1", "5"), kv("k1-x", "6"), kv("k1.y", "7")]);
        assert_eq!(read("k1", &body).value, json!(5));
        let body = range_body(vec![kv("k1", "5"), kv("k1/6", "6")]);
        let c = read("k1", &body);
        assert_eq!(c.kind, EventType::Fail);
        assert!(c.error.unwrap_or_default().contains("both"));
    }

    #[test]
    fn a_truncated_range_fails_the_read() {
        let mut v: Value =
            serde_json::from_slice(&range_body(vec![kv("s/1", "1")])).expect("valid JSON");
        v["more"] = json!(true);
        let c = read("s", &serde_json::to_vec(&v).expect("serialises"));
        assert_eq!(c.kind, EventType::Fail);
    }

    #[test]
    fn a_cas_succeeds_only_when_succeeded_is_true() {
        let cas = op("cas", "foo", json!([1, 2]));
        let call = Call::Cas {
            key: "foo".to_owned(),
            expected: Some("1".to_owned()),
        };
        let won = format!(
            r#"{{{HEADER},"succeeded":true,"responses":[{{"response_put":{{"header":{{"revision":"3"}}}}}}]}}"#
        );
        let c = complete(&cas, &call, 200, won.as_bytes());
        assert_eq!((c.kind, c.value), (EventType::Ok, json!([1, 2])));
        // No "succeeded" field: false. The failure branch's range shows the value.
        let lost = format!(
            r#"{{{HEADER},"responses":[{{"response_range":{{"header":{{"revision":"3"}},"kvs":[{}],"count":"1"}}}}]}}"#,
            kv("foo", "7")
        );
        let c = complete(&cas, &call, 200, lost.as_bytes());
        assert_eq!(c.kind, EventType::Fail);
        assert_eq!(c.value, json!([1, 2]));
        assert_eq!(c.error.as_deref(), Some("cas: foo is 7, not 1"));
        // Absent key: the range in the failure branch has no kvs.
        let absent =
            format!(r#"{{{HEADER},"responses":[{{"response_range":{{"header":{{}}}}}}]}}"#);
        let c = complete(&cas, &call, 200, absent.as_bytes());
        assert_eq!(c.error.as_deref(), Some("cas: foo is absent, not 1"));
        // camelCase, and no failure branch at all.
        let camel = format!(
            r#"{{{HEADER},"responses":[{{"responseRange":{{"kvs":[{}]}}}}]}}"#,
            kv("foo", "8")
        );
        let c = complete(&cas, &call, 200, camel.as_bytes());
        assert_eq!(c.error.as_deref(), Some("cas: foo is 8, not 1"));
        let bare = format!("{{{HEADER}}}");
        let c = complete(&cas, &call, 200, bare.as_bytes());
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (EventType::Fail, Some("cas: foo is not 1"))
        );
    }

    #[test]
    fn a_write_answer_without_a_header_or_that_does_not_parse_is_info() {
        let w = op("write", "foo", json!(5));
        let ok = format!("{{{HEADER}}}");
        let c = complete(&w, &Call::Put, 200, ok.as_bytes());
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(5)));
        for body in [&b"{}"[..], b"<html>", b""] {
            let c = complete(&w, &Call::Put, 200, body);
            assert_eq!(c.kind, EventType::Info, "{}", String::from_utf8_lossy(body));
        }
        let cas = op("cas", "foo", json!([1, 2]));
        let call = Call::Cas {
            key: "foo".to_owned(),
            expected: Some("1".to_owned()),
        };
        // Without a header "succeeded" being absent proves nothing.
        let c = complete(&cas, &call, 200, b"{}");
        assert_eq!(c.kind, EventType::Info);
        // A read has no effect: an unreadable answer fails it.
        let c = complete(&Op::read("foo"), &read_call("foo"), 200, b"<html>");
        assert_eq!(c.kind, EventType::Fail);
        assert!(c.error.unwrap_or_default().contains("does not parse"));
    }

    #[test]
    fn gateway_errors_fail_reads_and_only_definite_codes_fail_writes() {
        let timed_out = br#"{"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}"#;
        let deadline = br#"{"error":"context deadline exceeded","message":"context deadline exceeded","code":2}"#;
        let no_key = br#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#;
        let too_many = br#"{"error":"etcdserver: too many requests","code":8}"#;
        let w = op("write", "foo", json!(5));
        let add = op("add", "s", json!(5));
        for (status, body, kind) in [
            (503, &timed_out[..], EventType::Info),
            (500, &deadline[..], EventType::Info),
            (400, &no_key[..], EventType::Fail),
            (429, &too_many[..], EventType::Fail),
            (404, &b"Not Found\n"[..], EventType::Info),
            (502, &b""[..], EventType::Info),
        ] {
            let c = complete(&w, &Call::Put, status, body);
            assert_eq!(c.kind, kind, "write, HTTP {status}");
            assert_eq!(c.value, json!(5));
            assert!(c
                .error
                .unwrap_or_default()
                .contains(&format!("HTTP {status}")));
            assert_eq!(complete(&add, &Call::Put, status, body).kind, kind);
            let r = complete(&Op::read("foo"), &read_call("foo"), status, body);
            assert_eq!(r.kind, EventType::Fail, "read, HTTP {status}");
        }
        let c = complete(&w, &Call::Put, 503, timed_out);
        assert_eq!(
            c.error.as_deref(),
            Some("HTTP 503: etcdserver: request timed out (gRPC code 14)")
        );
    }

    #[test]
    fn the_status_names_the_leader_in_either_case_convention() {
        // As etcd 3.4.23 answers: snake_case header, camelCase body.
        let leader = br#"{"header":{"cluster_id":"15977754851127765311","member_id":"2362804624043614036","revision":"2","raft_term":"25"},"version":"3.4.23","dbSize":"20480","leader":"2362804624043614036","raftIndex":"41","raftTerm":"25","raftAppliedIndex":"41","dbSizeInUse":"16384"}"#;
        assert_eq!(
            parse_role(leader),
            Some(NodeRole {
                leader: true,
                term: 25,
                campaigning: false,
                ..Default::default()
            })
        );
        let follower = br#"{"header":{"memberId":"7660651995775247944"},"leader":"2362804624043614036","raft_term":26}"#;
        assert_eq!(
            parse_role(follower),
            Some(NodeRole {
                leader: false,
                term: 26,
                campaigning: false,
                ..Default::default()
            })
        );
        // No leader: the field is left out, and etcd lists "etcdserver: no leader" in errors.
        let leaderless = br#"{"header":{"member_id":"7660651995775247944"},"raftTerm":"25","errors":["etcdserver: no leader"]}"#;
        assert_eq!(
            parse_role(leaderless),
            Some(NodeRole {
                leader: false,
                term: 25,
                campaigning: false,
                ..Default::default()
            })
        );
        assert_eq!(parse_role(b"{}"), None);
        assert_eq!(parse_role(br#"{"header":{"member_id":"x"}}"#), None);
    }
}
