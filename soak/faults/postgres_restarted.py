"""PostgreSQL restarted under load: pages or readable 503s meanwhile, pools reconnect, nothing half-written."""

from __future__ import annotations

import asyncio
from collections import Counter

from soak.faults.base import Fault


class PostgresRestarted(Fault):
    """PostgreSQL shut down (fast: open sessions ended, transactions rolled back) under load, then started."""

    name = "postgres"
    label = "PostgreSQL restarted under load"

    def skip_reason(self) -> str | None:
        if self.services.databases.kind != "postgresql":
            return "the soak runs on SQLite: no PostgreSQL to restart"
        return None

    async def prepare(self) -> None:
        self.person, _ = await self.veteran()
        self.command: list[str] | None = None

    def hold_seconds(self) -> float:
        return self.context.hold(self.name) if self.services.postgres_restartable else 0.0

    async def start(self) -> None:
        if self.services.postgres_restartable:
            self.command = await asyncio.to_thread(self.services.stop_postgres)
        else:  # TEST_DATABASE_URL: a server the soak did not start and must not stop
            ended = await asyncio.to_thread(self.services.terminate_database_sessions)
            self.observations["sessions ended (TEST_DATABASE_URL: the server itself is not restarted)"] = ended

    async def during(self, until: float) -> None:
        named, seen = await asyncio.gather(
            self.readiness_named("database", ["idp"], until), self.looks(self.person, "site_a", until)
        )
        named, states = named["idp"], Counter(state for _, state, _ in seen)
        if self.command is not None:
            self.observations["the veteran's page at A while PostgreSQL was down"] = dict(states)
            self.check("the IdP's /-/health/ready/ named the database while it was down", named)
            self.check(
                "pages answered (after waiting for the database) or a 503 page while it was down, "
                "and nobody was signed out",
                states and set(states) <= {"page", "unavailable"},
                str(dict(states)),
            )

    async def end(self) -> None:
        if self.command is not None:
            await asyncio.to_thread(self.services.start_postgres, self.command)

    async def after(self) -> None:
        seen = {site: (await self.person.look(site))[0] for site in ("site_a", "site_b")}
        self.observations["the veteran after the restart"] = seen
        self.check("the person signed in before is still signed in at A and B", all(s == "page" for s in seen.values()))
        await self.person.close()
