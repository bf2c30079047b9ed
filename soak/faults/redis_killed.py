"""Redis killed (SIGKILL) and started again: a readable 503 meanwhile, then everyone served, signed in."""

from __future__ import annotations

import asyncio
from collections import Counter

from soak.faults.base import Context, Fault
from soak.services import PARTS


class RedisKilled(Fault):
    """redis-server killed (SIGKILL) and started again on the same port and files."""

    name = "redis"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.label = f"Redis killed and restarted (append-only file {'on' if context.aof else 'off'})"

    async def prepare(self) -> None:
        self.person, _ = await self.veteran()

    async def start(self) -> None:
        await asyncio.to_thread(self.services.crash_redis)

    async def during(self, until: float) -> None:
        named, seen = await asyncio.gather(
            self.readiness_named("redis", PARTS, until), self.looks(self.person, "site_a", until)
        )
        states = Counter(state for _, state, _ in seen)
        self.observations["readiness named Redis"] = named
        self.observations["the veteran's page at A while Redis was down"] = dict(states)
        self.check("/-/health/ready/ named Redis at the IdP and both sites", all(named.values()), str(named))
        self.check(
            "pages answered 503 while Redis was down (the veteran's page at A)",
            states["unavailable"] > 0 and states["signed_out"] == 0,
            str(dict(states)),
        )

    async def end(self) -> None:
        await asyncio.to_thread(self.services.start_redis)

    async def after(self) -> None:
        seen = {site: (await self.person.look(site))[0] for site in ("site_a", "site_b")}
        self.observations["the veteran after the restart"] = seen
        if self.context.aof:
            self.check(
                "with the append-only file, the person signed in before is still signed in at A and B",
                all(state == "page" for state in seen.values()),
                str(seen),
            )
        else:
            self.check(
                "without the append-only file, the person signed in before is asked to sign in again",
                all(state == "signed_out" for state in seen.values()),
                str(seen),
            )
        await self.person.close()
