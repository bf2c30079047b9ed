"""The faults, each scripted and timed: what is done, what is seen while it lasts, and the recovery.

Every fault runs the same way (`Fault.run`): the IdP's tables are snapshotted (soak.ledger), the
fault's probes get ready (a "veteran" signed in at both sites beforehand), the fault begins
(`start`), lasts its hold while its probes look at what people get (`observations`), ends
(`end`: the process started again, the latency removed), and then the recovery is measured by
polling, never by a fixed sleep: from the end until every part's readiness answers 200 and a new
person signs in at A and opens B (and what the fault needs besides). Then the fault's checks, and
a second snapshot compared with the first. The crowd of virtual people goes on all along.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field

import httpx

from soak.bounds import HOLD_SECONDS, POLL_SECONDS, RECOVERY, SLOW_IDP_LATENCY_SECONDS, Bound
from soak.classify import Window
from soak.ledger import Ledger, compare
from soak.people import Person, World, sign_in_everywhere
from soak.services import PARTS, Services


@dataclass
class Check:
    what: str
    passed: bool
    detail: str = ""


@dataclass
class FaultResult:
    name: str
    label: str
    start: float
    end: float | None
    recovered: float | None
    hold_seconds: float
    recovery_seconds: float | None
    bound: dict
    met_target: bool
    met_allowed: bool
    checks: list[Check] = field(default_factory=list)
    observations: dict = field(default_factory=dict)
    ledger: dict = field(default_factory=dict)
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.skipped is not None or (
            self.met_allowed and all(check.passed for check in self.checks) and self.ledger.get("identical", True)
        )

    def as_dict(self) -> dict:
        result = asdict(self)
        result["passed"] = self.passed
        return result


@dataclass(frozen=True)
class Issued:
    """When a veteran's access token was issued: during its sign-in's callback at site A."""

    earliest: float
    latest: float


@dataclass
class Context:
    """What the fault scripts work with."""

    services: Services
    world: World
    ledger: Ledger
    windows: list[Window]
    log: callable
    aof: bool = True
    access_token_seconds: int = 15
    refresh_margin_seconds: int = 5
    slow_latency: float = SLOW_IDP_LATENCY_SECONDS
    holds: dict[str, float] = field(default_factory=lambda: dict(HOLD_SECONDS))
    _probe_numbers: itertools.count = field(default_factory=itertools.count)

    def now(self) -> float:
        return self.world.recorder.now()

    def probe(self, purpose: str) -> Person:
        """A probe person of the fault's own (a fresh cookie jar, one of the probe accounts)."""
        number = next(self._probe_numbers)
        usernames = self.services.accounts.probes
        return Person(self.world, usernames[number % len(usernames)], f"probe {number} ({purpose})", role="probe")

    def hold(self, name: str) -> float:
        """How long the fault lasts; the IdP's faults span a refresh and then a token's expiry."""
        return self.holds.get(name) or float(self.refresh_margin_seconds + 2)


async def ready(services: Services, part: str) -> tuple[int | None, dict]:
    """The part's /-/health/ready/: (status, the problems it names); not recorded as a person's answer."""
    try:
        async with httpx.AsyncClient(timeout=15, trust_env=False) as client:
            response = await client.get(f"{services.url(part)}/-/health/ready/")
        return response.status_code, (response.json().get("problems") or {}) if response.content else {}
    except (httpx.HTTPError, ValueError):
        return None, {}


def describe(failure: BaseException) -> str:
    return f"{type(failure).__name__}: {failure}"[:300]


