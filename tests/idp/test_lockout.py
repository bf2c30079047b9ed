"""provider.lockout: failed sign-ins counted per account and per address (django-axes).

These run with the unit tests' in-memory cache; test_brute_force (end to end) runs them on Redis.
"""

import logging
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import reverse

from provider.lockout import account_key, client_address

pytestmark = pytest.mark.django_db

PASSWORD = "right-password"
ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = ACCOUNT_LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = ADDRESS_LIMIT
    cache.clear()  # the counters: in this process's memory here, in Redis when served
    yield
    cache.clear()


@pytest.fixture
def people():
    User = get_user_model()
    return [User.objects.create_user(name, password=PASSWORD) for name in ("carol", "dave")]


def sign_in(client, username, password, *, address="127.0.0.1", path=None):
    return client.post(path or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client, username, times, **where):
    return [sign_in(client, username, f"wrong-{attempt}", **where).status_code for attempt in range(times)]


def test_an_account_is_locked_at_its_limit_even_with_the_right_password(client, people):
    assert fail(client, "carol", ACCOUNT_LIMIT) == [400] * (ACCOUNT_LIMIT - 1) + [429]
    locked = sign_in(client, "carol", PASSWORD)
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.content.decode()
    assert locked["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session


def test_another_account_from_the_same_address_still_signs_in(client, people):
    fail(client, "carol", ACCOUNT_LIMIT)
    assert sign_in(client, "dave", PASSWORD).status_code == 302


def test_an_unknown_username_gets_the_very_same_lock_out(client, people):
    fail(client, "carol", ACCOUNT_LIMIT)
    fail(client, "nobody-by-this-name", ACCOUNT_LIMIT)
    known, unknown = sign_in(client, "carol", "x"), sign_in(client, "nobody-by-this-name", "x")
    assert known.status_code == unknown.status_code == 429
    assert known.content == unknown.content


def test_an_address_is_locked_at_its_own_higher_limit(client, people):
    for attempt in range(ADDRESS_LIMIT):  # a different name each time: no account reaches its limit
        status = sign_in(client, f"guess-{attempt}", "x", address="203.0.113.9").status_code
    assert status == 429
    assert sign_in(client, "carol", PASSWORD, address="203.0.113.9").status_code == 429
    assert sign_in(client, "carol", PASSWORD, address="203.0.113.10").status_code == 302


def test_a_sign_in_clears_the_accounts_failures_but_not_the_addresss(client, people):
    fail(client, "carol", ACCOUNT_LIMIT - 1)
    assert sign_in(client, "carol", PASSWORD).status_code == 302
    client.logout()
    assert fail(client, "carol", ACCOUNT_LIMIT - 1) == [400] * (ACCOUNT_LIMIT - 1)
    # 2 + 2 failures from this address, and a sign-in did not wipe them: one more reaches 5.
    assert fail(client, "someone-else", 1) == [429]


def test_refused_attempts_during_a_lock_out_do_not_prolong_it(client, people):
    fail(client, "carol", ACCOUNT_LIMIT)
    key = cache.make_key(account_key("carol"))
    expires = cache._expire_info[key]  # the in-memory cache's own record of the expiry
    fail(client, "carol", 2)
    assert cache.get(account_key("carol")) == ACCOUNT_LIMIT
    assert cache._expire_info[key] == expires


def test_the_admin_login_counts_and_is_locked_too(client, people):
    assert fail(client, "carol", ACCOUNT_LIMIT, path=reverse("admin:login")) == [200] * (ACCOUNT_LIMIT - 1) + [429]
    assert sign_in(client, "carol", PASSWORD).status_code == 429


def test_a_lock_out_is_logged_with_username_and_address_never_the_password(client, people, caplog):
    with caplog.at_level(logging.WARNING):
        sign_in(client, "carol", "hunter2-typo", address="198.51.100.4")
        fail(client, "carol", ACCOUNT_LIMIT - 1, address="198.51.100.4")
    locking = [record.getMessage() for record in caplog.records if "locking out" in record.getMessage()]
    assert locking == [
        "AXES: locking out username 'carol' from 198.51.100.4 at '/accounts/login/' for 900 seconds "
        "after repeated failed sign-ins."
    ]
    assert "hunter2" not in caplog.text
    assert "wrong-" not in caplog.text


def test_a_newline_in_a_username_cannot_forge_a_log_line(client, caplog):
    with caplog.at_level(logging.WARNING):
        sign_in(client, "eve\n2030-01-01 INFO all is well", "x")
    assert all("\n" not in record.getMessage() for record in caplog.records)


def test_the_admin_action_unlocks_an_account(admin_client, people):
    client = type(admin_client)()
    fail(client, "carol", ACCOUNT_LIMIT)
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "unlock_sign_in", "_selected_action": [people[0].pk]},
        follow=True,
    )
    assert "Unlocked sign-in for 1 person" in response.content.decode()
    assert sign_in(client, "carol", PASSWORD).status_code == 302


def test_axes_reset_username_unlocks_an_account(client, people):
    fail(client, "carol", ACCOUNT_LIMIT)
    call_command("axes_reset_username", "carol", stdout=StringIO())
    assert sign_in(client, "carol", PASSWORD).status_code == 302


def test_axes_reset_ip_unlocks_an_address(client, people):
    for attempt in range(ADDRESS_LIMIT):
        sign_in(client, f"guess-{attempt}", "x", address="203.0.113.9")
    call_command("axes_reset_ip", "203.0.113.9", stdout=StringIO())
    assert sign_in(client, "carol", PASSWORD, address="203.0.113.9").status_code == 302


# --- the client's address ------------------------------------------------------------------------
def request_from(peer: str, forwarded_for: str | None = None):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR=peer, **headers)


def test_without_a_proxy_the_address_is_the_peers_whatever_the_headers_say(settings):
    settings.CLIENT_ADDRESS_FROM_PROXY = False
    assert client_address(request_from("198.51.100.4", "203.0.113.9")) == "198.51.100.4"


def test_behind_the_proxy_the_address_is_the_one_the_proxy_appended(settings):
    settings.CLIENT_ADDRESS_FROM_PROXY = True
    assert client_address(request_from("10.0.0.2", "203.0.113.9")) == "203.0.113.9"
    # What the client sent itself comes first, and is not believed.
    assert client_address(request_from("10.0.0.2", "198.51.100.1, 203.0.113.9")) == "203.0.113.9"
    assert client_address(request_from("10.0.0.2")) == "10.0.0.2"
