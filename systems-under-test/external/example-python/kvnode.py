#!/usr/bin/env python3
"""A one-node key-value store that speaks the harness /op protocol, in the Python standard
library only: the worked example of systems-under-test/external/README.md.

    kvnode.py --id n1 --listen 10.77.0.11:7000 --data-dir /some/dir

Every change is written to DATA_DIR/state.json (write to a temporary file, fsync it, rename
it into place, fsync the directory so the rename itself is on disk) before it is
acknowledged, so a node killed with SIGKILL and restarted, or one that loses its power,
keeps every acknowledged write.
"""
import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Store:
    """Registers (integers) and grow-only sets, under one lock: trivially linearizable."""

    def __init__(self, data_dir):
        self.path = os.path.join(data_dir, "state.json")
        self.lock = threading.Lock()
        self.data = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.data = json.load(f)

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)
        # The rename is an entry in the directory: durable only once the directory is.
        self.fsync_dir()

    def fsync_dir(self):
        directory = os.open(os.path.dirname(self.path), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def apply(self, op):
        f, key, value = op.get("f"), op.get("key"), op.get("value")
        if not isinstance(key, str):
            return 400, {"type": "fail", "error": "key must be a string"}
        with self.lock:
            current = self.data.get(key)
            if f == "read":
                return 200, {"type": "ok", "value": current}
            if f == "write":
                self.data[key] = value
            elif f == "cas":
                if not (isinstance(value, list) and len(value) == 2):
                    return 400, {"type": "fail", "error": "cas value must be [old, new]"}
                if current != value[0]:
                    return 200, {"type": "fail", "error": "precondition"}
                self.data[key] = value[1]
            elif f == "add":
                elements = set(current or [])
                elements.add(value)
                self.data[key] = sorted(elements)
            else:
                return 400, {"type": "fail", "error": f"unsupported operation {f!r}"}
            self.save()
            return 200, {"type": "ok"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the harness reuses connections

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"node": self.server.node_id, "role": "leader", "term": 1})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/op":
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", 0))
        try:
            op = json.loads(self.rfile.read(length))
        except ValueError as e:
            return self.reply(400, {"type": "fail", "error": f"bad JSON: {e}"})
        self.reply(*self.server.store.apply(op))

    def log_message(self, fmt, *args):
        pass  # one line per request would drown the node log


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True)
    p.add_argument("--listen", required=True, help="IP:PORT")
    p.add_argument("--data-dir", required=True)
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    os.makedirs(a.data_dir, exist_ok=True)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.node_id, server.store = a.id, Store(a.data_dir)
    print(f"{a.id}: serving /op on {a.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
