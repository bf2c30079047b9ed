"""Logout tokens whose claims have the wrong types are refused with a reason, never an error."""

import secrets
import time
import uuid
from unittest import mock

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from sso_client.backchannel import BACKCHANNEL_LOGOUT_EVENT, LogoutTokenInvalid, validate_logout_token
from tests.sso_client.conftest import ISSUER


def logout_token(key, **overrides) -> str:
    claims = {
        "iss": ISSUER,
        "aud": "site-x",
        "iat": int(time.time()),
        "exp": int(time.time()) + 120,
        "jti": str(uuid.uuid4()),
        "sid": "a-session",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **overrides,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


pytestmark = pytest.mark.usefixtures("idp_in_cache")


def test_a_well_formed_logout_token_is_accepted(signing_key):
    assert validate_logout_token(logout_token(signing_key))["sid"] == "a-session"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": "later"},
        {"exp": None},
        {"exp": True},
        {"iat": "now"},
        {"jti": ["a", "b"]},
        {"jti": 7},
        {"sid": {"x": 1}},
        {"sid": None, "sub": ["alice"]},
    ],
    ids=repr,
)
def test_claims_of_the_wrong_type_are_refused(signing_key, overrides):
    with pytest.raises(LogoutTokenInvalid):
        validate_logout_token(logout_token(signing_key, **overrides))


def test_a_logout_token_signed_with_a_key_published_since_is_accepted(signing_key):
    new_key = RSAKey.generate_key(2048, parameters={"kid": "new-key"})
    published = {"keys": [signing_key.as_dict(private=False), new_key.as_dict(private=False)]}
    with mock.patch("sso_client.client.fetch_json", return_value=published) as fetch:
        assert validate_logout_token(logout_token(new_key))["sid"] == "a-session"
    assert fetch.call_count == 1


def test_logout_tokens_naming_keys_the_idp_does_not_publish_get_a_400_and_one_jwks_fetch_in_all(client, signing_key):
    """Anyone can post to the back-channel endpoint: a flood of made-up key ids must not make
    each request fetch the JWKS (sso_client.client bounds the forced fetches)."""
    stranger = RSAKey.generate_key(2048).as_dict(private=True)
    with mock.patch(
        "sso_client.client.fetch_json", return_value={"keys": [signing_key.as_dict(private=False)]}
    ) as fetch:
        for _ in range(25):
            key = RSAKey.import_key(stranger, parameters={"kid": secrets.token_urlsafe(8)})
            response = client.post("/sso/backchannel-logout/", {"logout_token": logout_token(key)})
            assert response.status_code == 400
            assert response.json() == {
                "error": "invalid_request",
                "error_description": "The logout token is signed with a key the identity provider does not publish.",
            }
    assert fetch.call_count == 1
