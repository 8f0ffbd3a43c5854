//! Versions of a register: version vectors, and per-value dots.
//!
//! Dynamo (section 4.4) versions each object with a vector clock and keeps concurrent
//! versions as siblings. We keep the siblings the way dotted version vector sets do
//! (Preguiça, Baquero, Almeida et al., "Dotted Version Vectors", 2012; Riak's `dvvset`):
//! the object carries one version vector, its causal context, and each sibling carries
//! only the *dot* `(node, counter)` of the write that made it. A write that brings a context
//! drops exactly the siblings whose dots that context covers. Plain per-sibling vector clocks
//! cannot tell two writes through the same coordinator apart when neither saw the other, and
//! so either lose one or keep siblings forever ("sibling explosion"); a dot per value names
//! each write exactly, and the single context stays one entry per coordinator.
//!
//! Two rules keep dots exact: a coordinator takes the next counter of *its own local copy*
//! of the key (it keeps every object it ever coordinated, so its counters never repeat), and
//! replicas exchange whole objects, which they merge.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One write: the coordinator's node number and its counter for this key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub node: u64,
    pub counter: u64,
}

/// A version vector: per node, the highest counter seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vv(pub BTreeMap<u64, u64>);

impl Vv {
    pub fn get(&self, node: u64) -> u64 {
        self.0.get(&node).copied().unwrap_or(0)
    }

    /// Whether this context has seen the write `dot`.
    pub fn covers(&self, dot: Dot) -> bool {
        self.get(dot.node) >= dot.counter
    }

    /// Records `dot` as seen.
    pub fn add(&mut self, dot: Dot) {
        let e = self.0.entry(dot.node).or_default();
        *e = (*e).max(dot.counter);
    }

    /// The least upper bound of two contexts: pointwise maximum. `min` plants the
    /// `vclock-merge-min` bug: the pointwise minimum, which forgets what one side saw.
    pub fn join(&mut self, other: &Vv, min: bool) {
        if min {
            let keys: Vec<u64> = self.0.keys().chain(other.0.keys()).copied().collect();
            for k in keys {
                let m = self.get(k).min(other.get(k));
                if m == 0 {
                    self.0.remove(&k);
                } else {
                    self.0.insert(k, m);
                }
            }
            return;
        }
        for (&n, &c) in &other.0 {
            let e = self.0.entry(n).or_default();
            *e = (*e).max(c);
        }
    }

    /// Whether `self` has seen everything `other` has (`self >= other`).
    pub fn descends(&self, other: &Vv) -> bool {
        other.0.iter().all(|(&n, &c)| self.get(n) >= c)
    }

    /// Neither has seen all the other has.
    pub fn concurrent(&self, other: &Vv) -> bool {
        !self.descends(other) && !other.descends(self)
    }

    /// `0.3,2.5`: node.counter pairs.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (n, c)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{n}.{c}");
        }
        out
    }

    pub fn decode(text: &str) -> Result<Vv, String> {
        let mut vv = Vv::default();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (n, c) = part
                .split_once('.')
                .ok_or_else(|| format!("'{part}' is not node.counter"))?;
            let n: u64 = n.parse().map_err(|_| format!("'{part}': bad node"))?;
            let c: u64 = c.parse().map_err(|_| format!("'{part}': bad counter"))?;
            vv.add(Dot {
                node: n,
                counter: c,
            });
        }
        Ok(vv)
    }
}

/// A last-writer-wins timestamp: wall-clock milliseconds of the coordinator, then its node
/// and dot counter to break ties the same way everywhere.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    pub ms: i64,
    pub node: u64,
    pub counter: u64,
}

/// One value of a register and the write that made it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sib {
    pub dot: Dot,
    pub stamp: Stamp,
    /// The value, as JSON text.
    pub value: String,
    /// With `--session causal`: what the writing session had seen of every key when it wrote
    /// (its causal dependencies), handed to every session that reads this version. Empty
    /// otherwise.
    pub deps: Deps,
}

/// What a session has seen of one key: every version a version vector covers (what it read,
/// with everything those versions superseded), and single dots beyond it (its own writes: a
/// version vector covering them would claim the writes of other sessions coordinated by the
/// same node before them, which this session never saw).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Seen {
    pub vv: Vv,
    pub dots: std::collections::BTreeSet<Dot>,
}

impl Seen {
    pub fn covers(&self, dot: Dot) -> bool {
        self.vv.covers(dot) || self.dots.contains(&dot)
    }

    /// Whether a copy with version vector `vv` holds everything seen here (or what
    /// superseded it).
    pub fn within(&self, vv: &Vv) -> bool {
        vv.descends(&self.vv) && self.dots.iter().all(|d| vv.covers(*d))
    }

