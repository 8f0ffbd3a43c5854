//! The services Maelstrom offers nodes (`doc/services.md`), served by the harness: `lin-kv`
//! (linearizable), `seq-kv` (sequentially consistent: a node's reads may be stale, never older
//! than what that node last read or wrote), `lww-kv` (last write wins, eventually consistent:
//! reads may be stale and go backwards) and `lin-tso` (a linearizable timestamp oracle).
//!
//! Each key-value service takes `read {key}` → `read_ok {value}` (error 20 when absent),
//! `write {key, value}` → `write_ok`, and `cas {key, from, to, create_if_not_exists}` →
//! `cas_ok` (error 22 when the value is not `from`, 20 when absent and not created).

use std::collections::HashMap;

use history::rng::SplitMix64;
use serde_json::{Map, Value};

use crate::msg::{error_body, ErrorCode};

/// The names nodes send service requests to.
pub const NAMES: [&str; 4] = ["lin-kv", "seq-kv", "lww-kv", "lin-tso"];

/// Whether `dest` is one of the services.
pub fn is_service(dest: &str) -> bool {
    NAMES.contains(&dest)
}

/// How many versions of a key `seq-kv` and `lww-kv` keep to serve stale reads from.
const KEPT_VERSIONS: usize = 32;
/// How many of the newest versions `lww-kv` may answer a read with.
const LWW_STALE_WINDOW: usize = 3;

/// Every service's state.
#[derive(Debug)]
pub struct Services {
    lin: HashMap<String, Value>,
    seq: Versioned,
    lww: Versioned,
    tso: u64,
    rng: SplitMix64,
    /// Requests served, per service.
    pub served: HashMap<&'static str, u64>,
}

/// A store that keeps recent versions of each key, for stale reads.
#[derive(Debug, Default)]
struct Versioned {
    /// A global version counter; every write is one version.
    version: u64,
    /// Per key, its recent values with the version that wrote them, oldest first (None: a
    /// key that did not exist yet, kept as the first entry).
    keys: HashMap<String, Vec<(u64, Value)>>,
    /// Per client, the version its last operation was placed at: `seq-kv` never answers it
    /// with anything older.
    cursor: HashMap<String, u64>,
}

impl Versioned {
    fn latest(&self, key: &str) -> Option<&Value> {
        self.keys.get(key).and_then(|v| v.last()).map(|(_, v)| v)
    }

    fn write(&mut self, client: &str, key: String, value: Value) {
        self.version += 1;
        let versions = self.keys.entry(key).or_default();
        versions.push((self.version, value));
        if versions.len() > KEPT_VERSIONS {
            versions.remove(0);
        }
        self.cursor.insert(client.to_owned(), self.version);
    }

    /// Places `client` at the newest state (what it acted on), so later reads are no older.
    fn catch_up(&mut self, client: &str) {
        self.cursor.insert(client.to_owned(), self.version);
    }

    /// A sequentially consistent read: a version of `key` current at some point between the
    /// client's cursor and now, the newest half of the time.
    fn read_monotonic(&mut self, client: &str, key: &str, rng: &mut SplitMix64) -> Option<Value> {
        let cursor = self.cursor.get(client).copied().unwrap_or(0);
        let now = self.version;
        let versions = self.keys.get(key).filter(|v| !v.is_empty())?;
        // The oldest entry still current at the cursor: the last one written at or before it.
        let first = versions
            .iter()
            .rposition(|(v, _)| *v <= cursor)
            .unwrap_or(0);
        // Before the key's first kept write, and at or after the cursor: absent.
        let before_first = versions[0].0 > cursor && versions.len() < KEPT_VERSIONS;
        let choices = versions.len() - first + usize::from(before_first);
        let pick = if rng.chance(0.5) {
            choices - 1
        } else {
            rng.below(choices as u64) as usize
        };
        if before_first && pick == 0 {
            // Absent, as of a moment between the cursor and the first write.
            self.cursor.insert(client.to_owned(), cursor);
            return None;
        }
        let (at, value) = &versions[first + pick - usize::from(before_first)];
        self.cursor
            .insert(client.to_owned(), cursor.max(*at).min(now));
        Some(value.clone())
    }

    /// An eventually consistent read: one of the newest few versions of `key`, at random.
    fn read_any_recent(&self, key: &str, rng: &mut SplitMix64) -> Option<Value> {
        let versions = self.keys.get(key)?;
        let window = versions.len().min(LWW_STALE_WINDOW);
        let back = if rng.chance(0.5) {
            0
        } else {
            rng.below(window as u64) as usize
        };
        versions
            .get(versions.len() - 1 - back)
            .map(|(_, v)| v.clone())
    }
}

