"""Guessing passwords: failed sign-ins lock an account, or an address, out for a while.

Against the running IdP and its Redis, with people of these tests' own (so that no counter is
shared with the other tests, which sign in as alice from the same address), and a second IdP
replica on the same database and Redis that sits behind a TLS proxy, as production does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.stack import IDP
from tests.e2e.oidc import submit_login

RUN = secrets.token_hex(3)  # new names each run, also against a long-lived REDIS_URL
PASSWORD = "brute-force-" + secrets.token_urlsafe(12)
PROXY_ADDRESS_LIMIT = 7
NAMES = ["victim", "bystander", "unknown", "lifted", "reset", "admin", "replicas", "operator"]


@pytest.fixture(scope="module")
def people(stack) -> dict[str, str]:
    """Usernames of these tests' own, all with PASSWORD (`unknown` is never created)."""
    names = {name: f"bf-{name}-{RUN}" for name in NAMES}
    created = [names[name] for name in NAMES if name != "unknown"]
    stack.manage(
        IDP,
        "shell",
        "-c",
        "from provider.services import user_ensure\n"
        f"for name in {created!r}:\n"
        f"    user_ensure(username=name, password={PASSWORD!r}, email=name + '@example.com',"
        f" full_name='Brute Force', superuser=name == {names['admin']!r})",
    )
    yield names
    # Leave no counter behind: the accounts', and the test address's.
    stack.manage(IDP, "axes_reset_username", *names.values())
    stack.manage(IDP, "axes_reset_ip", "127.0.0.1")


@pytest.fixture(scope="module")
def limit(stack) -> int:
    return int(stack.env["LOGIN_FAILURE_LIMIT"])


@pytest.fixture(scope="module")
def lockout_seconds(stack) -> int:
    return int(stack.env["LOGIN_LOCKOUT_SECONDS"])


@pytest.fixture(scope="module")
def proxied_idp(stack) -> Iterator[str]:
    """A second IdP replica (same database, same Redis) that a TLS proxy forwards to."""
    process, url = stack.start_replica(
        IDP,
        "idp-behind-proxy",
        DJANGO_BEHIND_TLS_PROXY="1",
        LOGIN_ADDRESS_FAILURE_LIMIT=str(PROXY_ADDRESS_LIMIT),
    )
    try:
        yield url
    finally:
        process.stop()


class Browser:
    """One browser at one sign-in page, from one address (an X-Forwarded-For the proxy appended)."""

    def __init__(self, url: str, *, path: str = "/accounts/login/", forwarded_for: str | None = None) -> None:
        self.session = requests.Session()
        if forwarded_for:
            self.session.headers["X-Forwarded-For"] = forwarded_for
        self.page = self.session.get(f"{url}{path}", timeout=30)
        assert self.page.status_code == 200 and 'name="password"' in self.page.text

    def sign_in(self, username: str, password: str) -> requests.Response:
        return submit_login(self.session, self.page, username, password)

    def fail(self, username: str, times: int) -> list[int]:
        return [self.sign_in(username, f"wrong-{RUN}-{attempt}").status_code for attempt in range(times)]


def is_locked_out(response: requests.Response) -> bool:
    return response.status_code == 429 and "try again in" in response.text


def test_an_account_is_locked_at_the_limit_even_with_the_right_password(idp, people, limit, lockout_seconds):
    browser = Browser(idp.url)
    statuses = browser.fail(people["victim"], limit)
    assert statuses == [400] * (limit - 1) + [429], "refused until the limit, locked at it"
    locked = browser.sign_in(people["victim"], PASSWORD)
    assert is_locked_out(locked)
    assert locked.headers["Retry-After"] == str(lockout_seconds)
    assert PASSWORD not in locked.text and people["victim"] not in locked.text
    assert "idp_sessionid" not in browser.session.cookies


def test_another_account_from_the_same_address_still_signs_in(idp, people, limit):
    browser = Browser(idp.url)
    browser.fail(people["victim"], limit)
    assert browser.sign_in(people["bystander"], PASSWORD).status_code == 302


def test_an_unknown_username_is_locked_out_just_the_same(idp, people, limit):
    browser = Browser(idp.url)
    assert browser.fail(people["unknown"], limit)[-1] == 429
    known, unknown = browser.sign_in(people["victim"], "x"), browser.sign_in(people["unknown"], "x")
    assert is_locked_out(known) and is_locked_out(unknown)
    assert known.text == unknown.text


