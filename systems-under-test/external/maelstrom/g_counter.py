#!/usr/bin/env python3
"""Maelstrom grow-only counter node, keeping its state in the seq-kv service.

Clients send `add` {delta} and `read` to any node; the final read on every node must
equal the sum of the acknowledged adds (plus, possibly, adds whose outcome was unknown).

The node keeps nothing in memory, so kill and restart cannot lose anything: the counter
lives in `seq-kv`, a key-value service the harness provides (send it requests like to any
node, with dest "seq-kv"). The harness does not partition nodes from the service.

* Each node owns one key, "count-<node id>", and only ever adds to its own. An add is a
  compare-and-set loop: read the key, then `cas` it from that value to value + delta. If
  someone changed the key in between, or our read was stale, the cas fails with 22
  (precondition-failed) and we go round again. A missing key reads as 0 and the cas
  creates it (`create_if_not_exists`). Adds on one node are done one at a time, so the
  loop rarely goes round more than once.

* A read sums every node's key. seq-kv is only *sequentially* consistent: a read may
  return an old value, though never one older than what this same node last wrote or read
  there. So a read first writes a value never written before (a fresh token) to a scratch
  key of its own. seq-kv applies a write to its newest state (Maelstrom's does so only for
  a write that changes something, see its src/maelstrom/service.clj: hence a token never
  written before), so after that write this node's reads can no longer be older than
  "now". Without it, even the final reads could undercount.

* Unknown outcomes. If a `cas` gets no answer, it may still have happened. Retrying could
  add the delta twice, so the client gets error 0 (timeout, "may or may not have
  happened") instead. Failures known to change nothing (a read that timed out, a cas that
  failed with 22) are retried until ADD_DEADLINE, then answered with the definite
  error 11 (temporarily-unavailable).
"""
import itertools
import threading
import time

from maelstrom import (Node, RPCError, KEY_DOES_NOT_EXIST, PRECONDITION_FAILED,
                       TEMPORARILY_UNAVAILABLE, TIMEOUT)

KV = "seq-kv"
KV_TIMEOUT = 1.0    # seconds to wait for one seq-kv answer
ADD_DEADLINE = 3.0  # give up on an add after this long (only when nothing can have happened)

node = Node()
add_lock = threading.Lock()   # one add at a time on this node
tokens = itertools.count()


def key_of(node_id):
    return f"count-{node_id}"


def kv_read(key):
    """The value of `key` in seq-kv; a key never written counts as 0."""
    try:
        return node.sync_rpc(KV, {"type": "read", "key": key}, timeout=KV_TIMEOUT)["value"]
    except RPCError as e:
        if e.code == KEY_DOES_NOT_EXIST:
            return 0
        raise


@node.handler("add")
def add(msg):
    delta = msg["body"]["delta"]
    key = key_of(node.node_id)
    deadline = time.monotonic() + ADD_DEADLINE
    with add_lock:
        while time.monotonic() < deadline:
            try:
                current = kv_read(key)
            except RPCError:
                time.sleep(0.05)
                continue                              # nothing written yet: safe to retry
            try:
                node.sync_rpc(KV, {"type": "cas", "key": key, "from": current,
                                   "to": current + delta, "create_if_not_exists": True},
                              timeout=KV_TIMEOUT)
            except RPCError as e:
                if e.code == PRECONDITION_FAILED:
                    continue                          # stale read or a race: read again
                # No answer (or an odd one): the cas may have been applied.
                raise RPCError(TIMEOUT, f"cas outcome unknown ({e.code})")
            node.reply(msg, {"type": "add_ok"})
            return
    raise RPCError(TEMPORARILY_UNAVAILABLE, "seq-kv kept failing; nothing was added")


@node.handler("read")
def read(msg):
    # 1. Catch up: a unique write moves this node's view of seq-kv to its newest state.
    token = f"{node.node_id}-{time.time_ns()}-{next(tokens)}"
    node.sync_rpc(KV, {"type": "write", "key": f"fresh-{node.node_id}", "value": token},
                  timeout=KV_TIMEOUT)
    # 2. Sum everybody's key (keys of nodes that never added read as 0).
    total = sum(kv_read(key_of(n)) for n in node.node_ids)
    node.reply(msg, {"type": "read_ok", "value": total})


node.run()
