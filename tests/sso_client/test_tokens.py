"""Keeping the access token fresh: refresh once, sign out when refused, survive a short outage."""

from __future__ import annotations

import base64
import json
import time
from unittest import mock

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cache import SessionStore
from django.core.cache import cache
from django.test import RequestFactory

from sso_client.client import IdentityProviderApp, IdentityProviderUnavailable
from sso_client.tokens import SESSION_TOKEN_KEY, Freshness, keep_token_fresh, token_sid

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idp_in_cache")]


@pytest.fixture
def request_with_token():
    def make(expires_in: float):
        user = get_user_model().objects.create(username=f"u{time.monotonic_ns()}")
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session[SESSION_TOKEN_KEY] = {
            "access_token": "old",
            "refresh_token": "r1",
            "expires_at": time.time() + expires_in,
            "sid": "sid-1",
        }
        session.save()
        request = RequestFactory().get("/")
        request.session, request.user = SessionStore(session_key=session.session_key), user
        return request

    return make


def refreshed(access="new", refresh="r2"):
    return {"access_token": access, "refresh_token": refresh, "expires_in": 300, "expires_at": time.time() + 300}


def test_a_token_far_from_expiry_is_left_alone(request_with_token):
    request = request_with_token(expires_in=3600)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()


def test_a_token_near_expiry_is_refreshed_and_saved(request_with_token):
    request = request_with_token(expires_in=10)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=refreshed()) as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    assert fetch.call_args.kwargs == {"grant_type": "refresh_token", "refresh_token": "r1"}
    stored = SessionStore(session_key=request.session.session_key).load()[SESSION_TOKEN_KEY]
    assert stored == {"access_token": "new", "refresh_token": "r2", "expires_at": mock.ANY, "sid": "sid-1"}
    assert stored["expires_at"] > time.time() + 200


def test_a_refresh_keeps_no_id_token_and_keeps_a_refresh_token_it_did_not_replace(request_with_token):
    request = request_with_token(expires_in=10)
    answer = {**refreshed(), "id_token": "a.refreshed.id-token"}
    del answer["refresh_token"]
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=answer):
        assert keep_token_fresh(request) is Freshness.FRESH
    stored = SessionStore(session_key=request.session.session_key).load()[SESSION_TOKEN_KEY]
    assert stored == {"access_token": "new", "refresh_token": "r1", "expires_at": mock.ANY, "sid": "sid-1"}


def test_a_refresh_done_by_another_request_is_adopted_not_repeated(request_with_token):
    request = request_with_token(expires_in=10)
    other = SessionStore(session_key=request.session.session_key)
    other.load()
    other[SESSION_TOKEN_KEY] = {**refreshed("by-other", "r-other"), "sid": "sid-1"}
    other.save()
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()
    assert request.session[SESSION_TOKEN_KEY]["access_token"] == "by-other"
    # What the store holds already is not written again: nor, by a slow request, an older pair later.
    assert not request.session.modified


def test_a_refused_refresh_ends_the_local_session(request_with_token):
    request = request_with_token(expires_in=10)
    key = request.session.session_key
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=OAuthError(error="invalid_grant")):
        assert keep_token_fresh(request) is Freshness.SIGNED_OUT
    assert not request.user.is_authenticated
    assert not SessionStore(session_key=key).exists(key)


def test_an_unreachable_idp_is_tolerated_while_the_token_still_works(request_with_token):
    request = request_with_token(expires_in=10)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=requests.ConnectionError()):
        assert keep_token_fresh(request) is Freshness.FRESH
    assert request.session[SESSION_TOKEN_KEY]["refresh_token"] == "r1", "nothing stored was lost"


def test_an_unreachable_idp_with_an_expired_token_is_unavailable(request_with_token):
    request = request_with_token(expires_in=-5)
    with (
        mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=requests.ConnectionError()),
        pytest.raises(IdentityProviderUnavailable),
    ):
        keep_token_fresh(request)


def test_while_another_request_holds_the_lock_this_one_waits_then_serves(request_with_token):
    request = request_with_token(expires_in=10)
    cache.add(f"sso_client:refresh-lock:{request.session.session_key}", "1", timeout=30)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH  # token still valid after the wait
    fetch.assert_not_called()


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


def test_a_session_of_the_older_shape_keeps_working_and_slims_down_at_its_refresh(request_with_token):
    request = request_with_token(expires_in=3600)
    request.session[SESSION_TOKEN_KEY] = old_shape_token(3600, sid="sid-old")
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()
    assert token_sid(request.session[SESSION_TOKEN_KEY]) == "sid-old"

    request = request_with_token(expires_in=10)
    stored = SessionStore(session_key=request.session.session_key)
    stored.load()
    stored[SESSION_TOKEN_KEY] = old_shape_token(10, sid="sid-old")
    stored.save()
    request.session = SessionStore(session_key=request.session.session_key)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=refreshed()):
        assert keep_token_fresh(request) is Freshness.FRESH
    stored = SessionStore(session_key=request.session.session_key).load()[SESSION_TOKEN_KEY]
    assert stored == {"access_token": "new", "refresh_token": "r2", "expires_at": mock.ANY, "sid": "sid-old"}


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
