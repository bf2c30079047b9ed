"""The IdP slow (its proxy holds each answer): the sites' calls time out, their workers stay free."""

from __future__ import annotations

import asyncio
from collections import Counter

from soak.bounds import FREE_PAGE_SECONDS, SITE_ANSWER_SECONDS
from soak.classify import Window
from soak.faults.base import Context, Fault
from soak.people import Person


class SlowIdp(Fault):
    """The IdP answers late: its proxy holds every answer for SLOW_IDP_LATENCY_SECONDS."""

    name = "slow_idp"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.label = f"IdP slow ({context.slow_latency:.0f}s added to every answer)"

    def window_details(self, window: Window) -> None:
        window.latency = self.context.slow_latency

    async def prepare(self) -> None:
        # How fast the free pages are with the IdP at its normal speed, for comparison.
        free = self.context.probe("free pages before the IdP is slow")
        before = await self.free_pages(free, self.context.now() + 3.0)
        await free.close()
        self.slowest_before = max((took for _, _, took in before), default=0.0)
        self.observations["the slowest /about/ page just before (seconds)"] = self.slowest_before
        self.person, self.issued = await self.veteran_before_refresh()

    async def start(self) -> None:
        await asyncio.to_thread(self.services.proxy.set_latency, self.context.slow_latency)

    async def during(self, until: float) -> None:
        free = self.context.probe("free pages while the IdP is slow")
        veteran_looks, free_looks = await asyncio.gather(
            self.looks(self.person, "site_a", until), self.free_pages(free, until)
        )
        await free.close()
        slowest_free = max((took for _, _, took in free_looks), default=0.0)
        slowest_page = max((took for _, _, took in veteran_looks), default=0.0)
        self.observations["the veteran's looks at A (when, what, seconds)"] = veteran_looks
        self.observations["the slowest /about/ page while the IdP was slow (seconds)"] = slowest_free
        self.check(
            f"the site's calls to the slow IdP timed out within {SITE_ANSWER_SECONDS:.0f}s and the site answered",
            veteran_looks and slowest_page <= SITE_ANSWER_SECONDS and all(s != "error" for _, s, _ in veteran_looks),
            f"slowest {slowest_page:.1f}s; {Counter(state for _, state, _ in veteran_looks)}",
        )
        self.check(
            f"pages that need no IdP answered within {FREE_PAGE_SECONDS:.0f}s more than just before "
            "(the site's workers were not all tied up)",
            free_looks and slowest_free <= FREE_PAGE_SECONDS + self.slowest_before,
            f"slowest /about/ {slowest_free:.2f}s over {len(free_looks)} looks ({self.slowest_before:.2f}s before)",
        )

    async def free_pages(self, person: Person, until: float) -> list[tuple]:
        seen = []
        while self.context.now() < until:
            for site in ("site_a", "site_b"):
                state, took = await person.look(site, "/about/")
                seen.append((round(self.context.now(), 2), state, round(took, 2)))
            await asyncio.sleep(0.5)
        return seen

    async def end(self) -> None:
        await asyncio.to_thread(self.services.proxy.set_latency, 0)

    async def after(self) -> None:
        seen = {site: (await self.person.look(site))[0] for site in ("site_a", "site_b")}
        self.observations["the veteran after the IdP was fast again"] = seen
        self.check(
            "the person signed in before is still signed in at A and B (not signed out by the slow IdP)",
            all(state == "page" for state in seen.values()),
            str(seen),
        )
        await self.person.close()
