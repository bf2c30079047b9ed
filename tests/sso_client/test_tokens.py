"""Keeping the access token fresh: refresh once, sign out when refused, survive a short outage."""

from __future__ import annotations

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
from sso_client.tokens import SESSION_TOKEN_KEY, Freshness, keep_token_fresh

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
            "id_token": "id1",
            "expires_at": time.time() + expires_in,
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
    assert stored["access_token"] == "new" and stored["refresh_token"] == "r2"
    assert stored["id_token"] == "id1", "an ID token the refresh did not replace is kept"


def test_a_refresh_done_by_another_request_is_adopted_not_repeated(request_with_token):
    request = request_with_token(expires_in=10)
    other = SessionStore(session_key=request.session.session_key)
    other.load()
    other[SESSION_TOKEN_KEY] = {**refreshed("by-other", "r-other"), "id_token": "id1"}
    other.save()
    with mock.patch.object(IdentityProviderApp, "fetch_access_token") as fetch:
        assert keep_token_fresh(request) is Freshness.FRESH
    fetch.assert_not_called()
    assert request.session[SESSION_TOKEN_KEY]["access_token"] == "by-other"


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
