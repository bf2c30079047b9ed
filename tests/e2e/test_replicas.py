"""Replicas: two of every part behind round-robin load balancers, and single sign-on still works.

A stack of this module's own (its own Redis, its own databases): two IdP processes, two of each
client site, one PostgreSQL database per part, one Redis, and two back-channel logout workers.
Each part is reached through a small round-robin proxy (tests/e2e/round_robin.py), and every
process is told the proxies' URLs: the issuer, the redirect URIs and the back-channel logout
URIs all go through them, so consecutive requests of one browser land on different replicas.

A person's journey (signing in at A, single sign-on at B, token refreshes, a page view racing a
refresh on both replicas of A, signing out at B), an administrator's "sign out everywhere", and
a back-channel logout the workers must retry, each step checked as a person or an operator would
notice it, and each step served by both replicas of the parts it used.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import requests
from rq import Queue, Worker

from devstack.processes import free_port
from devstack.redis_server import RedisServer
from devstack.stack import IDP, SITE_A, SITE_B, Site, Stack
from tests.e2e.conftest import (
    ACCESS_TOKEN_SECONDS,
    REFRESH_MARGIN_SECONDS,
    idp_sql,
    production_settings,
    session_stored,
    stack_databases,
)
from tests.e2e.oidc import Provider
from tests.e2e.round_robin import PROXY, RoundRobinProxy
from tests.e2e.scrape import metric
from tests.e2e.test_sites import rotated_refresh_tokens, signed_in_page_shows_alice
from tests.e2e.visitor import Visitor
from tests.e2e.waiting import wait_for

PARTS: dict[str, Site] = {"idp": IDP, "site_a": SITE_A, "site_b": SITE_B}
REPLICAS = 2
WORKERS = ("worker-1", "worker-2")
BACKCHANNEL_PATH = "/sso/backchannel-logout/"
RETRY_QUEUE = "backchannel-logout"  # the IdP's queue of back-channel logouts for the workers
TIMEOUT = 30


@dataclass
class Replicated:
    stack: Stack
    proxies: dict[str, RoundRobinProxy]
    redis: redis.Redis

    def url(self, part: str) -> str:
        """The part's URL as everyone knows it: its load balancer's."""
        return self.proxies[part].url

    def replicas(self, part: str) -> list[str]:
        return list(self.proxies[part].replicas)

    def replica_urls(self, part: str) -> list[str]:
        return [self.stack.replica_url(name) for name in self.replicas(part)]


def replicated_env(state: Path, redis_url: str, databases) -> dict[str, str]:
    """The settings of conftest's production_env and stack, for this module's own stack."""
    return {
        **production_settings(state, redis_url),
        **stack_databases(databases, ""),
        "WEB_CONCURRENCY": "1",  # one gunicorn worker per replica: the replicas are the concurrency
    }


@pytest.fixture(scope="module")
def replicated(tmp_path_factory, database_server) -> Iterator[Replicated]:
    state = tmp_path_factory.mktemp("replicas")
    redis_server = RedisServer(state / "redis")
    proxies: dict[str, RoundRobinProxy] = {}
    stack: Stack | None = None
    client = None
    try:
        redis_server.start()
        replica_ports = {f"{part}-{n}": free_port() for part in PARTS for n in range(1, REPLICAS + 1)}
        for part in PARTS:
            replicas = {name: port for name, port in replica_ports.items() if name.startswith(f"{part}-")}
            proxies[part] = RoundRobinProxy(part, free_port(), replicas).start()
        ports = {**{part: proxy.port for part, proxy in proxies.items()}, **replica_ports}
        # IDP_URL, SITE_A_URL and SITE_B_URL: the proxies' (the stack's ports of "idp", "site_a", "site_b").
        stack = Stack(state_dir=state, ports=ports, env=replicated_env(state, redis_server.url, database_server))
        stack.prepare()
        with ThreadPoolExecutor(max_workers=len(replica_ports) + len(WORKERS)) as pool:
            started = [pool.submit(stack.start, PARTS[name.split("-")[0]], name) for name in replica_ports]
            started += [pool.submit(stack.start_worker, name) for name in WORKERS]
            for future in started:
                future.result()
        client = redis_server.client()
        yield Replicated(stack=stack, proxies=proxies, redis=client)
    finally:
        if client is not None:
            client.close()
        if stack is not None:
            stack.stop()
        for proxy in proxies.values():
            proxy.stop()
        redis_server.stop()


@pytest.fixture(scope="module")
def alice(replicated) -> tuple[str, str]:
    return "alice", replicated.stack.env["DEMO_PASSWORD"]


@pytest.fixture(scope="module")
def admin(replicated) -> tuple[str, str]:
    return "admin", replicated.stack.env["ADMIN_PASSWORD"]


# --- what the test looks at ----------------------------------------------------------------------
@contextmanager
def served_by_every_replica(replicated: Replicated, *parts: str) -> Iterator[None]:
    """The block's requests to each of `parts` were answered by every one of its replicas."""
    marks = {part: replicated.proxies[part].mark() for part in parts}
    yield
    for part in parts:
        served = replicated.proxies[part].served(since=marks[part])
        answered = {entry.replica for entry in served} - {PROXY}
        assert answered == set(replicated.replicas(part)), f"{part}: this step was served by {sorted(answered)} only"