    pub fn join(&mut self, other: &Seen) {
        self.vv.join(&other.vv, false);
        self.dots.extend(other.dots.iter().copied());
        let vv = &self.vv;
        self.dots.retain(|d| !vv.covers(*d));
    }

    /// `0.3,2.5` or, with single dots, `0.3,2.5|1.7+4.2`.
    pub fn encode(&self) -> String {
        let mut out = self.vv.encode();
        if !self.dots.is_empty() {
            out.push('|');
            let dots: Vec<String> = self
                .dots
                .iter()
                .map(|d| format!("{}.{}", d.node, d.counter))
                .collect();
            out.push_str(&dots.join("+"));
        }
        out
    }

    pub fn decode(text: &str) -> Result<Seen, String> {
        let (vv, dots) = text.split_once('|').unwrap_or((text, ""));
        let mut seen = Seen {
            vv: Vv::decode(vv)?,
            ..Seen::default()
        };
        for d in dots.split('+').filter(|d| !d.is_empty()) {
            let one = Vv::decode(d)?;
            seen.dots
                .extend(one.0.iter().map(|(&node, &counter)| Dot { node, counter }));
        }
        Ok(seen)
    }
}

/// Per key, what a session has seen (its causal past, `--session causal`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deps(pub BTreeMap<String, Seen>);

impl Deps {
    /// What this session has seen of `key`.
    pub fn of(&self, key: &str) -> Seen {
        self.0.get(key).cloned().unwrap_or_default()
    }

    /// Adds every version `vv` covers of `key`.
    pub fn see(&mut self, key: &str, vv: &Vv) {
        self.see_all(
            key,
            &Seen {
                vv: vv.clone(),
                ..Seen::default()
            },
        );
    }

    /// Adds one version of `key` (the session's own write).
    pub fn see_dot(&mut self, key: &str, dot: Dot) {
        let mut one = Seen::default();
        one.dots.insert(dot);
        self.see_all(key, &one);
    }

    pub fn see_all(&mut self, key: &str, seen: &Seen) {
        self.0.entry(key.to_owned()).or_default().join(seen);
    }

    /// Adds everything `other` has seen.
    pub fn join(&mut self, other: &Deps) {
        for (k, seen) in &other.0 {
            self.see_all(k, seen);
        }
    }
}

/// How concurrent writes of a register are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Conflict {
    /// Keep them all as siblings; the next write that brings their context resolves them.
    #[default]
    Siblings,
    /// Keep the one with the highest timestamp (Cassandra's way); the others are lost.
    Lww,
}

/// A register: its causal context and its siblings (sorted by dot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reg {
    pub vv: Vv,
    pub sibs: Vec<Sib>,
}

impl Reg {
    /// The dot the next write coordinated by `node` takes.
    pub fn next_dot(&self, node: u64) -> Dot {
        Dot {
            node,
            counter: self.vv.get(node) + 1,
        }
    }

    /// The highest timestamp held.
    pub fn max_stamp(&self) -> Option<Stamp> {
        self.sibs.iter().map(|s| s.stamp).max()
    }

    /// A write of `sib` by a client that had seen `ctx`: in siblings mode it replaces
    /// exactly the siblings `ctx` covers; in LWW mode it wins only if its stamp is higher.
    pub fn put(&mut self, ctx: &Vv, sib: Sib, conflict: Conflict, min_bug: bool) {
        match conflict {
            Conflict::Siblings => {
                self.sibs.retain(|s| !ctx.covers(s.dot));
                self.sibs.push(sib.clone());
                self.sibs.sort_by_key(|s| s.dot);
            }
            Conflict::Lww => {
                if self.max_stamp().is_none_or(|m| sib.stamp > m) {
                    self.sibs = vec![sib.clone()];
                }
            }
        }
        self.vv.join(ctx, min_bug);
        self.vv.add(sib.dot);
    }

    /// A causal session's write: it supersedes exactly the versions the session has seen,
    /// which this copy must already hold (or have seen superseded).
    pub fn put_seen(&mut self, seen: &Seen, sib: Sib) {
        self.sibs.retain(|s| !seen.covers(s.dot));
        self.sibs.push(sib.clone());
        self.sibs.sort_by_key(|s| s.dot);
        // The copy holds everything seen already (the coordinator caught it up first), so
        // its version vector covers every single dot; only the new one is added.
        self.vv.join(&seen.vv, false);
        self.vv.add(sib.dot);
    }

