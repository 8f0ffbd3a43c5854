//! The topologies the broadcast workload hands its nodes, in Maelstrom's shapes and names
//! (`maelstrom test --topology`): who each node should tell of a new message.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A topology shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Nodes in a square grid, each linked to its neighbours above, below, left and right
    /// (Maelstrom's default).
    Grid,
    /// A chain: n1 – n2 – … – nN.
    Line,
    /// A tree in which each node has up to this many children (n1 is the root).
    Tree(usize),
    /// Every node linked to every other.
    Total,
}

impl Topology {
    /// The names `--topology` takes.
    pub const NAMES: &'static str = "grid, line, tree (tree2), tree3, tree4, total";

    /// Each node's neighbours, for `nodes` (in order).
    pub fn neighbours(self, nodes: &[String]) -> BTreeMap<String, Vec<String>> {
        let n = nodes.len();
        let mut out: BTreeMap<String, Vec<String>> =
            nodes.iter().map(|x| (x.clone(), Vec::new())).collect();
        let mut link = |a: usize, b: usize| {
            if a != b {
                out.get_mut(&nodes[a]).unwrap().push(nodes[b].clone());
                out.get_mut(&nodes[b]).unwrap().push(nodes[a].clone());
            }
        };
        match self {
            Topology::Line => (1..n).for_each(|i| link(i - 1, i)),
            Topology::Total => {
                for a in 0..n {
                    for b in a + 1..n {
                        link(a, b);
                    }
                }
            }
            Topology::Tree(k) => (1..n).for_each(|i| link((i - 1) / k.max(1), i)),
            Topology::Grid => {
                let side = (1..=n).find(|s| s * s >= n).unwrap_or(1);
                for i in 0..n {
                    if (i + 1) % side != 0 && i + 1 < n {
                        link(i, i + 1);
                    }
                    if i + side < n {
                        link(i, i + side);
                    }
                }
            }
        }
        for v in out.values_mut() {
            v.sort_by_key(|x| nodes.iter().position(|n| n == x));
        }
        out
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Grid => f.write_str("grid"),
            Topology::Line => f.write_str("line"),
            Topology::Tree(k) => write!(f, "tree{k}"),
            Topology::Total => f.write_str("total"),
        }
    }
}

impl FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grid" => Ok(Topology::Grid),
            "line" => Ok(Topology::Line),
            "total" => Ok(Topology::Total),
            "tree" | "tree2" => Ok(Topology::Tree(2)),
            "tree3" => Ok(Topology::Tree(3)),
            "tree4" => Ok(Topology::Tree(4)),
            other => Err(format!(
                "unknown topology '{other}'; the topologies are: {}",
                Topology::NAMES
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn degree(t: &BTreeMap<String, Vec<String>>, n: &str) -> usize {
        t[n].len()
    }

    #[test]
    fn shapes_link_the_nodes_they_should() {
        let nodes = names(25);
        let grid = Topology::Grid.neighbours(&nodes);
        // A 5×5 grid: corners have 2 neighbours, the middle 4.
        assert_eq!(degree(&grid, "n1"), 2);
        assert_eq!(degree(&grid, "n13"), 4);
        assert_eq!(grid["n1"], vec!["n2", "n6"]);
        assert!(!grid["n5"].contains(&"n6".to_string()), "no wrap-around");
        let line = Topology::Line.neighbours(&nodes);
        assert_eq!(line["n1"], vec!["n2"]);
        assert_eq!(line["n7"], vec!["n6", "n8"]);
        let tree = Topology::Tree(4).neighbours(&nodes);
        assert_eq!(tree["n1"], vec!["n2", "n3", "n4", "n5"]);
        assert_eq!(tree["n2"][0], "n1");
        let total = Topology::Total.neighbours(&nodes);
        assert!(total.values().all(|v| v.len() == 24));
        // Symmetric and connected, every shape.
        for t in [
            Topology::Grid,
            Topology::Line,
            Topology::Tree(2),
            Topology::Total,
        ] {
            for n in [1, 2, 5, 7, 25] {
                let nodes = names(n);
                let g = t.neighbours(&nodes);
                for (a, ns) in &g {
                    for b in ns {
                        assert!(g[b].contains(a), "{t} {n}: {a}-{b} one-way");
                    }
                }
                let mut seen = vec!["n1".to_string()];
                let mut i = 0;
                while i < seen.len() {
                    for b in &g[&seen[i]] {
                        if !seen.contains(b) {
                            seen.push(b.clone());
                        }
                    }
                    i += 1;
                }
                assert_eq!(seen.len(), n, "{t} with {n} nodes is not connected");
            }
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!("tree".parse::<Topology>(), Ok(Topology::Tree(2)));
        assert_eq!("tree4".parse::<Topology>(), Ok(Topology::Tree(4)));
        assert!("ring".parse::<Topology>().unwrap_err().contains("grid"));
    }
}
