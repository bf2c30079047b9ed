"""A small HTTP proxy in front of the IdP that can make it slow, run as its own process.

    python -m soak.proxy PORT UPSTREAM_PORT

Everyone reaches the IdP through it, as through a load balancer: the IdP's issuer (IDP_URL) is
the proxy's URL, so the sites' calls (discovery, JWKS, token exchange and refresh) and the
browsers' pages all pass here. Each request is sent on to the IdP at once; its answer is held
for the current latency before it goes back, as from an IdP that does the work but answers late
(a client that gave up meanwhile gets nothing, while the IdP has done what was asked). While the
IdP does not answer at all, the proxy answers 502 itself, as a load balancer would, marked with
the header `X-Soak-Proxy`.

The latency is switched at run time: `PUT /-/soak-proxy/latency` with the seconds as the body;
`GET /-/soak-proxy/` answers the latency and counts as JSON. Those paths never reach the IdP.
One request per connection (the answer says `Connection: close`), which every client handles.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass

import httpx

CONTROL_PREFIX = "/-/soak-proxy/"
#: The header that marks an answer the proxy gave itself (the IdP did not answer).
PROXY_HEADER = "X-Soak-Proxy"
HEAD_LIMIT = 64 * 1024
UPSTREAM_TIMEOUT_SECONDS = 120.0
#: Headers that belong to one connection (RFC 9110 7.6.1): not sent on.
HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}


@dataclass
class Counts:
    latency: float = 0.0
    relayed: int = 0
    held: int = 0
    upstream_unreachable: int = 0
    client_gone: int = 0


class SlowProxy:
    def __init__(self, port: int, upstream_port: int) -> None:
        self.port = port
        self.upstream_port = upstream_port
        self.counts = Counts()

    async def serve(self) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", self.port, limit=HEAD_LIMIT, backlog=512)
        async with server:
            await server.serve_forever()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            if request is None:
                return
            head, body = request
            method, target = head.split(b"\r\n", 1)[0].split(b" ")[:2]
            if target.startswith(CONTROL_PREFIX.encode()):
                writer.write(self.control(method, target, body))
            else:
                writer.write(await self.relay(head, body))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.counts.client_gone += 1
        finally:
            writer.close()

    def control(self, method: bytes, target: bytes, body: bytes) -> bytes:
        if method == b"PUT" and target.rstrip(b"/").endswith(b"/latency"):
            self.counts.latency = max(0.0, float(body.decode() or 0))
        return answer(200, json.dumps(asdict(self.counts)).encode(), b"application/json")

    async def relay(self, head: bytes, body: bytes) -> bytes:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self.counts.upstream_unreachable += 1
            return answer(502, b"The identity provider did not answer (soak proxy).\n", b"text/plain", marked=True)
        try:
            upstream_writer.write(closing(head) + body)
            await upstream_writer.drain()
            response = await asyncio.wait_for(upstream_reader.read(), UPSTREAM_TIMEOUT_SECONDS)
        except (OSError, TimeoutError):
            self.counts.upstream_unreachable += 1
            return answer(502, b"The identity provider broke off its answer (soak proxy).\n", b"text/plain", True)
        finally:
            upstream_writer.close()
        if not response:
            self.counts.upstream_unreachable += 1
            return answer(502, b"The identity provider closed the connection (soak proxy).\n", b"text/plain", True)
        self.counts.relayed += 1
        if (latency := self.counts.latency) > 0:
            self.counts.held += 1
            await asyncio.sleep(latency)
        return response


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """(head, body) of one HTTP/1.1 request; None when the client closed without sending one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head, body


def closing(head: bytes) -> bytes:
    """The request head with its connection headers replaced by `Connection: close`."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [lines[0]] + [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in HOP_BY_HOP]
    return b"\r\n".join([*kept, b"Connection: close", b"", b""])


def answer(status: int, content: bytes, content_type: bytes, marked: bool = False) -> bytes:
    reason = {200: b"OK", 502: b"Bad Gateway"}.get(status, b"")
    lines = [
        b"HTTP/1.1 %d %s" % (status, reason),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(content),
        b"Connection: close",
    ]
    if marked:
        lines.append(PROXY_HEADER.encode() + b": upstream-unreachable")
    return b"\r\n".join([*lines, b"", content])


class ProxyControl:
    """The soak's handle on a running proxy: its URL, and the latency switch."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def set_latency(self, seconds: float) -> dict:
        with httpx.Client(trust_env=False, timeout=10) as client:
            response = client.put(f"{self.url}{CONTROL_PREFIX}latency", content=str(seconds))
            response.raise_for_status()
            return response.json()

    def counts(self) -> dict:
        with httpx.Client(trust_env=False, timeout=10) as client:
            return client.get(f"{self.url}{CONTROL_PREFIX}").json()

    def answers(self) -> bool:
        try:
            self.counts()
        except (httpx.HTTPError, ValueError):
            return False
        return True


def main(argv: list[str]) -> int:
    port, upstream_port = int(argv[0]), int(argv[1])
    print(f"soak proxy on 127.0.0.1:{port} -> 127.0.0.1:{upstream_port} ({time.strftime('%H:%M:%S')})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(SlowProxy(port, upstream_port).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
