"""A started sign-in lives minutes, not the session's hours, and one browser keeps only a few.

Every visitor sent to sign in gets a session binding the sign-in's state to the browser (issue 8;
the state itself has a key of its own, issue 12): a session that holds nothing else expires with
it, and signing in gives it the site's full lifetime.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from sso_client.conf import sso_settings
from sso_client.sign_in_states import BROWSER_SESSION_KEY, PENDING_SIGN_INS_KEPT
from tests.sso_client.conftest import make_id_token
from tests.sso_client.test_callback import begin, finish, token_response

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idp_in_cache")]


def pending(client) -> dict[str, dict]:
    """The browser's pending sign-ins, by state, as the cache keeps them."""
    browser = client.session.get(BROWSER_SESSION_KEY)
    if not browser:
        return {}
    states = [state for state, _ in cache.get(f"sso_client:signins:{browser}") or []]
    return {state: record for state in states if (record := cache.get(f"sso_client:signin:{browser}:{state}"))}


def pending_states(client) -> list[str]:
    return list(pending(client))


def cookie_max_age(client) -> int:
    return int(client.cookies["sessionid"]["max-age"])


def test_an_anonymous_session_lives_as_long_as_its_sign_in(client, settings):
    begin(client)
    assert client.session.get_expiry_age() == sso_settings.SIGN_IN_STATE_SECONDS == 600
    assert cookie_max_age(client) == 600
    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "SIGN_IN_STATE_SECONDS": 120}
    begin(client)
    assert client.session.get_expiry_age() == cookie_max_age(client) == 120


def test_signing_in_gives_the_session_its_full_lifetime(client, signing_key, settings):
    request = begin(client)
    finish(client, request, token_response(make_id_token(signing_key, nonce=request["nonce"])))
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert cookie_max_age(client) == settings.SESSION_COOKIE_AGE


def test_a_session_that_holds_more_than_sign_ins_keeps_its_lifetime(client, settings):
    session = client.session
    session["basket"] = ["a book"]  # the site's own data, from a public page
    session.save()
    begin(client)
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE

    client.force_login(get_user_model().objects.create(username="bob"))
    begin(client)  # signed in already, asking to sign in again
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_one_browser_keeps_only_its_newest_pending_sign_ins(client, signing_key):
    states = [begin(client, f"/page/{n}/")["state"] for n in range(PENDING_SIGN_INS_KEPT + 3)]
    assert sorted(pending_states(client)) == sorted(states[-PENDING_SIGN_INS_KEPT:])

    oldest, _ = finish(client, {"state": states[0]}, token_response(None))
    assert oldest.status_code == 400 and b"not valid here" in oldest.content
    newest = states[-1]
    request = {"state": newest, "nonce": pending(client)[newest]["data"]["nonce"]}
    response, _ = finish(client, request, token_response(make_id_token(signing_key, nonce=request["nonce"])))
    assert response.status_code == 302 and response["Location"] == f"/page/{PENDING_SIGN_INS_KEPT + 2}/"


def test_an_expired_sign_in_is_refused_and_dropped(client, signing_key):
    request = begin(client)
    key = f"sso_client:signin:{client.session[BROWSER_SESSION_KEY]}:{request['state']}"
    cache.set(key, {**cache.get(key), "exp": time.time() - 1}, 600)
    response, fetch = finish(client, request, token_response(make_id_token(signing_key, nonce=request["nonce"])))
    assert response.status_code == 400 and b"expired" in response.content
    assert not fetch.called, "the code is never exchanged"

    assert cache.get(key) is None, "and dropped"
    begin(client)
    assert request["state"] not in pending_states(client)


def test_a_state_started_in_another_browser_is_refused_and_left_alone(client, signing_key):
    request = begin(client)
    stranger = Client()
    begin(stranger)  # a browser with pending sign-ins of its own
    token = token_response(make_id_token(signing_key, nonce=request["nonce"]))
    refused, fetch = finish(stranger, request, token)
    assert refused.status_code == 400 and not fetch.called
    response, _ = finish(client, request, token)  # the browser that started it still can
    assert response.status_code == 302


def test_a_callback_replayed_is_refused(client, signing_key):
    request = begin(client)
    token = token_response(make_id_token(signing_key, nonce=request["nonce"]))
    assert finish(client, request, token)[0].status_code == 302
    replayed, fetch = finish(client, request, token)
    assert replayed.status_code == 400 and b"used already" in replayed.content
    assert not fetch.called


def test_a_sign_in_the_version_before_kept_in_the_session_still_completes(client, signing_key):
    """Pending sign-ins started before the upgrade were kept in the session, as Authlib does."""
    request = begin(client)
    key = f"sso_client:signin:{client.session[BROWSER_SESSION_KEY]}:{request['state']}"
    record = cache.get(key)
    cache.delete(key)
    session = client.session
    session[f"_state_idp_{request['state']}"] = record
    session.save()
    response, _ = finish(client, request, token_response(make_id_token(signing_key, nonce=request["nonce"])))
    assert response.status_code == 302
    assert not any(key.startswith("_state_") for key in client.session.keys())  # noqa: SIM118 - not iterable
