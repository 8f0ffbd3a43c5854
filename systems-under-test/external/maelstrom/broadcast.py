#!/usr/bin/env python3
"""Maelstrom broadcast node: gossip that survives partitions and kill/restart.

Clients send `broadcast` (a unique integer) to any node and `read` any node; every
acknowledged message must eventually be in every node's read. The harness also sends
`topology`, saying who each node's neighbours are.

The ideas, one at a time:

1. Anti-entropy by batches. Every GOSSIP_INTERVAL each node sends each neighbour, in one
   `gossip` message, every message that neighbour is not yet known to have. The neighbour
   answers `gossip_ok`; only then do we count the batch as delivered. A batch lost to a
   partition is simply sent again on a later round, so messages cross as soon as the
   partition heals. One batch per neighbour per round, whatever the request rate, keeps
   the message count low. At most one batch per neighbour is in flight at a time.

2. What each neighbour has is learnt two ways: from its `gossip_ok` (it now has that batch)
   and from its own gossip (it has what it sent us). We never send a message back to a
   node that gave it to us.

3. Catching up after a restart. A killed node comes back with empty memory, and its
   neighbours still believe it has what it had, so they would not resend. So a node that
   starts asks every other node (not only its neighbours) for everything it has: `sync`,
   answered by `sync_ok` with all their messages. It asks again, every SYNC_INTERVAL, each
   node that has not answered yet (one behind a partition answers once it heals). What a
   neighbour believes the node has, the neighbour has itself, so after the sync the node
   has it again. On the very first start this costs a few empty messages.

4. No acknowledgement from memory alone. If a node said broadcast_ok and was killed before
   its next round, the message would be gone for good; and the harness may kill several
   nodes at once (a minority), or one after another. So before answering, the node hands
   the message (`handoff`) to enough other nodes that killing any minority at once still
   leaves a copy: 1 other node of 3 or 4, 2 of 5 or 6, 3 of 7. It asks that many at once
   and, while answers are missing, one more every HANDOFF_TIMEOUT. This costs two messages
   per copy per broadcast: the price of durability when all state is in memory. If too few
   nodes answer in time (this node is on the small side of a partition), the client gets
   error 0, "timeout", which means "may or may not have happened": the message is kept and
   still spreads once the partition heals. That is the trade: a node cut off from most
   nodes stops acknowledging, rather than acknowledge what kills could erase.

5. Topology is optional. Until `topology` arrives a node keeps what it is given; if none
   arrives within TOPOLOGY_WAIT of init it gossips with every node. A node that gossips to
   us becomes our neighbour too, so a one-sided topology still works both ways.
"""
import random
import threading
import time

from maelstrom import Node, RPCError, TIMEOUT

GOSSIP_INTERVAL = 0.2   # seconds between anti-entropy rounds
GOSSIP_TIMEOUT = 1.0    # a batch not answered within this is sent again
SYNC_INTERVAL = 0.5     # ask nodes that have not answered our sync yet this often
HANDOFF_TIMEOUT = 0.3   # while copies are missing, ask one more node this often
HANDOFF_DEADLINE = 1.5  # after this, answer the client "timeout" instead
TOPOLOGY_WAIT = 1.0     # after init, gossip with everybody if no topology came by then

node = Node()

# Everything below is guarded by node.lock.
messages = set()        # every message this node has
topology = None         # our neighbours from the `topology` message, once it comes
senders = set()         # nodes that gossiped to us: neighbours too
known = {}              # node -> set of messages it is known to have
in_flight = set()       # neighbours with a batch awaiting its gossip_ok
unsynced = set()        # nodes that have not answered our sync yet
init_time = None


@node.on_init
def started():
    global init_time
    init_time = time.monotonic()
    unsynced.update(n for n in node.node_ids if n != node.node_id)


def neighbours():
    """Who we gossip with (call with node.lock held)."""
    if topology is not None:
        base = topology
    elif time.monotonic() - init_time > TOPOLOGY_WAIT:
        base = set(node.node_ids) - {node.node_id}
    else:
        base = set()
    return base | senders


def learn(peer, batch):
    """`peer` has every message in `batch`, and now so do we (node.lock held)."""
    messages.update(batch)
    known.setdefault(peer, set()).update(batch)


