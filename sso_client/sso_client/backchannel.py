"""Receiving OpenID Connect Back-Channel Logout 1.0 logout tokens (spec section 2.6).

A logout token is accepted only when its signature verifies against the IdP's JWKS and its
claims say it is a fresh logout token for this client from our IdP, seen for the first time.
Then every local session of its `sid` (or, without a sid, of its `sub`) is deleted from Redis.
"""

from __future__ import annotations

import time

from django.core.cache import caches
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from sso_client.client import identity_provider
from sso_client.conf import sso_settings
from sso_client.session_index import end_sessions

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class LogoutTokenInvalid(Exception):
    """Why a logout token was refused, fit for the `error_description` of the 400 answer."""


def _decode(raw: str) -> dict:
    idp = identity_provider()
    algorithms = idp.load_server_metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in algorithms if alg != "none"]
    try:
        try:
            token = jwt.decode(raw, KeySet.import_key_set(idp.fetch_jwk_set()), algorithms=algorithms)
        except InvalidKeyIdError:  # signed with a key we have not seen yet: fetch the JWKS again (bounded)
            token = jwt.decode(raw, KeySet.import_key_set(idp.fetch_jwk_set(force=True)), algorithms=algorithms)
    except InvalidKeyIdError:
        raise LogoutTokenInvalid(
            "The logout token is signed with a key the identity provider does not publish."
        ) from None
    except (JoseError, ValueError, TypeError) as error:
        raise LogoutTokenInvalid(f"The logout token is not a valid signed JWT ({type(error).__name__}).") from None
    return token.claims


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_logout_token(raw: str) -> dict:
    """The claims of `raw` when it is a valid, unseen logout token; else LogoutTokenInvalid."""
    claims = _decode(raw)
    now = time.time()
    skew = sso_settings.CLOCK_SKEW_SECONDS
    issuer = identity_provider().load_server_metadata()["issuer"]
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    events = claims.get("events")
    checks = [
        (claims.get("iss") == issuer, "iss is not this site's identity provider"),
        (sso_settings.CLIENT_ID in audiences, "aud does not name this client"),
        (_is_number(claims.get("iat")), "iat is missing"),
        ("exp" not in claims or _is_number(claims["exp"]), "exp is not a time"),
        (
            isinstance(events, dict) and isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict),
            "events claim is missing",
        ),
        ("nonce" not in claims, "a logout token must not carry a nonce"),
        (bool(claims.get("sid") or claims.get("sub")), "neither sid nor sub is present"),
        (all(isinstance(claims.get(name, ""), str) for name in ("sid", "sub")), "sid or sub is not a string"),
        (isinstance(claims.get("jti"), str) and bool(claims["jti"]), "jti is missing"),
    ]
    for holds, problem in checks:
        if not holds:
            raise LogoutTokenInvalid(f"The logout token's {problem}.")
    if not (now - sso_settings.LOGOUT_TOKEN_MAX_AGE_SECONDS - skew <= claims["iat"] <= now + skew):
        raise LogoutTokenInvalid("The logout token is too old (iat).")
    if "exp" in claims and claims["exp"] < now - skew:
        raise LogoutTokenInvalid("The logout token has expired (exp).")
    # Last: a token refused above does not use up its jti.
    seen_for = sso_settings.LOGOUT_TOKEN_MAX_AGE_SECONDS + 2 * skew
    if not caches[sso_settings.CACHE_ALIAS].add(f"sso_client:logout-jti:{claims['jti']}", 1, timeout=seen_for):
        raise LogoutTokenInvalid("This logout token was used already (jti).")
    return claims


def receive_logout_token(raw: str) -> int:
    """Validate `raw` and end the sessions it names; return how many were ended."""
    claims = validate_logout_token(raw)
    return end_sessions(sid=claims.get("sid") or None, sub=claims.get("sub") or None)
