//! What a replica stores under one key: a register with its siblings, a PN-counter or an
//! OR-set. The first operation on a key decides its kind; objects merge with their own kind.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crdt::{OrSet, PnCounter};
use crate::ring::hash64;
use crate::version::{Conflict, Deps, Reg, Seen, Stamp, Vv};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Object {
    Reg(Reg),
    Counter(PnCounter),
    Set(OrSet),
}

/// How merges behave: the conflict mode and the `vclock-merge-min` bug.
#[derive(Clone, Copy, Debug, Default)]
pub struct MergeRules {
    pub conflict: Conflict,
    pub min_bug: bool,
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Reg(_) => "register",
            Object::Counter(_) => "counter",
            Object::Set(_) => "set",
        }
    }

    /// Merges `other` in; two kinds never merge (the first operation fixed the kind, and
    /// every replica refuses the others), so a mismatch keeps `self`.
    pub fn merge(&mut self, other: &Object, rules: MergeRules) {
        match (self, other) {
            (Object::Reg(a), Object::Reg(b)) => a.merge(b, rules.conflict, rules.min_bug),
            (Object::Counter(a), Object::Counter(b)) => a.merge(b),
            (Object::Set(a), Object::Set(b)) => a.merge(b),
            _ => {}
        }
    }

    /// The state as bytes: equal states encode equally (every map is ordered).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("objects always serialise")
    }

    /// A digest of the state, for Merkle trees and for telling replicas apart.
    pub fn digest(&self) -> u64 {
        hash64(&self.encode())
    }

    /// What a read returns: the value, whether it is a list of siblings, and the context.
    pub fn read(&self) -> (Value, bool, Option<String>) {
        match self {
            Object::Reg(r) => {
                let mut values: Vec<Value> = r.sibs.iter().map(|s| parse(&s.value)).collect();
                let ctx = Some(Context::of(r).encode());
                match values.len() {
                    0 => (Value::Null, false, ctx),
                    1 => (values.pop().unwrap_or(Value::Null), false, ctx),
                    _ => {
                        values.sort_by_key(|v| v.to_string());
                        (Value::Array(values), true, ctx)
                    }
                }
            }
            Object::Counter(c) => (Value::from(c.value()), false, None),
            Object::Set(s) => {
                let mut elems: Vec<Value> = s.elements().map(|e| parse(e)).collect();
                elems.sort_by(order);
                (Value::Array(elems), false, None)
            }
        }
    }
}

/// Numbers in numeric order, then everything else by its text.
fn order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A register's context as the client carries it: what it has seen (the version vector)
/// and the highest timestamp it read (for `--conflict lww`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub vv: Vv,
    pub stamp: Option<Stamp>,
    /// Which key it is for ([`key_tag`]): a context sent back with an operation on another key
    /// (a client that keeps one context for all keys) is not taken for this key's.
    pub key: Option<u64>,
}

/// The tag of a key in a context.
pub fn key_tag(key: &str) -> u64 {
    hash64(key.as_bytes())
}

impl Context {
    pub fn of(r: &Reg) -> Context {
        Context {
            vv: r.vv.clone(),
            stamp: r.max_stamp(),
            key: None,
        }
    }

    /// The same context, tagged as `key`'s.
    pub fn keyed(mut self, key: &str) -> Context {
        self.key = Some(key_tag(key));
        self
    }

    /// `v:0.3,2.5`, `v:0.3;t:1733500000000.2.7`, with `;k:<tag>` when keyed.
    pub fn encode(&self) -> String {
        let mut out = format!("v:{}", self.vv.encode());
        if let Some(s) = self.stamp {
            out.push_str(&format!(";t:{}.{}.{}", s.ms, s.node, s.counter));
        }
        if let Some(k) = self.key {
            out.push_str(&format!(";k:{k:x}"));
        }
        out
    }