impl Services {
    pub fn new(seed: u64) -> Services {
        Services {
            lin: HashMap::new(),
            seq: Versioned::default(),
            lww: Versioned::default(),
            tso: 0,
            rng: SplitMix64::for_stream(seed, 0, 0x6d61_656c),
            served: HashMap::new(),
        }
    }

    /// Serves one request `body` from `client` to `service`; the reply body (with
    /// `in_reply_to` set when the request had a `msg_id`).
    pub fn handle(
        &mut self,
        service: &str,
        client: &str,
        body: &Map<String, Value>,
    ) -> Map<String, Value> {
        let msg_id = body.get("msg_id").and_then(Value::as_u64);
        let name = NAMES
            .iter()
            .find(|n| **n == service)
            .copied()
            .unwrap_or("?");
        *self.served.entry(name).or_default() += 1;
        let mut reply = match self.serve(service, client, body) {
            Ok(reply) => reply,
            Err((code, text)) => error_body(None, code, &text),
        };
        if let Some(id) = msg_id {
            reply.insert("in_reply_to".into(), id.into());
        }
        reply
    }

    fn serve(
        &mut self,
        service: &str,
        client: &str,
        body: &Map<String, Value>,
    ) -> Result<Map<String, Value>, (ErrorCode, String)> {
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
        if service == "lin-tso" {
            return match kind {
                "ts" => {
                    self.tso += 1;
                    Ok(reply("ts_ok", [("ts", self.tso.into())]))
                }
                other => Err(not_supported(service, other)),
            };
        }
        let key = match body.get("key") {
            Some(k) => k.to_string(),
            None => {
                return Err((
                    ErrorCode::MALFORMED_REQUEST,
                    format!("{service}: `{kind}` needs a `key`"),
                ))
            }
        };
        let field = |f: &str| {
            body.get(f).cloned().ok_or_else(|| {
                (
                    ErrorCode::MALFORMED_REQUEST,
                    format!("{service}: `{kind}` needs a `{f}`"),
                )
            })
        };
        let absent = || {
            (
                ErrorCode::KEY_DOES_NOT_EXIST,
                format!("{service}: key {key} does not exist"),
            )
        };
        match kind {
            "read" => {
                let value = match service {
                    "lin-kv" => self.lin.get(&key).cloned(),
                    "seq-kv" => self.seq.read_monotonic(client, &key, &mut self.rng),
                    _ => self.lww.read_any_recent(&key, &mut self.rng),
                };
                let value = value.ok_or_else(absent)?;
                Ok(reply("read_ok", [("value", value)]))
            }
            "write" => {
                let value = field("value")?;
                match service {
                    "lin-kv" => {
                        self.lin.insert(key, value);
                    }
                    "seq-kv" => self.seq.write(client, key, value),
                    _ => self.lww.write(client, key, value),
                }
                Ok(reply("write_ok", []))
            }
            "cas" => {
                let from = field("from")?;
                let to = field("to")?;
                let create = body
                    .get("create_if_not_exists")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                // A cas is a write: it acts on the newest value, in every service; in seq-kv
                // the client has then seen the newest state, failed or not, and never reads
                // older again.
                if service == "seq-kv" {
                    self.seq.catch_up(client);
                }
                let current = match service {
                    "lin-kv" => self.lin.get(&key).cloned(),
                    "seq-kv" => self.seq.latest(&key).cloned(),
                    _ => self.lww.latest(&key).cloned(),
                };
                match current {
                    None if !create => return Err(absent()),
                    Some(c) if c != from => {
                        return Err((
                            ErrorCode::PRECONDITION_FAILED,
                            format!("{service}: expected {from}, but key {key} holds {c}"),
                        ))
                    }
                    _ => {}
                }
                match service {
                    "lin-kv" => {
                        self.lin.insert(key, to);
                    }
                    "seq-kv" => self.seq.write(client, key, to),
                    _ => self.lww.write(client, key, to),
                }
                Ok(reply("cas_ok", []))
            }
            other => Err(not_supported(service, other)),
        }
    }
}

fn not_supported(service: &str, kind: &str) -> (ErrorCode, String) {
    (
        ErrorCode::NOT_SUPPORTED,
        format!("{service} does not serve `{kind}`"),
    )
}

