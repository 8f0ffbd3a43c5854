#!/usr/bin/env python3
"""Maelstrom echo node with a planted bug: a cache keyed by the wrong thing.

"Optimisation": remember each answer, so a repeated request is answered from memory. The
mistake is the cache key: the *length* of the payload (as JSON) instead of the payload
itself. The first payload of each length is echoed correctly; every later, different
payload of the same length gets the first one back:

    echo "Please echo 17"  ->  echo_ok "Please echo 17"
    echo "Please echo 42"  ->  echo_ok "Please echo 17"     (same length: wrong answer)

Any workload whose payloads vary but often share a length hits this within the first few
dozen requests to a node, and the echo checker sees an echo_ok that differs from what was
sent. (If every payload were identical, or every length different, it would go unnoticed:
a checker can only catch what the workload exercises.)
"""
import json

from maelstrom import Node

node = Node()
cache = {}   # length of the payload as JSON -> the payload first seen with that length


@node.handler("echo")
def echo(msg):
    payload = msg["body"]["echo"]
    key = len(json.dumps(payload))           # BUG: should be the payload itself
    with node.lock:
        answer = cache.setdefault(key, payload)
    node.reply(msg, {"type": "echo_ok", "echo": answer})


node.run()
