#!/usr/bin/env python3
"""Maelstrom grow-only counter node with a planted bug: read, then blind write.

All nodes share one key, "counter", in the seq-kv service. An add reads it and writes
back value + delta with a plain `write`, not a `cas`. Between the read and the write
another node may have written its own sum, and the write silently replaces it:

    n1 reads 10            n2 reads 10
    n1 writes 10 + 3       n2 writes 10 + 5     -> 15: n1's acknowledged +3 is gone

seq-kv makes it likelier still: a read there may return an old value, and a write built
on an old value throws away every add since. Each add is acknowledged, so the final reads
come out below the sum of the acknowledged adds. g_counter.py avoids this with one key
per node and a cas loop.
"""
from maelstrom import Node, RPCError, KEY_DOES_NOT_EXIST

node = Node()


def read_counter():
    try:
        return node.sync_rpc("seq-kv", {"type": "read", "key": "counter"})["value"]
    except RPCError as e:
        if e.code == KEY_DOES_NOT_EXIST:
            return 0
        raise


@node.handler("add")
def add(msg):
    value = read_counter()
    node.sync_rpc("seq-kv", {"type": "write", "key": "counter",           # BUG: should be a
                             "value": value + msg["body"]["delta"]})      # cas from `value`
    node.reply(msg, {"type": "add_ok"})


@node.handler("read")
def read(msg):
    node.reply(msg, {"type": "read_ok", "value": read_counter()})


node.run()
