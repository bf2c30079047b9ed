"""Logout tokens whose claims have the wrong types are refused with a reason, never an error."""

import time
import uuid

import pytest
from joserfc import jwt

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
