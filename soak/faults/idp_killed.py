"""The IdP killed (SIGKILL): signed-in people keep their pages while their token is valid, nobody is signed out."""

from __future__ import annotations

import asyncio
from collections import Counter

from soak.faults.base import Fault
from soak.people import Person


class IdpKilled(Fault):
    """The IdP's gunicorn killed (SIGKILL, master and workers) while people use the sites."""

    name = "idp"
    label = "IdP killed and restarted"
    restarts = ("idp",)

    async def prepare(self) -> None:
        # Timed so that the outage spans the veteran's refresh (its token still valid) and then
        # its token's expiry: both must leave it signed in.
        self.person, self.issued = await self.veteran_before_refresh()

    async def start(self) -> None:
        await asyncio.to_thread(self.services.kill, "idp")

    async def during(self, until: float) -> None:
        newcomer = self.context.probe("sign-in while the IdP is down")
        attempt = asyncio.create_task(self.sign_in_refused(newcomer))
        seen = await self.looks(self.person, "site_a", until)
        refused = await attempt
        await newcomer.close()
        lifetime = self.context.access_token_seconds
        # The sites keep a token's expiry in whole seconds (Authlib's expires_at): up to 1 s early.
        valid = [state for ended, state, _ in seen if ended < self.issued.earliest + lifetime - 1.0]
        expired = [state for ended, state, took in seen if ended - took > self.issued.latest + lifetime]
        self.observations["the veteran's looks at A while the IdP was down (when, what, seconds)"] = seen
        self.observations["the veteran's token expired at"] = round(self.issued.latest + lifetime, 2)
        self.check(
            "people signed in kept using the site while their token was valid (a failed refresh is retried)",
            valid and all(state == "page" for state in valid),
            f"with a valid token: {Counter(valid)}",
        )
        self.check(
            "after the token expired, the site answered its 'unavailable' page, and did not sign out",
            all(state in ("page", "unavailable") for state in expired),
            f"after expiry: {Counter(expired)}" if expired else "the outage ended before the token expired",
        )
        self.check("a new sign-in while the IdP was down was refused with an 'unavailable' answer", *refused)

    async def sign_in_refused(self, newcomer: Person) -> tuple[bool, str]:
        try:
            await newcomer.sign_in("site_a")
        except Exception as failure:  # what a person gets when it cannot sign in
            answers = [a for a in self.context.world.recorder.answers if a.who == newcomer.label]
            last = answers[-1] if answers else None
            if last is None:
                return False, f"nothing answered ({type(failure).__name__})"
            refused = (last.status == 502 and last.from_proxy) or (last.status == 503 and last.heading)
            return bool(refused), last.describe()
        return False, "the sign-in went through while the IdP was down"

    async def end(self) -> None:
        started = self.context.now()
        await asyncio.to_thread(self.services.start_part, "idp")
        self.observations["the IdP's start-up (seconds)"] = round(self.context.now() - started, 2)

    async def after(self) -> None:
        seen = {site: (await self.person.look(site))[0] for site in ("site_a", "site_b")}
        self.observations["the veteran after the IdP came back"] = seen
        self.check(
            "the person signed in before is still signed in at A and B (not signed out by the outage)",
            all(state == "page" for state in seen.values()),
            str(seen),
        )
        await self.person.close()
