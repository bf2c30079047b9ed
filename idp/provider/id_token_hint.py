"""Reading an `id_token_hint`: an ID token this IdP issued, sent back by a client as a hint.

Used by the authorization endpoint (OIDC Core 3.1.2.1) and the end-session endpoint (OIDC
RP-Initiated Logout 1.0, section 2). The hint must carry this IdP's signature, by the current
signing key or a retired one still published in the JWKS, and name this IdP as its issuer; it
may have expired (a client keeps the ID token of the whole session, and signing out must still
work after its `exp`). Whatever a client sends, the answer is claims or `HintInvalid`: never an
exception from the JOSE library, whatever the bytes.
"""

from __future__ import annotations

import json

from jwcrypto import jws
from jwcrypto.common import JWException

from provider.signing import verification_keys

#: Longer than any real ID token; a longer hint is refused before any parsing.
MAX_HINT_LENGTH = 8192


class HintInvalid(Exception):
    """Why the hint was refused, fit for an OAuth `error_description`."""


def id_token_hint_claims(raw: str, *, issuer: str, client_id: str | None = None) -> dict:
    """The claims of `raw` once its signature and issuer check out; else HintInvalid.

    With `client_id`, the hint must also have been issued to that client (its `aud`).
    """
    if not raw or len(raw) > MAX_HINT_LENGTH or raw.count(".") != 2:
        raise HintInvalid("id_token_hint is not a signed JWT.")
    token = jws.JWS()
    try:
        token.deserialize(raw)
        if token.jose_header.get("alg") != "RS256":  # never "none", never HS256 with the public key
            raise HintInvalid("id_token_hint is not signed with this provider's algorithm.")
    except (JWException, ValueError, TypeError, AttributeError):
        raise HintInvalid("id_token_hint is not a signed JWT.") from None
    for key in verification_keys():
        try:
            token.verify(key, alg="RS256")
            break
        except JWException:
            continue
    else:
        raise HintInvalid("id_token_hint is not signed by this provider.")
    try:
        claims = json.loads(token.payload)
    except (ValueError, TypeError):
        raise HintInvalid("id_token_hint carries no claims.") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        raise HintInvalid("id_token_hint carries no subject.")
    if claims.get("iss") != issuer:
        raise HintInvalid("id_token_hint was issued by another provider.")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id is not None and client_id not in audiences:
        raise HintInvalid("id_token_hint was issued to another client.")
    return claims
