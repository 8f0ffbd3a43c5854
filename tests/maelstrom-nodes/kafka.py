#!/usr/bin/env python3
# Test-only kafka node: every request is served by n1, which keeps the logs in memory.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systems-under-test", "external", "maelstrom"))
from maelstrom import Node, RPCError
import sys
node = Node()
logs, committed = {}, {}
LEADER = "n1"
BROKEN = "--broken" in sys.argv

def serve(body):
    t = body["type"]
    with node.lock:
        if t == "send":
            log = logs.setdefault(body["key"], [])
            log.append(body["msg"])
            return {"type": "send_ok", "offset": len(log) - 1}
        if t == "poll":
            out = {}
            for k, start in body["offsets"].items():
                log = logs.get(k, [])
                pairs = [[o, log[o]] for o in range(start, min(start + 5, len(log)))]
                if BROKEN and len(pairs) > 2:
                    del pairs[1]   # skip one
                if pairs:
                    out[k] = pairs
            return {"type": "poll_ok", "msgs": out}
        if t == "commit_offsets":
            for k, o in body["offsets"].items():
                committed[k] = max(committed.get(k, -1), o)
            return {"type": "commit_offsets_ok"}
        if t == "list_committed_offsets":
            return {"type": "list_committed_offsets_ok",
                    "offsets": {k: committed[k] for k in body["keys"] if k in committed}}
    raise RPCError(10, t)

def handle(msg):
    body = dict(msg["body"])
    if node.node_id == LEADER:
        node.reply(msg, serve(body))
    else:
        body.pop("msg_id", None)
        r = node.sync_rpc(LEADER, body)
        r = dict(r); r.pop("in_reply_to", None); r.pop("msg_id", None)
        node.reply(msg, r)

for t in ["send", "poll", "commit_offsets", "list_committed_offsets"]:
    node.handler(t)(handle)
node.run()
