"""Login sessions and back-channel logout at the IdP: what ending a session does, and the token."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cache import SessionStore
from django.core.management import call_command
from jwcrypto import jwt
from oauth2_provider.models import get_application_model, get_refresh_token_model

from provider import backchannel
from provider.login_sessions import login_session_end, login_session_start, user_sign_out_everywhere
from provider.models import LoginSession
from provider.selectors import account_for
from tests.idp.backchannel_world import token_for

Application = get_application_model()
RefreshToken = get_refresh_token_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="pw")


@pytest.fixture
def sites():
    call_command("seed_demo", stdout=mock.MagicMock())
    return Application.objects.get(client_id="site-a"), Application.objects.get(client_id="site-b")


def signed_in(user) -> LoginSession:
    session = SessionStore()
    session.create()
    return login_session_start(session=session, user=user)


def test_the_logout_token_says_what_the_spec_asks(alice, sites, settings):
    login_session = signed_in(alice)
    raw = backchannel.logout_token(sites[0], login_session)
    token = jwt.JWT(jwt=raw, key=sites[0].jwk_key, expected_type="JWS")
    header, claims = json.loads(token.header), json.loads(token.claims)
    assert header["alg"] == "RS256" and header["typ"] == "logout+jwt" and header["kid"]
    assert claims["iss"] == settings.OIDC_ISSUER
    assert claims["aud"] == "site-a"
    assert claims["sid"] == login_session.sid
    assert claims["sub"] == str(account_for(alice).sub)
    assert claims["events"] == {backchannel.BACKCHANNEL_LOGOUT_EVENT: {}}
    assert "nonce" not in claims
    assert claims["jti"] and abs(claims["iat"] - time.time()) < 5 and claims["exp"] > claims["iat"]
    assert (
        json.loads(
            jwt.JWT(
                jwt=backchannel.logout_token(sites[0], login_session), key=sites[0].jwk_key, expected_type="JWS"
            ).claims
        )["jti"]
        != claims["jti"]
    ), "a fresh jti every time"


def test_ending_a_session_revokes_its_tokens_only_and_names_the_clients_to_tell(alice, sites):
    site_a, site_b = sites
    first, second = signed_in(alice), signed_in(alice)
    mine = [token_for(first, site_a), token_for(first, site_b)]
    theirs = token_for(second, site_a)

    notify = login_session_end(first)

    assert sorted(notify) == sorted([(site_a.pk, first.sid), (site_b.pk, first.sid)])
    assert all(RefreshToken.objects.get(pk=token.pk).revoked for token in mine)
    assert RefreshToken.objects.get(pk=theirs.pk).revoked is None
    assert login_session_end(first) == [], "ending twice tells nobody twice"


def test_clients_without_a_back_channel_uri_are_not_told(alice, sites):
    site_a, _ = sites
    site_a.logout_settings.backchannel_logout_uri = ""
    site_a.logout_settings.save()
    login_session = signed_in(alice)
    token_for(login_session, site_a)
    assert login_session_end(login_session) == []


def test_signing_a_person_out_everywhere_ends_every_session_and_the_idp_sessions(alice, sites):
    sessions = [signed_in(alice) for _ in range(2)]
    for login_session in sessions:
        token_for(login_session, sites[0])
    notify = user_sign_out_everywhere(alice)
    assert {sid for _, sid in notify} == {login_session.sid for login_session in sessions}
    assert not LoginSession.objects.filter(user=alice, ended__isnull=True).exists()
    for login_session in sessions:
        assert not SessionStore().exists(login_session.session_key)


def test_deliveries_that_fail_or_hang_are_queued_for_the_worker(alice, sites, settings):
    settings.BACKCHANNEL_LOGOUT = {**settings.BACKCHANNEL_LOGOUT, "WAIT_SECONDS": 0.5}
    login_session = signed_in(alice)
    site_a, site_b = sites

    def post(client_id, uri, token):
        if client_id == "site-a":
            raise backchannel.DeliveryFailed("site-a: ConnectionError")
        time.sleep(2)  # site B hangs past the wait bound

    started = time.monotonic()
    with (
        mock.patch.object(backchannel, "post", side_effect=post),
        mock.patch.object(backchannel, "enqueue_retry") as enqueue,
    ):
        backchannel.notify([(site_a.pk, login_session.sid), (site_b.pk, login_session.sid)])
    assert time.monotonic() - started < 1.5, "the sign-out does not wait for the slow client"
    assert sorted(call.args for call in enqueue.call_args_list) == sorted(
        [(site_a.pk, login_session.sid), (site_b.pk, login_session.sid)]
    )


def test_a_delivery_answered_with_200_is_not_queued(alice, sites):
    login_session = signed_in(alice)
    with (
        mock.patch.object(backchannel, "post", return_value=None),
        mock.patch.object(backchannel, "enqueue_retry") as enqueue,
    ):
        backchannel.notify([(sites[0].pk, login_session.sid)])
    enqueue.assert_not_called()


def test_the_demo_sites_are_registered_for_back_channel_logout(sites, settings):
    site_a, _ = sites
    assert site_a.logout_settings.backchannel_logout_uri == f"{settings.SITE_A_URL}/sso/backchannel-logout/"
    assert site_a.post_logout_redirect_uris == f"{settings.SITE_A_URL}/sso/signed-out/"
