#!/usr/bin/env python3
"""Maelstrom broadcast node with a planted bug: fire-and-forget flooding.

When a node learns a message it has not seen, it forwards it once to each neighbour and
forgets about it: no acknowledgement, no retry. On a healthy network that works, and a
test without faults passes. But a forward sent across a partition is dropped by the
network and never sent again, so the nodes on the far side never learn the message, not
even after the partition heals. A killed node is worse off still: it restarts with empty
memory and nobody resends it anything.

The final reads, taken on every node after the faults stop, then lack acknowledged
messages. Compare broadcast.py, which keeps resending until each neighbour acknowledges.
"""
from maelstrom import Node

node = Node()
messages = set()
topology = None   # neighbours; until `topology` arrives, every other node


def neighbours():
    if topology is not None:
        return topology
    return [n for n in node.node_ids if n != node.node_id]


def learn(message, came_from=None):
    """Store a message; if it is new, pass it on (once: the bug)."""
    with node.lock:
        if message in messages:
            return
        messages.add(message)
        peers = [n for n in neighbours() if n != came_from]
    for peer in peers:
        node.send(peer, {"type": "forward", "message": message})   # BUG: no ack, no retry


@node.handler("topology")
def on_topology(msg):
    global topology
    with node.lock:
        topology = list(msg["body"]["topology"].get(node.node_id, []))
    node.reply(msg, {"type": "topology_ok"})


@node.handler("broadcast")
def broadcast(msg):
    learn(msg["body"]["message"])
    node.reply(msg, {"type": "broadcast_ok"})


@node.handler("forward")
def forward(msg):
    learn(msg["body"]["message"], came_from=msg["src"])


@node.handler("read")
def read(msg):
    with node.lock:
        snapshot = sorted(messages)
    node.reply(msg, {"type": "read_ok", "messages": snapshot})


node.run()
