"""Keeping the access token fresh: refresh once, sign out when refused, survive a short outage.

The tokens live under a cache key of their own per session (sso_client.tokens); the session keeps
their expiry and sid as a hint.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from unittest import mock

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import RequestFactory

from sso_client.client import IdentityProviderApp, IdentityProviderUnavailable
from sso_client.session_index import end_sessions, index_session
from sso_client.sessions import SessionStore
from sso_client.tokens import (
    SESSION_TOKEN_KEY,
    Freshness,
    access_token,
    keep_token_fresh,
    read_token,
    session_sid,
    store_token,
    token_key,
    token_sid,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idp_in_cache")]


@pytest.fixture
def request_with_token():
    def make(expires_in: float):
        user = get_user_model().objects.create(username=f"u{time.monotonic_ns()}")
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session.save()
        token = {"access_token": "old", "refresh_token": "r1", "expires_at": time.time() + expires_in}
        store_token(session, token, sid="sid-1")
        session.save()
        request = RequestFactory().get("/")
        request.session, request.user = SessionStore(session_key=session.session_key), user
        return request

    return make


def refreshed(access="new", refresh="r2"):
    return {"access_token": access, "refresh_token": refresh, "expires_in": 300, "expires_at": time.time() + 300}


def stored_hint(request) -> dict:
    return SessionStore(session_key=request.session.session_key).load()[SESSION_TOKEN_KEY]


def test_a_token_far_from_expiry_is_left_alone(request_with_token):
    request = request_with_token(expires_in=3600)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()


def test_the_session_keeps_only_the_expiry_and_the_tokens_have_their_own_key(request_with_token):
    request = request_with_token(expires_in=3600)
    assert stored_hint(request) == {"expires_at": mock.ANY}
    assert read_token(request.session.session_key) == {
        "access_token": "old",
        "refresh_token": "r1",
        "expires_at": stored_hint(request)["expires_at"],
        "sid": "sid-1",
    }
    assert access_token(request) == "old"


def test_a_token_near_expiry_is_refreshed_and_saved(request_with_token):
    request = request_with_token(expires_in=10)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=refreshed()) as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    assert fetch.call_args.kwargs == {"grant_type": "refresh_token", "refresh_token": "r1", "timeout": 2}
    stored = read_token(request.session.session_key)
    assert stored == {"access_token": "new", "refresh_token": "r2", "expires_at": mock.ANY, "sid": "sid-1"}
    assert stored["expires_at"] > time.time() + 200
    # The session's hint is brought up to date in the store, without this request writing its own copy.
    assert stored_hint(request) == {"expires_at": stored["expires_at"]}
    assert request.session[SESSION_TOKEN_KEY] == stored_hint(request)
    assert not request.session.modified


def test_a_refresh_keeps_no_id_token_and_keeps_a_refresh_token_it_did_not_replace(request_with_token):
    request = request_with_token(expires_in=10)
    answer = {**refreshed(), "id_token": "a.refreshed.id-token"}
    del answer["refresh_token"]
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=answer):
        assert keep_token_fresh(request) is Freshness.FRESH
    stored = read_token(request.session.session_key)
    assert stored == {"access_token": "new", "refresh_token": "r1", "expires_at": mock.ANY, "sid": "sid-1"}


def test_a_refresh_done_by_another_request_is_adopted_not_repeated(request_with_token):
    request = request_with_token(expires_in=10)
    cache.set(token_key(request.session.session_key), {**refreshed("by-other", "r-other"), "sid": "sid-1"}, 600)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()
    assert access_token(request) == "by-other"
    assert request.session[SESSION_TOKEN_KEY]["expires_at"] > time.time() + 200
    # What the store holds already is not written again: nor, by a slow request, an older pair later.
    assert not request.session.modified


def test_a_session_saved_back_with_an_old_hint_never_brings_the_old_tokens_back(request_with_token):
    """The race of issue 12: a page that read the session before a refresh writes it after."""
    request = request_with_token(expires_in=10)
    slow_page = SessionStore(session_key=request.session.session_key)
    slow_page["draft"] = "a form's draft"  # read before the refresh...
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=refreshed()):
        assert keep_token_fresh(request) is Freshness.FRESH
    slow_page.save()  # ...written after it, with the hint it read
    assert stored_hint(request)["expires_at"] < time.time() + 60, "the hint is stale now"

    again = RequestFactory().get("/")
    again.session, again.user = SessionStore(session_key=request.session.session_key), request.user
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(again) is Freshness.FRESH
    fetch.assert_not_called()  # the token key says the new token is good: nothing spent is sent
    assert access_token(again) == "new"


def test_a_refused_refresh_ends_the_local_session_and_its_tokens(request_with_token):
    request = request_with_token(expires_in=10)
    key = request.session.session_key
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=OAuthError(error="invalid_grant")):
        assert keep_token_fresh(request) is Freshness.SIGNED_OUT
    assert not request.user.is_authenticated
    assert not SessionStore(session_key=key).exists(key)
    assert read_token(key) is None


def test_a_session_ended_while_its_refresh_ran_keeps_no_tokens(request_with_token):
    request = request_with_token(expires_in=10)
    key = request.session.session_key
    index_session(request.session, sid="sid-1", sub="someone")

    def logout_meanwhile(**kwargs):
        end_sessions(sid="sid-1", sub=None)  # a back-channel logout arrives during the refresh
        return refreshed()

    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=logout_meanwhile):
        assert keep_token_fresh(request) is Freshness.SIGNED_OUT
    assert read_token(key) is None, "the refreshed tokens were not left behind"
    assert not SessionStore(session_key=key).exists(key)


def test_a_session_whose_tokens_are_gone_is_signed_out(request_with_token):
    request = request_with_token(expires_in=10)
    cache.delete(token_key(request.session.session_key))
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.SIGNED_OUT
    fetch.assert_not_called()


def test_an_unreachable_idp_is_tolerated_while_the_token_still_works(request_with_token):
    request = request_with_token(expires_in=10)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=requests.ConnectionError()):
        assert keep_token_fresh(request) is Freshness.FRESH
    assert read_token(request.session.session_key)["refresh_token"] == "r1", "nothing stored was lost"


def test_an_unreachable_idp_with_an_expired_token_is_unavailable(request_with_token):
    request = request_with_token(expires_in=-5)
    with (
        mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=requests.ConnectionError()),
        pytest.raises(IdentityProviderUnavailable),
    ):
        keep_token_fresh(request)


def test_while_another_request_holds_the_lock_one_whose_token_is_still_valid_does_not_wait(request_with_token):
    """Its token is only within the refresh margin: the page is served with it at once. (Also a lock
    that outlived a Redis restart, its holder gone, costs such a request nothing.)"""
    request = request_with_token(expires_in=10)
    cache.add(f"sso_client:refresh-lock:{request.session.session_key}", "1", timeout=30)
    started = time.monotonic()
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    assert time.monotonic() - started < 0.3, "it did not wait for the other request"
    fetch.assert_not_called()
    assert access_token(request) == "old"


def test_while_another_request_holds_the_lock_one_whose_token_has_expired_waits_for_its_result(request_with_token):
    request = request_with_token(expires_in=-5)
    key = request.session.session_key
    cache.add(f"sso_client:refresh-lock:{key}", "1", timeout=30)
    holder = threading.Timer(0.3, lambda: cache.set(token_key(key), {**refreshed("by-holder", "r-h"), "sid": "s"}, 600))
    started = time.monotonic()
    holder.start()
    try:
        with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
            assert keep_token_fresh(request) is Freshness.FRESH
    finally:
        holder.join()
    assert time.monotonic() - started >= 0.25, "it waited for the other request's refresh"
    fetch.assert_not_called()
    assert access_token(request) == "by-holder"


def test_an_expired_token_whose_refresh_by_another_request_never_ends_is_unavailable(request_with_token):
    request = request_with_token(expires_in=-5)
    cache.add(f"sso_client:refresh-lock:{request.session.session_key}", "1", timeout=30)
    started = time.monotonic()
    with (
        mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch,
        pytest.raises(IdentityProviderUnavailable),
    ):
        keep_token_fresh(request)
    assert 0.9 <= time.monotonic() - started < 3, "it waited REFRESH_WAIT_SECONDS (1 s here), no longer"
    fetch.assert_not_called()


def test_a_waiting_request_takes_the_refresh_of_the_one_holding_the_lock(request_with_token):
    request = request_with_token(expires_in=10)
    cache.add(f"sso_client:refresh-lock:{request.session.session_key}", "1", timeout=30)
    cache.set(token_key(request.session.session_key), {**refreshed("by-holder", "r-holder"), "sid": "sid-1"}, 600)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()
    assert access_token(request) == "by-holder"


# --- sessions written by the version that kept the ID token -----------------------------------------
def old_shape_token(expires_in: float, **claims) -> dict:
    """A session token as the version before kept it: the whole ID token, no sid of its own."""
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "s", **claims}).encode()).rstrip(b"=").decode()
    return {
        "access_token": "old",
        "refresh_token": "r1",
        "id_token": f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl",
        "expires_at": time.time() + expires_in,
    }


def older_request(token: dict):
    """A request of a session the version before wrote: the tokens themselves in the session."""
    user = get_user_model().objects.create(username=f"u{time.monotonic_ns()}")
    session = SessionStore()
    session.update({"_auth_user_id": str(user.pk), SESSION_TOKEN_KEY: token})
    session.save()
    request = RequestFactory().get("/")
    request.session, request.user = SessionStore(session_key=session.session_key), user
    return request


def test_a_session_of_the_older_shape_keeps_working_and_its_tokens_move_out_on_first_use():
    request = older_request(old_shape_token(3600, sid="sid-old"))
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()
    assert read_token(request.session.session_key) == {
        "access_token": "old",
        "refresh_token": "r1",
        "expires_at": mock.ANY,
        "sid": "sid-old",
    }
    assert stored_hint(request) == {"expires_at": mock.ANY}, "no token left in the session"
    assert session_sid(request.session) == "sid-old"


def test_a_session_of_the_older_shape_due_for_refresh_is_moved_then_refreshed():
    request = older_request(old_shape_token(10, sid="sid-old"))
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=refreshed()) as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    assert fetch.call_args.kwargs == {"grant_type": "refresh_token", "refresh_token": "r1", "timeout": 2}
    stored = read_token(request.session.session_key)
    assert stored == {"access_token": "new", "refresh_token": "r2", "expires_at": mock.ANY, "sid": "sid-old"}
    assert stored_hint(request) == {"expires_at": stored["expires_at"]}


def test_once_moved_the_tokens_key_wins_over_older_tokens_saved_back_into_the_session():
    request = older_request(old_shape_token(10, sid="sid-old"))
    slow_page = SessionStore(session_key=request.session.session_key)
    slow_page["draft"] = "x"  # read the session with the tokens in it
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=refreshed()):
        assert keep_token_fresh(request) is Freshness.FRESH
    slow_page.save()  # the spent refresh token is back in the session...

    again = RequestFactory().get("/")
    again.session, again.user = SessionStore(session_key=request.session.session_key), request.user
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=refreshed("newer", "r3")) as fetch:
        assert keep_token_fresh(again) is Freshness.FRESH
    fetch.assert_not_called()  # ...and never sent: the token key says the token is good
    assert access_token(again) == "new"


@pytest.mark.parametrize(
    "token",
    [
        None,
        {},
        {"access_token": "a"},
        {"sid": ""},
        {"sid": 7},
        {"id_token": "not a JWT"},
        {"id_token": "a.!!!.c"},
        {"id_token": 42},
        {"id_token": "a." + base64.urlsafe_b64encode(b"[1, 2]").decode() + ".c"},
        old_shape_token(60),  # an ID token without a sid claim
        old_shape_token(60, sid=["not", "a", "string"]),
    ],
)
def test_a_token_without_a_usable_sid_has_none(token):
    assert token_sid(token) is None


def test_the_sid_kept_wins_over_an_old_id_token():
    assert token_sid({**old_shape_token(60, sid="from-id-token"), "sid": "kept"}) == "kept"


def test_a_refresh_ahead_of_expiry_waits_briefly_and_one_of_an_expired_token_fully(request_with_token, settings):
    """A slow IdP must not hold a page whose token still works for the full timeout."""
    from unittest import mock

    from sso_client.client import IdentityProviderApp

    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "HTTP_TIMEOUT_SECONDS": 5, "REFRESH_AHEAD_TIMEOUT_SECONDS": 2}
    timeouts = []

    def answer(**kwargs):
        timeouts.append(kwargs.get("timeout"))
        return refreshed()

    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=answer):
        assert keep_token_fresh(request_with_token(expires_in=30)) is Freshness.FRESH
        assert keep_token_fresh(request_with_token(expires_in=-1)) is Freshness.FRESH
    assert timeouts == [2, 5]
