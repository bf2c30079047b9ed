"""What an operator watches: counters that move with a person's journey, and logs that are JSON.

A journey through the running stack (sign in at site A, single sign-on at B, a token refresh at A,
signing out at A with back-channel logout to B, and a failed sign-in at the IdP by a person of
this test's own: lock-out counters are shared with the other tests) is read back from each
process's `/-/metrics`, scraped from 127.0.0.1 as Prometheus would, from loopback. The callback
of the sign-in carries `X-Request-ID: abc-123`: the site answers with it and sends it on with its
token call, so the IdP's log has that call's line under the same id. Every line the stack's
processes write meanwhile is one JSON object (gunicorn's own lines included: they go through the
application's logging, loaded before gunicorn starts, with preload_app).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import free_port
from devstack.stack import IDP, SITE_A, SITE_B
from tests.e2e.conftest import REFRESH_DUE_SECONDS, session_stored
from tests.e2e.hostile import create_person, register_app
from tests.e2e.oidc import AuthRequest, submit_login
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor
from tests.e2e.waiting import wait_for

RUN = secrets.token_hex(4)
REQUEST_ID = "abc-123"
METRICS_TOKEN = secrets.token_urlsafe(24)
TIMEOUT = 30

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of `url`'s /-/metrics, by name and labels (requests come from 127.0.0.1)."""
    response = requests.get(f"{url}/-/metrics", timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


class LogWindow:
    """The lines the stack's processes write from now on, in every `state_dir/logs/*.log`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.start = {log: log.stat().st_size for log in folder.glob("*.log")}

    def lines(self) -> dict[str, list[str]]:
        written = {}
        for log in sorted(self.folder.glob("*.log")):
            with log.open("rb") as file:
                file.seek(self.start.get(log, 0))
                written[log.name] = file.read().decode(errors="replace").splitlines()
        return written


@pytest.fixture(scope="module")
def frank(stack) -> tuple[str, str]:
    """A person of this test's own, who types a wrong password."""
    person = (f"frank-{RUN}", f"frank-{secrets.token_urlsafe(12)}")
    create_person(stack, *person)
    return person


@pytest.fixture
def window(stack) -> Iterator[LogWindow]:
    yield LogWindow(stack.state_dir / "logs")


def test_a_journey_moves_the_counters_and_every_log_line_is_json(
    stack, idp, site_a, site_b, alice, frank, redis_client, window
):
    urls = {"idp": stack.url(IDP), "site_a": stack.url(SITE_A), "site_b": stack.url(SITE_B)}
    before = {name: scrape(url) for name, url in urls.items()}
    person = Visitor()

    # Sign in at site A, step by step: the callback goes to site A with a request id of ours.
    login_page = person.visit(f"{site_a}/").page
    posted = submit_login(person.browser, login_page, *alice)
    assert posted.status_code == 302
    authorized = person.browser.get(
        urljoin(login_page.url, posted.headers["Location"]), allow_redirects=False, timeout=TIMEOUT
    )
    callback = authorized.headers["Location"]
    assert urlsplit(callback).path == "/sso/callback/"
    answer = person.browser.get(
        callback, allow_redirects=False, headers={"Accept": "text/html", "X-Request-ID": REQUEST_ID}, timeout=TIMEOUT
    )
    assert answer.status_code == 302 and answer.headers["X-Request-ID"] == REQUEST_ID
    home = person.visit(f"{site_a}/")
    assert signed_in_page_shows_alice(home.page)
    made = home.page.headers["X-Request-ID"]
    assert len(made) == 32 and made != REQUEST_ID, "a request without an id is given one"

    # Single sign-on at site B, then a token refresh behind site A's page.
    assert signed_in_page_shows_alice(person.visit(f"{site_b}/").page)
    time.sleep(REFRESH_DUE_SECONDS)
    assert signed_in_page_shows_alice(person.visit(f"{site_a}/").page)

    # Sign out at site A: the IdP tells site B by back-channel.
    b_session = person.cookie("site_b_sessionid")
    assert "You are signed out" in person.sign_out_at_site(site_a).page.text
    wait_for(lambda: not session_stored(redis_client, "site_b", b_session), timeout=20, what="site B's sign-out")

    # A failed sign-in at the IdP.
    browser = requests.Session()
    refused = submit_login(browser, browser.get(f"{idp.url}/accounts/login/", timeout=TIMEOUT), frank[0], "wrong")
    assert refused.status_code == 400

    after = {name: scrape(url) for name, url in urls.items()}
    idp_before, idp_after = before["idp"], after["idp"]
    assert moved(idp_before, idp_after, "idp_sign_ins_total", outcome="succeeded") >= 1
    assert moved(idp_before, idp_after, "idp_sign_ins_total", outcome="failed") >= 1
    grants = {"grant_type": "authorization_code", "outcome": "ok"}
    assert moved(idp_before, idp_after, "idp_token_grants_total", **grants) >= 2, "site A's and site B's codes"
    assert moved(idp_before, idp_after, "idp_token_grants_total", grant_type="refresh_token", outcome="ok") >= 1
    assert moved(idp_before, idp_after, "idp_login_sessions_ended_total") >= 1
    assert moved(idp_before, idp_after, "idp_backchannel_logout_deliveries_total", outcome="delivered") >= 1
    assert ("idp_backchannel_logout_retry_queue_length", (("state", "queued"),)) in idp_after
    assert ("idp_backchannel_logout_retries_total", (("outcome", "given_up"),)) in idp_after
    token_view = {"status": "200", "view": "token", "method": "POST"}
    assert moved(idp_before, idp_after, "django_http_responses_total_by_status_view_method_total", **token_view) >= 3
    assert moved(before["site_a"], after["site_a"], "sso_client_token_refreshes_total", outcome="refreshed") >= 1
    callback_view = {"status": "302", "view": "sso_client:callback", "method": "GET"}
    assert (
        moved(
            before["site_a"],
            after["site_a"],
            "django_http_responses_total_by_status_view_method_total",
            **callback_view,
        )
        >= 1
    )
    assert moved(before["site_b"], after["site_b"], "sso_client_backchannel_logouts_total", outcome="accepted") >= 1

    time.sleep(0.5)  # the processes write unbuffered; a moment for the last lines
    written = window.lines()
    not_json = [f"{log}: {line[:200]}" for log, lines in written.items() for line in lines if not is_json_object(line)]
    assert not not_json, f"lines that are not JSON: {not_json[:10]}"
    idp_lines = [json.loads(line) for line in written["idp.log"]]
    token_call = [line for line in idp_lines if line.get("request_id") == REQUEST_ID]
    assert any(line.get("request") == "POST /o/token/" for line in token_call), (
        "the IdP logged site A's token call under the callback's request id"
    )
    site_a_lines = [json.loads(line) for line in written["site_a.log"]]
    [callback_line] = [line for line in site_a_lines if line.get("request_id") == REQUEST_ID]
    assert callback_line["request"] == "GET /sso/callback/" and callback_line["code"] == 302
    requests_logged = [line for lines in written.values() for line in lines if '"request_finished"' in line]
    assert requests_logged and not [line for line in requests_logged if "?" in json.loads(line)["request"]], (
        "request lines name paths, never query strings"
    )


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@pytest.fixture
def idp_behind_proxy(stack) -> Iterator[str]:
    """An IdP replica that a TLS proxy on loopback forwards to, with an allow-list and a token."""
    process, url = stack.start_replica(
        IDP,
        "idp-metrics-behind-proxy",
        DJANGO_BEHIND_TLS_PROXY="1",
        METRICS_ALLOWED_IPS="198.51.100.0/24",
        METRICS_TOKEN=METRICS_TOKEN,
    )
    try:
        yield url
    finally:
        process.stop()


def test_behind_the_proxy_loopback_is_the_proxy_and_opens_nothing(idp_behind_proxy):
    url = f"{idp_behind_proxy}/-/metrics"

    def status(forwarded_for: str, **headers: str) -> int:
        return requests.get(url, headers={"X-Forwarded-For": forwarded_for, **headers}, timeout=TIMEOUT).status_code

    assert status("203.0.113.5") == 403, "the proxy's loopback address is not the caller's"
    assert status("127.0.0.1, 203.0.113.5") == 403, "what the caller wrote before the proxy's entry is not believed"
    assert status("198.51.100.7") == 200, "METRICS_ALLOWED_IPS"
    assert status("203.0.113.5", Authorization=f"Bearer {METRICS_TOKEN}") == 200
    assert status("203.0.113.5", Authorization="Bearer guess") == 403


class LateInbox:
    """A client's back-channel logout URI that starts answering only when told to (200 to every post)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.posts = 0
        self.server: ThreadingHTTPServer | None = None

    def open(self) -> None:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls it by this name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def late_inbox() -> Iterator[LateInbox]:
    inbox = LateInbox()
    try:
        yield inbox
    finally:
        inbox.close()


def test_a_delivery_the_worker_retries_is_counted(stack, idp, frank, late_inbox):
    """Queued at sign-out (the client is down), delivered by the worker's retry once it is up."""
    client = register_app(
        stack,
        "Metrics watcher",
        redirect_uri=f"{late_inbox.url}/callback/",
        trusted=True,
        backchannel_uri=f"{late_inbox.url}/backchannel-logout/",
    )
    before = scrape(idp.url)
    browser = requests.Session()
    request = AuthRequest(client)
    code = idp.sign_in(browser, request, *frank)["code"]
    assert idp.exchange(request, code).status_code == 200
    signed_out = Visitor(browser).post_form(f"{idp.url}/", f"{idp.url}/accounts/logout/")
    assert "You are signed out" in signed_out.page.text and late_inbox.posts == 0, "nothing listened at sign-out"
    assert moved(before, scrape(idp.url), "idp_backchannel_logout_deliveries_total", outcome="queued") >= 1
    late_inbox.open()
    wait_for(lambda: late_inbox.posts >= 1, timeout=30, what="the worker's retry")
    wait_for(
        lambda: moved(before, scrape(idp.url), "idp_backchannel_logout_retries_total", outcome="delivered") >= 1,
        timeout=10,
        what="the retry's count",
    )
