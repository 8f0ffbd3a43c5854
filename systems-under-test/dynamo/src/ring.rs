//! The consistent-hash ring (Dynamo section 4.2): every physical node owns `vnodes` tokens
//! on a 64-bit ring; a key belongs to the first token clockwise from its hash, and its
//! preference list is the next N *distinct* physical nodes from there. Every node builds the
//! same ring from the same member names, so all agree on who owns what without talking.

use node::runtime::NodeId;

/// A 64-bit hash that is the same on every node and every build: FNV-1a, then the splitmix64
/// finaliser so that nearby inputs (`n1#0`, `n1#1`) land far apart.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// The splitmix64 finaliser.
pub fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The ring: tokens sorted by position, each naming its physical node.
#[derive(Clone, Debug)]
pub struct Ring {
    tokens: Vec<(u64, NodeId)>,
    nodes: usize,
}

impl Ring {
    /// A ring of `members` (id and name), each with `vnodes` tokens placed by hashing
    /// `name#i`.
    pub fn new(members: &[(NodeId, String)], vnodes: usize) -> Ring {
        let mut tokens: Vec<(u64, NodeId)> = members
            .iter()
            .flat_map(|(id, name)| {
                (0..vnodes.max(1)).map(move |i| (hash64(format!("{name}#{i}").as_bytes()), *id))
            })
            .collect();
        tokens.sort_unstable();
        Ring {
            tokens,
            nodes: members.len(),
        }
    }

    /// Every physical node, in the order a walk clockwise from `position` meets them: the
    /// first N are the preference list, the rest the fallbacks of a sloppy quorum.
    pub fn walk(&self, position: u64) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = Vec::with_capacity(self.nodes);
        if self.tokens.is_empty() {
            return out;
        }
        let start = self.tokens.partition_point(|(t, _)| *t < position);
        for i in 0..self.tokens.len() {
            let (_, node) = self.tokens[(start + i) % self.tokens.len()];
            if !out.contains(&node) {
                out.push(node);
                if out.len() == self.nodes {
                    break;
                }
            }
        }
        out
    }

    /// The first `n` distinct physical nodes for `key`.
    pub fn preference_list(&self, key: &str, n: usize) -> Vec<NodeId> {
        let mut all = self.walk(hash64(key.as_bytes()));
        all.truncate(n);
        all
    }

    /// The share of the ring each node owns as a primary (the arc before each of its
    /// tokens), in member order: how evenly virtual nodes spread the load.
    pub fn shares(&self) -> Vec<(NodeId, f64)> {
        let mut owned: std::collections::BTreeMap<NodeId, u128> = Default::default();
        let n = self.tokens.len();
        for i in 0..n {
            let (t, node) = self.tokens[i];
            let prev = self.tokens[(i + n - 1) % n].0;
            let arc = if n == 1 {
                u128::from(u64::MAX) + 1
            } else {
                u128::from(t.wrapping_sub(prev))
            };
            *owned.entry(node).or_default() += arc;
        }
        let total = (u128::from(u64::MAX) + 1) as f64;
        owned
            .into_iter()
            .map(|(n, a)| (n, a as f64 / total))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u64) -> Vec<(NodeId, String)> {
        (0..n).map(|i| (NodeId(i), format!("n{}", i + 1))).collect()
    }

    #[test]
    fn virtual_nodes_balance_the_ring() {
        let one = Ring::new(&members(5), 1);
        let many = Ring::new(&members(5), 128);
        let spread = |r: &Ring| {
            let s: Vec<f64> = r.shares().into_iter().map(|(_, x)| x).collect();
            let max = s.iter().cloned().fold(0.0, f64::max);
            let min = s.iter().cloned().fold(1.0, f64::min);
            assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{s:?}");
            max / min
        };
        let (a, b) = (spread(&one), spread(&many));
        assert!(
            b < 1.5,
            "with 128 vnodes each node owns within 1.5x of another: {b}"
        );
        assert!(
            b < a,
            "vnodes spread better than one token each: {b} vs {a}"
        );
    }

    #[test]
    fn preference_lists_hold_distinct_nodes_and_extend_the_same_walk() {
        let ring = Ring::new(&members(5), 64);
        for k in 0..2000 {
            let key = format!("k{k}");
            let walk = ring.walk(hash64(key.as_bytes()));
            assert_eq!(walk.len(), 5, "every node once");
            let mut sorted = walk.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 5, "no duplicates in {walk:?}");
            assert_eq!(ring.preference_list(&key, 3), walk[..3].to_vec());
        }
        // With many vnodes per node, consecutive tokens often belong to one node: skipping
        // them is what keeps a preference list at N distinct nodes.
        let dense = Ring::new(&members(3), 256);
        let pl = dense.preference_list("x", 3);
        assert_eq!(pl.len(), 3);
        assert_ne!(pl[0], pl[1]);
        assert_ne!(pl[1], pl[2]);
    }

    #[test]
    fn every_node_computes_the_same_ring() {
        let a = Ring::new(&members(4), 32);
        let b = Ring::new(&members(4), 32);
        for k in 0..100 {
            let key = format!("key-{k}");
            assert_eq!(a.preference_list(&key, 3), b.preference_list(&key, 3));
        }
        assert_eq!(hash64(b"n1#0"), hash64(b"n1#0"));
        assert_ne!(hash64(b"n1#0"), hash64(b"n1#1"));
    }
}