def summed(replicated: Replicated, part: str, name: str, **labels: str) -> float:
    """A per-process counter, added up over the part's replicas (as Prometheus' sum() would)."""
    return sum(metric(url, name, **labels) for url in replicated.replica_urls(part))


def token_refreshes(replicated: Replicated, part: str, outcome: str) -> float:
    return summed(replicated, part, "sso_client_token_refreshes_total", outcome=outcome)


def token_due_at(replicated: Replicated, part: str, session_key: str) -> float:
    """When the site will refresh the session's access token, read from its session in Redis."""
    [key] = replicated.redis.keys(f"{part}:*:django.contrib.sessions.cache{session_key}")
    session = json.loads(replicated.redis.get(key))
    return float(session["_sso_token"]["expires_at"]) - REFRESH_MARGIN_SECONDS


def wait_until_due(replicated: Replicated, person: Visitor, *parts: str) -> None:
    """Until each site's access token of `person` is due for refresh (by the clock; polled)."""
    due = max(token_due_at(replicated, part, person.cookie(f"{part}_sessionid")) for part in parts) + 0.3
    assert due - time.time() < ACCESS_TOKEN_SECONDS + 5, "the token is due within its lifetime"
    wait_for(lambda: time.time() >= due, timeout=ACCESS_TOKEN_SECONDS + 10, what="the access token falling due")


def page_view(url: str, cookies) -> requests.Response:
    """A browser's page view (not followed: a signed-in page is a 200 straight away)."""
    return requests.get(url, cookies=cookies, headers={"Accept": "text/html"}, allow_redirects=False, timeout=TIMEOUT)


def signed_in_without_a_trip(visit) -> bool:
    return visit.redirects == 0 and signed_in_page_shows_alice(visit.page)


def asked_to_sign_in_at_every_replica(replicated: Replicated, person: Visitor, part: str) -> None:
    """Each replica of `part`, asked directly, sends the person to the IdP's login page."""
    for url in replicated.replica_urls(part):
        visit = person.visit(f"{url}/")
        assert urlsplit(visit.urls[1]).path == "/o/authorize/", f"{url}: not sent to sign in"
        assert visit.shows_login_form(), f"{url}: the IdP did not ask for the password"
        assert not signed_in_page_shows_alice(visit.page)


def backchannel_deliveries(replicated: Replicated, part: str, since: int) -> list[int]:
    """The statuses of the back-channel logout POSTs that reached `part` after `since`."""
    return [
        entry.status
        for entry in replicated.proxies[part].served(since=since)
        if entry.method == "POST" and entry.path == BACKCHANNEL_PATH
    ]


def refuse_backchannel_logouts(method: str, path: str) -> int | None:
    """A load balancer's answer while the site is unhealthy for back-channel logouts."""
    return 503 if (method, path) == ("POST", BACKCHANNEL_PATH) else None


def signed_in_everywhere(replicated: Replicated, alice) -> Visitor:
    person = Visitor()
    assert signed_in_page_shows_alice(person.sign_in(f"{replicated.url('site_a')}/", *alice).page)
    assert signed_in_page_shows_alice(person.visit(f"{replicated.url('site_b')}/").page)
    return person


