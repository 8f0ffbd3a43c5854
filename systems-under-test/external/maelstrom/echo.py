#!/usr/bin/env python3
"""Maelstrom echo node: answers every `echo` with an `echo_ok` carrying the same payload.

    {"type": "echo", "msg_id": 1, "echo": "hi"}  ->  {"type": "echo_ok", "in_reply_to": 1, "echo": "hi"}

The smallest possible node: the library (maelstrom.py, next to this file) answers `init`,
so all that is left is one handler. It keeps no state, so pause, kill and restart cannot
make it wrong; they only make some requests time out.
"""
from maelstrom import Node

node = Node()


@node.handler("echo")
def echo(msg):
    node.reply(msg, {"type": "echo_ok", "echo": msg["body"]["echo"]})


node.run()
