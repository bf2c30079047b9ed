"""PostgreSQL restarted under load: requests in flight fail cleanly, the pools reconnect, nothing is lost.

A stack of this module's own: a private PostgreSQL (devstack.postgres_server) holding the IdP's
and site A's databases, both served by gunicorn as production serves them. While a person's
browsers, a relying party's back channel and the health checks keep asking, PostgreSQL is
stopped (a fast shutdown, as a restart does: sessions ended, transactions in flight rolled back)
for OUTAGE_SECONDS, then started again on the same data. Then:

- every answer was 200, 302 or 503, never a 500; every 503 a readable page (JSON at the IdP's
  endpoints for programs) with Retry-After, and the IdP and the site said they cannot reach their
  database; /-/health/ready/ named the database while it was down;
- the same processes (no restart) serve everything again within RECOVERY_SECONDS of PostgreSQL's
  return, a new sign-in included;
- the people, the applications and the grants that existed before are exactly as they were.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import pytest
import requests

from devstack.postgres_server import PostgresDatabases, PostgresServer, postgres_bindir, run_sql
from devstack.processes import ProcessFailed, free_port
from devstack.stack import IDP, SITE_A, Stack
from tests.e2e.oidc import AuthRequest, Client, Provider, submit_login

OUTAGE_SECONDS = 8
#: How soon after PostgreSQL is back every kind of request must be served again.
RECOVERY_SECONDS = 30
PERSON_SCRIPT = """
import os
from provider.services import user_ensure
user_ensure(username=os.environ["OUTAGE_USERNAME"], password=os.environ["OUTAGE_PASSWORD"],
            email=os.environ["OUTAGE_USERNAME"] + "@example.com", full_name="Outage Person")
