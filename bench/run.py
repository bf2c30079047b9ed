"""`make bench`: throughput and latency of the product's flows, as ratios to a bare Django view.

Starts the whole stack as production runs it (gunicorn, DEBUG off, a private redis-server), then
drives each flow from a pool of client threads for a fixed time and reports requests per second,
median and 95th-percentile latency, and throughput relative to the baseline: a bare Django view
(`/-/health/live/` of site A) on the same gunicorn and middleware stack. Only 127.0.0.1 is ever
contacted; every loop is bounded in time. A benchmark, not a test: it asserts nothing.

    make bench                      # 5 s per flow, 8 client threads
    make bench BENCH_ARGS="--seconds 10 --threads 16"
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "idp")]

from devstack.processes import free_port  # noqa: E402
from devstack.redis_server import RedisServer  # noqa: E402
from devstack.stack import IDP, Stack  # noqa: E402
from idp_server.signing_key import generate_rsa_private_key_pem, write_private_file  # noqa: E402
from tests.e2e.oidc import AuthRequest, Client, Provider  # noqa: E402
from tests.e2e.visitor import Visitor  # noqa: E402


@dataclass
class Result:
    flow: str
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    errors: int
    vs_baseline: float = 1.0


def drive(flow: str, make_worker: Callable[[], Callable[[], int]], *, threads: int, seconds: float) -> Result:
    """Run `threads` workers for `seconds`; each call of a worker is one iteration of the flow.

    A worker returns how many HTTP requests its iteration made (for throughput in requests).
    """
    latencies: list[float] = []
    counts = {"requests": 0, "errors": 0}
    lock = threading.Lock()
    workers = [make_worker() for _ in range(threads)]  # set-up (sign-ins) is not timed
    deadline = time.monotonic() + seconds

    def loop(work: Callable[[], int]) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                made = work()
                failed = 0
            except Exception:
                made, failed = 1, 1
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                counts["requests"] += made
                counts["errors"] += failed

    pool = [threading.Thread(target=loop, args=(work,)) for work in workers]
    began = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    took = time.monotonic() - began
    ordered = sorted(latencies) or [0.0]
    return Result(
        flow=flow,
        requests=counts["requests"],
        seconds=round(took, 2),
        per_second=round(counts["requests"] / took, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 2),
        p95_ms=round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
        errors=counts["errors"],
    )


def flows(stack: Stack, alice: tuple[str, str]) -> dict[str, Callable[[], Callable[[], int]]]:
    site_a, site_b = stack.env["SITE_A_URL"], stack.env["SITE_B_URL"]
    idp = Provider(stack.url(IDP))
    client_a = Client("site-a", stack.env["SITE_A_CLIENT_SECRET"], f"{site_a}/sso/callback/")

    def baseline():
        session = requests.Session()
        return lambda: session.get(f"{site_a}/-/health/live/", timeout=30).raise_for_status() or 1

    def signed_in_page():
        person = Visitor()
        person.sign_in(f"{site_a}/", *alice)

        def view() -> int:
            response = person.browser.get(f"{site_a}/", allow_redirects=False, timeout=30)
            if response.status_code != 200:
                raise RuntimeError(response.status_code)
            return 1

        return view

    def discovery():
        session = requests.Session()
        url = f"{idp.issuer}/.well-known/openid-configuration"
        return lambda: session.get(url, timeout=30).raise_for_status() or 1

    def token_refresh():
        request = AuthRequest(client_a)
        tokens = idp.exchange(request, idp.sign_in(requests.Session(), request, *alice)["code"]).json()
        chain = {"refresh_token": tokens["refresh_token"]}

        def refresh() -> int:
            answer = idp.token(client_a, grant_type="refresh_token", refresh_token=chain["refresh_token"])
            answer.raise_for_status()
            chain["refresh_token"] = answer.json()["refresh_token"]
            return 1

        return refresh

    def sso_sign_in_at_b():
        person = Visitor()
        person.sign_in(f"{site_a}/", *alice)
        idp_cookie = person.cookie("idp_sessionid")

        def sign_in() -> int:
            browser = Visitor()
            browser.browser.cookies.set("idp_sessionid", idp_cookie)
            visit = browser.visit(f"{site_b}/")
            if visit.page.status_code != 200 or visit.shows_login_form():
                raise RuntimeError("not signed in")
            return len(visit.hops)

        return sign_in

    return {
        "baseline: bare Django view": baseline,
        "signed-in page view (site A)": signed_in_page,
        "discovery document (IdP)": discovery,
        "token refresh with rotation (IdP)": token_refresh,
        "single sign-on at site B (4 requests + token exchange)": sso_sign_in_at_b,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per flow")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="sso-bench-"))
    redis_server = RedisServer(state / "redis").start()
    write_private_file(state / "signing.pem", generate_rsa_private_key_pem())
    alice = ("alice", "bench-" + secrets.token_urlsafe(8))
    env = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "OIDC_RSA_PRIVATE_KEY_FILE": str(state / "signing.pem"),
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite:///{state / 'idp.sqlite3'}",
        "DEMO_PASSWORD": alice[1],
        "ADMIN_PASSWORD": "admin-" + secrets.token_urlsafe(8),
        "SITE_A_CLIENT_SECRET": secrets.token_urlsafe(40),
        "SITE_B_CLIENT_SECRET": secrets.token_urlsafe(40),
    }
    stack = Stack(state_dir=state, ports={name: free_port() for name in ("idp", "site_a", "site_b")}, env=env)
    results: list[Result] = []
    try:
        stack.prepare()
        stack.start_all()
        for name, make_worker in flows(stack, alice).items():
            result = drive(name, make_worker, threads=args.threads, seconds=args.seconds)
            results.append(result)
            print(f"  measured: {name}", file=sys.stderr)
    finally:
        stack.stop()
        redis_server.stop()

    baseline = results[0].per_second or 1
    for result in results:
        result.vs_baseline = round(result.per_second / baseline, 3)
    print(f"\n{args.threads} client threads, {args.seconds:g} s per flow, on this machine's {os.cpu_count()} cores\n")
    print(f"{'flow':58} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6} {'vs baseline':>11}")
    for result in results:
        print(
            f"{result.flow:58} {result.per_second:8.1f} {result.p50_ms:8.2f} {result.p95_ms:8.2f} "
            f"{result.errors:6d} {result.vs_baseline:11.3f}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / time.strftime("%Y%m%d-%H%M%S.json")
    path.write_text(
        json.dumps(
            {"threads": args.threads, "seconds": args.seconds, "results": [asdict(result) for result in results]},
            indent=2,
        )
    )
    print(f"\nSaved to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
