"""A small round-robin HTTP proxy for the tests: the load balancer in front of a part's replicas.

Each request goes to the next replica in turn, passed through as it came (method, path, headers
with Host, body); the answer comes back as the replica gave it (status, every header, each
Set-Cookie on its own, body), and redirects are not followed. Every answer is recorded with the
replica that gave it (the path only: a query string may carry a code), so that a test can tell
which replicas served a step. `refuse` makes the proxy itself answer some requests with an error,
as a load balancer does when a site is unhealthy.
"""

from __future__ import annotations

import http.client
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Headers that belong to one connection (RFC 9110 7.6.1), not passed on.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: The name recorded for an answer the proxy gave itself (`refuse`), or for a replica that did not answer.
PROXY = "proxy"


@dataclass(frozen=True)
class Served:
    replica: str  # the replica's name, or PROXY
    method: str
    path: str  # without the query string
    status: int


class RoundRobinProxy:
    """Listens on 127.0.0.1:`port` and sends each request to the next of `replicas` (name → port)."""

    def __init__(self, name: str, port: int, replicas: dict[str, int], *, timeout: float = 60.0) -> None:
        self.name = name
        self.port = port
        self.replicas = dict(replicas)
        self.timeout = timeout
        self._turns = itertools.cycle(self.replicas.items())
        self._lock = threading.Lock()
        self._served: list[Served] = []
        #: (method, path) → a status the proxy answers itself instead of asking a replica, or None.
        self.refuse: Callable[[str, str], int | None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"proxy-{name}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RoundRobinProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @contextmanager
    def refusing(self, refuse: Callable[[str, str], int | None]) -> Iterator[None]:
        """While in the block, `refuse(method, path)` may name a status the proxy answers itself."""
        self.refuse = refuse
        try:
            yield
        finally:
            self.refuse = None

    # --- what was served -------------------------------------------------------------------------
    def mark(self) -> int:
        """A bookmark in the record: `served(since=mark)` is what came after it."""
        with self._lock:
            return len(self._served)

    def served(self, since: int = 0) -> list[Served]:
        with self._lock:
            return self._served[since:]

    def _record(self, served: Served) -> None:
        with self._lock:
            self._served.append(served)

    def _next_replica(self) -> tuple[str, int]:
        with self._lock:
            return next(self._turns)

    # --- the proxying --------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive with the client; every answer has a length

            def __getattr__(self, attribute: str):
                if attribute.startswith("do_"):  # any method, as sent
                    return self.relay
                raise AttributeError(attribute)

            def log_message(self, format, *args) -> None:
                pass  # the record is the log; a request line may carry a code

            def relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = self.path.split("?", 1)[0]
                if proxy.refuse is not None and (status := proxy.refuse(self.command, path)):
                    proxy._record(Served(PROXY, self.command, path, status))
                    self.answer(status, [("Content-Type", "text/plain")], b"Refused by the load balancer.\n")
                    return
                replica, port = proxy._next_replica()
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=proxy.timeout)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in HOP_BY_HOP:
                            upstream.putheader(name, value)
                    upstream.endheaders(body)
                    response = upstream.getresponse()
                    content = response.read()
                    headers = response.getheaders()
                except OSError:
                    proxy._record(Served(PROXY, self.command, path, 502))
                    self.answer(502, [("Content-Type", "text/plain")], f"{replica} did not answer.\n".encode())
                    return
                finally:
                    upstream.close()
                proxy._record(Served(replica, self.command, path, response.status))
                self.answer(response.status, headers, content, reason=response.reason)

            def answer(self, status: int, headers: list[tuple[str, str]], content: bytes, reason: str = "") -> None:
                self.send_response_only(status, reason or None)
                bodiless = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
                for name, value in headers:
                    lowered = name.lower()
                    if lowered in HOP_BY_HOP or (lowered == "content-length" and not bodiless):
                        continue
                    self.send_header(name, value)
                if not bodiless:
                    self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if not bodiless:
                    self.wfile.write(content)

        return Handler