# --- the journeys --------------------------------------------------------------------------------
def test_a_person_is_signed_in_refreshed_and_signed_out_whichever_replica_answers(replicated, alice):
    idp, site_a, site_b = (replicated.url(part) for part in PARTS)
    person = Visitor()

    # Signing in at A: the sign-in starts at one replica of A and ends at the other's callback.
    with served_by_every_replica(replicated, "idp", "site_a"):
        at_a = person.sign_in(f"{site_a}/", *alice)
    assert at_a.page.url == f"{site_a}/"
    assert signed_in_page_shows_alice(at_a.page)

    # Single sign-on at B: no password asked, three redirects and no page in between.
    with served_by_every_replica(replicated, "idp", "site_b"):
        at_b = person.visit(f"{site_b}/")
    assert signed_in_page_shows_alice(at_b.page)
    assert not at_b.shows_login_form()
    assert at_b.redirects == 3

    # Token refresh behind the page, at both sites; the next view, at the other replica, uses it.
    wait_until_due(replicated, person, "site_a", "site_b")
    rotated = {client: rotated_refresh_tokens(replicated.stack, client) for client in ("site-a", "site-b")}
    with served_by_every_replica(replicated, "idp", "site_a", "site_b"):
        for site in (site_a, site_a, site_b, site_b):
            assert signed_in_without_a_trip(person.visit(f"{site}/")), site
    for client, before in rotated.items():
        assert rotated_refresh_tokens(replicated.stack, client) == before + 1, f"{client} refreshed once"

    # A page view racing a refresh: two requests of the session at once, one at each replica of A.
    wait_until_due(replicated, person, "site_a")
    rotated = rotated_refresh_tokens(replicated.stack, "site-a")
    refreshed = token_refreshes(replicated, "site_a", "refreshed")
    idp_mark = replicated.proxies["idp"].mark()
    start = threading.Barrier(REPLICAS)

    def view(url: str) -> requests.Response:
        cookies = person.browser.cookies.copy()
        start.wait(timeout=TIMEOUT)
        return page_view(f"{url}/", cookies)

    with ThreadPoolExecutor(max_workers=REPLICAS) as pool:
        pages = list(pool.map(view, replicated.replica_urls("site_a")))
    assert all(signed_in_page_shows_alice(page) for page in pages), [page.status_code for page in pages]
    token_path = urlsplit(Provider(idp).metadata["token_endpoint"]).path
    token_calls = [entry for entry in replicated.proxies["idp"].served(since=idp_mark) if entry.path == token_path]
    assert len(token_calls) == 1, f"{len(token_calls)} refreshes reached the IdP"
    assert rotated_refresh_tokens(replicated.stack, "site-a") == rotated + 1, "the refresh token was spent once"
    assert token_refreshes(replicated, "site_a", "refreshed") == refreshed + 1

    # Still signed in: the new refresh token works (no replay revoked its family).
    wait_until_due(replicated, person, "site_a")
    with served_by_every_replica(replicated, "site_a"):
        for _ in range(REPLICAS):
            assert signed_in_without_a_trip(person.visit(f"{site_a}/"))
    assert rotated_refresh_tokens(replicated.stack, "site-a") == rotated + 2
    assert token_refreshes(replicated, "site_a", "refused") == 0

    # Signing out at B (RP-initiated): the IdP tells A by back-channel, and both A replicas know it.
    backchannel_mark = replicated.proxies["site_a"].mark()
    with served_by_every_replica(replicated, "idp", "site_b"):
        signed_out = person.sign_out_at_site(site_b)
        assert signed_out.page.url.split("?")[0] == f"{site_b}/sso/signed-out/"
        assert "You are signed out" in signed_out.page.text
        assert person.visit(f"{idp}/").shows_login_form(), "the IdP session is gone too"
    assert backchannel_deliveries(replicated, "site_a", backchannel_mark) == [200], "A was told once, at once"
    asked_to_sign_in_at_every_replica(replicated, person, "site_a")
    asked_to_sign_in_at_every_replica(replicated, person, "site_b")


