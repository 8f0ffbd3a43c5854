#!/usr/bin/env python3
# Test-only txn-list-append node: n1 applies every transaction serially.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systems-under-test", "external", "maelstrom"))
from maelstrom import Node
node = Node()
lists = {}
def serve(body):
    out = []
    with node.lock:
        for f, k, v in body["txn"]:
            if f == "r":
                out.append(["r", k, list(lists.get(k, [])) or None])
            else:
                lists.setdefault(k, []).append(v)
                out.append([f, k, v])
    return {"type": "txn_ok", "txn": out}
@node.handler("txn")
def txn(msg):
    if node.node_id == "n1":
        node.reply(msg, serve(msg["body"]))
    else:
        body = dict(msg["body"]); body.pop("msg_id", None)
        r = dict(node.sync_rpc("n1", body)); r.pop("in_reply_to", None); r.pop("msg_id", None)
        node.reply(msg, r)
node.run()
