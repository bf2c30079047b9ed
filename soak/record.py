"""What the soak saw: every answer (or failed request) and every journey-level event, timed.

Every request the virtual people and the probes make goes through `RecordingBrowser.request`,
which notes when it was sent, how long it took, the part of the product that answered, the path
(never the query string: a callback's query carries a code) and, for an answer that is not a
success, the first line of the page. Nothing secret is kept: no cookie, no body, no query.
Classification against the faults' windows happens after the run (soak.classify), when every
window is known.
"""

from __future__ import annotations

import html
import itertools
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bench.flows import Browser
from soak.proxy import PROXY_HEADER


@dataclass(slots=True)
class Answer:
    at: float  # seconds since the soak began, when the request was sent
    took: float  # seconds until the answer (or the failure)
    who: str  # "person 12", "probe 3 (redis veteran)", ...
    role: str  # crowd, probe, setup
    journey: int
    step: str
    step_at: float  # when the step this request belongs to began (its first try)
    method: str
    part: str  # idp, site_a, site_b
    path: str
    status: int | None  # None: no answer (error says why)
    error: str | None = None  # httpx's exception class: ConnectError, ReadTimeout, ...
    heading: str | None = None  # the page's first line, for answers that are not a success
    traceback: bool = False
    retry_after: str | None = None
    from_proxy: bool = False  # the IdP's proxy answered itself: the IdP did not answer
    request_id: str = ""

    @property
    def end(self) -> float:
        return self.at + self.took

    def describe(self) -> str:
        what = f"HTTP {self.status}" if self.status is not None else self.error
        heading = f' "{self.heading}"' if self.heading else ""
        return f"{self.method} {self.part}{self.path} -> {what}{heading} after {self.took:.2f}s"


@dataclass(slots=True)
class Event:
    """Something a person noticed beyond one answer: a session that ended, a logout that did not land."""

    at: float
    who: str
    role: str
    journey: int
    kind: str  # see soak.classify.EVENT_KINDS
    part: str
    detail: str
    step_at: float = 0.0
    since: float | None = None  # when the session concerned was made (for a lost session)


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    answers: list[Answer] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=itertools.count)

    def now(self) -> float:
        return time.monotonic() - self.started

    def request_id(self, who: str) -> str:
        return f"soak-{re.sub(r'[^a-z0-9]+', '-', who.lower()).strip('-')}-{next(self._ids)}"[:64]

    def event(self, **fields) -> Event:
        event = Event(at=self.now(), **fields)
        self.events.append(event)
        return event


H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S | re.I)
TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.S | re.I)
TAGS = re.compile(r"<[^>]+>")
TRACEBACK_MARKS = ("Traceback (most recent call last)", 'id="traceback"', "Exception Value:")


def first_line(text: str) -> str:
    """The page's first line as a person reads it: its <h1>, else its <title>, else its first text."""
    for pattern in (H1, TITLE):
        if match := pattern.search(text):
            line = " ".join(html.unescape(TAGS.sub(" ", match.group(1))).split())
            if line:
                return line[:120]
    for line in TAGS.sub(" ", text).splitlines():
        if line.strip():
            return " ".join(html.unescape(line).split())[:120]
    return ""


def has_traceback(text: str) -> bool:
    return any(mark in text for mark in TRACEBACK_MARKS)


@dataclass
class RecordingBrowser(Browser):
    """bench's Browser (one person's cookie jar, redirects followed one by one), every request recorded."""

    recorder: Recorder | None = None
    who: str = ""
    role: str = "crowd"
    parts: dict[str, str] = field(default_factory=dict)  # "127.0.0.1:PORT" -> part name
    journey: int = 0
    step: str = ""
    step_at: float = 0.0

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        recorder = self.recorder
        assert recorder is not None
        request_id = recorder.request_id(self.who)
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "X-Request-ID": request_id}
        parts = urlsplit(url)
        answer = Answer(
            at=recorder.now(),
            took=0.0,
            who=self.who,
            role=self.role,
            journey=self.journey,
            step=self.step,
            step_at=self.step_at,
            method=method,
            part=self.parts.get(parts.netloc, parts.netloc),
            path=parts.path or "/",
            status=None,
            request_id=request_id,
        )
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            answer.took = recorder.now() - answer.at
            answer.error = type(error).__name__
            recorder.answers.append(answer)
            raise
        answer.took = recorder.now() - answer.at
        answer.status = response.status_code
        self.requests += 1
        self.statuses[str(response.status_code)] += 1
        if response.status_code >= 400:
            text = response.text
            answer.heading = first_line(text)
            answer.traceback = has_traceback(text)
            answer.retry_after = response.headers.get("retry-after")
            answer.from_proxy = PROXY_HEADER.lower() in {name.lower() for name in response.headers}
        recorder.answers.append(answer)
        return response
