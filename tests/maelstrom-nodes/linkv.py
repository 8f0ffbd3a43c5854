#!/usr/bin/env python3
# Test-only lin-kv node: forwards to the lin-kv service.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systems-under-test", "external", "maelstrom"))
from maelstrom import Node, RPCError
node = Node()
def fwd(msg):
    body = dict(msg["body"]); body.pop("msg_id", None)
    if body["type"] == "cas":
        body["create_if_not_exists"] = False
    r = dict(node.sync_rpc("lin-kv", body)); r.pop("in_reply_to", None); r.pop("msg_id", None)
    node.reply(msg, r)
for t in ["read", "write", "cas"]:
    node.handler(t)(fwd)
node.run()
