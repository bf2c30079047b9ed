"""Multi-step flows with cookies, driven over HTTP by an async client (httpx), as a browser would.

Each flow keeps its own cookie jar (one httpx client per concurrent worker, emptied at the start
of every flow), follows redirects one by one and tallies every answer's status. `drive()` runs
`concurrency` workers for a warm-up that is discarded, then for the measured time, and reports
flows per second and latency percentiles of the flows that started in the measured window.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin

import httpx

from tests.e2e.oidc import AuthRequest, Client, csrf_token, query

REDIRECTS = (301, 302, 303, 307, 308)
HTML = {"Accept": "text/html,application/xhtml+xml"}


class FlowFailed(Exception):
    pass


def unverified_claims(jwt: str) -> dict:
    """The payload of a JWT the IdP just gave us (for its `sid`); not a verification."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def basic_auth(client: Client) -> str:
    return base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()


@dataclass
class Browser:
    """One person's browser: an httpx client whose cookies are this person's, and a status tally."""

    http: httpx.AsyncClient
    statuses: Counter = field(default_factory=Counter)
    requests: int = 0
    hosts: Counter = field(default_factory=Counter)

    def fresh(self) -> Browser:
        self.http.cookies.clear()
        return self

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        self.requests += 1
        self.statuses[str(response.status_code)] += 1
        self.hosts[url.split("/")[2]] += 1
        return response

    async def follow(self, url: str, *, stop_at: str | None = None, limit: int = 12) -> list[httpx.Response]:
        """GET `url`, following redirects until a page, or one that leaves for `stop_at` (not fetched)."""
        hops = []
        for _ in range(limit):
            response = await self.request("GET", url, headers=HTML)
            hops.append(response)
            if response.status_code not in REDIRECTS:
                return hops
            url = urljoin(url, response.headers["location"])
            if stop_at and url.startswith(stop_at):
                return hops
        raise FlowFailed(f"more than {limit} redirects")

    async def submit_login(self, login_page: httpx.Response, username: str, password: str) -> httpx.Response:
        page_url = str(login_page.url)
        posted = await self.request(
            "POST",
            page_url.split("?")[0],
            data={
                "csrfmiddlewaretoken": csrf_token(login_page.text),
                "username": username,
                "password": password,
                "next": query(page_url).get("next", ""),
            },
            headers={"Referer": page_url, **HTML},
        )
        if posted.status_code != 302:
            raise FlowFailed(f"sign-in refused: HTTP {posted.status_code}")
        return posted


@dataclass
class Idp:
    url: str

    @property
    def authorize(self) -> str:
        return f"{self.url}/o/authorize/"

    @property
    def token(self) -> str:
        return f"{self.url}/o/token/"


async def authorize(browser: Browser, idp: Idp, client: Client, credentials: tuple[str, str] | None) -> tuple:
    """The code flow at the IdP: authorize, sign in when asked (and `credentials` given), exchange the code.

    Returns (token response JSON, number of redirects the browser followed).
    """
    request = AuthRequest(client)
    hops = await browser.follow(f"{idp.authorize}?{urlencode(request.params())}", stop_at=client.redirect_uri)
    last = hops[-1]
    redirects = len(hops) - 1
    if last.status_code == 200 and 'name="password"' in last.text:
        if credentials is None:
            raise FlowFailed("the IdP asked for a password: its session is gone")
        posted = await browser.submit_login(last, *credentials)
        hops = await browser.follow(urljoin(str(last.url), posted.headers["location"]), stop_at=client.redirect_uri)
        last = hops[-1]
        redirects += 1 + len(hops) - 1
    if last.status_code != 302 or not last.headers["location"].startswith(client.redirect_uri):
        raise FlowFailed(f"no code: HTTP {last.status_code}")
    callback = query(last.headers["location"])
    if callback.get("state") != request.state or "code" not in callback:
        raise FlowFailed("callback without the code or state")
    exchanged = await browser.request(
        "POST",
        idp.token,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": client.redirect_uri,
            "code_verifier": request.verifier,
        },
        headers={"Authorization": f"Basic {basic_auth(client)}"},
    )
    if exchanged.status_code != 200:
        raise FlowFailed(f"code exchange refused: HTTP {exchanged.status_code}")
    return exchanged.json(), redirects