def test_the_lock_out_ends_after_the_configured_time(idp, people, limit, lockout_seconds):
    browser = Browser(idp.url)
    browser.fail(people["lifted"], limit)
    locked_at = time.monotonic()
    assert is_locked_out(browser.sign_in(people["lifted"], PASSWORD))
    deadline = locked_at + lockout_seconds + 60  # generous: a busy machine
    while (answer := browser.sign_in(people["lifted"], PASSWORD)).status_code == 429:
        assert time.monotonic() < deadline, "still locked out long after LOGIN_LOCKOUT_SECONDS"
        time.sleep(0.5)  # polling; attempts refused during a lock-out do not prolong it
    assert answer.status_code == 302
    assert time.monotonic() - locked_at >= lockout_seconds - 1, "not before its time"


def test_a_successful_sign_in_clears_the_accounts_failures(idp, people, limit):
    assert Browser(idp.url).fail(people["reset"], limit - 1) == [400] * (limit - 1)
    assert Browser(idp.url).sign_in(people["reset"], PASSWORD).status_code == 302
    assert Browser(idp.url).fail(people["reset"], limit - 1) == [400] * (limit - 1)
    assert Browser(idp.url).sign_in(people["reset"], PASSWORD).status_code == 302


def test_the_admin_login_is_counted_and_locked_too(idp, people, limit):
    admin_login = Browser(idp.url, path="/admin/login/?next=/admin/")
    assert admin_login.fail(people["admin"], limit)[-1] == 429
    assert is_locked_out(admin_login.sign_in(people["admin"], PASSWORD))
    assert is_locked_out(Browser(idp.url).sign_in(people["admin"], PASSWORD))


def test_an_operator_unlocks_an_account_with_axes_reset_username(stack, idp, people, limit):
    browser = Browser(idp.url)
    browser.fail(people["operator"], limit)
    assert is_locked_out(browser.sign_in(people["operator"], PASSWORD))
    stack.manage(IDP, "axes_reset_username", people["operator"])
    assert browser.sign_in(people["operator"], PASSWORD).status_code == 302


def test_every_replica_counts_the_same_failures(idp, proxied_idp, people, limit):
    first = limit // 2
    Browser(idp.url).fail(people["replicas"], first)
    assert Browser(proxied_idp, forwarded_for="192.0.2.1").fail(people["replicas"], limit - first)[-1] == 429
    assert is_locked_out(Browser(idp.url).sign_in(people["replicas"], PASSWORD))


def test_behind_the_proxy_an_address_is_locked_at_its_own_limit(idp, proxied_idp, people):
    address = f"203.0.113.{secrets.randbelow(250) + 1}"
    guesser = Browser(proxied_idp, forwarded_for=address)
    # One guess at each of many names: no account reaches its limit, the address reaches its own.
    statuses = [guesser.sign_in(f"bf-guess-{RUN}-{n}", "x").status_code for n in range(PROXY_ADDRESS_LIMIT)]
    assert statuses == [400] * (PROXY_ADDRESS_LIMIT - 1) + [429]
    assert is_locked_out(guesser.sign_in(people["bystander"], PASSWORD))
    # The proxy appends the address it saw: what the client wrote before it is not believed.
    spoofing = Browser(proxied_idp, forwarded_for=f"198.51.100.1, {address}")
    assert is_locked_out(spoofing.sign_in(people["bystander"], PASSWORD))
    neighbour = Browser(proxied_idp, forwarded_for=f"{address}, 198.51.100.2")
    assert neighbour.sign_in(people["bystander"], PASSWORD).status_code == 302
    assert Browser(idp.url).sign_in(people["bystander"], PASSWORD).status_code == 302


def test_lock_outs_are_logged_by_name_and_address_and_passwords_never(stack, idp, people, limit):
    Browser(idp.url).fail(people["victim"], limit + 1)  # a lock-out and a refusal, whatever ran before
    logs = [Path(stack.state_dir / "logs" / name) for name in ("idp.log", "idp-behind-proxy.log")]
    text = "\n".join(log.read_text(errors="replace") for log in logs if log.exists())
    assert f"AXES: locking out username '{people['victim']}' from 127.0.0.1" in text
    assert "sign-in refused during a lock-out" in text
    assert PASSWORD not in text
    assert f"wrong-{RUN}" not in text