# ------------------------------------------------------------------ gossip (ideas 1, 2)

def send_batch(peer):
    """Send `peer` everything it is not known to have, unless a batch is already in flight."""
    with node.lock:
        batch = sorted(messages - known.setdefault(peer, set()))
        if not batch or peer in in_flight:
            return
        in_flight.add(peer)

    def answered(reply):
        with node.lock:
            in_flight.discard(peer)
            if reply.get("type") == "gossip_ok":
                learn(peer, batch)
            # otherwise lost or timed out: the next round sends it again

    node.rpc(peer, {"type": "gossip", "messages": batch}, answered, timeout=GOSSIP_TIMEOUT)


def gossip_round():
    with node.lock:
        peers = list(neighbours())
    for peer in peers:
        send_batch(peer)


node.every(GOSSIP_INTERVAL, gossip_round)


@node.handler("gossip")
def gossip(msg):
    with node.lock:
        senders.add(msg["src"])
        learn(msg["src"], msg["body"]["messages"])
    node.reply(msg, {"type": "gossip_ok"})


# ------------------------------------------------------------------------- sync (idea 3)

def sync_round():
    with node.lock:
        peers = list(unsynced)
    for peer in peers:
        def answered(reply, peer=peer):
            if reply.get("type") == "sync_ok":
                with node.lock:
                    learn(peer, reply["messages"])
                    unsynced.discard(peer)
        node.rpc(peer, {"type": "sync"}, answered, timeout=SYNC_INTERVAL)


node.every(SYNC_INTERVAL, sync_round)


@node.handler("sync")
def sync(msg):
    with node.lock:
        snapshot = sorted(messages)
    node.reply(msg, {"type": "sync_ok", "messages": snapshot})


# ----------------------------------------------------------------- clients (ideas 4, 5)

@node.handler("topology")
def on_topology(msg):
    global topology
    with node.lock:
        topology = set(msg["body"]["topology"].get(node.node_id, []))
    node.reply(msg, {"type": "topology_ok"})


@node.handler("handoff")
def handoff(msg):
    """Another node asks us to hold a message before it acknowledges it."""
    with node.lock:
        messages.update(msg["body"]["messages"])
    node.reply(msg, {"type": "handoff_ok"})


def copies_needed():
    """How many other nodes must hold a message before we acknowledge it: as many as the
    largest minority, (n - 1) // 2 but at least 1, so that killing any minority at once
    leaves a copy."""
    others = len(node.node_ids) - 1
    return min(others, max(1, others // 2))


@node.handler("broadcast")
def broadcast(msg):
    message = msg["body"]["message"]
    with node.lock:
        messages.add(message)
        near = list(neighbours())
    others = [n for n in node.node_ids if n != node.node_id and n not in near]
    random.shuffle(near)
    random.shuffle(others)
    candidates = near + others      # neighbours first: they would get it next round anyway
    need = copies_needed()
    if need == 0:                   # a one-node cluster: nobody to hand it to
        node.reply(msg, {"type": "broadcast_ok"})
        return

    holders = set()                 # nodes that answered handoff_ok
    changed = threading.Condition()

    def answered(peer):
        def callback(reply):
            if reply.get("type") == "handoff_ok":
                with changed:
                    holders.add(peer)
                    changed.notify_all()
        return callback

    # Ask `need` nodes at once; every HANDOFF_TIMEOUT without enough answers, ask one more
    # as well (late answers still count), until HANDOFF_DEADLINE.
    deadline = time.monotonic() + HANDOFF_DEADLINE
    asked = 0
    with changed:
        while len(holders) < need:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RPCError(TIMEOUT, "too few nodes answered; kept, will spread later")
            wanted = need if asked == 0 else asked + 1
            while asked < min(wanted, len(candidates)):
                peer = candidates[asked]
                node.rpc(peer, {"type": "handoff", "messages": [message]}, answered(peer),
                         timeout=left)
                asked += 1
            changed.wait(min(HANDOFF_TIMEOUT, left))
    node.reply(msg, {"type": "broadcast_ok"})


@node.handler("read")
def read(msg):
    with node.lock:
        snapshot = sorted(messages)
    node.reply(msg, {"type": "read_ok", "messages": snapshot})


node.run()