async def open_site(browser: Browser, site: str, credentials: tuple[str, str] | None = None) -> int:
    """Open a client site's home page, signing in at the IdP if it asks; returns the redirects followed."""
    hops = await browser.follow(f"{site}/")
    redirects = len(hops) - 1
    last = hops[-1]
    if last.status_code == 200 and 'name="password"' in last.text:
        if credentials is None:
            raise FlowFailed("the IdP asked for a password")
        posted = await browser.submit_login(last, *credentials)
        rest = await browser.follow(urljoin(str(last.url), posted.headers["location"]))
        redirects += 1 + len(rest) - 1
        last = rest[-1]
    if last.status_code != 200 or not str(last.url).startswith(site) or 'name="password"' in last.text:
        raise FlowFailed(f"the site's page did not open: HTTP {last.status_code} at {last.url.path}")
    return redirects


def new_http(connections: int = 1) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(timeout=30, limits=limits, trust_env=False)


# --- the driver ---------------------------------------------------------------------------------------
@dataclass
class FlowRun:
    flows: int
    failed: int
    seconds: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    requests: int
    failures: dict[str, int]
    server_cpu_seconds: float = 0.0
    backing_cpu_seconds: float = 0.0
    generator_cpu_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {key: float("nan") for key in ("p50", "p90", "p95", "p99", "max", "mean")}
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


async def drive(
    flow: Callable[[Browser, int], Awaitable[None]],
    *,
    concurrency: int,
    warmup: float,
    seconds: float,
    probe: Callable[[], tuple[float, float]],
) -> FlowRun:
    """Run `flow(browser, number)` in `concurrency` workers: `warmup` seconds discarded, then `seconds`.

    Counted: the flows that end inside the measured window, and every answer they got.
    `probe()` returns (server CPU seconds, backing services' CPU seconds); it and the bench's
    own CPU time are read at both ends of the window. No flow starts after the window.
    """
    numbers = itertools.count()
    latencies: list[float] = []
    statuses: Counter = Counter()
    failures: Counter = Counter()
    counted = {"flows": 0, "failed": 0, "requests": 0}
    loop = asyncio.get_running_loop()
    window_start = loop.time() + warmup
    window_end = window_start + seconds
    marks: dict[str, tuple] = {}

    async def clock() -> None:
        for name, at in (("start", window_start), ("end", window_end)):
            await asyncio.sleep(max(0.0, at - loop.time()))
            marks[name] = (*probe(), time.process_time(), loop.time())

    async def worker() -> None:
        async with new_http() as http:
            browser = Browser(http)
            while loop.time() < window_end:
                browser.statuses = Counter()
                browser.requests = 0
                started = time.perf_counter()
                failed = None
                try:
                    await flow(browser.fresh(), next(numbers))
                except (FlowFailed, httpx.HTTPError, KeyError, ValueError) as error:
                    failed = str(error)[:80] or type(error).__name__
                elapsed = time.perf_counter() - started
                if window_start <= loop.time() <= window_end and "start" in marks:
                    counted["flows"] += 1
                    counted["requests"] += browser.requests
                    statuses.update(browser.statuses)
                    latencies.append(elapsed * 1000)
                    if failed:
                        counted["failed"] += 1
                        failures[failed] += 1

    await asyncio.gather(clock(), *(worker() for _ in range(concurrency)))
    start, end = marks["start"], marks["end"]
    return FlowRun(
        flows=counted["flows"],
        failed=counted["failed"],
        seconds=end[3] - start[3],
        latency_ms=percentiles(latencies),
        statuses=dict(statuses),
        requests=counted["requests"],
        failures=dict(failures),
        server_cpu_seconds=end[0] - start[0],
        backing_cpu_seconds=end[1] - start[1],
        generator_cpu_seconds=end[2] - start[2],
    )
