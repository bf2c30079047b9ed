"""`make soak`: many virtual people making whole journeys for minutes, while faults are injected.

    make soak                                          # 200 people, 4 minutes, every fault
    make soak SOAK_ARGS="--people 50 --duration 90"
    make soak SOAK_ARGS="--faults redis,postgres --no-aof"
    make soak SOAK_ARGS=--help

What runs (soak.services): a private redis-server (append-only file on, as in production;
--no-aof without), PostgreSQL (TEST_DATABASE_URL, or a private server from the system's
binaries; else SQLite, without the PostgreSQL fault), the IdP, site A, site B and the
back-channel worker as production runs them (DJANGO_DEBUG off, gunicorn), and a small proxy in
front of the IdP that can make it slow. Only 127.0.0.1 is ever contacted.

What happens: the virtual people (soak.people) each make journeys with a cookie jar of their
own; after a warm-up the faults (soak.faults) run one after the other, spread over the duration,
each with its window, observations and recovery time; the IdP's tables are compared around each
(soak.ledger). Every answer is judged expected or unexpected (soak.classify). The run stops by
itself: no journey starts after the duration, and everything is stopped by a hard deadline.

Results: soak/results/soak-<time>.json (everything) and .md (the summary, also printed); when
anything unexpected happened, the processes' logs too (soak-<time>-logs/, gzipped: each request
the soak made carries an X-Request-ID the report names). Exit code 0 when nothing unexpected
happened and every bound held, 1 otherwise, 2 when the soak could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [path for path in (str(ROOT), str(ROOT / "idp")) if path not in sys.path]

from devstack.processes import ProcessFailed  # noqa: E402
from soak import report  # noqa: E402
from soak.bounds import (  # noqa: E402
    ACCESS_TOKEN_SECONDS,
    FREE_PAGE_SECONDS,
    HOLD_SECONDS,
    IDP_ANSWER_SECONDS,
    LOGOUT_PROPAGATION_SECONDS,
    RECOVERY,
    REFRESH_MARGIN_SECONDS,
    SITE_ANSWER_SECONDS,
    SLOW_IDP_LATENCY_SECONDS,
)
from soak.classify import classify  # noqa: E402
from soak.faults import FAULTS, Context  # noqa: E402
from soak.ledger import Ledger, compare  # noqa: E402
from soak.people import Person, World, sign_in_everywhere  # noqa: E402
from soak.services import Services  # noqa: E402

#: People signed in once at the start and never again: their rows must not move (soak.ledger).
IDLE_PEOPLE = 6
#: Accounts the fault scripts' probes use (each probe has a fresh cookie jar).
PROBE_ACCOUNTS = 12
#: People begin their first journey at this rate (a sign-in costs the IdP an Argon2id hash).
RAMP_PEOPLE_PER_SECOND = 10
#: After the duration, people finish the step they are in; past this they are stopped.
STOP_GRACE_SECONDS = 30.0


@dataclass
class Options:
    people: int = 200
    duration: float = 240.0
    faults: list[str] = field(default_factory=lambda: list(FAULTS))
    aof: bool = True
    think: tuple[float, float] = (4.0, 10.0)
    pages: tuple[int, int] = (4, 10)
    warmup: float = 20.0
    seed: int = 12
    access_token_seconds: int = ACCESS_TOKEN_SECONDS
    refresh_margin_seconds: int = REFRESH_MARGIN_SECONDS
    slow_latency: float = SLOW_IDP_LATENCY_SECONDS
    out: Path = ROOT / "soak" / "results"
    keep_logs: bool = False
    max_requests: int = 1_000_000

    def hard_deadline(self) -> float:
        """The whole soak, set-up excluded, never runs longer than this."""
        per_fault = max(bound.allowed for bound in RECOVERY.values()) + 180
        return self.warmup + self.duration + per_fault * len(self.faults) + STOP_GRACE_SECONDS + 60


def pair(text: str, kind: type) -> tuple:
    low, high = (kind(part) for part in text.split(","))
    if low > high or low < 0:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with 0 <= LOW <= HIGH, not {text!r}")
    return low, high


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m soak.run", description=__doc__.splitlines()[0])
    defaults = Options()
    parser.add_argument("--people", type=int, default=defaults.people, help="virtual people (default 200)")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds of soak (default 240)")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated, in order, or 'none' (default all: {','.join(FAULTS)})",
    )
    parser.add_argument("--no-aof", action="store_true", help="Redis without its append-only file")
    parser.add_argument("--think", type=lambda t: pair(t, float), default="4,10", help="pause between pages, s")
    parser.add_argument("--pages", type=lambda t: pair(t, int), default="4,10", help="page views per journey")
    parser.add_argument("--warmup", type=float, default=defaults.warmup, help="seconds before the first fault")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="the people's random choices")
    parser.add_argument("--access-token-seconds", type=int, default=defaults.access_token_seconds)
    parser.add_argument("--refresh-margin-seconds", type=int, default=defaults.refresh_margin_seconds)
    parser.add_argument("--slow-latency", type=float, default=defaults.slow_latency, help="the slow IdP's delay")
    parser.add_argument("--out", type=Path, default=defaults.out, help="results directory")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs even if all went well")
    parser.add_argument("--max-requests", type=int, default=defaults.max_requests, help="stop the people after")
    args = parser.parse_args(argv)
    faults = [] if args.faults.strip() == "none" else [f.strip() for f in args.faults.split(",") if f.strip()]
    if unknown := [name for name in faults if name not in FAULTS]:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
    if args.people < 1 or args.duration <= 0:
        parser.error("--people and --duration must be positive")
    if not 0 < args.refresh_margin_seconds < args.access_token_seconds:
        parser.error("--refresh-margin-seconds must be between 0 and --access-token-seconds")
    return Options(
        people=args.people,
        duration=args.duration,
        faults=faults,
        aof=not args.no_aof,
        think=args.think,
        pages=args.pages,
        warmup=args.warmup,
        seed=args.seed,
        access_token_seconds=args.access_token_seconds,
        refresh_margin_seconds=args.refresh_margin_seconds,
        slow_latency=args.slow_latency,
        out=args.out,
        keep_logs=args.keep_logs,
        max_requests=args.max_requests,
    )


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bounds_stated(options: Options) -> dict:
    return {
        "recovery": {name: {"target": b.target, "allowed": b.allowed} for name, b in RECOVERY.items()},
        "site_answer_seconds": SITE_ANSWER_SECONDS,
        "idp_answer_seconds": IDP_ANSWER_SECONDS,
        "free_page_seconds_while_idp_slow": FREE_PAGE_SECONDS,
        "logout_propagation_seconds": LOGOUT_PROPAGATION_SECONDS,
        "holds": {name: seconds or float(options.refresh_margin_seconds + 2) for name, seconds in HOLD_SECONDS.items()},
    }


# --- the soak itself --------------------------------------------------------------------------------
async def soak(options: Options, services: Services, say=log) -> dict:
    from soak.record import Recorder

    recorder = Recorder()
    accounts = services.accounts
    world = World(
        recorder=recorder,
        idp=services.idp_public_url,
        sites=services.site_urls,
        parts=services.parts_by_netloc,
        password=accounts.password,
        think=options.think,
        pages=options.pages,
        max_requests=options.max_requests,
    )
    cpu_began, wall_began = time.process_time(), time.monotonic()

    say(f"signing {len(accounts.idle)} idle people in at A and B (their rows must never move)")
    idle = [Person(world, name, f"idle {n}", role="setup") for n, name in enumerate(accounts.idle)]
    await asyncio.gather(*(sign_in_everywhere(person) for person in idle))
    for person in idle:
        await person.close()
    ledger = Ledger(services.stack.env["DATABASE_URL"], accounts.idle)
    control_before = await asyncio.to_thread(ledger.snapshot, recorder.now())

    crowd = [
        Person(world, name, f"person {n}", seed=options.seed * 100_003 + n) for n, name in enumerate(accounts.crowd)
    ]
    ramp = min(options.warmup, len(crowd) / RAMP_PEOPLE_PER_SECOND)
    began = recorder.now()
    say(f"{len(crowd)} people start their journeys (ramp {ramp:.0f}s); faults from {options.warmup:.0f}s on")
    tasks = [asyncio.create_task(person.live(ramp * n / len(crowd))) for n, person in enumerate(crowd)]

    windows = []
    context = Context(
        services=services,
        world=world,
        ledger=ledger,
        windows=windows,
        log=lambda message: say(f"{recorder.now():6.1f}s  {message}"),
        aof=options.aof,
        access_token_seconds=options.access_token_seconds,
        refresh_margin_seconds=options.refresh_margin_seconds,
        slow_latency=options.slow_latency,
    )
    results, control = [], None
    spacing = (options.duration - options.warmup) / max(1, len(options.faults))
    for number, name in enumerate(options.faults):
        await asyncio.sleep(max(0.0, began + options.warmup + number * spacing - recorder.now()))
        if control is None:  # the warm-up, with no fault: what is compared must not have moved
            control = compare(control_before, await asyncio.to_thread(ledger.snapshot, recorder.now()))
        results.append(await FAULTS[name](context).run())
    await asyncio.sleep(max(0.0, began + options.duration - recorder.now()))

    say("time is up: people finish the step they are in")
    world.stop_at = recorder.now()
    done, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failures = [task.exception() for task in done if task.exception() is not None]
    await asyncio.gather(*(person.close() for person in crowd))
    final = await asyncio.to_thread(ledger.snapshot, recorder.now())
    if control is None:
        control = compare(control_before, final)
    whole_run = compare(control_before, final)
    metrics = await asyncio.to_thread(report.scrape_metrics, services)
    cpu = time.process_time() - cpu_began
    wall = time.monotonic() - wall_began

    verdicts = classify(recorder.answers, recorder.events, windows)
    for result in results:
        for check in result.checks:
            if not check.passed:
                verdicts.note(
                    "a fault's check failed",
                    {"fault": result.label, "check": check.what, "detail": check.detail},
                )
        if result.skipped is None and result.end is not None and not result.met_allowed:
            verdicts.note(
                "recovery slower than allowed",
                {"fault": result.label, "allowed": result.bound["allowed"], "recovery": result.recovery_seconds},
            )
    for what, comparison in [("warm-up", control), ("whole run", whole_run)] + [
        (result.label, result.ledger) for result in results if result.ledger
    ]:
        if not comparison["identical"]:
            verdicts.note("the IdP's data changed where no journey may change it", {"when": what, **comparison})
    for failure in failures:
        verdicts.note("a virtual person's task failed", {"error": f"{type(failure).__name__}: {failure}"[:300]})

    return {
        "recorder": recorder,
        "world": world,
        "windows": windows,
        "faults": results,
        "verdicts": verdicts,
        "ledger": {"control (warm-up, no fault)": control, "whole run": whole_run},
        "metrics": metrics,
        "generator": {"cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1), "share_of_one_core": cpu / wall},
    }


def run_soak(options: Options, *, say=log) -> dict:
    """Start everything, soak, stop everything (whatever happens), write the report; return the result."""
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    began = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="sso-soak-"))
    services = Services(
        state,
        aof=options.aof,
        access_token_seconds=options.access_token_seconds,
        refresh_margin_seconds=options.refresh_margin_seconds,
        log=say,
    )
    outcome: dict = {}
    logs: list[Path] = []
    try:
        services.start(crowd=options.people, probes=PROBE_ACCOUNTS, idle=IDLE_PEOPLE)
        setup_seconds = time.monotonic() - began
        say(f"set up in {setup_seconds:.0f}s; soaking for {options.duration:.0f}s")
        try:
            outcome = asyncio.run(asyncio.wait_for(soak(options, services, say), timeout=options.hard_deadline()))
        except TimeoutError:
            raise ProcessFailed(f"the soak passed its hard deadline ({options.hard_deadline():.0f}s)") from None
        outcome["setup_seconds"] = round(setup_seconds, 1)
        outcome["database"] = services.databases.description
        outcome["redis_version"] = services.redis_version()
    finally:
        services.close()
        if outcome and (outcome["verdicts"].unexpected_total or options.keep_logs):
            logs = services.keep_logs(options.out / f"soak-{stamp}-logs")
            logs.append(report.dump_answers(outcome["recorder"], options.out / f"soak-{stamp}-logs"))
        shutil.rmtree(state, ignore_errors=True)
    result = report.assemble(
        outcome,
        started=started,
        options=options,
        bounds=bounds_stated(options),
        machine=machine(),
        wall_seconds=time.monotonic() - began,
        logs=logs,
    )
    result["paths"] = [str(path) for path in report.write(result, options.out, stamp)]
    return result


def machine() -> dict:
    import django

    try:
        load = os.getloadavg()
    except OSError:
        load = ()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "kernel": platform.release(),
        "load_average_at_end": [round(value, 2) for value in load],
    }


def main(argv: list[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    # Ctrl-C and `kill` both stop everything. SIGINT is set explicitly: a shell that starts this
    # in the background would otherwise leave it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = run_soak(options)
    except KeyboardInterrupt:
        log("interrupted: everything was stopped")
        return 130
    except (ProcessFailed, OSError) as error:
        log(f"the soak could not run: {error}")
        return 2
    print(report.markdown(result))
    print("Results: " + ", ".join(result["paths"]))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