    /// Merges another replica's copy: a sibling survives unless the other side has seen its
    /// dot and no longer holds it (in LWW mode: the highest stamp of both wins).
    pub fn merge(&mut self, other: &Reg, conflict: Conflict, min_bug: bool) {
        let mut sibs: Vec<Sib> = Vec::with_capacity(self.sibs.len() + other.sibs.len());
        let in_other = |d: Dot| other.sibs.iter().any(|s| s.dot == d);
        for s in &self.sibs {
            if conflict == Conflict::Lww || in_other(s.dot) || !other.vv.covers(s.dot) {
                sibs.push(s.clone());
            }
        }
        for s in &other.sibs {
            let mine = self.sibs.iter().any(|m| m.dot == s.dot);
            if !mine && (conflict == Conflict::Lww || !self.vv.covers(s.dot)) {
                sibs.push(s.clone());
            }
        }
        sibs.sort_by_key(|s| s.dot);
        if conflict == Conflict::Lww {
            if let Some(best) = sibs.iter().max_by_key(|s| s.stamp).cloned() {
                sibs = vec![best];
            }
        }
        self.sibs = sibs;
        self.vv.join(&other.vv, min_bug);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(pairs: &[(u64, u64)]) -> Vv {
        let mut v = Vv::default();
        for &(n, c) in pairs {
            v.add(Dot {
                node: n,
                counter: c,
            });
        }
        v
    }

    fn sib(node: u64, counter: u64, value: &str) -> Sib {
        Sib {
            deps: Deps::default(),
            dot: Dot { node, counter },
            stamp: Stamp {
                ms: 0,
                node,
                counter,
            },
            value: value.into(),
        }
    }

    #[test]
    fn descends_concurrent_and_merge() {
        let a = vv(&[(1, 2), (2, 1)]);
        let b = vv(&[(1, 1), (2, 1)]);
        let c = vv(&[(1, 1), (3, 4)]);
        assert!(a.descends(&b) && !b.descends(&a));
        assert!(a.descends(&a), "a context descends from itself");
        assert!(a.concurrent(&c) && c.concurrent(&a));
        assert!(!a.concurrent(&b));
        let mut m = a.clone();
        m.join(&c, false);
        assert_eq!(m, vv(&[(1, 2), (2, 1), (3, 4)]));
        assert!(
            m.descends(&a) && m.descends(&c),
            "the join is an upper bound"
        );
        let mut bad = a.clone();
        bad.join(&c, true);
        assert_eq!(bad, vv(&[(1, 1)]), "the planted bug takes the minimum");
        assert!(!bad.descends(&a));
        assert_eq!(Vv::decode(&m.encode()), Ok(m));
        assert!(Vv::decode("1.x").is_err());
    }

    #[test]
    fn a_write_with_a_context_supersedes_exactly_what_it_saw() {
        let mut r = Reg::default();
        r.put(&Vv::default(), sib(1, 1, "a"), Conflict::Siblings, false);
        let seen_a = r.vv.clone();
        // A blind write elsewhere is concurrent: both stay.
        let mut other = Reg::default();
        other.put(&Vv::default(), sib(2, 1, "b"), Conflict::Siblings, false);
        r.merge(&other, Conflict::Siblings, false);
        assert_eq!(r.sibs.len(), 2);
        // A write that had seen only "a" replaces "a" and keeps "b".
        let d = r.next_dot(1);
        r.put(&seen_a, sib(1, d.counter, "c"), Conflict::Siblings, false);
        let values: Vec<&str> = r.sibs.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["c", "b"]);
        // Merging an old copy that still holds "a" does not bring it back.
        let mut old = Reg::default();
        old.put(&Vv::default(), sib(1, 1, "a"), Conflict::Siblings, false);
        r.merge(&old, Conflict::Siblings, false);
        assert_eq!(r.sibs.len(), 2);
        assert!(r.sibs.iter().all(|s| s.value != "a"));
        // Merge is commutative here.
        let mut o2 = old.clone();
        o2.merge(&r, Conflict::Siblings, false);
        assert_eq!(o2, r);
    }

    #[test]
    fn lww_keeps_the_highest_stamp() {
        let mut r = Reg::default();
        let mut a = sib(1, 1, "a");
        a.stamp.ms = 100;
        let mut b = sib(2, 1, "b");
        b.stamp.ms = 50;
        r.put(&Vv::default(), a, Conflict::Lww, false);
        r.put(&Vv::default(), b.clone(), Conflict::Lww, false);
        assert_eq!(
            r.sibs[0].value, "a",
            "a lower stamp loses even when written later"
        );
        let mut other = Reg::default();
        b.stamp.ms = 200;
        other.put(&Vv::default(), b, Conflict::Lww, false);
        r.merge(&other, Conflict::Lww, false);
        assert_eq!(r.sibs.len(), 1);
        assert_eq!(r.sibs[0].value, "b");
    }
}
