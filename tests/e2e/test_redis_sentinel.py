"""Redis Sentinel: the IdP, both sites and the back-channel worker follow the primary across a failover.

A real primary (with a password and an append-only file, as in production), a real replica and
three real Sentinels, on free ports of 127.0.0.1. The primary is killed with a person signed in
at both sites: pages answer a readable 503 while no primary is known, never a 500, and within
FAILOVER_BOUND_SECONDS of the kill the person is served at both sites again, still signed in.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass

import pytest
import redis
import requests

from devstack.processes import free_port
from devstack.redis_server import RedisServer, SentinelServer
from devstack.stack import IDP, SITE_A, SITE_B, Stack, start_and_wait_for_exit
from tests.e2e.conftest import running_stack, session_stored, stack_databases
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor
from tests.e2e.waiting import wait_for

SERVICE = "mymaster"
#: The Sentinels deem the primary down after this long without an answer (production: 5000).
DOWN_AFTER_MS = 1000
#: The stated bound: from the primary's death to both sites serving signed-in people again.
FAILOVER_BOUND_SECONDS = 30


@dataclass
class SentinelDeployment:
    primary: RedisServer
    replica: RedisServer
    sentinels: list[SentinelServer]
    password: str
    sentinel_password: str

    @property
    def env(self) -> dict[str, str]:
        """REDIS_URL names the service; REDIS_SENTINELS where to ask for its primary."""
        return {
            "REDIS_URL": f"redis://:{self.password}@{SERVICE}/0",
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels),
            "REDIS_SENTINEL_PASSWORD": self.sentinel_password,
        }

    def primary_now(self) -> redis.Redis:
        """A client of whichever server the Sentinels name as primary, once they all agree (each
        learns of a failover from the others within a few seconds)."""
        addresses: set = set()

        def agreed() -> bool:
            addresses.clear()
            addresses.update(sentinel.primary_address() for sentinel in self.sentinels)
            return len(addresses) == 1 and None not in addresses

        wait_for(agreed, timeout=FAILOVER_BOUND_SECONDS, what=f"the Sentinels agreeing on the primary ({addresses})")
        host, port = addresses.pop()
        return redis.Redis(host=host, port=port, password=self.password, socket_connect_timeout=1)


def sentinels_ready(deployment: SentinelDeployment) -> bool:
    """Each Sentinel knows the replica and the two other Sentinels (a failover needs a majority)."""
    for sentinel in deployment.sentinels:
        try:
            with sentinel.client() as client:
                state = client.sentinel_master(SERVICE)
        except redis.RedisError:
            return False
        if state.get("num-other-sentinels", 0) < 2 or state.get("num-slaves", 0) < 1:
            return False
    return True


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> SentinelDeployment:
    base = tmp_path_factory.mktemp("sentinel")
    password, sentinel_password = secrets.token_hex(16), secrets.token_hex(16)
    primary = RedisServer(base / "primary", password=password, persist=True)
    replica = RedisServer(base / "replica", password=password, persist=True, replica_of=primary)
    sentinels = [SentinelServer(base / f"sentinel-{n}", primary, password=sentinel_password) for n in range(3)]
    started: list = []
    try:
        for server in (primary, replica, *sentinels):
            started.append(server.start())
        found = SentinelDeployment(primary, replica, sentinels, password, sentinel_password)
        wait_for(lambda: sentinels_ready(found), timeout=60, what="the Sentinels finding each other and the replica")
        yield found
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture(scope="module")
def sentinel_stack(tmp_path_factory, production_env, database_server, deployment) -> Stack:
    env = {
        **production_env,
        **deployment.env,
        **stack_databases(database_server, "sentinel_"),
        # Long enough that no refresh falls into the failover: this test is about Redis.
        "ACCESS_TOKEN_SECONDS": "300",
    }
    with running_stack(tmp_path_factory.mktemp("sentinel-stack"), env) as running:
        yield running


def served_or_unavailable(response: requests.Response) -> bool:
    """True for a page served, False for the readable 503; anything else fails the test."""
    if response.status_code == 503:
        assert "Temporarily unavailable" in response.text, response.text[:300]
        assert "Traceback" not in response.text
        assert int(response.headers["Retry-After"]) > 0
        return False
    assert response.status_code == 200, f"{response.url} answered {response.status_code}: {response.text[:300]}"
    return True


def test_a_failover_keeps_people_signed_in_and_never_answers_500(sentinel_stack, deployment):
    stack = sentinel_stack
    site_a, site_b, idp = (stack.url(site) for site in (SITE_A, SITE_B, IDP))
    alice = ("alice", stack.env["DEMO_PASSWORD"])
    person = Visitor()
    assert signed_in_page_shows_alice(person.sign_in(f"{site_a}/", *alice).page)
    assert signed_in_page_shows_alice(person.visit(f"{site_b}/").page)
    # Replication is asynchronous: what the last moment wrote may be lost with the primary. Here
    # the test waits until the replica has everything, as it would seconds later anyway.
    with deployment.primary.client() as primary:
        assert primary.wait(1, 10_000) == 1

    deployment.primary.crash()
    killed = time.monotonic()
    unavailable_pages, readiness_named_redis = 0, False
    served = {site_a: False, site_b: False}
    while not all(served.values()):
        assert time.monotonic() - killed < FAILOVER_BOUND_SECONDS, (
            f"not served again within {FAILOVER_BOUND_SECONDS}s of the primary's death: {served}"
        )
        for site in served:
            page = person.browser.get(f"{site}/", allow_redirects=False, timeout=30)
            if served_or_unavailable(page):
                assert signed_in_page_shows_alice(page), "still signed in after the failover"
                served[site] = True
            else:
                unavailable_pages += 1
                ready = requests.get(f"{site}/-/health/ready/", timeout=30)
                if ready.status_code == 503:
                    readiness_named_redis = readiness_named_redis or "redis" in ready.json()["problems"]
    recovered_after = time.monotonic() - killed
    print(f"served again {recovered_after:.1f}s after the primary's death ({unavailable_pages} pages answered 503)")
    assert unavailable_pages > 0, "the primary's death was seen as a 503 page (the test saw the outage)"
    assert readiness_named_redis, "/-/health/ready/ named Redis while there was no primary"
    new_primary = deployment.primary_now()
    assert new_primary.connection_pool.connection_kwargs["port"] == deployment.replica.port

    # Every process is ready again, the IdP too, without a restart.
    for url in (idp, site_a, site_b):
        wait_for(
            lambda url=url: requests.get(f"{url}/-/health/ready/", timeout=30).status_code == 200,
            timeout=FAILOVER_BOUND_SECONDS,
            what=f"{url} ready",
        )
    # A new sign-in works (the IdP's session, lock-out counters and the sites' sign-in state).
    newcomer = Visitor()
    assert signed_in_page_shows_alice(newcomer.sign_in(f"{site_b}/", *alice).page)
    assert signed_in_page_shows_alice(newcomer.visit(f"{site_a}/").page)

    # A logout reaches both sites; site B is down at that moment, so the worker, following the
    # new primary, delivers it when B is back.
    b_session = person.cookie("site_b_sessionid")
    assert session_stored(new_primary, "site_b", b_session)
    stack.processes["site_b"].stop()
    signed_out = person.sign_out_at_site(site_a)
    assert "You are signed out" in signed_out.page.text
    assert not signed_in_page_shows_alice(person.browser.get(f"{site_a}/", timeout=30))
    stack.start(SITE_B)
    wait_for(
        lambda: not session_stored(new_primary, "site_b", b_session),
        timeout=60,
        what="the worker's back-channel logout at site B",
    )
    # Counted by the worker's success callback, which runs just after the delivery.
    wait_for(
        lambda: int(new_primary.hget("idp:metrics:backchannel-logout-retries", "delivered") or 0) >= 1,
        timeout=30,
        what="the worker counting its delivery",
    )
    # The newcomer, signed in elsewhere, is untouched.
    assert signed_in_page_shows_alice(newcomer.visit(f"{site_b}/").page)


# --- A Sentinel setting that cannot work stops start-up with one line naming it -----------------


@pytest.fixture
def bad_sentinel_env(production_env, deployment, tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        **production_env,
        **deployment.env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        "SITE_A_DATABASE_URL": f"sqlite:///{tmp_path / 'site_a.sqlite3'}",
        "SSO_LOCAL_DIR": str(tmp_path),
    }


BAD_SETTINGS = {
    "no Sentinel answers": ({"REDIS_SENTINELS": f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"}, "REDIS_SENTINELS"),
    "an unknown service": ({"REDIS_URL": "redis://:{password}@no-such-service/0"}, "REDIS_URL"),
    "a wrong password": ({"REDIS_URL": f"redis://:wrong-{secrets.token_hex(4)}@{SERVICE}/0"}, "REDIS_URL"),
    "a wrong Sentinel password": ({"REDIS_SENTINEL_PASSWORD": "wrong"}, "REDIS_SENTINEL_PASSWORD"),
    "a malformed list": ({"REDIS_SENTINELS": "127.0.0.1"}, "REDIS_SENTINELS"),
}


@pytest.mark.parametrize("site", [IDP, SITE_A], ids=lambda site: site.name)
@pytest.mark.parametrize("case", BAD_SETTINGS, ids=str)
def test_a_sentinel_setting_that_cannot_work_stops_start_up_with_one_line(
    bad_sentinel_env, deployment, tmp_path, case, site
):
    changes, setting = BAD_SETTINGS[case]
    env = {**bad_sentinel_env, **{k: v.format(password=deployment.password) for k, v in changes.items()}}
    code, output = start_and_wait_for_exit(site, env, tmp_path)
    assert code == 3, output[-2000:]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and setting in errors[0], output[-2000:]
    assert "Traceback" not in output
    for secret in (deployment.password, deployment.sentinel_password):
        assert secret not in output


def test_the_worker_refuses_an_unknown_service_with_one_line(bad_sentinel_env):
    env = {**bad_sentinel_env, "REDIS_URL": "redis://:x@no-such-service/0"}
    result = IDP.manage("backchannel_worker", env=env)
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr and "no-such-service" in result.stderr
    assert "Traceback" not in result.stderr
