"""The scenarios: set-up of what each needs (people, sessions, tokens), and one measurement each.

Every measurement returns a row (a dict) for the report: throughput, throughput per server core,
latency percentiles, the server's CPU per operation, every answer that was not 2xx/3xx, and the
load generator's own CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.flows import Browser, Idp, authorize, drive, new_http, open_site, unverified_claims
from bench.memory import breakdown, snapshot
from bench.profile import Profiler, Session
from bench.services import Server, Services
from bench.wrk import run_wrk
from tests.e2e.oidc import Client

#: What each scenario measures; `--only` takes these names.
SCENARIOS = {
    "bare": "1. bare Django view (IdP stack)",
    "session": "2. bare view reading a Redis session (IdP)",
    "userinfo": "3. userinfo (Bearer token)",
    "introspect": "4. introspection (client's own token, HTTP Basic)",
    "refresh": "5. refresh grant with rotation",
    "signin": "6. password sign-in, whole flow",
    "sso_hop": "7. SSO hop to site B",
    "page": "8. signed-in page at site A, with / without sso_client",
    "fanout": "9. back-channel logout fan-out (2 and 20 sites)",
}
SAFE = {"2", "3"}  # status classes that are not errors
FANOUT_SITES = (2, 20)


def non_ok(statuses: dict[str, int]) -> dict[str, int]:
    return {status: count for status, count in sorted(statuses.items()) if status[:1] not in SAFE}


@dataclass
class Bench:
    services: Services
    seconds: float
    warmup: float
    connections: int
    password: str
    fanout_secret: str
    receiver_url: str
    workdir: Path
    people: itertools.count = field(default_factory=lambda: itertools.count())
    cookies: list[dict[str, str]] = field(default_factory=list)
    tokens: dict = field(default_factory=dict)
    profiler: Profiler | None = None  # --profile: py-spy on the servers during each measured window

    # --- shared --------------------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        return self.services.env

    @property
    def idp(self) -> Idp:
        return Idp(self.services.servers["idp"].url)

    def server(self, name: str) -> Server:
        return self.services.servers[name]

    @property
    def site_a(self) -> Client:
        url = self.services.servers["site_a"].url
        return Client("site-a", self.env["SITE_A_CLIENT_SECRET"], f"{url}/sso/callback/")

    def fanout_client(self, index: int) -> Client:
        return Client(f"bench-fanout-{index:02d}", self.fanout_secret, f"{self.receiver_url}/callback/{index}/")

    def person(self) -> tuple[str, str]:
        return f"bench{next(self.people):06d}", self.password

    @property
    def generator_cores(self) -> int:
        return len(self.services.generator_cores)

    @property
    def server_cores(self) -> int:
        return len(self.services.server_cores) if self.services.pinned else os.cpu_count() or 1

    def row(
        self,
        key: str,
        name: str,
        unit: str,
        *,
        operations: int,
        seconds: float,
        latency_ms: dict,
        statuses: dict,
        server_cpu: float,
        backing_cpu: float,
        generator_cpu: float,
        **extra,
    ) -> dict:
        rate = operations / seconds if seconds else 0.0
        generator_share = generator_cpu / seconds / self.generator_cores if seconds else 0.0
        return {
            "key": key,
            "scenario": name,
            "unit": unit,
            "operations": operations,
            "seconds": round(seconds, 2),
            "throughput": round(rate, 1),
            "per_server_core": round(rate / self.server_cores, 1),
            "latency_ms": {k: round(v, 2) for k, v in latency_ms.items()},
            "server_cpu_ms_per_op": round(server_cpu * 1000 / operations, 2) if operations else None,
            "backing_cpu_ms_per_op": round(backing_cpu * 1000 / operations, 2) if operations else None,
            "statuses": dict(sorted(statuses.items())),
            "not_2xx_3xx": non_ok(statuses),
            "generator_cpu_percent": round(generator_share * 100, 1),
            "generator_saturated": generator_share > 0.9,
            **extra,
        }

    def probe(self, *servers: str) -> tuple[float, float]:
        """(CPU seconds of the named servers' workers, of redis-server and PostgreSQL) so far."""
        return sum(self.server(name).worker_cpu() for name in servers), self.services.backing_cpu()

    @contextlib.contextmanager
    def profiled(self, key: str, *servers: str, start: bool = True):
        """With --profile, py-spy on the named servers' workers: yields (profile, session).

        `profile` is a dict, filled on exit with each server's analysis (bench.profile); the
        session starts on entry, or (start=False) when the caller starts it (`window_probe`).
        Without --profile: ({}, None), and nothing runs.
        """
        profile: dict = {}
        if self.profiler is None:
            yield profile, None
            return
        session = self.profiler.session(key, {name: self.server(name).workers for name in servers})
        if start:
            session.start()
        try:
            yield profile, session
        finally:
            profile.update(session.finish())

    @staticmethod
    def window_probe(session: Session | None, probe):
        """`probe` for drive(), which calls it at the start and at the end of the measured window:
        also starts py-spy at the first call, stops it at the second."""
        if session is None:
            return probe
        calls = itertools.count()

        def probed() -> tuple[float, float]:
            value = probe()
            (session.start if next(calls) == 0 else session.stop)()
            return value

        return probed

    @staticmethod
    def with_profile(row: dict, profile: dict) -> dict:
        if profile:
            row["profile"] = profile
        return row

    # --- set-up ------------------------------------------------------------------------------------------
    async def sign_in_people(self, count: int, concurrency: int) -> dict:
        """`count` people sign in at site A (password at the IdP), then open site B (single sign-on)."""
        client = self.services.redis.client()
        # One person first, not counted: the servers' Redis connections and cached metadata exist
        # before the snapshot, so what grows afterwards is the people's own.
        async with new_http() as http:
            await open_site(Browser(http), self.server("site_a").url, self.person())
            await open_site(Browser(http), self.server("site_b").url)
        before = snapshot(client)
        failures: Counter = Counter()
        queue = [self.person() for _ in range(count)]

        async def worker() -> None:
            async with new_http() as http:
                browser = Browser(http)
                while queue:
                    credentials = queue.pop()
                    try:
                        await open_site(browser.fresh(), self.server("site_a").url, credentials)
                        await open_site(browser, self.server("site_b").url)
                    except Exception as error:
                        failures[type(error).__name__ + ": " + str(error)[:60]] += 1
                        continue
                    if len(self.cookies) < 4 * self.connections:
                        self.cookies.append({name: value for name, value in http.cookies.items()})

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result = breakdown(client, before, count - sum(failures.values()))
        client.close()
        result["failures"] = dict(failures)
        result["seconds"] = round(time.monotonic() - started, 1)
        return result

    async def mint(self, count: int, concurrency: int = 4) -> list[dict]:
        """`count` token responses of site A: code grants in signed-in IdP sessions (no password)."""
        minted: list[dict] = []
        failures = Counter()
        numbers = iter(range(count))

        async def worker(slot: int) -> None:
            async with new_http() as http:
                browser = Browser(http)
                for _ in numbers:
                    browser.fresh().http.cookies.set("idp_sessionid", self.cookies[slot]["idp_sessionid"])
                    try:
                        answer, _ = await authorize(browser, self.idp, self.site_a, None)
                    except Exception as error:
                        failures[str(error)[:60]] += 1
                        continue
                    minted.append(answer)

        await asyncio.gather(*(worker(slot % len(self.cookies)) for slot in range(concurrency)))
        if len(minted) < count:
            raise RuntimeError(f"minted {len(minted)} of {count} tokens: {dict(failures)}")
        return minted

    def tokens_file(self, name: str, tokens: list[dict]) -> Path:
        path = self.workdir / name
        path.touch(mode=0o600)
        path.write_text("".join(answer["refresh_token"] + "\n" for answer in tokens))
        return path

    # --- wrk scenarios -------------------------------------------------------------------------------------
    def wrk(self, key: str, name: str, server: str, path: str, script: str, env: dict, *, warm_env=None, **extra):
        url = self.server(server).url + path
        common = {
            "connections": self.connections,
            "threads": self.generator_cores,
            "cores": self.services.generator_cores,
            "workdir": self.workdir,
            "script": script,
        }
        if self.warmup:
            run_wrk(url, seconds=self.warmup, env=warm_env or env, **common)
        cpu0 = self.probe(server)
        with self.profiled(key, server) as (profile, _):
            run = run_wrk(url, seconds=self.seconds, env=env, **common)
            cpu1 = self.probe(server)
        statuses = dict(run.statuses)
        for kind, count in run.socket_errors.items():
            statuses[f"socket {kind}"] = count
        notes = []
        if run.exhausted:
            notes.append(f"{run.exhausted} requests had no fresh refresh token left")
        row = self.row(
            key,
            name,
            "req/s",
            operations=run.requests,
            seconds=run.seconds,
            latency_ms=run.latency_ms,
            statuses=statuses,
            server_cpu=cpu1[0] - cpu0[0],
            backing_cpu=cpu1[1] - cpu0[1],
            generator_cpu=run.generator_cpu_seconds,
            notes=notes,
            load_generator="wrk",
            **extra,
        )
        return self.with_profile(row, profile)

    def basic(self) -> str:
        import base64

        client = self.site_a
        return base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()

    def run_bare(self) -> list[dict]:
        return [self.wrk("bare", SCENARIOS["bare"], "idp", "/-/bench/bare/", "get", {})]

    def run_session(self) -> list[dict]:
        cookie = f"idp_sessionid={self.cookies[0]['idp_sessionid']}"
        return [self.wrk("session", SCENARIOS["session"], "idp", "/-/bench/session/", "get", {"BENCH_COOKIE": cookie})]

    def access_token(self) -> str:
        if "access" not in self.tokens:
            self.tokens["access"] = asyncio.run(self.mint(1))[0]["access_token"]
        return self.tokens["access"]

    def run_userinfo(self) -> list[dict]:
        env = {"BENCH_BEARER": self.access_token()}
        return [self.wrk("userinfo", SCENARIOS["userinfo"], "idp", "/o/userinfo/", "get", env)]

    def run_introspect(self) -> list[dict]:
        env = {"BENCH_BASIC": self.basic(), "BENCH_BODY": urlencode({"token": self.access_token()})}
        return [self.wrk("introspect", SCENARIOS["introspect"], "idp", "/o/introspect/", "post", env)]

    def run_refresh(self) -> list[dict]:
        spare = 2 * self.connections + 20
        minted = asyncio.run(self.mint(2 * spare))
        warm = {"BENCH_BASIC": self.basic(), "BENCH_TOKENS_FILE": str(self.tokens_file("warm.tokens", minted[:spare]))}
        env = {"BENCH_BASIC": self.basic(), "BENCH_TOKENS_FILE": str(self.tokens_file("run.tokens", minted[spare:]))}
        try:
            return [self.wrk("refresh", SCENARIOS["refresh"], "idp", "/o/token/", "refresh", env, warm_env=warm)]
        finally:
            for name in ("warm.tokens", "run.tokens"):
                (self.workdir / name).unlink(missing_ok=True)

    def run_page(self) -> list[dict]:
        cookie = f"site_a_sessionid={self.cookies[0]['site_a_sessionid']}"
        for server in ("site_a", "site_a_plain"):
            answer = httpx.get(self.server(server).url + "/", headers={"Cookie": cookie, "Accept": "text/html"})
            if answer.status_code != 200:
                raise RuntimeError(f"{server}: the signed-in page answered {answer.status_code}")
        env = {"BENCH_COOKIE": cookie, "BENCH_ACCEPT": "text/html"}
        with_sso = self.wrk("page_sso", "8a. signed-in page, site A with sso_client", "site_a", "/", "get", env)
        plain = self.wrk(
            "page_plain", "8b. same page, sso_client's middleware removed", "site_a_plain", "/", "get", env
        )
        cost = (plain["throughput"] / with_sso["throughput"] - 1) * 100 if with_sso["throughput"] else None
        with_sso["sso_client_cost_percent"] = round(cost, 1) if cost is not None else None
        if with_sso["server_cpu_ms_per_op"] and plain["server_cpu_ms_per_op"]:
            cpu_cost = (with_sso["server_cpu_ms_per_op"] / plain["server_cpu_ms_per_op"] - 1) * 100
            with_sso["sso_client_cpu_cost_percent"] = round(cpu_cost, 1)
        return [with_sso, plain]

    # --- flow scenarios -------------------------------------------------------------------------------------
    def run_signin(self) -> list[dict]:
        async def flow(browser: Browser, number: int) -> None:
            await authorize(browser, self.idp, self.site_a, self.person())

        with self.profiled("signin", "idp", start=False) as (profile, session):
            run = asyncio.run(
                drive(
                    flow,
                    concurrency=self.connections,
                    warmup=self.warmup,
                    seconds=self.seconds,
                    probe=self.window_probe(session, lambda: self.probe("idp")),
                )
            )
        row = self.flow_row("signin", SCENARIOS["signin"], "flows/s", run, requests_per_flow=5)
        return [self.with_profile(row, profile)]

    def flow_row(self, key: str, name: str, unit: str, run, **extra) -> dict:
        failures = {f"flow failed: {reason}": count for reason, count in run.failures.items()}
        return self.row(
            key,
            name,
            unit,
            operations=run.flows,
            seconds=run.seconds,
            latency_ms=run.latency_ms,
            statuses={**run.statuses, **failures},
            server_cpu=run.server_cpu_seconds,
            backing_cpu=run.backing_cpu_seconds,
            generator_cpu=run.generator_cpu_seconds,
            load_generator="httpx (async)",
            requests=run.requests,
            failed_flows=run.failed,
            **extra,
        )

    def idp_log_requests(self, since: int) -> tuple[int, Counter]:
        """Requests the IdP logged after byte `since` of its log, by path; and the new end."""
        log = self.server("idp").process.log_path
        with log.open("rb") as handle:
            handle.seek(since)
            data = handle.read()
        paths: Counter = Counter()
        for line in data.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "request_finished":
                request = str(record.get("request", ""))
                paths[request.split(" ")[-1].split("?")[0] if request else "?"] += 1
        return since + len(data), paths

    def run_sso_hop(self) -> list[dict]:
        pool = [cookies["idp_sessionid"] for cookies in self.cookies]
        site_b = self.server("site_b").url
        idp_host = self.idp.url.split("/")[2]
        hops: Counter = Counter()
        idp_by_browser = Counter()

        async def flow(browser: Browser, number: int) -> None:
            browser.http.cookies.set("idp_sessionid", pool[number % len(pool)])
            hops[await open_site(browser, site_b)] += 1
            idp_by_browser["requests"] += browser.hosts[idp_host]
            browser.hosts.clear()

        # At concurrency 1: end-to-end latency, redirects, and the IdP's requests not from the browser.
        offset = self.server("idp").process.log_path.stat().st_size
        single = asyncio.run(
            drive(
                flow,
                concurrency=1,
                warmup=1.0,
                seconds=min(self.seconds, 5.0),
                probe=lambda: self.probe("idp", "site_b"),
            )
        )
        time.sleep(0.5)
        _, paths = self.idp_log_requests(offset)
        browser_requests = idp_by_browser["requests"]
        logged = sum(paths.values())
        flows_seen = sum(hops.values())
        server_to_server = (logged - browser_requests) / flows_seen if flows_seen else None
        redirects = hops.most_common(1)[0][0] if hops else None
        hops.clear()
        with self.profiled("sso_hop", "idp", "site_b", start=False) as (profile, session):
            run = asyncio.run(
                drive(
                    flow,
                    concurrency=self.connections,
                    warmup=self.warmup,
                    seconds=self.seconds,
                    probe=self.window_probe(session, lambda: self.probe("idp", "site_b")),
                )
            )
        row = self.with_profile(self.flow_row("sso_hop", SCENARIOS["sso_hop"], "hops/s", run), profile)
        row.update(
            redirects=redirects,
            server_to_server_calls=round(server_to_server, 2) if server_to_server is not None else None,
            idp_requests_by_path_at_concurrency_1={path: count for path, count in paths.most_common()},
            p50_ms_concurrency_1=round(single.latency_ms["p50"], 2),
            p99_ms_concurrency_1=round(single.latency_ms["p99"], 2),
            throughput_concurrency_1=round(single.flows / single.seconds, 1) if single.seconds else None,
            server_cpu_note="IdP and site B workers together",
        )
        return [row]

    def run_fanout(self) -> list[dict]:
        return [self.fanout(sites) for sites in FANOUT_SITES]

    def fanout(self, sites: int) -> dict:
        """Sign-outs at the IdP, one at a time, of people signed in at `sites` fan-out clients."""
        clients = [self.fanout_client(index) for index in range(sites)]
        budget = max(self.seconds, 5.0)

        async def measure() -> dict:
            latencies, delivered, cpu, backing, statuses = [], [], [], [], Counter()
            missing = 0
            generator = 0.0
            deadline = time.monotonic() + budget
            async with new_http() as http, new_http() as receiver:
                browser = Browser(http)
                while time.monotonic() < deadline or len(latencies) < 5:
                    browser.fresh()
                    answer, _ = await authorize(browser, self.idp, clients[0], self.person())
                    sid = unverified_claims(answer["id_token"])["sid"]
                    for client in clients[1:]:
                        await authorize(browser, self.idp, client, None)
                    gen0 = time.process_time()
                    cpu0 = self.probe("idp")
                    started = time.monotonic()
                    query = urlencode({"id_token_hint": answer["id_token"], "client_id": clients[0].client_id})
                    signed_out = await http.get(f"{self.idp.url}/o/logout/?{query}")
                    ended = time.monotonic()
                    cpu1 = self.probe("idp")
                    generator += time.process_time() - gen0
                    statuses[str(signed_out.status_code)] += 1
                    latencies.append((ended - started) * 1000)
                    cpu.append(cpu1[0] - cpu0[0])
                    backing.append(cpu1[1] - cpu0[1])
                    wait_until = time.monotonic() + 10
                    while True:
                        record = (await receiver.get(f"{self.receiver_url}/stats")).json().get(sid)
                        if record and record[0] >= sites:
                            delivered.append((record[1] - started) * 1000)
                            break
                        if time.monotonic() > wait_until:
                            missing += 1
                            break
                        await asyncio.sleep(0.005)
            return locals()

        from bench.flows import percentiles

        found = asyncio.run(measure())
        count = len(found["latencies"])
        total = sum(found["latencies"]) / 1000
        statuses = dict(found["statuses"])
        if found["missing"]:
            statuses["logout token missing after 10 s"] = found["missing"]
        row = self.row(
            f"fanout{sites}",
            f"9. back-channel logout fan-out to {sites} sites",
            "sign-outs/s",
            operations=count,
            seconds=total,
            latency_ms=percentiles(found["latencies"]),
            statuses=statuses,
            server_cpu=sum(found["cpu"]),
            backing_cpu=sum(found["backing"]),
            generator_cpu=found["generator"],
            load_generator="httpx (async), concurrency 1",
            sites=sites,
            all_delivered_ms=percentiles(found["delivered"]),
        )
        row["note"] = "sign-outs one at a time; throughput = 1 / mean sign-out time"
        if self.profiler is not None:
            row["profile_skipped"] = (
                "each measured sign-out lasts milliseconds between unmeasured sign-ins at the IdP (the set-up), "
                "and py-spy cannot be paused: a profile would mostly show the set-up"
            )
        return row

    # --- memory and processes -------------------------------------------------------------------------------
    def rss(self) -> dict:
        return {name: server.rss_mib() for name, server in self.services.servers.items()}


def new_secret() -> str:
    return secrets.token_urlsafe(32)
