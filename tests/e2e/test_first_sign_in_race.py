"""Many first sign-ins of one new person at a site at once: every one ends signed in, one local user.

A person who opens a site in many browsers (or tabs) at once, before the site knows them, makes
as many callbacks that each find no local user and create one. Under `make run` the sites are on
SQLite: such a burst once answered 500 ("database is locked"). Here a stack of this module's own
(the IdP and site A under gunicorn, two workers of THREADS threads each) has the sites on SQLite
files, then on PostgreSQL (the IdP on the tests' database, so that it answers the code exchanges
side by side); a person made for this test signs in at the IdP in each of BROWSERS browsers
(cookie jars), and then all their callbacks reach the site at the same moment.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import pytest
import requests

from devstack.postgres_server import run_sql
from devstack.processes import free_port
from devstack.stack import IDP, SITE_A, Stack
from tests.e2e.oidc import submit_login

BROWSERS = 48
#: gunicorn's threads per worker (two workers): more callbacks at once than `make run`'s four.
THREADS = 8
PERSON_SCRIPT = """
import os
from provider.services import user_ensure
user_ensure(username=os.environ["RACE_USERNAME"], password=os.environ["RACE_PASSWORD"],
            email=os.environ["RACE_USERNAME"] + "@example.com", full_name="Race Person")
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def race_stack(request, tmp_path_factory, production_env, database_server) -> Iterator[Stack]:
    """The IdP and site A; the sites' databases SQLite files (as `make run` has them) or PostgreSQL."""
    if request.param == "sqlite":
        files = tmp_path_factory.mktemp("race-sqlite")
        databases = {name: f"sqlite:///{files / name}.sqlite3" for name in ("site_a", "site_b")}
    elif database_server.kind == "postgresql":
        databases = {name: database_server.new_database(f"race_{name}") for name in ("site_a", "site_b")}
    else:
        pytest.skip(f"no PostgreSQL to run on: {database_server.description}")
    databases["idp"] = database_server.new_database("race_idp")
    env = {
        **production_env,
        "DATABASE_URL": databases["idp"],
        "SITE_A_DATABASE_URL": databases["site_a"],
        "SITE_B_DATABASE_URL": databases["site_b"],
        "GUNICORN_THREADS": str(THREADS),
    }
    ports = {"idp": free_port(), "site_a": free_port(), "site_b": free_port()}
    running = Stack(state_dir=tmp_path_factory.mktemp(f"race-stack-{request.param}"), ports=ports, env=env)
    try:
        running.prepare()
        running.start(IDP)
        running.start(SITE_A)
        yield running
    finally:
        running.stop()


@pytest.fixture
def new_person(race_stack) -> tuple[str, str]:
    """A person made for this test at the IdP (nobody else's sign-ins or lock-out counters touched)."""
    username, password = f"racer-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    result = IDP.manage(
        "shell", "-c", PERSON_SCRIPT, env={**race_stack.env, "RACE_USERNAME": username, "RACE_PASSWORD": password}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return username, password


def callback_after_signing_in(site: str, username: str, password: str) -> tuple[requests.Session, str]:
    """A browser of its own signs in at the IdP on its way to `site`; returns it and the callback
    URL the IdP sends it back to (not opened yet)."""
    browser = requests.Session()
    url, response = f"{site}/", None
    for _ in range(6):  # the site, its sign-in start, the IdP's authorize, its login page
        response = browser.get(url, allow_redirects=False, timeout=30, headers={"Accept": "text/html"})
        if response.status_code != 302:
            break
        url = urljoin(url, response.headers["Location"])
    assert response is not None and 'name="password"' in response.text, f"expected the login page at {url}"
    posted = submit_login(browser, response, username, password)
    assert posted.status_code == 302, f"sign-in refused ({posted.status_code})"
    authorized = browser.get(urljoin(response.url, posted.headers["Location"]), allow_redirects=False, timeout=30)
    callback = authorized.headers.get("Location", "")
    assert authorized.status_code == 302 and callback.startswith(f"{site}/sso/callback/?"), "sent back with a code"
    return browser, callback


def test_simultaneous_first_sign_ins_of_one_person_all_succeed_with_one_local_user(race_stack, new_person):
    site = race_stack.env["SITE_A_URL"]
    username, password = new_person
    with ThreadPoolExecutor(max_workers=4) as pool:
        browsers = list(pool.map(lambda _: callback_after_signing_in(site, username, password), range(BROWSERS)))

    for browser, _ in browsers:
        # Its kept-alive connections are dropped: one the server is closing just as the request is
        # sent would fail without an answer, which a browser retries and requests does not.
        browser.close()
    start = threading.Barrier(BROWSERS)

    def come_back(browser_and_callback: tuple[requests.Session, str]) -> tuple[int, str, requests.Response | None]:
        browser, callback = browser_and_callback
        start.wait(timeout=60)
        answer = browser.get(callback, allow_redirects=False, timeout=60)
        if answer.status_code != 302:
            return answer.status_code, answer.text[:300], None
        return answer.status_code, answer.headers["Location"], browser.get(urljoin(site, answer.headers["Location"]))

    with ThreadPoolExecutor(max_workers=BROWSERS) as pool:
        answers = list(pool.map(come_back, browsers))

    statuses = [status for status, _, _ in answers]
    assert statuses == [302] * BROWSERS, [(status, text) for status, text, _ in answers if status != 302]
    assert {location for _, location, _ in answers} == {"/"}, "each goes on to the page it asked for"
    for _, _, home in answers:
        shown = re.search(r'id="username">([^<]*)<', home.text)
        assert home.status_code == 200 and shown and shown.group(1) == username, "signed in, as this person"

    site_database = race_stack.env["SITE_A_DATABASE_URL"]
    assert run_sql(site_database, "SELECT count(*) FROM sso_client_identity") == [(1,)], "one identity"
    assert run_sql(site_database, "SELECT username FROM auth_user") == [(username,)], "one local user"
