//! The member table: the cluster's ids, numbered by their sorted order so that every server
//! agrees on the numbering without talking, and their peer addresses.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::NodeArgs;

/// A server of the cluster, as the cores know it: its position in the sorted `--peers` ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The cluster's ids and addresses, indexed by [`NodeId`].
#[derive(Clone, Debug)]
pub struct Members {
    ids: Vec<String>,
    addrs: Vec<SocketAddr>,
}

impl Members {
    /// The table of `--peers`, sorted by id.
    pub fn new(args: &NodeArgs) -> Members {
        let mut peers = args.peers.clone();
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        Members {
            ids: peers.iter().map(|p| p.id.clone()).collect(),
            addrs: peers.iter().map(|p| p.addr).collect(),
        }
    }

    /// The number given to the server named `id`, if it is a member.
    pub fn node_id(&self, id: &str) -> Option<NodeId> {
        self.ids
            .iter()
            .position(|i| i == id)
            .map(|i| NodeId(i as u64))
    }

    /// The name (`--id`) of server `n`; `?` for a number outside the table, which only a
    /// peer with another member list could send.
    pub fn name(&self, n: NodeId) -> &str {
        self.ids.get(n.0 as usize).map_or("?", String::as_str)
    }

    /// Where server `n` listens.
    pub fn addr(&self, n: NodeId) -> Option<SocketAddr> {
        self.addrs.get(n.0 as usize).copied()
    }

    /// Every member, in order.
    pub fn all(&self) -> Vec<NodeId> {
        (0..self.ids.len() as u64).map(NodeId).collect()
    }

    /// How many servers the cluster has.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for a table without servers (never, after `NodeArgs::validate`).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_numbered_by_sorted_id() {
        let args = NodeArgs {
            peers: vec![
                crate::config::Peer {
                    id: "n2".into(),
                    addr: "127.0.0.1:2".parse().expect("addr"),
                },
                crate::config::Peer {
                    id: "n1".into(),
                    addr: "127.0.0.1:1".parse().expect("addr"),
                },
            ],
            id: "n1".into(),
            listen: "127.0.0.1:1".parse().expect("addr"),
            data_dir: "/nonexistent".into(),
            clock_offset_file: None,
        };
        let m = Members::new(&args);
        assert_eq!(m.node_id("n1"), Some(NodeId(0)));
        assert_eq!(m.name(NodeId(1)), "n2");
        assert_eq!(m.addr(NodeId(1)), "127.0.0.1:2".parse().ok());
        assert_eq!(m.name(NodeId(7)), "?");
        assert_eq!(m.all(), vec![NodeId(0), NodeId(1)]);
    }
}
