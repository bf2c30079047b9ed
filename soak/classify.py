"""Every answer and every event, judged expected or unexpected, against the faults' windows.

Expected:
- a success (2xx) or a redirect (3xx), within its time bound;
- during the window of the matching fault (from its start until its recovery, plus
  WINDOW_GRACE_SECONDS): a readable 503 page (a heading, no traceback) of the kind that fault
  explains (Redis: "Temporarily unavailable"; the IdP down or slow: the site's "Sign-in is
  unavailable"; PostgreSQL: any readable 503); the IdP's proxy answering 502 because the IdP is
  down; no answer at all from the process that was killed; a sign-in in progress refused at the
  callback (400) because the fault lost its state;
- a session that ended because Redis was restarted without its append-only file (people sign in
  again), or because a back-channel logout that had to wait landed later.

Unexpected: any 500, any traceback, any other 5xx, a 503 outside the matching fault's window or
without a readable page, a 4xx that no fault explains, no answer outside a fault that explains
it, an answer slower than its bound, a person signed out without a sign-out (or a lost IdP
session), a sign-out that did not reach the other site in time, another person's page.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from soak.bounds import IDP_ANSWER_SECONDS, SITE_ANSWER_SECONDS, WINDOW_GRACE_SECONDS
from soak.record import Answer, Event

SITE_PARTS = ("site_a", "site_b")
#: How many examples of each unexpected kind the report lists.
EXAMPLES = 15


@dataclass
class Window:
    """One fault's window: when it began, ended, and the sites served normally again."""

    name: str  # redis, idp, site, slow_idp, postgres
    label: str
    start: float
    end: float | None = None
    recovered: float | None = None
    allowed: float = 0.0  # the recovery bound (allowed), for a fault that never recovered
    part: str | None = None  # the site that was killed
    aof: bool | None = None
    latency: float = 0.0

    def closes(self) -> float:
        if self.recovered is not None:
            return self.recovered + WINDOW_GRACE_SECONDS
        if self.end is not None:
            return self.end + self.allowed + WINDOW_GRACE_SECONDS
        return math.inf

    def overlaps(self, start: float, end: float) -> bool:
        return start < self.closes() and end > self.start


def readable(answer: Answer) -> bool:
    return bool(answer.heading) and not answer.traceback


def expected_answer(answer: Answer, window: Window) -> str | None:
    """Why `window` explains this answer, or None."""
    site = answer.part in SITE_PARTS
    heading = answer.heading or ""
    in_window = window.overlaps(answer.at, answer.end)
    if answer.status == 503 and readable(answer) and in_window:
        if window.name == "redis" and ("Temporarily unavailable" in heading or "Sign-in is unavailable" in heading):
            return "a 503 page while Redis was down"
        if window.name in ("idp", "slow_idp") and site and "Sign-in is unavailable" in heading:
            return "the site's 503 page: the IdP could not be reached in time"
        if window.name == "postgres":
            return "a 503 page while PostgreSQL restarted"
    if answer.status == 502 and answer.from_proxy and window.name == "idp" and in_window:
        return "the IdP was down: its proxy answered 502"
    if answer.error and in_window:
        if window.name == "idp" and answer.part == "idp":
            return "the IdP was killed with this request in flight"
        if window.name == "site" and answer.part == window.part:
            return "the site was down"
    if (
        answer.status == 400
        and answer.path.endswith("/sso/callback/")
        and window.name in ("redis", "idp", "slow_idp", "postgres")
        and window.overlaps(answer.step_at, answer.end)
    ):
        return "a sign-in in progress during the fault started over"
    return None


def answer_bound(answer: Answer, windows: list[Window]) -> float:
    if answer.part in SITE_PARTS:
        return SITE_ANSWER_SECONDS
    slow = max((w.latency for w in windows if w.name == "slow_idp" and w.overlaps(answer.at, answer.end)), default=0)
    return IDP_ANSWER_SECONDS + slow


def unexpected_answer(answer: Answer) -> str:
    if answer.traceback:
        return "a traceback in the page"
    if answer.status == 500:
        return "500 server error"
    if answer.status == 503:
        return "503 page that is not readable" if not readable(answer) else "503 outside the matching fault"
    if answer.status is not None and answer.status >= 500:
        return f"{answer.status} answer"
    if answer.status is not None:
        return f"{answer.status} answer no fault explains"
    if answer.error and "Timeout" in answer.error:
        return "no answer within the driver's timeout"
    return "no answer (connection failed) outside a fault that explains it"