def test_an_administrator_signs_a_person_out_everywhere_through_the_replicas(replicated, alice, admin):
    idp, site_a, site_b = (replicated.url(part) for part in PARTS)
    person = signed_in_everywhere(replicated, alice)
    operator = Visitor()
    backchannel_marks = {part: replicated.proxies[part].mark() for part in ("site_a", "site_b")}
    with served_by_every_replica(replicated, "idp", "site_a", "site_b"):
        operator.sign_in(f"{idp}/admin/", *admin)
        [(alice_id,)] = idp_sql(replicated.stack, "SELECT id FROM auth_user WHERE username = 'alice'")
        done = operator.post_form(
            f"{idp}/admin/auth/user/",
            f"{idp}/admin/auth/user/",
            {"action": "sign_out_everywhere", "_selected_action": str(alice_id), "index": "0"},
        )
        assert "Signed out 1 person" in done.page.text
        # The admin's page does not wait for the sites: a worker tells each, once.
        for part, mark in backchannel_marks.items():
            wait_for(
                lambda part=part, mark=mark: backchannel_deliveries(replicated, part, mark) != [],
                timeout=TIMEOUT,
                what=f"a worker telling {part}",
            )
            assert backchannel_deliveries(replicated, part, mark) == [200], f"{part} was told once"
        for site in (site_a, site_b):
            visit = person.visit(f"{site}/")
            assert visit.shows_login_form() and not signed_in_page_shows_alice(visit.page), site
    for part in ("site_a", "site_b"):
        asked_to_sign_in_at_every_replica(replicated, person, part)


def test_two_workers_deliver_a_queued_logout_once(replicated, alice):
    site_a, site_b = replicated.url("site_a"), replicated.url("site_b")
    queue = Queue(RETRY_QUEUE, connection=replicated.redis)
    wait_for(
        lambda: Worker.count(connection=replicated.redis, queue=queue) == len(WORKERS),
        timeout=TIMEOUT,
        what="both workers serving the retry queue",
    )
    assert all(replicated.stack.processes[name].running() for name in WORKERS)

    person = signed_in_everywhere(replicated, alice)
    a_session, b_session = person.cookie("site_a_sessionid"), person.cookie("site_b_sessionid")
    idp = replicated.replica_urls("idp")[0]  # the workers' counts are deployment totals, the same on each

    def retries(outcome: str) -> float:
        return metric(idp, "idp_backchannel_logout_retries_total", outcome=outcome)

    def waiting() -> float:
        return metric(idp, "idp_backchannel_logout_retry_queue_length")

    failed, delivered = retries("failed"), retries("delivered")
    queued = summed(replicated, "idp", "idp_backchannel_logout_deliveries_total", outcome="queued")
    b_mark = replicated.proxies["site_b"].mark()
    with served_by_every_replica(replicated, "site_a", "site_b"):
        # Site B's load balancer answers 503 to back-channel logouts (B unhealthy) for a while.
        with replicated.proxies["site_b"].refusing(refuse_backchannel_logouts):
            signed_out = person.sign_out_at_site(site_a)
            assert "You are signed out" in signed_out.page.text
            assert not session_stored(replicated.redis, "site_a", a_session), "A was told at once"
            assert session_stored(replicated.redis, "site_b", b_session), "B could not be told yet"
            assert summed(replicated, "idp", "idp_backchannel_logout_deliveries_total", outcome="queued") == queued + 1
            wait_for(lambda: retries("failed") > failed, timeout=TIMEOUT, what="a worker's retry meeting B's 503")
            assert session_stored(replicated.redis, "site_b", b_session)

        # Healed: the next retry reaches B.
        wait_for(
            lambda: retries("delivered") > delivered and waiting() == 0,
            timeout=TIMEOUT,
            what="a worker delivering the logout to B, and the queue emptying",
        )
        assert not session_stored(replicated.redis, "site_b", b_session), "B's session ended"
        at_b = person.visit(f"{site_b}/")
        assert at_b.shows_login_form() and not signed_in_page_shows_alice(at_b.page)

    statuses = backchannel_deliveries(replicated, "site_b", b_mark)
    assert statuses.count(503) >= 2, "the sign-out's attempt and a worker's retry were refused"
    successes = [status for status in statuses if status in (200, 204)]
    assert len(successes) == 1, f"{len(successes)} deliveries reached B: the two workers must deliver once"
    assert retries("delivered") == delivered + 1
    assert retries("given_up") == 0
