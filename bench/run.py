"""`make bench`: the product's throughput and latency per server core, measured honestly.

    make bench                                   # every scenario, 10 s each (under 10 minutes)
    make bench BENCH_ARGS="--only bare,userinfo --seconds 3"
    make bench BENCH_ARGS=--scale                # also a large database (100,000 people, 1,000,000 tokens)
    make bench BENCH_ARGS="--only bare,userinfo --seconds 3 --profile"   # where the servers' time goes

What runs: a private redis-server, PostgreSQL (TEST_DATABASE_URL, or a private server from the
system's initdb/postgres; else SQLite, and the report says so), and the IdP, site A, site B and
site A without sso_client's middleware, each as ONE gunicorn sync worker (WEB_CONCURRENCY=1,
GUNICORN_THREADS=1), DEBUG off. The servers, redis-server and PostgreSQL are pinned to the first
core this process may use; the load generator (wrk, or this process's async httpx driver, and the
back-channel logout receiver) to the others. Only 127.0.0.1 is ever contacted.

What is measured, per scenario (bench.scenarios.SCENARIOS): after a warm-up that is discarded,
for --seconds: operations per second per server core; p50/p95/p99 latency; the server worker's
CPU per operation from /proc/<pid>/stat (and redis-server's and PostgreSQL's beside it); every
answer that was not 2xx/3xx, by status; and the load generator's own CPU, flagged when above 90%
of its cores (the figure is then the generator's limit, not the server's). Also: each server's
RSS, and Redis memory per signed-in person (P people sign in at the IdP and both sites through
the real flows), by key kind. Results go to bench/results/: a JSON file with everything,
results.md (also printed) and results.png. Targets are judged met or missed, never hidden.
With --profile, py-spy samples the server workers during each measured window (bench.profile):
collapsed stacks in bench/results/profiles/, and where the time goes, by category, in the report.
A benchmark, not a test: it exits 0 when every scenario ran, whatever the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "idp")]

from bench import report  # noqa: E402
from bench.profile import CATEGORY_NAMES, Profiler  # noqa: E402
from bench.scenarios import FANOUT_SITES, SCENARIOS, Bench, new_secret  # noqa: E402
from bench.services import Services  # noqa: E402
from bench.wrk import WrkMissing, wrk_binary  # noqa: E402
from devstack.processes import free_port  # noqa: E402

#: The access tokens the bench mints must outlive the run (a site would refresh them otherwise).
ACCESS_TOKEN_SECONDS = 12 * 3600
#: Scenarios rerun on the large database (--scale); the page view does not touch the IdP.
SCALE_SCENARIOS = ["bare", "session", "userinfo", "introspect", "refresh", "signin", "sso_hop", "fanout"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="load before measuring, discarded (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections or flows (default 8)")
    parser.add_argument("--people", type=int, default=None, help="people signed in for Redis memory (default 200)")
    parser.add_argument("--scale", action="store_true", help="also on a large database (takes well over 10 minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the server workers during each measured window: where their time goes (bench/profile.py)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results directory")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    if unknown := [name for name in args.only if name not in SCENARIOS]:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.people is None:
        args.people = 10_000 if args.scale else 200
    return args


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import django

    try:
        commit = subprocess.run(
            [shutil.which("git") or "git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "django": django.get_version(),
        "kernel": platform.release(),
        "commit": commit or "unknown",
    }


def split_cores() -> tuple[set[int], set[int], str | None]:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return set(usable), set(usable), "only one usable core: servers and load generator share it"
    return {usable[0]}, set(usable[1:]), None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(bench: Bench, names: list[str], problems: list[str], label: str = "") -> list[dict]:
    rows = []
    for name in names:
        log(f"{label}measuring {SCENARIOS[name]}")
        try:
            rows += getattr(bench, f"run_{name}")()
        except Exception as error:
            problems.append(f"{label}{SCENARIOS[name]}: failed: {type(error).__name__}: {str(error)[:300]}")
            log(problems[-1])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        wrk_binary()
    except WrkMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` cleans up like Ctrl-C
    server_cores, generator_cores, core_problem = split_cores()
    os.sched_setaffinity(0, generator_cores)  # this process is (part of) the load generator
    began = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    state = Path(tempfile.mkdtemp(prefix="sso-bench-"))
    services = Services(state=state, server_cores=server_cores, generator_cores=generator_cores)
    problems = [core_problem] if core_problem else []
    result: dict = {}
    try:
        log("starting the database and redis-server")
        services.start_backing()
        log(f"database: {services.database}; migrating and seeding the demo clients")
        services.prepare(ACCESS_TOKEN_SECONDS)
        password = "bench-" + new_secret()
        fanout_secret = new_secret()
        people = args.people + 3000
        log(f"seeding {people:,} people (one Argon2id hash, shared)")
        services.idp_task("seed-people", str(people), "bench", extra_env={"BENCH_PASSWORD": password})
        receiver_port = free_port()
        receiver_url = f"http://127.0.0.1:{receiver_port}"
        receiver = services.start_helper("receiver", [sys.executable, "-m", "bench.receiver", str(receiver_port)])
        receiver.wait_for_http(f"{receiver_url}/stats")
        services.idp_task(
            "register-fanout", str(max(FANOUT_SITES)), receiver_url, extra_env={"BENCH_FANOUT_SECRET": fanout_secret}
        )
        workdir = state / "work"
        workdir.mkdir(mode=0o700)
        bench = Bench(
            services,
            seconds=args.seconds,
            warmup=args.warmup,
            connections=args.connections,
            password=password,
            fanout_secret=fanout_secret,
            receiver_url=receiver_url,
            workdir=workdir,
            profiler=Profiler(out=args.out / "profiles", cores=generator_cores) if args.profile else None,
        )

        people_now = min(args.people, 200) if args.scale else args.people
        log(
            "starting the servers: one sync gunicorn worker each, pinned to core(s) "
            f"{sorted(server_cores)}; load generator on {sorted(generator_cores)}"
        )
        services.start_servers(pinned=True)
        log(f"signing {people_now:,} people in at the IdP, site A and site B (Redis memory)")
        memory = asyncio.run(bench.sign_in_people(people_now, concurrency=args.connections))
        if memory["failures"]:
            problems.append(f"sign-ins for the Redis measurement failed: {memory['failures']}")
        if not bench.cookies:
            raise RuntimeError(f"nobody could sign in: {memory['failures']}")
        rows = measure(bench, args.only, problems)
        rss = bench.rss()
        redis_version = services.redis.client().info("server")["redis_version"]

        scale = None
        if args.scale:
            scale = run_scale(bench, services, args, rows, problems)
        result = {
            "started": started,
            "machine": machine(),
            "database": services.database,
            "database_kind": services.database_kind,
            "redis_version": redis_version,
            "server_layout": f"one sync gunicorn worker each (WEB_CONCURRENCY=1, GUNICORN_THREADS=1), with "
            f"redis-server and the database, pinned to core {sorted(server_cores)}",
            "generator_layout": f"wrk -t{len(generator_cores)} / async httpx, "
            f"pinned to core(s) {sorted(generator_cores)}",
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": args.connections,
            "scenarios": rows,
            "targets": report.targets({row["key"]: row for row in rows}, memory),
            "redis_memory": memory,
            "rss_mib": rss,
            "scale": scale,
            "problems": problems,
        }
        if args.profile:
            result["profile"] = {
                "tool": Profiler.describe(),
                "note": "throughput and latency above were measured with py-spy attached (non-blocking)",
                "categories": CATEGORY_NAMES,
            }
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        return 130
    finally:
        services.close()
        shutil.rmtree(state, ignore_errors=True)
    result["wall_seconds"] = round(time.monotonic() - began)
    json_path, md_path, png_path = report.write(result, args.out)
    print(report.markdown(result))
    print(f"Wall time {result['wall_seconds']} s. Results: {json_path}, {md_path}, {png_path}")
    return 1 if any("failed" in problem for problem in problems) else 0


def run_scale(bench: Bench, services: Services, args: argparse.Namespace, small: list[dict], problems: list[str]):
    """Seed the large database, rerun the IdP's flows, then Redis memory with --people signed in."""
    log("--scale: seeding 100,000 people and 1,000,000 tokens (bulk inserts)")
    # The large population never signs in: its one shared password hash is of a random password.
    seeded = services.idp_task("scale-seed", "100000", "1000000", extra_env={"BENCH_PASSWORD": new_secret()})
    counts = services.idp_task("counts")
    names = [name for name in SCALE_SCENARIOS if name in args.only]
    if bench.profiler is not None:
        bench.profiler.prefix = "large-"
    large = measure(bench, names, problems, label="large database: ")
    by_key = {row["key"]: row for row in large}
    comparison = []
    for row in small:
        if (other := by_key.get(row["key"])) is None:
            continue
        ratio = other["per_server_core"] / row["per_server_core"] if row["per_server_core"] else float("nan")
        p99_ratio = other["latency_ms"]["p99"] / row["latency_ms"]["p99"] if row["latency_ms"]["p99"] else float("nan")
        comparison.append(
            {
                "scenario": row["scenario"],
                "small": row["per_server_core"],
                "large": other["per_server_core"],
                "ratio": ratio,
                "small_p99": row["latency_ms"]["p99"],
                "large_p99": other["latency_ms"]["p99"],
                "met": ratio >= 1 - report.SCALE_TOLERANCE and p99_ratio <= 1 + report.SCALE_TOLERANCE,
            }
        )
    log(f"--scale: signing {args.people:,} people in (servers not pinned, 2 workers x 4 threads: set-up only)")
    services.start_servers(pinned=False, workers=2, threads=4)
    memory = asyncio.run(bench.sign_in_people(args.people, concurrency=16))
    return {
        "seeded": f"{seeded}; counts {counts}",
        "comparison": comparison,
        "scenarios": large,
        "redis_memory": memory,
    }


if __name__ == "__main__":
    sys.exit(main())
