//! The two CRDTs the counter and set workloads use (Shapiro, Preguiça, Baquero and
//! Zawirski, "Conflict-free Replicated Data Types", 2011): a PN-counter for `incr` and an
//! observed-remove set for `add`. Both merge by a join, so replicas that have seen the same
//! updates hold the same state whatever order the updates and merges came in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::version::{Dot, Vv};

/// A PN-counter: per node, the sum of its positive and of its negative increments. Only
/// node `i` raises entry `i`, so the pointwise maximum merges without losing or doubling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PnCounter {
    pub p: BTreeMap<u64, u64>,
    pub n: BTreeMap<u64, u64>,
}

impl PnCounter {
    /// Node `node` adds `delta` (negative: a decrement).
    pub fn incr(&mut self, node: u64, delta: i64) {
        let side = if delta >= 0 { &mut self.p } else { &mut self.n };
        *side.entry(node).or_default() += delta.unsigned_abs();
    }

    pub fn merge(&mut self, other: &PnCounter) {
        for (mine, theirs) in [(&mut self.p, &other.p), (&mut self.n, &other.n)] {
            for (&k, &v) in theirs {
                let e = mine.entry(k).or_default();
                *e = (*e).max(v);
            }
        }
    }

    pub fn value(&self) -> i64 {
        let sum = |m: &BTreeMap<u64, u64>| m.values().map(|&v| v as i128).sum::<i128>();
        (sum(&self.p) - sum(&self.n)).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

/// An observed-remove set (add wins): each element with the dots of the adds that put it
/// there, and the causal context of every dot seen. A remove (not used by the workloads)
/// drops an element's dots while the context remembers them, so a merge does not bring them
/// back; an add concurrent with the remove survives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrSet {
    /// Element (as JSON text) → dots of the adds that are still live.
    pub entries: BTreeMap<String, BTreeSet<Dot>>,
    pub vv: Vv,
}

impl OrSet {
    /// Node `node` adds `elem`.
    pub fn add(&mut self, node: u64, elem: String) {
        let dot = Dot {
            node,
            counter: self.vv.get(node) + 1,
        };
        self.vv.add(dot);
        self.entries.entry(elem).or_default().insert(dot);
    }

    /// Removes `elem` as observed here.
    pub fn remove(&mut self, elem: &str) {
        self.entries.remove(elem);
    }

    /// A dot survives if both sides hold it, or one holds it and the other has not seen it.
    pub fn merge(&mut self, other: &OrSet) {
        let mut out: BTreeMap<String, BTreeSet<Dot>> = BTreeMap::new();
        let keys: BTreeSet<&String> = self.entries.keys().chain(other.entries.keys()).collect();
        let empty = BTreeSet::new();
        for k in keys {
            let a = self.entries.get(k).unwrap_or(&empty);
            let b = other.entries.get(k).unwrap_or(&empty);
            let dots: BTreeSet<Dot> = a
                .iter()
                .filter(|d| b.contains(d) || !other.vv.covers(**d))
                .chain(b.iter().filter(|d| !self.vv.covers(**d)))
                .copied()
                .collect();
            if !dots.is_empty() {
                out.insert(k.clone(), dots);
            }
        }
        self.entries = out;
        self.vv.join(&other.vv, false);
    }

    /// The elements, as JSON text.
    pub fn elements(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_converge_whatever_the_merge_order() {
        let mut a = PnCounter::default();
        let mut b = PnCounter::default();
        a.incr(1, 5);
        a.incr(1, -2);
        b.incr(2, 4);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.value(), 7);
        ab.merge(&a);
        assert_eq!(ab.value(), 7, "merging again changes nothing");
    }

    #[test]
    fn or_set_add_wins_over_a_concurrent_remove() {
        let mut a = OrSet::default();
        a.add(1, "7".into());
        let mut b = a.clone();
        b.remove("7");
        a.add(1, "7".into());
        let mut m = a.clone();
        m.merge(&b);
        assert!(m.entries.contains_key("7"), "the concurrent add survives");
        let mut c = a.clone();
        c.remove("7");
        let mut m2 = a.clone();
        m2.merge(&c);
        assert!(!m2.entries.contains_key("7"), "an observed remove wins");
        m2.merge(&a);
        assert!(
            !m2.entries.contains_key("7"),
            "and an old copy does not bring it back"
        );
        let mut x = OrSet::default();
        x.add(2, "1".into());
        let mut y = OrSet::default();
        y.add(3, "2".into());
        x.merge(&y);
        assert_eq!(x.elements().count(), 2);
    }
}
