"""The security properties the leaner token code keeps: single-use codes, rotation, reuse, sign-out."""

from __future__ import annotations

import pytest
from django.urls import reverse
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from provider.models import GrantSession, LoginSession, LoginSessionClient, RefreshTokenSession
from provider.signing import signing_key
from tests.idp.flows import SIGNED_OUT_URI, claims_of, world_make

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):
    world = world_make(client)
    world.sign_in()
    return world


def test_a_code_exchange_links_its_tokens_to_the_login_session(world):
    tokens = world.tokens()
    login_session = LoginSession.objects.get(user=world.user)
    claims = claims_of(tokens["id_token"])
    assert claims["sid"] == login_session.sid
    assert claims["auth_time"] == int(login_session.auth_time.timestamp())
    assert claims["amr"] == ["pwd"] and claims["nonce"] == "the-nonce"
    refresh = RefreshToken.objects.get(token_checksum=_checksum(tokens["refresh_token"]))
    assert RefreshTokenSession.objects.get(refresh_token=refresh).login_session == login_session
    assert LoginSessionClient.objects.filter(login_session=login_session, application=world.application).count() == 1
    use = GrantSession.objects.get()
    assert use.used is not None and use.refresh_token == refresh
    assert use.access_token_id == AccessToken.objects.get(token_checksum=_checksum(tokens["access_token"])).pk


def test_the_id_token_is_signed_with_the_published_key(world):
    from jwcrypto import jwt

    tokens = world.tokens()
    keys = world.client.get(reverse("oauth2_provider:jwks-info")).json()["keys"]
    token = jwt.JWT(jwt=tokens["id_token"], key=signing_key())
    assert token.token.jose_header["kid"] == keys[0]["kid"] == signing_key().thumbprint()


def test_a_second_use_of_a_code_is_refused_and_revokes_what_the_first_gave(world):
    params, verifier = world.authorize_params()
    code = world.authorize(params)
    first = world.exchange(code, verifier).json()
    again = world.exchange(code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(token_checksum=_checksum(first["access_token"])).exists()
    assert RefreshToken.objects.get(token_checksum=_checksum(first["refresh_token"])).revoked is not None
    assert world.refresh(first["refresh_token"]).status_code == 400


def test_a_code_replayed_after_a_refresh_revokes_the_rotated_tokens_too(world):
    params, verifier = world.authorize_params()
    code = world.authorize(params)
    first = world.exchange(code, verifier).json()
    rotated = world.refresh(first["refresh_token"]).json()
    assert world.exchange(code, verifier).status_code == 400
    assert world.userinfo(rotated["access_token"]).status_code == 401
    assert world.refresh(rotated["refresh_token"]).status_code == 400


def test_a_code_of_another_client_is_refused(world):
    from provider.services import application_register

    params, verifier = world.authorize_params()
    code = world.authorize(params)
    other = application_register(
        name="B", client_id="site-b", client_secret="b-secret-b-secret", redirect_uris=["http://127.0.0.1:8002/cb/"]
    )
    from tests.idp.flows import REDIRECT_URI, basic

    response = world.client.post(
        reverse("token"),
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        HTTP_AUTHORIZATION=basic(other.application.client_id, "b-secret-b-secret"),
    )
    assert response.status_code == 400
    assert world.exchange(code, verifier).status_code == 200, "the code is still good for its own client"


def test_a_wrong_verifier_or_redirect_uri_is_refused(world):
    params, verifier = world.authorize_params()
    code = world.authorize(params)
    assert world.exchange(code, verifier[:-1] + ("A" if verifier[-1] != "A" else "B")).status_code == 400
    from tests.idp.flows import basic

    response = world.client.post(
        reverse("token"),
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:8001/elsewhere/",
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=basic(),
    )
    assert response.status_code == 400


def test_a_refresh_rotates_both_tokens_and_keeps_the_session(world):
    first = world.tokens()
    second = world.refresh(first["refresh_token"])
    assert second.status_code == 200, second.content
    second = second.json()
    old = RefreshToken.objects.get(token_checksum=_checksum(first["refresh_token"]))
    new = RefreshToken.objects.get(token_checksum=_checksum(second["refresh_token"]))
    assert old.revoked is not None and old.access_token is None
    assert not AccessToken.objects.filter(token_checksum=_checksum(first["access_token"])).exists()
    assert new.revoked is None and new.token_family == old.token_family
    assert AccessToken.objects.get(token_checksum=_checksum(second["access_token"])).source_refresh_token == old
    assert claims_of(second["id_token"])["sid"] == claims_of(first["id_token"])["sid"]
    assert RefreshTokenSession.objects.get(refresh_token=new).login_session.sid == claims_of(first["id_token"])["sid"]
    assert world.userinfo(second["access_token"]).status_code == 200
    assert world.userinfo(first["access_token"]).status_code == 401


def test_a_rotated_out_refresh_token_used_again_revokes_the_family(world):
    first = world.tokens()
    second = world.refresh(first["refresh_token"]).json()
    _past_the_grace_period(first["refresh_token"])  # within it, see test_refresh_grace.py
    reused = world.refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert RefreshToken.objects.get(token_checksum=_checksum(second["refresh_token"])).revoked is not None
    assert world.userinfo(second["access_token"]).status_code == 401
    assert world.refresh(second["refresh_token"]).status_code == 400


def test_a_refresh_token_of_another_client_is_refused(world):
    from provider.services import application_register
    from tests.idp.flows import basic

    tokens = world.tokens()
    application_register(
        name="B", client_id="site-b", client_secret="b-secret-b-secret", redirect_uris=["http://127.0.0.1:8002/cb/"]
    )
    response = world.client.post(
        reverse("token"),
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic("site-b", "b-secret-b-secret"),
    )
    assert response.status_code == 400
    assert world.refresh(tokens["refresh_token"]).status_code == 200


def test_signing_out_deletes_unused_codes_and_revokes_the_sessions_tokens(world):
    tokens = world.tokens()
    rotated = world.refresh(tokens["refresh_token"]).json()
    params, verifier = world.authorize_params()
    unused = world.authorize(params)
    query = {"id_token_hint": rotated["id_token"], "post_logout_redirect_uri": SIGNED_OUT_URI}
    assert world.client.get(reverse("end-session"), query).status_code == 302
    assert not Grant.objects.filter(code=unused).exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert not AccessToken.objects.exists()
    assert world.refresh(rotated["refresh_token"]).status_code == 400
    assert world.exchange(unused, verifier).status_code == 400


def test_the_access_token_has_no_other_reference_than_its_refresh_token():
    """A rotation deletes the old access token with one DELETE, having cleared the only pointer
    to it (RefreshToken.access_token): a new foreign key to AccessToken must be cleared there too."""
    pointers = [
        (field.related_model._meta.label, field.field.name)
        for field in AccessToken._meta.related_objects
        if field.field.null or field.on_delete.__name__ != "DO_NOTHING"
    ]
    assert pointers == [(RefreshToken._meta.label, "access_token")]


def _checksum(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def _past_the_grace_period(refresh_token: str) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.settings import oauth2_settings

    long_ago = timezone.now() - timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS + 1)
    RefreshToken.objects.filter(token_checksum=_checksum(refresh_token)).update(revoked=long_ago)