"""
#: The IdP's tables checked to be unchanged: people (without the last sign-in's time, which new
#: sign-ins during the test move on), their accounts, the applications, and the grants.
IDP_TABLES = {
    "auth_user": "id, username, password, email, first_name, last_name, is_active, is_staff, is_superuser, date_joined",
    "provider_account": "*",
    "oauth2_provider_application": "*",
    "oauth2_provider_grant": "*",
    "oauth2_provider_accesstoken": "*",
    "oauth2_provider_refreshtoken": "*",
    "oauth2_provider_idtoken": "*",
    "provider_loginsession": "*",
}
SITE_TABLES = {
    "auth_user": "id, username, password, email, first_name, last_name, is_active, is_staff, is_superuser, date_joined",
    "sso_client_identity": "*",
}


@dataclass
class Outage:
    stack: Stack
    server: PostgresServer
    person: tuple[str, str]


@pytest.fixture(scope="module")
def outage(tmp_path_factory, production_env) -> Iterator[Outage]:
    if postgres_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, postgres) to run a private server on")
    server = PostgresServer()  # in the system's temporary folder: as root it runs as `nobody`
    running: Stack | None = None
    try:
        try:
            server.start()
        except (ProcessFailed, OSError) as error:
            pytest.skip(f"the private PostgreSQL did not start: {str(error).splitlines()[0]}")
        databases = PostgresDatabases(server.url, origin="this module's own server", server=server)
        env = {
            **production_env,
            # Tokens that outlive the test: no refresh rotates a grant while it runs.
            "ACCESS_TOKEN_SECONDS": "3600",
            "SSO_REFRESH_MARGIN_SECONDS": "60",
            "DATABASE_URL": databases.new_database("outage_idp"),
            "SITE_A_DATABASE_URL": databases.new_database("outage_site_a"),
            "SITE_B_DATABASE_URL": databases.new_database("outage_site_b"),
        }
        ports = {"idp": free_port(), "site_a": free_port(), "site_b": free_port()}
        running = Stack(state_dir=tmp_path_factory.mktemp("outage-stack"), ports=ports, env=env)
        running.prepare()
        running.start(IDP)
        running.start(SITE_A)
        person = f"outage-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
        made = IDP.manage(
            "shell",
            "-c",
            PERSON_SCRIPT,
            env={**running.env, "OUTAGE_USERNAME": person[0], "OUTAGE_PASSWORD": person[1]},
        )
        assert made.returncode == 0, made.stderr[-2000:]
        yield Outage(running, server, person)
    finally:
        if running is not None:
            running.stop()
        server.stop()


# --- what the load asks, and what it got ------------------------------------------------------------


@dataclass
class Answer:
    kind: str
    phase: str
    url: str
    status: int
    content_type: str
    text: str
    retry_after: str | None

    @classmethod
    def of(cls, kind: str, phase: str, response: requests.Response) -> Answer:
        return cls(
            kind,
            phase,
            response.url.split("?")[0],
            response.status_code,
            response.headers.get("Content-Type", ""),
            response.text[:2000],
            response.headers.get("Retry-After"),
        )

    def readable(self) -> bool:
        """A page a person can read (a heading, no traceback), or an error object a program can."""
        if self.content_type.startswith("application/json"):
            return '"error"' in self.text or '"problems"' in self.text
        return "<h1>" in self.text and "Traceback" not in self.text

    def says_database(self) -> bool:
        return "cannot reach its database" in self.text


@dataclass
class Load:
    """Threads asking the IdP and site A all the time; `phase` says what PostgreSQL is doing."""

    phase: str = "up"
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def record(self, kind: str, response: requests.Response) -> Answer:
        answer = Answer.of(kind, self.phase, response)
        self.answers.append(answer)
        return answer

    def run(self, kind: str, ask: Callable[[Load], None]) -> None:
        def loop() -> None:
            while not self.stop.is_set():
                try:
                    ask(self)
                except Exception as error:  # a request that got no answer at all is a finding too
                    self.failures.append(f"{kind}: {type(error).__name__}: {error}")
                time.sleep(0.05)

        thread = threading.Thread(target=loop, name=kind, daemon=True)
        thread.start()
        self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def sign_in(load: Load, site: str, person: tuple[str, str], browser: requests.Session | None = None) -> bool:
    """A browser (a new one unless given) signs in at `site` through the IdP, every answer
    recorded; True once signed in. It stops at the first answer that is not a redirect or the
    login page (a 503 while the database is down)."""
    browser = browser or requests.Session()
    url = f"{site}/"
    for _ in range(12):
        response = browser.get(url, allow_redirects=False, timeout=30, headers={"Accept": "text/html"})
        load.record("sign-in", response)
        if response.status_code == 200 and 'name="password"' in response.text:
            posted = submit_login(browser, response, *person)
            load.record("sign-in", posted)
            if posted.status_code != 302:
                return False
            url = urljoin(response.url, posted.headers["Location"])
            continue
        if response.status_code != 302:
            return response.status_code == 200 and url == f"{site}/" and f'id="username">{person[0]}<' in response.text
        url = urljoin(url, response.headers["Location"])
    return False


def table_snapshot(url: str, tables: dict[str, str], up_to: dict[str, int] | None = None) -> dict[str, tuple]:
    """Per table: how many rows, and a checksum of their columns (only the rows with an id up to
    `up_to[table]`, when given: those that existed before)."""
    snapshot = {}
    for table, columns in tables.items():
        where, params = ("WHERE id <= %s", (up_to[table],)) if up_to is not None else ("", ())
        [(count, checksum, top)] = run_sql(
            url,
            # The names are this module's own constants, never input.
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')), coalesce(max(t.id), 0) "  # noqa: S608
            f"FROM (SELECT {columns} FROM {table} {where}) t",
            params,
        )
        snapshot[table] = (count, checksum, top)
    return snapshot


def wait_until(condition: Callable[[], bool], *, deadline: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within the deadline")


def test_postgresql_restarted_under_load_fails_cleanly_and_comes_back(outage):
    stack, server, person = outage.stack, outage.server, outage.person
    idp_url, site = stack.url(IDP), stack.env["SITE_A_URL"]
    idp = Provider(idp_url)
    client = Client("site-a", stack.env["SITE_A_CLIENT_SECRET"], f"{site}/sso/callback/")

    # Before: a browser signed in at the site (and so at the IdP), and a relying party's tokens.
    signed_in, setting_up = requests.Session(), Load()
    assert sign_in(setting_up, site, person, signed_in), [(a.url, a.status) for a in setting_up.answers]
    request = AuthRequest(client)
    access_token = idp.exchange(request, idp.sign_in(requests.Session(), request, *person)["code"]).json()[
        "access_token"
    ]

    idp_database, site_database = stack.env["DATABASE_URL"], stack.env["SITE_A_DATABASE_URL"]
    idp_before = table_snapshot(idp_database, IDP_TABLES)
    site_before = table_snapshot(site_database, SITE_TABLES)
    pids = {name: process.pid for name, process in stack.processes.items()}

    def page(kind: str, url: str) -> Callable[[Load], None]:
        def ask(load: Load) -> None:
            load.record(kind, signed_in.get(url, allow_redirects=False, timeout=30, headers={"Accept": "text/html"}))

        return ask

    def userinfo(load: Load) -> None:
        headers = {"Authorization": f"Bearer {access_token}"}
        load.record("userinfo", requests.get(f"{idp.issuer}/userinfo/", headers=headers, timeout=30))

    def introspect(load: Load) -> None:
        auth = (client.client_id, client.client_secret)
        load.record(
            "introspect",
            requests.post(f"{idp.issuer}/introspect/", data={"token": access_token}, auth=auth, timeout=30),
        )

    def ready(kind: str, url: str) -> Callable[[Load], None]:
        def ask(load: Load) -> None:
            load.record(kind, requests.get(f"{url}/-/health/ready/", timeout=30))
            time.sleep(0.5)

        return ask

    load = Load()
    load.run("site-page", page("site-page", f"{site}/"))
    load.run("idp-page", page("idp-page", f"{idp_url}/"))
    load.run("userinfo", userinfo)
    load.run("introspect", introspect)
    load.run("site-ready", ready("site-ready", site))
    load.run("idp-ready", ready("idp-ready", idp_url))
    for number in range(2):
        load.run(f"sign-in-{number}", lambda load: sign_in(load, site, person))
    try:
        time.sleep(2)
        load.phase = "down"
        server.halt()
        time.sleep(OUTAGE_SECONDS)
        load.phase = "back"
        server.resume()
        back_at = time.monotonic()
        deadline = back_at + RECOVERY_SECONDS
        kinds = ["site-page", "idp-page", "userinfo", "introspect", "site-ready", "idp-ready"]

        def all_served_again() -> bool:
            recent = [answer for answer in load.answers[-200:] if answer.phase == "back"]
            return all(any(a.kind == kind and a.status == 200 for a in recent) for kind in kinds)

        recovered_in = wait_until(all_served_again, deadline=deadline, what="serving again after PostgreSQL's return")
        load.phase = "served"
        # A site whose calls to the IdP timed out during the outage holds sign-ins back for
        # IDP_UNREACHABLE_SECONDS (its breaker): a new sign-in works again within the recovery bound.
        wait_until(lambda: sign_in(load, site, person), deadline=deadline, what="a new sign-in after the outage")
    finally:
        load.finish()
    seen: dict[tuple[str, str, int], int] = {}
    for answer in load.answers:
        key = (answer.kind, answer.phase, answer.status)
        seen[key] = seen.get(key, 0) + 1
    print(f"served again {recovered_in:.1f}s after PostgreSQL was back; answers: {sorted(seen.items())}")

    # No answer but 200, 302 or 503; every 503 readable, with Retry-After.
    unexpected = [
        (a.kind, a.phase, a.url, a.status, a.text[:200]) for a in load.answers if a.status not in (200, 302, 503)
    ]
    assert unexpected == [], unexpected
    assert load.failures == [], load.failures[:5]
    unavailable = [a for a in load.answers if a.status == 503]
    assert unavailable, "the outage was seen"
    assert [(a.kind, a.url, a.text[:200]) for a in unavailable if not a.readable()] == []
    assert [(a.kind, a.url) for a in unavailable if not a.retry_after and not a.kind.endswith("-ready")] == []
    # The IdP and the site both said what is wrong, in a page and (the IdP's API) in JSON.
    down = [a for a in unavailable if a.phase == "down"]
    assert any(a.kind == "site-page" and a.says_database() for a in down), "the site's page names its database"
    assert any(a.kind == "idp-page" and a.says_database() for a in down), "the IdP's page names its database"
    assert any(a.kind in ("userinfo", "introspect") and a.content_type.startswith("application/json") for a in down), (
        "the IdP's endpoints for programs answer JSON"
    )
    for kind in ("site-ready", "idp-ready"):
        assert any(a.kind == kind and '"database"' in a.text for a in down), f"{kind} names the database"

    # The same processes serve again: nothing was restarted.
    assert {name: process.pid for name, process in stack.processes.items()} == pids
    assert all(process.running() for process in stack.processes.values())
    assert recovered_in < RECOVERY_SECONDS

    # What existed before is exactly as it was.
    whole = ("auth_user", "provider_account", "oauth2_provider_application")  # the load makes none of these
    assert table_snapshot(idp_database, {table: IDP_TABLES[table] for table in whole}) == {
        table: idp_before[table] for table in whole
    }, "people and applications unchanged"
    up_to = {table: top for table, (_, _, top) in idp_before.items()}
    assert table_snapshot(idp_database, IDP_TABLES, up_to) == idp_before, "the grants made before unchanged"
    assert table_snapshot(site_database, SITE_TABLES) == site_before, "the site's people unchanged"
