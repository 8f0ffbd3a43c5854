"""maelstrom.py: a tiny library for writing Maelstrom nodes in Python (standard library only).

A Maelstrom node is a plain program. It reads one JSON message per line on stdin, writes one
JSON message per line on stdout, and logs on stderr. Every message looks like

    {"src": "c1", "dest": "n1", "body": {"type": "echo", "msg_id": 1, "echo": "hi"}}

(jepsen-io/maelstrom, doc/protocol.md). This module handles that plumbing so that a node
only has to say what it does with each message type:

    from maelstrom import Node

    node = Node()

    @node.handler("echo")
    def echo(msg):
        node.reply(msg, {"type": "echo_ok", "echo": msg["body"]["echo"]})

    node.run()

How it works:

* One thread reads stdin. The first message is `init`, which tells the node its own id
  (`node.node_id`) and every node's id (`node.node_ids`). The library answers `init_ok`
  itself. Anything that arrives before `init` is held back until init has been handled.
* Every other request runs its handler on a thread of its own (as Maelstrom's Go library
  runs each handler in a goroutine). So a handler may block, for example on `sync_rpc`,
  without stopping the node from receiving. The price: handlers run at the same time, so
  shared state must be protected, for example with `with node.lock:`.
* A reply (a body with `in_reply_to`) to a request this node made is not given to a
  handler: it goes to the callback of `rpc`, or wakes the thread waiting in `sync_rpc`.
* `send` and `reply` may be called from any thread; whole lines are written under a lock,
  so two messages are never interleaved on stdout.
* If a handler raises `RPCError`, the requester gets that error. If it raises anything else,
  the requester gets error 13 (crash) and the traceback goes to stderr.
"""

import itertools
import json
import os
import sys
import threading
import time
import traceback

# Maelstrom's error codes (doc/protocol.md). "Definite" errors promise the operation did
# not happen; the others (timeout, crash) mean it may or may not have happened.
TIMEOUT = 0                   # indefinite
NODE_NOT_FOUND = 1
NOT_SUPPORTED = 10
TEMPORARILY_UNAVAILABLE = 11
MALFORMED_REQUEST = 12
CRASH = 13                    # indefinite
ABORT = 14
KEY_DOES_NOT_EXIST = 20
KEY_ALREADY_EXISTS = 21
PRECONDITION_FAILED = 22
TXN_CONFLICT = 30


class RPCError(Exception):
    """A Maelstrom error: raise it in a handler to answer with an error body; `sync_rpc`
    raises it when the answer is an error (or when no answer came in time: code 0)."""

    def __init__(self, code, text=""):
        super().__init__(f"error {code}: {text}")
        self.code = code
        self.text = text

    def body(self):
        return {"type": "error", "code": self.code, "text": self.text}


