"""The end-to-end fixtures: a real redis-server and the product's processes, over real HTTP.

Every process is started here and stopped here, by its own pid, even when a test fails. The
stack runs as production would: DJANGO_DEBUG off, secrets and signing key from the environment.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "idp")]

from devstack.postgres_server import databases_for_tests, run_sql  # noqa: E402
from devstack.processes import free_port  # noqa: E402
from devstack.redis_server import RedisServer  # noqa: E402
from devstack.stack import IDP, Stack  # noqa: E402
from idp_server.signing_key import generate_rsa_private_key_pem, write_private_file  # noqa: E402
from tests.database_report import database_used, pytest_report_header, pytest_terminal_summary  # noqa: E402, F401  (hooks)
from tests.e2e.oidc import Client, Provider  # noqa: E402

ACCESS_TOKEN_SECONDS = 10
REFRESH_MARGIN_SECONDS = 4
#: How long after signing in a site's access token is due for refresh.
REFRESH_DUE_SECONDS = ACCESS_TOKEN_SECONDS - REFRESH_MARGIN_SECONDS + 0.5


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """REDIS_URL when given; otherwise a redis-server of the tests' own on a free port."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_server(tmp_path_factory):
    """Fresh databases for the session: `new_database(prefix) -> URL`, `kind` ("postgresql" or "sqlite").

    TEST_DATABASE_URL when set (a `sqlite:` URL asks for SQLite); else a private PostgreSQL
    started with the system's binaries; else SQLite files. Every database made through it is
    dropped, and a private server stopped and removed, at the end of the session.
    """
    with databases_for_tests(tmp_path_factory.mktemp("databases")) as databases:
        database_used(databases.description)
        yield databases


def production_settings(keys: Path, redis_url: str) -> dict[str, str]:
    """What every process of a test stack gets, as production would: DJANGO_DEBUG off, fresh
    secrets, a signing key of its own written under `keys`, and quick clocks for the tests."""
    write_private_file(keys / "signing.pem", generate_rsa_private_key_pem())
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "OIDC_RSA_PRIVATE_KEY_FILE": str(keys / "signing.pem"),
        "REDIS_URL": redis_url,
        "DEMO_PASSWORD": "alice-" + secrets.token_urlsafe(8),
        "ADMIN_PASSWORD": "admin-" + secrets.token_urlsafe(8),
        "SITE_A_CLIENT_SECRET": secrets.token_urlsafe(40),
        "SITE_B_CLIENT_SECRET": secrets.token_urlsafe(40),
        # Short-lived access tokens, so that the sites' refreshes happen within a test.
        "ACCESS_TOKEN_SECONDS": str(ACCESS_TOKEN_SECONDS),
        "SSO_REFRESH_MARGIN_SECONDS": str(REFRESH_MARGIN_SECONDS),
        # Quick retries, so that a back-channel logout to a site that was down lands within a test.
        "BACKCHANNEL_LOGOUT_RETRY_INTERVALS": "1,1,2,2,3,3,5,5",
        # Sign-in lock-out. Every test signs in from 127.0.0.1: the per-address limit is far above
        # what the whole suite ever fails. A short lock-out, so that test_brute_force sees one end.
        "LOGIN_FAILURE_LIMIT": "5",
        "LOGIN_ADDRESS_FAILURE_LIMIT": "1000",
        "LOGIN_LOCKOUT_SECONDS": "5",
    }


def stack_databases(database_server, prefix: str) -> dict[str, str]:
    """Fresh databases for the IdP and both sites, named after `prefix`."""
    return {
        "DATABASE_URL": database_server.new_database(f"{prefix}idp"),
        "SITE_A_DATABASE_URL": database_server.new_database(f"{prefix}site_a"),
        "SITE_B_DATABASE_URL": database_server.new_database(f"{prefix}site_b"),
    }


@pytest.fixture(scope="session")
def production_env(tmp_path_factory, redis_url) -> dict[str, str]:
    return production_settings(tmp_path_factory.mktemp("keys"), redis_url)


@contextmanager
def running_stack(state_dir: Path, env: dict[str, str]) -> Iterator[Stack]:
    """The IdP, both sites and the worker on free ports, migrated and seeded; stopped on the way out."""
    ports = {"idp": free_port(), "site_a": free_port(), "site_b": free_port()}
    running = Stack(state_dir=state_dir, ports=ports, env=env)
    try:
        running.prepare()
        running.start_all()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, production_env, database_server) -> Iterator[Stack]:
    env = {**production_env, **stack_databases(database_server, "")}
    with running_stack(tmp_path_factory.mktemp("stack"), env) as running:
        yield running


@pytest.fixture(scope="session")
def idp(stack) -> Provider:
    return Provider(stack.url(IDP))


@pytest.fixture(scope="session")
def site_a_client(stack) -> Client:
    """The seeded registration of client site A (confidential, trusted)."""
    return Client(
        client_id="site-a",
        client_secret=stack.env["SITE_A_CLIENT_SECRET"],
        redirect_uri=f"{stack.env['SITE_A_URL']}/sso/callback/",
    )


@pytest.fixture(scope="session")
def site_b_client(stack) -> Client:
    """The seeded registration of client site B."""
    return Client(
        client_id="site-b",
        client_secret=stack.env["SITE_B_CLIENT_SECRET"],
        redirect_uri=f"{stack.env['SITE_B_URL']}/sso/callback/",
    )


@pytest.fixture(scope="session")
def site_a(stack) -> str:
    return stack.env["SITE_A_URL"]


@pytest.fixture(scope="session")
def site_b(stack) -> str:
    return stack.env["SITE_B_URL"]


@pytest.fixture(scope="session")
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def idp_sql(stack: Stack, query: str, params: tuple = ()) -> list[tuple]:
    """Run `query` (placeholders `%s`) on the running IdP's database, PostgreSQL or SQLite, and commit.

    For what no endpoint shows (rotated tokens, sids). Returns the rows, or for a statement that
    returns none, `[(rowcount,)]`.
    """
    return run_sql(stack.env["DATABASE_URL"], query, params)


def age_code(stack: Stack, code: str) -> None:
    """Expire an authorization code now, rather than wait out its 60 seconds."""
    aged = idp_sql(stack, "UPDATE oauth2_provider_grant SET expires = '2000-01-01 00:00:00' WHERE code = %s", (code,))
    assert aged == [(1,)]


def session_stored(redis_client, prefix: str, session_key: str | None) -> bool:
    """Whether Django's cache session `session_key` is in Redis under the site's key `prefix`."""
    if not session_key:
        return False
    return bool(redis_client.keys(f"{prefix}:*:django.contrib.sessions.cache{session_key}"))


@pytest.fixture(scope="session")
def alice(stack) -> tuple[str, str]:
    return "alice", stack.env["DEMO_PASSWORD"]


@pytest.fixture(scope="session")
def admin(stack) -> tuple[str, str]:
    return "admin", stack.env["ADMIN_PASSWORD"]


@pytest.fixture(scope="session")
def chromium():
    """The system's Chromium (never a downloaded browser), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser profile (its own cookie jar) for one test."""
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
