"""Site B killed while people sign out at A: the worker delivers B's logouts once it is back."""

from __future__ import annotations

import asyncio

from soak.classify import Window
from soak.faults.base import Fault
from soak.people import JourneyAbandoned, sign_in_everywhere

#: The Redis hash where the workers count their retried deliveries (ops.backchannel.RETRIES_KEY).
RETRIES_KEY = "idp:metrics:backchannel-logout-retries"


class SiteKilled(Fault):
    """Site B killed (SIGKILL) while people sign out at site A: the worker must deliver B's logouts."""

    name = "site"
    label = "Site B killed during single logouts"
    part = "site_b"
    restarts = ("site_b",)
    observe_in_background = False  # B stays down until the sign-outs are done
    subjects_count = 2

    def window_details(self, window: Window) -> None:
        window.part = self.part

    async def prepare(self) -> None:
        self.subjects = [self.context.probe("signs out while B is down") for _ in range(self.subjects_count)]
        await asyncio.gather(*(sign_in_everywhere(subject) for subject in self.subjects))
        self.sessions = [subject.http.cookies.get("site_b_sessionid") for subject in self.subjects]
        self.delivered_before = await asyncio.to_thread(self.delivered)

    def delivered(self) -> int:
        with self.services.redis.client() as client:
            return int(client.hget(RETRIES_KEY, "delivered") or 0)

    async def start(self) -> None:
        await asyncio.to_thread(self.services.kill, self.part)

    async def during(self, until: float) -> None:
        outcomes = []
        for subject in self.subjects:
            began = self.context.now()
            try:
                outcome = await subject.step("sign out", lambda subject=subject: subject.sign_out("site_a"))
            except JourneyAbandoned as reason:
                outcome = f"given up: {reason}"
            took = self.context.now() - began
            try:
                idp_state = (await subject.reach("site_a", sign_in=False)).kind
            except Exception as failure:  # noted as what the person saw
                idp_state = f"failed: {failure}"
            outcomes.append({"sign-out": outcome, "seconds": round(took, 2), "then at A": idp_state})
        self.observations["sign-outs at A while B was down"] = outcomes
        self.check(
            "signing out at A completed while B was down, and ended the IdP session",
            all(o["sign-out"] == "complete" and o["then at A"] == "login_form" for o in outcomes),
            str(outcomes),
        )
        await self.sleep_until(until)

    async def end(self) -> None:
        started = self.context.now()
        await asyncio.to_thread(self.services.start_part, self.part)
        self.observations["site B's start-up (seconds)"] = round(self.context.now() - started, 2)

    def ended_by_logout(self) -> list[bool]:
        """Whether each subject's B session was ended by a back-channel logout (sso_client.sessions
        leaves the marker `sso_client:ended:<session key>` under the site's key prefix)."""
        with self.services.redis.client() as client:
            return [bool(key and client.exists(f"site_b:1:sso_client:ended:{key}")) for key in self.sessions]

    async def recovered(self) -> bool:
        if not all(await asyncio.to_thread(self.ended_by_logout)):
            return False
        return await self.serving()

    async def after(self) -> None:
        ended = await asyncio.to_thread(self.ended_by_logout)
        delivered = await asyncio.to_thread(self.delivered) - self.delivered_before
        self.observations["B sessions ended by the back-channel logout"] = ended
        self.observations["deliveries the worker made during the fault"] = delivered
        self.check("each person's session at B ended once B was back", all(ended), str(ended))
        self.check("the worker's retry delivered the logouts", delivered >= 1, f"{delivered} delivered")
        for subject in self.subjects:
            await subject.close()
