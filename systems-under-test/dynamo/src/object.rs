//! What a replica stores under one key: a register with its siblings, a PN-counter or an
//! OR-set. The first operation on a key decides its kind; objects merge with their own kind.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crdt::{OrSet, PnCounter};
use crate::ring::hash64;
use crate::version::{Conflict, Reg, Stamp, Vv};

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
}

impl Context {
    pub fn of(r: &Reg) -> Context {
        Context {
            vv: r.vv.clone(),
            stamp: r.max_stamp(),
        }
    }

    /// `v:0.3,2.5` or `v:0.3;t:1733500000000.2.7`.
    pub fn encode(&self) -> String {
        let mut out = format!("v:{}", self.vv.encode());
        if let Some(s) = self.stamp {
            out.push_str(&format!(";t:{}.{}.{}", s.ms, s.node, s.counter));
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
            } else if !part.is_empty() {
                return Err(format!("'{part}' is neither v: nor t:"));
            }
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{Dot, Sib};

    #[test]
    fn reads_show_siblings_and_a_context_that_round_trips() {
        let mut r = Reg::default();
        for (n, v) in [(1, "5"), (2, "3")] {
            let sib = Sib {
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
        let mut s = OrSet::default();
        s.add(1, "10".into());
        s.add(1, "9".into());
        assert_eq!(Object::Set(s).read().0, serde_json::json!([9, 10]));
        assert_eq!(Object::Reg(Reg::default()).read().0, Value::Null);
    }
}
