"""Virtual people: each with a cookie jar of their own, making whole journeys as a person would.

A journey: sign in at site A (the IdP asks for the password), open site B (signed in without
one), page views on either site with a pause between them (the sites refresh the short-lived
access tokens behind the pages), sign out at a random site, and check that the other site and
the IdP have signed them out too. Then the next journey, until the soak's time is up.

A step that fails (a fault is on) is tried again after a pause, as a person would reload, for at
most STEP_PATIENCE_SECONDS; then the journey is given up and a new one begins. Every answer is
recorded (soak.record); what a person notices beyond one answer is recorded as an event: a
session that ended without a sign-out, a sign-out that did not reach the other site, another
person's page. Whether each was expected is decided afterwards (soak.classify).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from bench.flows import HTML, REDIRECTS, FlowFailed
from soak.bounds import CLIENT_TIMEOUT_SECONDS, LOGOUT_PROPAGATION_SECONDS, STEP_PATIENCE_SECONDS
from soak.record import Recorder, RecordingBrowser
from tests.e2e.oidc import csrf_token

SITES = ("site_a", "site_b")
USERNAME = re.compile(r'id="username">([^<]*)<')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class StepFailed(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class JourneyAbandoned(Exception):
    pass


@dataclass
class World:
    """What every person shares: where things are, the recorder, the pace, and when to stop."""

    recorder: Recorder
    idp: str  # the IdP as browsers reach it (its proxy)
    sites: dict[str, str]  # site_a / site_b -> URL
    parts: dict[str, str]  # "127.0.0.1:PORT" -> idp, site_a, site_b
    password: str
    think: tuple[float, float] = (1.0, 3.0)
    pages: tuple[int, int] = (4, 10)
    stop_at: float = float("inf")  # no journey or step begins after this (recorder time)
    max_requests: int = 1_000_000  # nor once the people have made this many requests
    counts: Counter = field(default_factory=Counter)
    propagation: list[float] = field(default_factory=list)  # seconds until the other site signed out
    step_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # as people saw them

    @property
    def idp_netloc(self) -> str:
        return urlsplit(self.idp).netloc

    def stopping(self) -> bool:
        return self.recorder.now() >= self.stop_at or len(self.recorder.answers) >= self.max_requests


@dataclass
class Seen:
    """Where a navigation ended, and how it got there."""

    hops: list[httpx.Response]
    through_idp: bool = False  # a hop went to the IdP: the site had no signed-in session
    asked_password: bool = False
    idp_before: bool | None = None  # whether the person believed they were signed in at the IdP
    idp_since: float | None = None  # since when they believed so

    @property
    def last(self) -> httpx.Response:
        return self.hops[-1]

    @property
    def kind(self) -> str:
        last = self.last
        if last.status_code != 200:
            return "problem"
        text = last.text
        if 'name="password"' in text:
            return "login_form"
        if "You are signed out" in text:
            return "signed_out"
        if 'id="logoutForm"' in text:
            return "confirm_sign_out"
        if USERNAME.search(text):
            return "page"
        return "other"

    def username(self) -> str | None:
        match = USERNAME.search(self.last.text)
        return match.group(1) if match else None


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


class Person:
    """One person with one browser. `role`: crowd (the journeys), probe (a fault script's), setup."""

    def __init__(self, world: World, username: str, label: str, *, role: str = "crowd", seed: int = 0) -> None:
        self.world = world
        self.username = username
        self.label = label
        self.rng = random.Random(seed)  # noqa: S311 - a person's choices, nothing secret
        # A new connection for every request: a browser resends a request that met a kept-alive
        # connection closing under it (gunicorn closes idle ones after 2 s); httpx does not, and
        # such a race would be reported as a failure of the product.
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)
        self.http = httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS, limits=limits, trust_env=False)
        self.browser = RecordingBrowser(self.http, recorder=world.recorder, who=label, role=role, parts=world.parts)
        # What this person believes: True signed in, False signed out, None not sure (a step failed).
        self.signed_in: dict[str, bool | None] = dict.fromkeys(SITES, False)
        self.idp_signed_in: bool | None = False
        self.since: dict[str, float] = {}  # when the session at a site (or "idp") was made
        self.pending_logout: set[str] = set()  # signed out elsewhere; this site's logout not seen to land

    async def close(self) -> None:
        await self.http.aclose()

    @property
    def recorder(self) -> Recorder:
        return self.world.recorder

    def event(self, kind: str, part: str, detail: str, since: float | None = None) -> None:
        self.recorder.event(
            who=self.label,
            role=self.browser.role,
            journey=self.browser.journey,
            kind=kind,
            part=part,
            detail=detail,
            step_at=self.browser.step_at,
            since=since,
        )

    # --- navigation ------------------------------------------------------------------------------
    async def reach(self, site: str, *, sign_in: bool = True) -> Seen:
        """Open the site's home page, signing in on the IdP's login page when it asks (and `sign_in`)."""
        idp_before, idp_since = self.idp_signed_in, self.since.get("idp")
        hops = await self.browser.follow(f"{self.world.sites[site]}/")
        seen = Seen(hops, through_idp=self.went_through_idp(hops), idp_before=idp_before, idp_since=idp_since)
        if seen.kind == "login_form" and sign_in:
            login_page = seen.last
            posted = await self.browser.submit_login(login_page, self.username, self.world.password)
            # Signed in at the IdP from here on, whatever happens to the rest of the way back.
            self.idp_signed_in, self.since["idp"] = True, self.recorder.now()
            rest = await self.browser.follow(urljoin(str(login_page.url), posted.headers["location"]))
            seen = Seen([*hops, posted, *rest], True, True, idp_before, idp_since)
        if seen.kind == "problem":
            raise StepFailed(f"HTTP {seen.last.status_code}", retry_after(seen.last))
        if seen.kind == "page" and (shown := seen.username()) != self.username:
            self.event("another_persons_page", site, f"{site}'s page showed someone else ({shown!r})")
        return seen

    def went_through_idp(self, hops: list[httpx.Response]) -> bool:
        return any(urlsplit(str(hop.url)).netloc == self.world.idp_netloc for hop in hops)

    def arrived(self, site: str, seen: Seen) -> None:
        """Compare a page reached at `site` with what this person believed, and update the beliefs."""
        if seen.kind != "page":
            raise StepFailed(f"{site}'s page did not open ({seen.kind} at {urlsplit(str(seen.last.url)).path})")
        now = self.recorder.now()
        if seen.through_idp:
            if self.signed_in[site] and site not in self.pending_logout:
                how = " (and the IdP asked for the password)" if seen.asked_password else ""
                self.event("site_session_lost", site, f"sent to sign in again{how}", since=self.since.get(site))
            elif self.signed_in[site] and site in self.pending_logout:
                self.event("delayed_logout_landed", site, "a back-channel logout that was waiting ended it")
            self.pending_logout.discard(site)
            self.since[site] = now
        if seen.asked_password and seen.idp_before:
            self.event("idp_session_lost", "idp", "the IdP asked for the password again", seen.idp_since)
        self.signed_in[site] = True
        if not self.idp_signed_in:
            self.idp_signed_in, self.since["idp"] = True, now

    # --- steps -------------------------------------------------------------------------------------
    async def step(self, name: str, action):
        """Run `action()` until it succeeds; a failure is retried after a pause, for a while."""
        recorder = self.recorder
        self.browser.step, self.browser.step_at = name, recorder.now()
        began = recorder.now()
        while True:
            try:
                result = await action()
            except (StepFailed, FlowFailed, httpx.HTTPError, KeyError) as failure:
                # A failed answer ends no session: what this person believes stays as it was.
                if recorder.now() - began > STEP_PATIENCE_SECONDS:
                    raise JourneyAbandoned(f"{name}: {str(failure) or type(failure).__name__}") from None
                pause = getattr(failure, "retry_after", None) or self.rng.uniform(1.0, 2.0)
                await asyncio.sleep(min(pause, 5.0))
                continue
            self.world.step_seconds[name].append(recorder.now() - began)
            return result

    async def sign_in(self, site: str) -> None:
        seen = await self.reach(site)
        self.arrived(site, seen)

    async def page_view(self, site: str) -> None:
        seen = await self.reach(site)
        self.arrived(site, seen)

    async def sign_out(self, site: str) -> str:
        """Sign out at `site`: "complete" (through the IdP), or "local" (the IdP was not reached)."""
        url = f"{self.world.sites[site]}/sso/logout/"
        form = await self.browser.request("GET", url, headers=HTML)
        if form.status_code != 200 or "csrfmiddlewaretoken" not in form.text:
            raise StepFailed(f"HTTP {form.status_code} without the sign-out form", retry_after(form))
        try:
            posted = await self.browser.request(
                "POST", url, data={"csrfmiddlewaretoken": csrf_token(form.text)}, headers={"Referer": url, **HTML}
            )
        except httpx.HTTPError:
            self.signed_in[site] = None  # the sign-out may have happened: its answer was lost
            raise
        if posted.status_code not in REDIRECTS:
            raise StepFailed(f"HTTP {posted.status_code}", retry_after(posted))
        self.signed_in[site] = False  # the site's own session ended with this answer
        location = urljoin(url, posted.headers["location"])
        signed_out_page = f"{self.world.sites[site]}/sso/signed-out/"
        if location.startswith(signed_out_page):  # the site could not send the person to the IdP
            self.event("sign_out_incomplete", "idp", "the site signed out locally only (IdP unreachable)")
            return "local"
        try:
            # Through the IdP's end-session endpoint until it sends the person back to the site.
            hops = await self.browser.follow(location, stop_at=signed_out_page)
            if Seen(hops).kind == "confirm_sign_out":  # the IdP asks: "Sign out?" (it lost its session)
                page = hops[-1]
                fields = dict(HIDDEN.findall(page.text))
                data = {**fields, "allow": "Logout"}
                confirm = await self.browser.request("POST", str(page.url), data=data, headers=HTML)
                hops = [*hops, confirm]
        except (httpx.HTTPError, FlowFailed) as error:
            self.event("sign_out_incomplete", "idp", f"the IdP's end-session did not answer ({type(error).__name__})")
            return "local"
        last = hops[-1]
        back = urljoin(str(last.url), last.headers.get("location", ""))
        if last.status_code not in REDIRECTS or not back.startswith(signed_out_page):
            what = f"HTTP {last.status_code}" if last.status_code != 200 else Seen(hops).kind
            self.event("sign_out_incomplete", "idp", f"the IdP's end-session ended on {what}")
            return "local"
        self.idp_signed_in = False  # the IdP ended its session and sends the person back
        # The site's "signed out" page: recorded and judged like any answer; the sign-out is done.
        with contextlib.suppress(httpx.HTTPError):
            await self.browser.request("GET", back, headers=HTML)
        return "complete"

    async def signed_out_everywhere(self, other: str, signed_out_at: float) -> None:
        """After a complete sign-out: the other site and the IdP must have signed this person out."""
        while True:
            seen = await self.reach(other, sign_in=False)
            waited = self.recorder.now() - signed_out_at
            if seen.kind == "login_form":
                self.world.propagation.append(waited)
                self.signed_in[other] = False
                self.pending_logout.discard(other)
                return
            if seen.kind == "page" and seen.through_idp:
                self.event("idp_session_survived_logout", "idp", f"{other} signed the person in again silently")
                self.signed_in[other], self.idp_signed_in = True, True
                return
            if seen.kind != "page":
                raise StepFailed(f"{other}: {seen.kind}")
            if waited > LOGOUT_PROPAGATION_SECONDS:
                self.event("logout_not_propagated", other, f"still signed in {waited:.0f}s after signing out")
                self.pending_logout.add(other)
                self.signed_in[other] = True
                return
            await asyncio.sleep(1.0)

    # --- the crowd's journeys ------------------------------------------------------------------
    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.world.think))

    async def journey(self) -> None:
        world = self.world
        self.browser.journey += 1
        await self.step("sign in at A", lambda: self.sign_in("site_a"))
        await self.step("open B", lambda: self.page_view("site_b"))
        for _ in range(self.rng.randint(*world.pages)):
            if world.stopping():
                return
            await self.think()
            site = self.rng.choice(SITES)
            await self.step("page view", lambda site=site: self.page_view(site))
        await self.think()
        site = self.rng.choice(SITES)
        outcome = await self.step("sign out", lambda: self.sign_out(site))
        if outcome == "complete":
            other = SITES[1 - SITES.index(site)]
            signed_out_at = self.recorder.now()
            await self.step("signed out everywhere", lambda: self.signed_out_everywhere(other, signed_out_at))
        world.counts["journeys completed"] += 1

    async def live(self, start_after: float) -> None:
        """Journeys until the soak's time is up; the first after `start_after` seconds (a ramp)."""
        await asyncio.sleep(start_after)
        while not self.world.stopping():
            try:
                await self.journey()
            except JourneyAbandoned as reason:
                self.world.counts["journeys given up"] += 1
                self.world.counts[f"given up at {str(reason).split(':')[0]}"] += 1
                self.signed_in = {site: None for site in SITES}
                self.idp_signed_in = None

    # --- the probes' single looks (soak.faults) -------------------------------------------------
    async def look(self, site: str, path: str = "/") -> tuple[str, float]:
        """One request, redirects not followed: ("page" | "signed_out" | "unavailable" | "error", seconds)."""
        began = self.recorder.now()
        try:
            response = await self.browser.request("GET", f"{self.world.sites[site]}{path}", headers=HTML)
        except httpx.HTTPError:
            return "error", self.recorder.now() - began
        took = self.recorder.now() - began
        if response.status_code == 200:
            return "page", took
        location = urlsplit(response.headers.get("location", ""))
        if response.status_code in REDIRECTS and location.netloc == self.world.idp_netloc:
            return "signed_out", took
        if response.status_code == 503:
            return "unavailable", took
        return "error", took


async def sign_in_everywhere(person: Person) -> None:
    """Sign in at A (the IdP asks for the password), then open B (it does not), each step retried."""
    await person.step("sign in at A", lambda: person.sign_in("site_a"))
    await person.step("open B", lambda: person.page_view("site_b"))
