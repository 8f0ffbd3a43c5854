#!/usr/bin/env python3
# Test-only unique-ids node (tests/maelstrom_cli.rs); --broken plants a mistake where it has one.
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systems-under-test", "external", "maelstrom"))
from maelstrom import Node
import itertools, sys
node = Node()
c = itertools.count()
@node.handler("generate")
def gen(msg):
    n = next(c)
    node.reply(msg, {"type": "generate_ok", "id": n if "--broken" in sys.argv else f"{node.node_id}-{n}"})
node.run()