    pub fn decode(text: &str) -> Result<Context, String> {
        let mut ctx = Context::default();
        for part in text.split(';') {
            if let Some(v) = part.strip_prefix("v:") {
                ctx.vv = Vv::decode(v)?;
            } else if let Some(t) = part.strip_prefix("t:") {
                let f: Vec<&str> = t.split('.').collect();
                let [ms, node, counter] = f[..] else {
                    return Err(format!("'{t}' is not ms.node.counter"));
                };
                let bad = |what| format!("'{t}': bad {what}");
                ctx.stamp = Some(Stamp {
                    ms: ms.parse().map_err(|_| bad("ms"))?,
                    node: node.parse().map_err(|_| bad("node"))?,
                    counter: counter.parse().map_err(|_| bad("counter"))?,
                });
            } else if let Some(k) = part.strip_prefix("k:") {
                ctx.key =
                    Some(u64::from_str_radix(k, 16).map_err(|_| format!("'{k}': bad key tag"))?);
            } else if !part.is_empty() {
                return Err(format!("'{part}' is neither v:, t: nor k:"));
            }
        }
        Ok(ctx)
    }
}

/// A session context (`--session causal`): `s:` and, as JSON, per key what the session has
/// seen ([`Seen::encode`]: `{"r1":"0.3,2.5|1.7"}`).
pub fn encode_session(deps: &Deps) -> String {
    let map: std::collections::BTreeMap<&str, String> = deps
        .0
        .iter()
        .map(|(k, s)| (k.as_str(), s.encode()))
        .collect();
    format!("s:{}", serde_json::to_string(&map).unwrap_or_default())
}

/// What a client's context says of `key`: the context to write with, and everything the
/// session has seen (only `key` for a per-key context; nothing for another key's).
pub fn client_context(text: Option<&str>, key: &str) -> Result<(Context, Deps), String> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok((Context::default(), Deps::default()));
    };
    if let Some(json) = text.strip_prefix("s:") {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| format!("session context: {e}"))?;
        let mut deps = Deps::default();
        for (k, v) in map {
            deps.see_all(&k, &Seen::decode(&v)?);
        }
        let ctx = Context {
            vv: deps.of(key).vv,
            ..Context::default()
        };
        return Ok((ctx, deps));
    }
    let ctx = Context::decode(text)?;
    if ctx.key.is_some_and(|k| k != key_tag(key)) {
        return Ok((Context::default(), Deps::default()));
    }
    let mut deps = Deps::default();
    deps.see(key, &ctx.vv);
    Ok((ctx, deps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{Deps, Dot, Sib};

    #[test]
    fn reads_show_siblings_and_a_context_that_round_trips() {
        let mut r = Reg::default();
        for (n, v) in [(1, "5"), (2, "3")] {
            let sib = Sib {
                deps: crate::version::Deps::default(),
                dot: Dot {
                    node: n,
                    counter: 1,
                },
                stamp: Stamp {
                    ms: 10 * n as i64,
                    node: n,
                    counter: 1,
                },
                value: v.into(),
            };
            r.put(&Vv::default(), sib, Conflict::Siblings, false);
        }
        let (value, siblings, ctx) = Object::Reg(r.clone()).read();
        assert_eq!(value, serde_json::json!([3, 5]));
        assert!(siblings);
        let ctx = Context::decode(&ctx.unwrap_or_default()).expect("decodes");
        assert_eq!(ctx, Context::of(&r));
        assert!(Context::decode("x:1").is_err());
        // Keyed contexts are taken for their own key only; session contexts for every key.
        let keyed = Context::of(&r).keyed("a").encode();
        assert_eq!(client_context(Some(&keyed), "a").expect("ok").0.vv, r.vv);
        assert_eq!(
            client_context(Some(&keyed), "b").expect("ok").0.vv,
            Vv::default()
        );
        let mut deps = Deps::default();
        deps.see("a", &r.vv);
        deps.see("b", &Vv::decode("3.4").expect("vv"));
        deps.see_dot(
            "b",
            Dot {
                node: 1,
                counter: 9,
            },
        );
        let (ctx, back) = client_context(Some(&encode_session(&deps)), "b").expect("ok");
        assert_eq!((ctx.vv, &back), (Vv::decode("3.4").expect("vv"), &deps));
        let b = back.of("b");
        assert!(
            b.covers(Dot {
                node: 1,
                counter: 9
            }) && !b.covers(Dot {
                node: 1,
                counter: 8
            })
        );
        assert!(client_context(Some("s:{"), "a").is_err());
        let mut s = OrSet::default();
        s.add(1, "10".into());
        s.add(1, "9".into());
        assert_eq!(Object::Set(s).read().0, serde_json::json!([9, 10]));
        assert_eq!(Object::Reg(Reg::default()).read().0, Value::Null);
    }
}