class Node:
    def __init__(self):
        self.node_id = None           # "n1", set by init
        self.node_ids = []            # ["n1", "n2", ...], set by init
        self.lock = threading.RLock() # for the node's own state; the library doesn't use it

        self._handlers = {}           # message type -> function(msg)
        self._init_hooks = []         # functions run once init has been handled
        self._out_lock = threading.Lock()
        self._msg_ids = itertools.count(1)
        self._pending = {}            # msg_id of our request -> (deadline, callback)
        self._pending_lock = threading.Lock()
        self._initialized = threading.Event()
        self._early = []              # messages that arrived before init

    # ----------------------------------------------------------------- registering code

    def handler(self, msg_type):
        """Decorator: `@node.handler("echo")` makes the function handle `echo` messages.
        The function gets the whole message: msg["src"], msg["body"]."""
        def register(fn):
            self._handlers[msg_type] = fn
            return fn
        return register

    def on_init(self, fn):
        """Decorator: run `fn()` once, right after init (node_id is known by then)."""
        self._init_hooks.append(fn)
        return fn

    def every(self, seconds, fn):
        """Call `fn()` as soon as init has been handled, then every `seconds`, on a thread
        of its own. An exception in `fn` is logged and the timer keeps going."""
        def loop():
            self._initialized.wait()
            while True:
                try:
                    fn()
                except Exception:
                    self.log("timer failed:\n" + traceback.format_exc())
                time.sleep(seconds)
        threading.Thread(target=loop, daemon=True).start()

    # ------------------------------------------------------------------------- sending

    def log(self, *parts):
        """Write a line to stderr, which the harness keeps as the node's log."""
        print(*parts, file=sys.stderr, flush=True)

    def send(self, dest, body):
        """Send `body` to `dest` (a node, a client or a service such as "seq-kv").
        A `msg_id` is added if the body has none. Returns the msg_id."""
        body = dict(body)
        body.setdefault("msg_id", next(self._msg_ids))
        line = json.dumps({"src": self.node_id, "dest": dest, "body": body},
                          separators=(",", ":"))
        with self._out_lock:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except BrokenPipeError:
                os._exit(0)           # whoever ran us has gone away
        return body["msg_id"]

    def reply(self, request, body):
        """Answer `request` (a message we received): sends `body` back to its sender with
        in_reply_to set to the request's msg_id."""
        body = dict(body)
        body["in_reply_to"] = request["body"].get("msg_id")
        self.send(request["src"], body)

    def rpc(self, dest, body, callback, timeout=1.0):
        """Send a request and return at once. `callback(reply_body)` is called later, on the
        reader thread (so keep it short), with the reply's body; or, if no reply came within
        `timeout` seconds, with {"type": "error", "code": 0, ...}. A reply that arrives after
        its timeout is dropped."""
        body = dict(body)
        body["msg_id"] = next(self._msg_ids)
        with self._pending_lock:
            self._pending[body["msg_id"]] = (time.monotonic() + timeout, callback)
        self.send(dest, body)

    def sync_rpc(self, dest, body, timeout=1.0):
        """Send a request and wait for the reply; returns the reply's body. Raises RPCError if
        the reply is an error, or RPCError(TIMEOUT) if none came within `timeout` seconds.
        Call it from a handler or timer thread, never from an `rpc` callback."""
        done = threading.Event()
        answer = {}

        def got(reply_body):
            answer["body"] = reply_body
            done.set()

        self.rpc(dest, body, got, timeout)
        done.wait(timeout + 1.0)      # the reaper answers timeouts; this is a backstop
        reply_body = answer.get("body", {"type": "error", "code": TIMEOUT, "text": "timed out"})
        if reply_body.get("type") == "error":
            raise RPCError(reply_body.get("code", CRASH), reply_body.get("text", ""))
        return reply_body

    # ------------------------------------------------------------------------ receiving

    def run(self):
        """Read stdin until it closes. Call this last."""
        threading.Thread(target=self._reap_timeouts, daemon=True).start()
        while True:
            line = sys.stdin.readline()
            if not line:
                break                  # stdin closed: the test is over
            line = line.strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.log("not JSON, ignored:", line)
                continue
            self._receive(msg)

    def _receive(self, msg):
        body = msg.get("body", {})
        msg_type = body.get("type")

        if msg_type == "init":
            self._handle_init(msg)
            return
        if not self._initialized.is_set():
            self._early.append(msg)    # handled as soon as init arrives
            return

        # A reply to one of our requests?
        if "in_reply_to" in body:
            with self._pending_lock:
                entry = self._pending.pop(body["in_reply_to"], None)
            if entry is not None:
                self._call_back(entry[1], body)
            return                     # late or unknown replies are dropped

        threading.Thread(target=self._handle, args=(msg,), daemon=True).start()

    def _handle_init(self, msg):
        body = msg["body"]
        self.node_id = body["node_id"]
        self.node_ids = list(body["node_ids"])
        for hook in self._init_hooks:
            hook()
        self.reply(msg, {"type": "init_ok"})
        self.log(f"initialized as {self.node_id} of {self.node_ids}")
        self._initialized.set()
        early, self._early = self._early, []
        for m in early:
            self._receive(m)

    def _handle(self, msg):
        body = msg["body"]
        handler = self._handlers.get(body.get("type"))
        try:
            if handler is None:
                raise RPCError(NOT_SUPPORTED, f"no handler for {body.get('type')!r}")
            handler(msg)
        except RPCError as e:
            if "msg_id" in body:
                self.reply(msg, e.body())
        except Exception:
            self.log(f"handler for {body.get('type')!r} failed:\n" + traceback.format_exc())
            if "msg_id" in body:
                self.reply(msg, RPCError(CRASH, "handler failed").body())

    def _call_back(self, callback, reply_body):
        try:
            callback(reply_body)
        except Exception:
            self.log("rpc callback failed:\n" + traceback.format_exc())

    def _reap_timeouts(self):
        """Answer every request whose reply is overdue with a timeout error."""
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self._pending_lock:
                overdue = [i for i, (deadline, _) in self._pending.items() if deadline <= now]
                callbacks = [self._pending.pop(i)[1] for i in overdue]
            for callback in callbacks:
                self._call_back(callback, {"type": "error", "code": TIMEOUT, "text": "timed out"})
