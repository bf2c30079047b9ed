"""A stand-in for many client sites' back-channel logout endpoints, on 127.0.0.1 (bench only).

    python -m bench.receiver PORT

POST /logout/<n>/ with a `logout_token` answers 200 and records, per `sid` of the token (read,
not verified: the IdP signed it, this only counts), how many arrived and when the last did
(time.monotonic(), the same clock across processes). GET /stats returns those records as JSON.
GET /callback/... answers 200 (the fan-out clients' redirect URI; the bench never follows it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

records: dict[str, list[float]] = {}
lock = threading.Lock()


def sid_of(token: str) -> str:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("sid", "?"))
    except (IndexError, ValueError):
        return "?"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode(errors="replace"))
        token = (form.get("logout_token") or [""])[0]
        if not self.path.startswith("/logout/") or not token:
            self._answer(400)
            return
        sid = sid_of(token)
        with lock:
            record = records.setdefault(sid, [0, 0.0])
            record[0] += 1
            record[1] = max(record[1], arrived)
        self._answer(200)

    def do_GET(self) -> None:
        if self.path == "/stats":
            with lock:
                body = json.dumps(records).encode()
            self._answer(200, body, "application/json")
        else:
            self._answer(200, b"ok")

    def log_message(self, format: str, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # the IdP posts to many "sites" at once: a backlog of 5 would drop SYNs
    daemon_threads = True


def main() -> int:
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
