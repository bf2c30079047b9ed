"""The tokens a signed-in session holds, and keeping the access token fresh.

Refresh tokens rotate on every use, and the IdP treats a refresh token used twice as stolen
(it revokes the whole family). So a refresh happens under a lock per session, and inside the
lock the session is read again from the store: when another request refreshed first, its
tokens are taken, and the spent refresh token is never sent.

The session keeps, under `_sso_token`, only what later requests need: the access token (for
calls to resource servers), the refresh token, the access token's expiry and the IdP session's
`sid` (for signing out). Not the ID token: its claims made the user at sign-in.
"""

from __future__ import annotations

import base64
import enum
import json
import time
from collections.abc import Mapping

from django.contrib.auth import logout
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.core.cache import caches
from django.http import HttpRequest

from sso_client.client import IdentityProviderUnavailable, identity_provider
from sso_client.conf import sso_settings
from sso_client.metrics import token_refresh_counted

SESSION_TOKEN_KEY = "_sso_token"  # noqa: S105 - a session key name, not a secret
#: What the session keeps of the IdP's token responses; besides them, "sid" (from the ID token).
TOKEN_FIELDS = ("access_token", "refresh_token", "expires_at")


class Freshness(enum.Enum):
    FRESH = "fresh"  # the access token is good for now
    SIGNED_OUT = "signed_out"  # the IdP refused the refresh: the local session has ended


def store_token(session: SessionBase, token: Mapping[str, object], *, sid: str | None = None) -> None:
    """Keep the token's fields (and the IdP session's `sid`) in the session, and nothing else.

    A refresh response may omit the refresh token: the one we had is kept. A session written by
    an older version holds the ID token too: it is dropped here, its `sid` kept.
    """
    previous = session.get(SESSION_TOKEN_KEY) or {}
    kept = {name: previous[name] for name in TOKEN_FIELDS if previous.get(name)}
    kept.update({name: token[name] for name in TOKEN_FIELDS if token.get(name)})
    if sid := sid or token_sid(previous):
        kept["sid"] = sid
    session[SESSION_TOKEN_KEY] = kept


def session_token(session: SessionBase) -> dict | None:
    return session.get(SESSION_TOKEN_KEY)


def token_sid(token: Mapping[str, object] | None) -> str | None:
    """The IdP session (`sid`) a session token belongs to, or None when it is not known.

    Sessions written by an older version kept the whole ID token instead: its `sid` claim is
    read from it (verified when it was stored; only a logout hint is made of it).
    """
    if not token:
        return None
    if isinstance(sid := token.get("sid"), str) and sid:
        return sid
    id_token = token.get("id_token")
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (AttributeError, IndexError, TypeError, ValueError):  # none, or not a JWT
        return None
    sid = claims.get("sid") if isinstance(claims, dict) else None
    return sid if isinstance(sid, str) and sid else None


def needs_refresh(token: Mapping[str, object], now: float) -> bool:
    return float(token.get("expires_at") or 0) - now < sso_settings.REFRESH_MARGIN_SECONDS


def stored_token(session: SessionBase) -> dict | None:
    """The token as the session store holds it now, which another request may have updated."""
    if not session.session_key:
        return None
    return type(session)(session_key=session.session_key).load().get(SESSION_TOKEN_KEY)


def keep_token_fresh(request: HttpRequest) -> Freshness:
    """Refresh the session's access token if it is about to expire.

    Raises IdentityProviderUnavailable only when the token has already expired and the IdP
    cannot be reached; while it is still valid, a failed refresh is retried on a later request.
    """
    token = session_token(request.session)
    now = time.time()
    if token is None:
        return Freshness.SIGNED_OUT
    if not needs_refresh(token, now):
        return Freshness.FRESH

    cache = caches[sso_settings.CACHE_ALIAS]
    lock = f"sso_client:refresh-lock:{request.session.session_key}"
    deadline = now + sso_settings.REFRESH_WAIT_SECONDS
    while True:
        latest = stored_token(request.session)
        if latest is None:
            logout(request)  # the session was ended elsewhere (signed out, expired)
            return Freshness.SIGNED_OUT
        if not needs_refresh(latest, time.time()):
            # Another request refreshed it: use its tokens. The store has them already, so this
            # request does not write the session for it (nor, later, an older pair back).
            modified = request.session.modified
            request.session[SESSION_TOKEN_KEY] = latest
            request.session.modified = modified
            return Freshness.FRESH
        if cache.add(lock, "1", timeout=sso_settings.REFRESH_WAIT_SECONDS + sso_settings.HTTP_TIMEOUT_SECONDS):
            try:
                return _refresh(request, latest)
            finally:
                cache.delete(lock)
        if time.time() > deadline:
            break
        time.sleep(0.05)
    if float(token.get("expires_at") or 0) > time.time():
        return Freshness.FRESH  # the other request is slow; this token still works meanwhile
    raise IdentityProviderUnavailable("timed out waiting for another request's token refresh")


def _refresh(request: HttpRequest, latest: dict) -> Freshness:
    from authlib.integrations.base_client import OAuthError

    try:
        fresh = identity_provider().fetch_access_token(
            grant_type="refresh_token", refresh_token=latest["refresh_token"]
        )
    except OAuthError as error:
        if error.error in ("invalid_grant", "invalid_token", "unauthorized_client"):
            token_refresh_counted("refused")
            logout(request)  # the grant was revoked, or the session ended at the IdP
            return Freshness.SIGNED_OUT
        token_refresh_counted("idp_error")
        raise IdentityProviderUnavailable(f"token endpoint answered {error.error}") from error
    except (IdentityProviderUnavailable, OSError, ValueError) as error:  # requests' errors are OSErrors
        token_refresh_counted("idp_unreachable")
        if float(latest.get("expires_at") or 0) > time.time():
            return Freshness.FRESH
        raise IdentityProviderUnavailable(type(error).__name__) from error
    token_refresh_counted("refreshed")
    request.session[SESSION_TOKEN_KEY] = latest
    store_token(request.session, fresh)
    try:
        request.session.save()  # before the lock opens: the next request must read the new tokens
    except UpdateError:  # a logout ended this session while the refresh ran
        logout(request)
        return Freshness.SIGNED_OUT
    return Freshness.FRESH