class Fault:
    name = ""
    label = ""
    restarts: tuple[str, ...] = ()  # the stack's processes this fault kills and starts again
    #: Whether the fault ends at its time whatever its observations are doing (else it waits for them).
    observe_in_background = True

    def __init__(self, context: Context) -> None:
        self.context = context
        self.services = context.services
        self.checks: list[Check] = []
        self.observations: dict = {}
        self.window: Window | None = None
        self.pids_before: dict[str, int] = {}

    @property
    def bound(self) -> Bound:
        return RECOVERY[self.name]

    def check(self, what: str, passed: bool, detail: str = "") -> None:
        self.checks.append(Check(what, bool(passed), detail))

    # --- the script ------------------------------------------------------------------------------
    async def run(self) -> FaultResult:
        context = self.context
        if skipped := self.skip_reason():
            context.log(f"{self.label}: skipped ({skipped})")
            return FaultResult(
                self.name, self.label, context.now(), None, None, 0, None, {}, True, True, skipped=skipped
            )
        before = await asyncio.to_thread(context.ledger.snapshot, context.now())
        try:
            await self.prepare()
        except Exception as failure:  # the product could not even be used before the fault
            self.check("the fault's probes got ready (signed in) before it began", False, describe(failure))
            return FaultResult(
                self.name, self.label, context.now(), None, None, 0, None, asdict(self.bound), False, False, self.checks
            )
        self.pids_before = self.services.pids()
        hold = self.hold_seconds()
        context.log(f"{self.label}: begins (lasts {hold:.0f}s)")
        self.window = Window(self.name, self.label, context.now(), allowed=self.bound.allowed, aof=context.aof)
        self.window_details(self.window)
        context.windows.append(self.window)
        try:
            await self.start()
        except Exception as failure:
            self.check("the fault could be injected", False, describe(failure))
        until = self.window.start + hold
        if self.observe_in_background:
            # The fault ends on time; a look still under way then finishes, and counts, after.
            observing = asyncio.create_task(self.observe(until))
            await self.sleep_until(until)
        else:
            await self.observe(until)
        ended_at = context.now()  # the recovery counts from here: a process's start-up is part of it
        try:
            await self.end()
        except Exception as failure:  # e.g. the process did not start again: the recovery will tell
            self.check("the fault could be ended (the process or server started again)", False, describe(failure))
        self.window.end = ended_at
        context.log(f"{self.label}: ended; measuring the recovery")
        if self.observe_in_background:  # a look still under way finishes while the recovery is polled
            recovered_in, _ = await asyncio.gather(self.recover(), observing)
        else:
            recovered_in = await self.recover()
        if recovered_in is not None:
            self.window.recovered = self.window.end + recovered_in
            context.log(f"{self.label}: every site serves normally {recovered_in:.1f}s after it ended")
        else:
            context.log(f"{self.label}: NOT recovered within {self.bound.allowed:.0f}s")
        try:
            await self.after()
        except Exception as failure:
            self.check("the fault's probes could look at the sites after it", False, describe(failure))
        self.check_processes()
        after = await asyncio.to_thread(context.ledger.snapshot, context.now())
        ledger = compare(before, after)
        return FaultResult(
            name=self.name,
            label=self.label,
            start=round(self.window.start, 2),
            end=round(self.window.end, 2),
            recovered=None if self.window.recovered is None else round(self.window.recovered, 2),
            hold_seconds=round(self.window.end - self.window.start, 2),
            recovery_seconds=None if recovered_in is None else round(recovered_in, 2),
            bound=asdict(self.bound),
            met_target=recovered_in is not None and recovered_in <= self.bound.target,
            met_allowed=recovered_in is not None and recovered_in <= self.bound.allowed,
            checks=self.checks,
            observations=self.observations,
            ledger=ledger,
        )

    def skip_reason(self) -> str | None:
        return None

    def hold_seconds(self) -> float:
        return self.context.hold(self.name)

    def window_details(self, window: Window) -> None:
        pass

    async def prepare(self) -> None:
        pass

    async def start(self) -> None:
        raise NotImplementedError

    async def during(self, until: float) -> None:
        await self.sleep_until(until)

    async def observe(self, until: float) -> None:
        try:
            await self.during(until)
        except Exception as failure:
            self.check("the fault's probes could look at the sites during it", False, describe(failure))
            await self.sleep_until(until)

    async def end(self) -> None:
        raise NotImplementedError

    async def after(self) -> None:
        pass

    # --- helpers ---------------------------------------------------------------------------------
    async def sleep_until(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - self.context.now()))

    async def serving(self) -> bool:
        """Every part is ready, and a new person signs in at A and opens B, first time."""
        for part in PARTS:
            status, _ = await ready(self.services, part)
            if status != 200:
                return False
        newcomer = self.context.probe("newcomer")
        try:
            await newcomer.sign_in("site_a")
            await newcomer.page_view("site_b")
            return True
        except Exception:  # any failure: not yet serving (its answers are recorded and judged)
            return False
        finally:
            await newcomer.close()

    async def recovered(self) -> bool:
        return await self.serving()

    async def recover(self) -> float | None:
        """Seconds from the fault's end until `recovered()` holds, polled; None past the allowed bound."""
        began = self.window.end
        while self.context.now() - began <= self.bound.allowed:
            checking = self.context.now()
            if await self.recovered():
                self.observations["the check that found it serving took (seconds)"] = round(
                    self.context.now() - checking, 2
                )
                return self.context.now() - began
            await asyncio.sleep(POLL_SECONDS)
        return None

    def check_processes(self) -> None:
        """No process of the stack was restarted but the one the fault killed (same pid, running)."""
        pids = self.services.pids()
        restarted = [
            name for name, pid in self.pids_before.items() if name not in self.restarts and pids.get(name) != pid
        ]
        self.check(
            "no other process had to be restarted",
            not restarted,
            f"stopped or replaced: {', '.join(restarted)}" if restarted else "",
        )
        for name in self.services.stopped():
            self.context.log(f"{name} is not running after {self.label}: starting it again so the soak goes on")
            if name == "worker":
                self.services.restart_worker()
            elif name in PARTS:
                self.services.start_part(name)

    async def veteran(self) -> tuple[Person, Issued]:
        """A probe signed in at both sites now; returns it and when its token at A was issued."""
        person = self.context.probe(f"{self.name} veteran")
        began = self.context.now()
        await sign_in_everywhere(person)
        callbacks = [
            answer
            for answer in reversed(self.context.world.recorder.answers)
            if answer.who == person.label and answer.part == "site_a" and answer.path.endswith("/sso/callback/")
        ]
        if callbacks:  # the code exchange, hence the token, happened during this answer
            return person, Issued(callbacks[0].at, callbacks[0].end)
        return person, Issued(began, self.context.now())

    async def veteran_before_refresh(self) -> tuple[Person, Issued]:
        """A veteran, and the wait until its refresh at A is due: the fault then begins with its
        token still valid for a while. Signed in again (three tries) if the sign-in itself took so
        long that the refresh was due already (a very busy machine)."""
        context = self.context
        for _ in range(3):
            person, issued = await self.veteran()
            due = issued.latest + context.access_token_seconds - context.refresh_margin_seconds
            if context.now() < due:
                await self.sleep_until(due + 0.5)
                return person, issued
            await person.close()
        raise RuntimeError("the veteran's sign-in took longer than its token's refresh margin, three times")

    async def readiness_named(self, problem: str, parts, until: float) -> dict[str, bool]:
        """Whether each part's /-/health/ready/ answered 503 naming `problem` before `until`
        (polled; what each answered, and how fast, goes into the observations)."""
        named = dict.fromkeys(parts, False)
        answers: dict[str, Counter] = {part: Counter() for part in parts}
        while self.context.now() < until:
            for part in parts:
                began = self.context.now()
                status, problems = await ready(self.services, part)
                took = self.context.now() - began
                named[part] = named[part] or (status == 503 and problem in problems and began + took <= until)
                answers[part][f"{status} in {'under 1 s' if took < 1 else f'{took:.0f} s'}"] += 1
            await asyncio.sleep(0.5)
        self.observations["/-/health/ready/ while it lasted (status in seconds: count)"] = {
            part: dict(counted) for part, counted in answers.items()
        }
        return named

    async def looks(self, person: Person, site: str, until: float, *, every: float = 0.5) -> list[tuple]:
        """`person` looks at `site` until `until`: [(when, state, seconds)]."""
        seen = []
        while self.context.now() < until:
            state, took = await person.look(site)
            seen.append((round(self.context.now(), 2), state, round(took, 2)))
            await asyncio.sleep(every)
        return seen
