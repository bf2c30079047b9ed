"""No secret in a log or a page: a whole journey, then every process's log and every page searched.

The journey, as a person with one cookie jar: sign in at site A, single sign-on at site B, a
client of this test's own joining the same IdP session (so that the IdP posts it a logout token
the test can read), a token refresh at site A, signing out at site A with back-channel logout to
site B and to that client, and a failed sign-in (a wrong password, for a person of this test's
own: lock-out counters are shared with the other tests). Then nothing that is secret may appear
in the output of any process of the stack (`state_dir/logs/*.log`: the IdP, both sites, the
back-channel worker, and whatever else the session's tests started): no password, no
authorization code, no access, refresh, ID or logout token, no client secret, no
DJANGO_SECRET_KEY, no session or CSRF cookie value. The pages the person saw may show none of
them either. The logs are shared by the whole session's stack: they must be clean of these
values whatever else ran.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devstack.processes import free_port
from tests.e2e.conftest import REFRESH_DUE_SECONDS, session_stored
from tests.e2e.hostile import create_person, register_app, session_tokens, stack_secrets
from tests.e2e.oidc import AuthRequest, Client, query, submit_login
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visit, Visitor
from tests.e2e.waiting import wait_for

RUN = secrets.token_hex(4)
TIMEOUT = 30


class LogoutTokenInbox:
    """A client's back-channel logout URI: a small HTTP server that keeps the tokens posted to it."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                inbox.tokens += parse_qs(body).get("logout_token", [])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def inbox() -> Iterator[LogoutTokenInbox]:
    running = LogoutTokenInbox()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def watcher(stack, inbox) -> Client:
    """A trusted client of this test's own, whose back-channel logout URI is the inbox."""
    return register_app(
        stack,
        "Log watcher",
        redirect_uri=f"{inbox.url}/callback/",
        trusted=True,
        backchannel_uri=f"{inbox.url}/backchannel-logout/",
    )


@pytest.fixture(scope="module")
def dora(stack) -> tuple[str, str]:
    """A person of this test's own, who types a wrong password."""
    person = (f"dora-{RUN}", f"dora-{secrets.token_urlsafe(12)}")
    create_person(stack, *person)
    return person


class Journey:
    """What the person saw, and every secret value that went by."""

    def __init__(self, person: Visitor) -> None:
        self.person = person
        self.pages: list[requests.Response] = []
        self.secrets: dict[str, str] = {}

    def saw(self, visit: Visit) -> Visit:
        self.pages += visit.hops
        self.note_cookies()
        for hop in visit.hops:
            if urlsplit(hop.url).path == "/sso/callback/":
                self.note(f"code for {urlsplit(hop.url).netloc}", query(hop.url)["code"])
        return visit

    def note(self, name: str, value: str | None) -> None:
        if value:
            self.secrets[f"{name} #{len(self.secrets)}"] = value

    def note_cookies(self) -> None:
        for cookie in self.person.browser.cookies:
            self.note(f"cookie {cookie.name}", cookie.value)

    def note_tokens(self, label: str, tokens: dict) -> None:
        for name in ("access_token", "refresh_token", "id_token"):
            self.note(f"{label} {name}", tokens.get(name))


def test_no_secret_in_any_log_or_page(stack, idp, site_a, site_b, alice, dora, watcher, inbox, redis_client):
    journey = Journey(Visitor())
    person = journey.person

    # Sign in at site A, then single sign-on at site B.
    journey.saw(person.visit(f"{site_a}/"))  # the anonymous session the sign-in starts in
    assert signed_in_page_shows_alice(journey.saw(person.sign_in(f"{site_a}/", *alice)).page)
    assert signed_in_page_shows_alice(journey.saw(person.visit(f"{site_b}/")).page)
    first_tokens_a = session_tokens(redis_client, "site_a", person.cookie("site_a_sessionid"))
    journey.note_tokens("site A", first_tokens_a)
    journey.note_tokens("site B", session_tokens(redis_client, "site_b", person.cookie("site_b_sessionid")))

    # A client of the test's own joins the same IdP session: it is sent a logout token too.
    request = AuthRequest(watcher)
    code = idp.sign_in(person.browser, request, *alice)["code"]
    journey.note("watcher's code", code)
    journey.note_tokens("watcher", idp.exchange(request, code).json())

    # A token refresh behind site A's page.
    time.sleep(REFRESH_DUE_SECONDS)
    refreshed = journey.saw(person.visit(f"{site_a}/"))
    assert refreshed.redirects == 0 and signed_in_page_shows_alice(refreshed.page)
    tokens_a = session_tokens(redis_client, "site_a", person.cookie("site_a_sessionid"))
    assert tokens_a["refresh_token"] != first_tokens_a["refresh_token"], "the refresh happened"
    journey.note_tokens("site A refreshed", tokens_a)

    # Sign out at site A: the IdP tells site B and the watcher by back-channel.
    b_session = person.cookie("site_b_sessionid")
    signed_out = journey.saw(person.sign_out_at_site(site_a))
    assert "You are signed out" in signed_out.page.text
    wait_for(lambda: inbox.tokens, timeout=20, what="the watcher's logout token")
    wait_for(lambda: not session_stored(redis_client, "site_b", b_session), timeout=20, what="site B's sign-out")
    for token in inbox.tokens:
        journey.note("logout token", token)

    # A failed sign-in, with a wrong password.
    wrong_password = f"wrong-{RUN}-{secrets.token_urlsafe(8)}"
    browser = requests.Session()
    login_page = browser.get(f"{idp.url}/accounts/login/", timeout=TIMEOUT)
    refused = submit_login(browser, login_page, dora[0], wrong_password)
    assert refused.status_code == 400
    journey.pages += [login_page, refused]

    assert sum(name.startswith("code for") for name in journey.secrets) >= 2, "codes of both sites were seen"
    assert any(name.startswith("logout token") for name in journey.secrets)
    never = {
        **{f"config {name}": value for name, value in stack_secrets(stack).items()},
        "watcher's client secret": watcher.client_secret,
        "dora's password": dora[1],
        "the wrong password": wrong_password,
        **journey.secrets,
    }
    time.sleep(0.5)  # the processes write unbuffered; a moment for the last lines
    logs = sorted(Path(stack.state_dir / "logs").glob("*.log"))
    texts = {log.name: log.read_text(errors="replace") for log in logs}
    assert "/sso/callback/" in texts["site_a.log"] and "/sso/backchannel-logout/" in texts["site_b.log"], (
        "the logs record the journey (else this test searches nothing)"
    )
    found = [f"{name} in {log}" for log, text in texts.items() for name, value in never.items() if value in text]
    assert not found, f"secrets in the logs: {found}"
    shown = [
        f"{name} on {page.url.split('?')[0]}"
        for page in journey.pages
        for name, value in never.items()
        if value in page.text
    ]
    assert not shown, f"secrets on the pages the person saw: {shown}"