def expected_event(event: Event, windows: list[Window]) -> str | None:
    if event.kind == "delayed_logout_landed":
        return "a back-channel logout that had to wait landed"
    if event.kind in ("site_session_lost", "idp_session_lost"):
        for window in windows:
            if (
                window.name == "redis"
                and not window.aof
                and window.end is not None
                and event.since is not None
                and event.since < window.end
                and event.at > window.start
            ):
                return "sessions were lost with Redis, restarted without its append-only file"
        return None
    if event.kind == "sign_out_incomplete":
        for window in windows:
            if window.name in ("idp", "redis", "postgres", "slow_idp") and window.overlaps(event.step_at, event.at):
                return f"the IdP could not end its session during the fault ({window.name})"
        return None
    if event.kind == "logout_not_propagated":
        for window in windows:
            explains = window.name in ("redis", "idp", "postgres") or (
                window.name == "site" and window.part == event.part
            )
            if explains and window.overlaps(event.step_at, event.at):
                return f"the logout waited for the fault to end ({window.name})"
        return None
    return None


UNEXPECTED_EVENTS = {
    "site_session_lost": "signed out at a site without a sign-out",
    "idp_session_lost": "signed out at the IdP without a sign-out",
    "sign_out_incomplete": "a sign-out did not reach the IdP",
    "logout_not_propagated": "a sign-out did not reach the other site in time",
    "idp_session_survived_logout": "the IdP session outlived a sign-out",
    "another_persons_page": "another person's page was shown",
}


def windows_at(windows: list[Window], start: float, end: float) -> list[str]:
    return [window.label for window in windows if window.overlaps(start, end)]


def where_in_time(windows: list[Window], start: float, end: float) -> dict:
    """The fault windows something happened in; outside any, the last fault before it (a late effect)."""
    if inside := windows_at(windows, start, end):
        return {"fault_windows": inside}
    return {"fault_windows": ["none"], "after": after_fault(windows, end)}


def after_fault(windows: list[Window], moment: float) -> str | None:
    """The last fault that ended before `moment`, and how long before: a late consequence shows here."""
    ended = [w for w in windows if w.end is not None and w.end <= moment and not w.overlaps(moment, moment)]
    if not ended:
        return None
    last = max(ended, key=lambda window: window.end)
    return f"{last.label} (ended {moment - last.end:.1f}s before)"


@dataclass
class Verdicts:
    answers: int = 0
    ok: int = 0
    expected: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    events_expected: Counter = field(default_factory=Counter)

    @property
    def unexpected_total(self) -> int:
        return sum(self.unexpected.values())

    def note(self, kind: str, example: dict) -> None:
        self.unexpected[kind] += 1
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(example)


def classify(answers: list[Answer], events: list[Event], windows: list[Window]) -> Verdicts:
    verdicts = Verdicts(answers=len(answers))
    for answer in answers:
        too_slow = answer.took > answer_bound(answer, windows)
        if answer.status is not None and answer.status < 400 and not too_slow:
            verdicts.ok += 1
            continue
        reason = None
        if not too_slow:
            reason = next(filter(None, (expected_answer(answer, window) for window in windows)), None)
        if reason:
            verdicts.expected[reason] += 1
            continue
        kind = "slower than its bound" if too_slow else unexpected_answer(answer)
        verdicts.note(
            kind,
            {
                "at": round(answer.at, 2),
                "who": answer.who,
                "journey": answer.journey,
                "step": answer.step,
                "request": answer.describe(),
                "status": answer.status,
                "error": answer.error,
                "first_line": answer.heading,
                "request_id": answer.request_id,
                **where_in_time(windows, answer.at, answer.end),
            },
        )
    for event in events:
        if reason := expected_event(event, windows):
            verdicts.events_expected[reason] += 1
            continue
        verdicts.note(
            UNEXPECTED_EVENTS.get(event.kind, event.kind),
            {
                "at": round(event.at, 2),
                "who": event.who,
                "journey": event.journey,
                "part": event.part,
                "detail": event.detail,
                "session_made_at": None if event.since is None else round(event.since, 2),
                **where_in_time(windows, event.step_at, event.at),
            },
        )
    return verdicts
