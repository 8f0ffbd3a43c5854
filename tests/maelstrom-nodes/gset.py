#!/usr/bin/env python3
# Test-only g-set node (tests/maelstrom_cli.rs); --broken plants a mistake where it has one.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systems-under-test", "external", "maelstrom"))
from maelstrom import Node
node = Node()
s = set()
def serve(body):
    with node.lock:
        if body["type"] == "add":
            s.add(body["element"]); return {"type": "add_ok"}
        return {"type": "read_ok", "value": sorted(s)}
def h(msg):
    if node.node_id == "n1":
        node.reply(msg, serve(msg["body"]))
    else:
        body = dict(msg["body"]); body.pop("msg_id", None)
        r = dict(node.sync_rpc("n1", body)); r.pop("in_reply_to", None); r.pop("msg_id", None)
        node.reply(msg, r)
node.handler("add")(h); node.handler("read")(h)
node.run()
