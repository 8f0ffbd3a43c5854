//! Merkle trees for anti-entropy (Dynamo section 4.7): two replicas compare the hashes of
//! the keys they share top down and exchange only the leaves that differ.
//!
//! The tree is fixed in shape: [`FANOUT`]-ary, [`DEPTH`] levels below the root, so
//! `FANOUT^DEPTH` leaves; a key lives in the leaf named by the top bits of its hash. A leaf's
//! hash combines the keys in it with the digests of their states, order-free (a sum of mixed
//! hashes), so the two sides build equal leaves from equal contents however they iterate.

use crate::ring::mix;

pub const FANOUT: usize = 16;
pub const DEPTH: usize = 3;
pub const LEAVES: usize = FANOUT * FANOUT * FANOUT;
const LEAF_BITS: u32 = 12;

/// The leaf a key hash falls in.
pub fn leaf_of(key_hash: u64) -> usize {
    (key_hash >> (64 - LEAF_BITS)) as usize
}

/// The leaves under node `index` of level `level` (level 0 is the root).
pub fn leaves_under(level: usize, index: usize) -> std::ops::Range<usize> {
    let width = FANOUT.pow((DEPTH - level) as u32);
    index * width..(index + 1) * width
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// `levels[l]` holds `FANOUT^l` hashes; `levels[DEPTH]` are the leaves.
    levels: Vec<Vec<u64>>,
}

impl Tree {
    /// The tree of `(key_hash, state_digest)` pairs.
    pub fn build(items: impl IntoIterator<Item = (u64, u64)>) -> Tree {
        let mut leaves = vec![0u64; LEAVES];
        for (key_hash, digest) in items {
            let h = mix(key_hash ^ mix(digest).rotate_left(17));
            leaves[leaf_of(key_hash)] = leaves[leaf_of(key_hash)].wrapping_add(h);
        }
        let mut levels = vec![leaves];
        for _ in 0..DEPTH {
            let below = levels.last().expect("at least the leaves");
            let above: Vec<u64> = below
                .chunks(FANOUT)
                .map(|c| {
                    if c.iter().all(|h| *h == 0) {
                        0
                    } else {
                        c.iter().fold(0x9e37_79b9_7f4a_7c15, |acc, h| mix(acc ^ *h))
                    }
                })
                .collect();
            levels.push(above);
        }
        levels.reverse();
        Tree { levels }
    }

    pub fn root(&self) -> u64 {
        self.levels[0][0]
    }

    pub fn hash(&self, level: usize, index: usize) -> u64 {
        self.levels[level][index]
    }

    /// The children of node `index` of `level`, with their hashes.
    pub fn children(&self, level: usize, index: usize) -> Vec<(usize, u64)> {
        (index * FANOUT..(index + 1) * FANOUT)
            .map(|i| (i, self.levels[level + 1][i]))
            .collect()
    }

    /// The leaves whose hashes differ, found top down: the nodes a real exchange descends.
    pub fn diff(&self, other: &Tree) -> Vec<usize> {
        let mut frontier = vec![0usize];
        for level in 0..DEPTH {
            frontier = frontier
                .into_iter()
                .filter(|&i| self.hash(level, i) != other.hash(level, i))
                .flat_map(|i| i * FANOUT..(i + 1) * FANOUT)
                .collect();
        }
        frontier
            .into_iter()
            .filter(|&i| self.hash(DEPTH, i) != other.hash(DEPTH, i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::hash64;

    fn items(n: usize) -> Vec<(u64, u64)> {
        (0..n)
            .map(|k| (hash64(format!("k{k}").as_bytes()), k as u64))
            .collect()
    }

    #[test]
    fn one_changed_key_makes_one_differing_leaf() {
        let a = items(10_000);
        let mut b = a.clone();
        b[4321].1 ^= 1;
        let (ta, tb) = (Tree::build(a.clone()), Tree::build(b.clone()));
        assert_ne!(ta.root(), tb.root());
        let diff = ta.diff(&tb);
        assert_eq!(diff, vec![leaf_of(b[4321].0)]);
        // Order does not matter; equal contents give equal trees.
        let mut rev = a.clone();
        rev.reverse();
        assert_eq!(Tree::build(rev), ta);
        assert!(ta.diff(&Tree::build(a)).is_empty());
    }

    #[test]
    fn a_missing_key_differs_and_leaves_partition_the_hash_space() {
        let a = items(100);
        let b = a[1..].to_vec();
        assert_eq!(
            Tree::build(a.clone()).diff(&Tree::build(b)),
            vec![leaf_of(a[0].0)]
        );
        assert_eq!(leaves_under(0, 0), 0..LEAVES);
        assert_eq!(leaves_under(DEPTH, 7), 7..8);
        assert_eq!(leaves_under(1, 1), 256..512);
        assert_eq!(leaf_of(u64::MAX), LEAVES - 1);
        assert!(Tree::build(Vec::new()).root() == 0);
    }
}
