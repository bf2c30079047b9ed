"""The callback checks the ID token (signature, iss, aud, exp, nonce) before anyone is signed in."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from joserfc.jwk import RSAKey

from sso_client.client import IdentityProviderApp
from sso_client.models import Identity
from tests.e2e.oidc import query
from tests.sso_client.conftest import ISSUER, make_id_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idp_in_cache")]


def begin(client, next_path="/"):
    response = client.get(f"/sso/login/?next={next_path}")
    assert response.status_code == 302
    request = query(response["Location"])
    assert response["Location"].startswith(f"{ISSUER}/authorize/")
    assert request["code_challenge_method"] == "S256" and request["code_challenge"]
    assert request["client_id"] == "site-x"
    return request


def token_response(id_token: str | None) -> dict:
    token = {
        "access_token": "access",
        "refresh_token": "refresh",
        "token_type": "Bearer",
        "expires_in": 300,
        "expires_at": int(time.time()) + 300,
    }
    if id_token:
        token["id_token"] = id_token
    return token


def finish(client, request, token):
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", return_value=token) as fetch:
        response = client.get("/sso/callback/", {"code": "the-code", "state": request["state"]})
    return response, fetch


def test_a_valid_id_token_signs_the_person_in_and_goes_to_the_page_asked_for(client, signing_key):
    request = begin(client, "/wanted/?x=1")
    response, fetch = finish(
        client, request, token_response(make_id_token(signing_key, nonce=request["nonce"], sub="sub-1"))
    )
    assert response.status_code == 302 and response["Location"] == "/wanted/?x=1"
    # The code went to the token endpoint with the PKCE verifier kept in the session.
    sent = fetch.call_args.kwargs
    assert sent["code"] == "the-code" and len(sent["code_verifier"]) >= 43
    user = Identity.objects.get(issuer=ISSUER, subject="sub-1").user
    assert (user.username, user.email, user.get_full_name()) == ("alice", "alice@example.com", "Alice Liddell")
    assert not user.has_usable_password()
    assert client.get("/").content == b"hello alice"


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"aud": "another-site"}, "aud"),
        ({"iss": "https://evil.example/o"}, "iss"),
        ({"nonce": "a-nonce-we-never-sent"}, "nonce"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "exp"),
        ({"sub": None}, "sub"),
    ],
)
def test_an_id_token_with_a_wrong_claim_is_refused(client, signing_key, overrides, why):
    request = begin(client)
    claims = {"nonce": request["nonce"], **overrides}
    response, _ = finish(client, request, token_response(make_id_token(signing_key, **claims)))
    assert response.status_code == 400, why
    assert b"could not be verified" in response.content
    assert not get_user_model().objects.exists()


def test_an_id_token_signed_by_another_key_is_refused(client):
    forger = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    request = begin(client)
    with mock.patch("sso_client.client.fetch_json", return_value={"keys": []}):
        response, _ = finish(client, request, token_response(make_id_token(forger, nonce=request["nonce"])))
    assert response.status_code == 400
    assert not get_user_model().objects.exists()


def test_an_id_token_signed_with_a_key_published_since_signs_in_without_a_restart(client, signing_key):
    """The IdP rotated its key: the cached JWKS lacks it, one fresh fetch finds it."""
    new_key = RSAKey.generate_key(2048, parameters={"kid": "new-key"})
    published = {"keys": [signing_key.as_dict(private=False), new_key.as_dict(private=False)]}
    request = begin(client)
    with mock.patch("sso_client.client.fetch_json", return_value=published) as fetch:
        response, _ = finish(client, request, token_response(make_id_token(new_key, nonce=request["nonce"])))
    assert response.status_code == 302
    assert fetch.call_count == 1
    assert get_user_model().objects.count() == 1


def test_an_id_token_signed_with_a_key_the_idp_does_not_publish_gets_the_sign_in_again_page(client, signing_key):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "unknown-key"})
    request = begin(client)
    with mock.patch("sso_client.client.fetch_json", return_value={"keys": [signing_key.as_dict(private=False)]}):
        response, _ = finish(client, request, token_response(make_id_token(stranger, nonce=request["nonce"])))
    assert response.status_code == 400
    assert b"signed with a key the identity provider does not publish" in response.content
    assert b'href="/sso/login/"' in response.content and b"Sign in again" in response.content
    assert not get_user_model().objects.exists()


def test_a_token_response_without_an_id_token_is_refused(client):
    request = begin(client)
    response, _ = finish(client, request, token_response(None))
    assert response.status_code == 400
    assert not get_user_model().objects.exists()


def test_a_bad_callback_leaves_the_signed_in_session_alone(client, signing_key):
    request = begin(client)
    finish(client, request, token_response(make_id_token(signing_key, nonce=request["nonce"])))
    session_key = client.session.session_key
    second = begin(client)
    response, _ = finish(client, second, token_response(make_id_token(signing_key, nonce="wrong", aud="x")))
    assert response.status_code == 400
    assert client.session.session_key == session_key
    assert client.get("/").content == b"hello alice"


def test_signing_in_rotates_the_session_key(client, signing_key):
    request = begin(client)
    before = client.session.session_key
    finish(client, request, token_response(make_id_token(signing_key, nonce=request["nonce"])))
    assert client.session.session_key != before


def test_the_idp_unreachable_during_the_exchange_is_a_503(client):
    import requests

    request = begin(client)
    with mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=requests.ConnectionError("down")):
        response = client.get("/sso/callback/", {"code": "c", "state": request["state"]})
    assert response.status_code == 503
    assert b"cannot be reached" in response.content
