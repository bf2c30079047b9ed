"""A slow IdP ties up no site worker (sso_client.idp_breaker), with real processes.

A stack of this module's own (its Redis, its databases, the IdP, both sites and the worker) with
the IdP behind the soak's delaying proxy (soak/proxy.py): the IdP's issuer (IDP_URL) is the
proxy's address, as in the soak, so every call of the sites to the IdP passes through it. The
proxy then holds each answer SLOW_SECONDS, beyond the sites' 5 s timeout for calls to the IdP.

A signed-in person whose access token is due waits for the timeout once; after that their pages,
another tab of theirs and the public pages are served at once, and a visitor who is not signed in
gets the "unavailable" page at once rather than being sent to the IdP. Once the IdP is fast again
the token is refreshed behind a page and the person is still signed in.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from devstack.processes import ManagedProcess, free_port
from devstack.redis_server import RedisServer
from devstack.stack import REPO_ROOT, Stack
from soak.proxy import ProxyControl
from tests.e2e.conftest import production_settings, stack_databases
from tests.e2e.test_metrics_and_logs import moved, scrape
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor
from tests.e2e.waiting import wait_for

#: The sites' timeout for calls to the IdP (SSO_CLIENT["HTTP_TIMEOUT_SECONDS"]'s default).
HTTP_TIMEOUT_SECONDS = 5
#: ...and for a refresh ahead of expiry, the token still valid (SSO_CLIENT["REFRESH_AHEAD_TIMEOUT_SECONDS"]).
REFRESH_AHEAD_TIMEOUT_SECONDS = 2
#: The breaker's open time (SSO_CLIENT["IDP_UNREACHABLE_SECONDS"]'s default).
IDP_UNREACHABLE_SECONDS = 10
SLOW_SECONDS = 8
#: Access tokens live 30 s and are due 6 s after they were issued: the whole slow spell fits
#: within the token's life, so the person is served throughout with the token they have.
ACCESS_TOKEN_SECONDS = 30
REFRESH_MARGIN_SECONDS = 24
#: A page served at once (no call to the IdP waited for), with room for a busy machine.
QUICK_SECONDS = 1.0
REFRESHES = "sso_client_token_refreshes_total"


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory, database_server) -> Iterator[tuple[Stack, ProxyControl]]:
    redis_server = RedisServer(tmp_path_factory.mktemp("slow-idp-redis"))
    running: Stack | None = None
    try:
        redis_server.start()
        proxy_port = free_port()
        env = {
            **production_settings(tmp_path_factory.mktemp("slow-idp-secrets"), redis_server.url),
            **stack_databases(database_server, "slow_idp_"),
            # Everyone reaches the IdP through the delaying proxy: it is the issuer's address.
            "IDP_URL": f"http://127.0.0.1:{proxy_port}",
            "ACCESS_TOKEN_SECONDS": str(ACCESS_TOKEN_SECONDS),
            "SSO_REFRESH_MARGIN_SECONDS": str(REFRESH_MARGIN_SECONDS),
        }
        ports = {"idp": free_port(), "site_a": free_port(), "site_b": free_port(), "idp-proxy": proxy_port}
        running = Stack(state_dir=tmp_path_factory.mktemp("slow-idp-stack"), ports=ports, env=env)
        running.prepare()
        proxy = ManagedProcess(
            "idp-proxy",
            [sys.executable, "-m", "soak.proxy", str(proxy_port), str(ports["idp"])],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
            log_path=running.state_dir / "logs" / "idp-proxy.log",
        )
        running.processes["idp-proxy"] = proxy  # stopped with the stack, by its pid
        control = ProxyControl(proxy_port)
        proxy.wait_until(control.answers, timeout=30, what="answering")
        running.start_all()
        yield running, control
    finally:
        if running is not None:
            running.stop()
        redis_server.stop()


def timed(visit):
    started = time.monotonic()
    result = visit()
    return result, time.monotonic() - started


def test_a_slow_idp_costs_a_person_one_timeout_and_nobody_else_a_wait(slow_stack):
    stack, proxy = slow_stack
    site = stack.env["SITE_A_URL"]
    person = Visitor()
    signed_in_at = time.monotonic()
    assert signed_in_page_shows_alice(person.sign_in(f"{site}/", "alice", stack.env["DEMO_PASSWORD"]).page)
    before = scrape(site)
    # The access token is due for refresh (within the margin), still valid for a good while.
    time.sleep(max(0.0, signed_in_at + ACCESS_TOKEN_SECONDS - REFRESH_MARGIN_SECONDS + 1 - time.monotonic()))
    proxy.set_latency(SLOW_SECONDS)

    # The first page that refreshes waits for the (short) timeout of a refresh ahead of expiry,
    # once, and is served with the token it has.
    first: list = []
    waiting = threading.Thread(target=lambda: first.append(timed(lambda: person.visit(f"{site}/"))), daemon=True)
    waiting.start()
    time.sleep(0.3)
    # Meanwhile: another tab of the person (the refresh lock is held: its token is valid, it does
    # not wait), and the public page.
    other_tab = Visitor()
    other_tab.browser.cookies.update(person.browser.cookies)
    tab, took = timed(lambda: other_tab.visit(f"{site}/"))
    assert signed_in_page_shows_alice(tab.page) and took < QUICK_SECONDS, took
    about, took = timed(lambda: requests.get(f"{site}/about/", timeout=30))
    assert about.status_code == 200 and took < QUICK_SECONDS, took
    waiting.join(timeout=30)
    [(visit, took)] = first
    assert visit.redirects == 0 and signed_in_page_shows_alice(visit.page)
    assert REFRESH_AHEAD_TIMEOUT_SECONDS - 0.5 < took <= REFRESH_AHEAD_TIMEOUT_SECONDS + 1, took
    tripped_at = time.monotonic()

    # After that timeout, while the IdP is still slow: every page at once, the public page too, and
    # a visitor who is not signed in gets the readable "unavailable" page, not sent to the IdP.
    looks = []
    while time.monotonic() < tripped_at + IDP_UNREACHABLE_SECONDS - 3:
        page, took = timed(lambda: person.visit(f"{site}/"))
        assert page.redirects == 0 and signed_in_page_shows_alice(page.page)
        looks.append(took)
        about, took = timed(lambda: requests.get(f"{site}/about/", timeout=30))
        assert about.status_code == 200
        looks.append(took)
        time.sleep(0.2)
    assert len(looks) >= 10 and max(looks) < QUICK_SECONDS, looks
    newcomer, took = timed(lambda: Visitor().visit(f"{site}/"))
    assert newcomer.page.status_code == 503 and took < QUICK_SECONDS, took
    assert "cannot be reached" in newcomer.page.text and newcomer.page.headers["Retry-After"]
    assert not newcomer.shows_login_form() and newcomer.redirects == 0
    during = scrape(site)
    assert moved(before, during, REFRESHES, outcome="idp_unreachable") == 1, "one timeout, one wait"
    assert moved(before, during, REFRESHES, outcome="skipped_idp_unreachable") >= 5
    assert moved(before, during, REFRESHES, outcome="refreshed") == 0

    # The IdP fast again: once the breaker's time is over, a page refreshes the token; still signed in.
    proxy.set_latency(0)

    def refreshed() -> bool:
        page, took = timed(lambda: person.visit(f"{site}/"))
        assert page.redirects == 0 and signed_in_page_shows_alice(page.page), "still signed in"
        assert took < HTTP_TIMEOUT_SECONDS, took
        return moved(before, scrape(site), REFRESHES, outcome="refreshed") == 1

    wait_for(refreshed, timeout=IDP_UNREACHABLE_SECONDS + 15, what="the token refreshed once the IdP is fast")
    after = scrape(site)
    assert moved(before, after, REFRESHES, outcome="refused") == 0, "nobody was signed out"
    assert moved(before, after, REFRESHES, outcome="idp_unreachable") == 1
    assert signed_in_page_shows_alice(person.visit(f"{stack.env['SITE_B_URL']}/").page), "signed in at B too"
    assert signed_in_page_shows_alice(Visitor().sign_in(f"{site}/", "alice", stack.env["DEMO_PASSWORD"]).page)