fn reply<const N: usize>(kind: &str, fields: [(&str, Value); N]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), kind.into());
    for (k, v) in fields {
        m.insert(k.into(), v);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn call(s: &mut Services, service: &str, client: &str, v: Value) -> Value {
        Value::Object(s.handle(service, client, &req(v)))
    }

    #[test]
    fn lin_kv_reads_the_last_write_and_checks_cas() {
        let mut s = Services::new(1);
        let r = call(
            &mut s,
            "lin-kv",
            "n1",
            json!({"type":"read","key":1,"msg_id":4}),
        );
        assert_eq!(r["code"], 20);
        assert_eq!(r["in_reply_to"], 4);
        call(
            &mut s,
            "lin-kv",
            "n1",
            json!({"type":"write","key":1,"value":5}),
        );
        let r = call(&mut s, "lin-kv", "n2", json!({"type":"read","key":1}));
        assert_eq!(r, json!({"type":"read_ok","value":5}));
        let r = call(
            &mut s,
            "lin-kv",
            "n2",
            json!({"type":"cas","key":1,"from":4,"to":6}),
        );
        assert_eq!(r["code"], 22);
        let r = call(
            &mut s,
            "lin-kv",
            "n2",
            json!({"type":"cas","key":1,"from":5,"to":6}),
        );
        assert_eq!(r["type"], "cas_ok");
        let r = call(
            &mut s,
            "lin-kv",
            "n2",
            json!({"type":"cas","key":2,"from":0,"to":1}),
        );
        assert_eq!(r["code"], 20);
        let r = call(
            &mut s,
            "lin-kv",
            "n2",
            json!({"type":"cas","key":2,"from":0,"to":1,"create_if_not_exists":true}),
        );
        assert_eq!(r["type"], "cas_ok");
        let r = call(&mut s, "lin-kv", "n2", json!({"type":"bogus","key":2}));
        assert_eq!(r["code"], 10);
        let r = call(&mut s, "lin-kv", "n2", json!({"type":"write","value":2}));
        assert_eq!(r["code"], 12);
    }

    #[test]
    fn seq_kv_is_stale_sometimes_but_never_behind_a_clients_own_past() {
        let mut s = Services::new(7);
        let mut stale = 0;
        for v in 1..=300u64 {
            call(
                &mut s,
                "seq-kv",
                "n1",
                json!({"type":"write","key":"x","value":v}),
            );
            // n1 always sees its own write.
            let r = call(&mut s, "seq-kv", "n1", json!({"type":"read","key":"x"}));
            assert_eq!(r["value"], v);
        }
        // n2 reads: possibly stale, never going backwards.
        let mut last = 0;
        for _ in 0..300 {
            let r = call(&mut s, "seq-kv", "n2", json!({"type":"read","key":"x"}));
            let got = r["value"].as_u64().unwrap_or(0);
            assert!(got >= last, "went back from {last} to {got}");
            if got < 300 {
                stale += 1;
            }
            last = got;
        }
        assert!(stale > 0, "seq-kv never served a stale read");
        // cas acts on the newest value, whatever the client read.
        let r = call(
            &mut s,
            "seq-kv",
            "n3",
            json!({"type":"cas","key":"x","from":300,"to":301}),
        );
        assert_eq!(r["type"], "cas_ok");
    }

    #[test]
    fn seq_kv_after_a_failed_cas_never_reads_older_than_what_the_cas_saw() {
        for seed in 0..50 {
            let mut s = Services::new(seed);
            call(
                &mut s,
                "seq-kv",
                "n1",
                json!({"type":"write","key":"x","value":1}),
            );
            // n2 reads 1 (maybe after reads of the absent key), then n1 writes 2; n2's cas
            // from 1 fails against 2...
            while call(&mut s, "seq-kv", "n2", json!({"type":"read","key":"x"}))["value"] != 1 {}
            call(
                &mut s,
                "seq-kv",
                "n1",
                json!({"type":"write","key":"x","value":2}),
            );
            let r = call(
                &mut s,
                "seq-kv",
                "n2",
                json!({"type":"cas","key":"x","from":1,"to":3}),
            );
            assert_eq!(r["code"], 22);
            // ...so n2 has seen 2, and a read that returned 1 would fit no single order.
            for _ in 0..20 {
                let r = call(&mut s, "seq-kv", "n2", json!({"type":"read","key":"x"}));
                assert_eq!(r["value"], 2, "seed {seed}");
            }
        }
    }

    #[test]
    fn lww_kv_can_go_backwards() {
        let mut s = Services::new(3);
        for v in 1..=10u64 {
            call(
                &mut s,
                "lww-kv",
                "n1",
                json!({"type":"write","key":"x","value":v}),
            );
        }
        let reads: Vec<u64> = (0..200)
            .map(|_| {
                call(&mut s, "lww-kv", "n2", json!({"type":"read","key":"x"}))["value"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert!(reads.iter().all(|v| (8..=10).contains(v)), "{reads:?}");
        assert!(
            reads.windows(2).any(|w| w[1] < w[0]),
            "never went backwards"
        );
    }

    #[test]
    fn lin_tso_counts_up() {
        let mut s = Services::new(3);
        let a = call(&mut s, "lin-tso", "n1", json!({"type":"ts"}))["ts"].as_u64();
        let b = call(&mut s, "lin-tso", "n2", json!({"type":"ts"}))["ts"].as_u64();
        assert!(a < b);
    }
}
