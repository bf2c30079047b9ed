"""The tokens a signed-in session holds, and keeping the access token fresh.

Refresh tokens rotate on every use, and the IdP treats a refresh token used twice as stolen (it
revokes the whole family). So the tokens are not kept in the session, which any request of the
person may save back as it read it: a form post that started before a refresh and finished after
it would bring the spent refresh token back, and the next refresh would sign the person out.
They have a cache key of their own per session, `sso_client:token:<session key>` (the site's
Redis, JSON): the access token (for calls to resource servers), the refresh token, the access
token's expiry and the IdP session's `sid` (for signing out). Not the ID token: its claims made
the user at sign-in. The key is written at sign-in and, after that, only under the refresh lock
of its session. It ends with the session: sso_client.sessions deletes it with the session (a
logout, a back-channel logout, the new session key of a sign-in), and it is written with the
session's lifetime.

The session keeps, under `_sso_token`, a copy of the expiry: a hint, so that a page view whose
token is not due reads Redis once (the session) and nothing more. When the hint says due, the
request takes the lock and reads the token key, which is the truth: a hint saved back stale costs
a lock and a read, never a refresh with a spent token.

Sessions written by the version before hold the tokens themselves under `_sso_token`; they are
moved to the token key on first use.
"""

from __future__ import annotations

import base64
import enum
import json
import time
from collections.abc import Mapping

from django.contrib.auth import SESSION_KEY, logout
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.core.cache import caches
from django.http import HttpRequest

from sso_client import idp_breaker
from sso_client.client import IdentityProviderUnavailable, identity_provider
from sso_client.conf import sso_settings
from sso_client.locks import OwnedLock
from sso_client.metrics import token_refresh_counted

SESSION_TOKEN_KEY = "_sso_token"  # noqa: S105 - a session key name, not a secret
#: What the token key keeps of the IdP's token responses; besides them, "sid" (from the ID token).
TOKEN_FIELDS = ("access_token", "refresh_token", "expires_at")


class Freshness(enum.Enum):
    FRESH = "fresh"  # the access token is good for now
    SIGNED_OUT = "signed_out"  # the IdP refused the refresh: the local session has ended


# --- where the tokens are kept ---------------------------------------------------------------------
def token_key(session_key: str) -> str:
    return f"sso_client:token:{session_key}"


def _cache():
    return caches[sso_settings.CACHE_ALIAS]


def read_token(session_key: str | None) -> dict | None:
    """The tokens of session `session_key` as the token key holds them now, or None."""
    if not session_key:
        return None
    token = _cache().get(token_key(session_key))
    return token if isinstance(token, dict) else None


def forget_tokens(*session_keys: str | None) -> None:
    """Delete the tokens of these sessions (ended, or replaced by a new session key)."""
    if keys := [token_key(session_key) for session_key in session_keys if session_key]:
        _cache().delete_many(keys)


def kept_token(token: Mapping[str, object], *, previous: Mapping[str, object] | None = None, sid: str | None = None):
    """The token's fields (and the IdP session's `sid`), and nothing else.

    A refresh response may omit the refresh token: the one `previous` had is kept. A token of an
    older version holds the ID token too: it is dropped here, its `sid` kept.
    """
    previous = previous or {}
    kept = {name: previous[name] for name in TOKEN_FIELDS if previous.get(name)}
    kept.update({name: token[name] for name in TOKEN_FIELDS if token.get(name)})
    if sid := sid or token_sid(previous) or token_sid(token):
        kept["sid"] = sid
    return kept


def token_hint(token: Mapping[str, object]) -> dict:
    """What the session keeps of a token: its expiry, all a page view needs. (Not the sid: signing
    out, which needs it, reads the token key; the session stays in a smaller allocation.)"""
    return {"expires_at": token.get("expires_at") or 0}


def holds_tokens(value: Mapping[str, object]) -> bool:
    """Whether a session's `_sso_token` is the tokens themselves (the version before), not a hint."""
    return bool(value.get("refresh_token") or value.get("access_token"))


def store_token(session: SessionBase, token: Mapping[str, object], *, sid: str | None = None) -> None:
    """Keep the tokens of a sign-in: the session's own, replacing whatever it had, whole.

    Called once the sign-in gave the session its new key (and lifetime), which no other request
    knows yet, so no lock is needed. (The same person signing in again keeps the key: a refresh
    running meanwhile may leave its pair or this one, either unspent, never a spent one.)
    """
    if session.session_key is None:
        session.save()  # a session flushed by the sign-in (another user was signed in) needs its key now
    kept = kept_token(token, sid=sid)
    _cache().set(token_key(session.session_key), kept, session.get_expiry_age())
    session[SESSION_TOKEN_KEY] = token_hint(kept)


def session_token(session: SessionBase) -> dict | None:
    """The session's hint (the expiry); the tokens themselves for a session of the version before."""
    return session.get(SESSION_TOKEN_KEY)


def session_sid(session: SessionBase) -> str | None:
    """The IdP session (`sid`) the session signed in with, or None when it is not known."""
    return token_sid(read_token(session.session_key) or session_token(session))


def access_token(request: HttpRequest) -> str | None:
    """The signed-in person's access token, to call resource servers with (after the middleware ran)."""
    if (token := read_token(request.session.session_key)) is None:
        hint = session_token(request.session) or {}
        token = hint if holds_tokens(hint) else {}  # a session of the version before, not moved yet
    return token.get("access_token")


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


def _still_valid(token: Mapping[str, object] | None) -> bool:
    return bool(token) and float(token.get("expires_at") or 0) > time.time()


# --- keeping the access token fresh ----------------------------------------------------------------
def keep_token_fresh(request: HttpRequest) -> Freshness:
    """Refresh the session's access token if it is about to expire.

    Raises IdentityProviderUnavailable only when the token has already expired and the IdP
    cannot be reached; while it is still valid, a failed refresh is retried on a later request.
    """
    session = request.session
    hint = session_token(session)
    if not hint:
        return Freshness.SIGNED_OUT
    old_shape = holds_tokens(hint)
    if not old_shape and not needs_refresh(hint, time.time()):
        return Freshness.FRESH  # decided from the session alone: no more Redis

    # One request per session refreshes, under a lock that only it releases (sso_client.locks).
    lock = OwnedLock(
        f"sso_client:refresh-lock:{session.session_key}",
        timeout=sso_settings.REFRESH_WAIT_SECONDS + sso_settings.HTTP_TIMEOUT_SECONDS,
    )
    deadline = time.time() + sso_settings.REFRESH_WAIT_SECONDS
    while True:
        if lock.acquire():
            try:
                return _under_lock(request)
            finally:
                lock.release()
        # Another request of this session holds the lock: its result is used once it is stored.
        latest = read_token(session.session_key)
        if latest is None and not old_shape:
            logout(request)  # the session was ended elsewhere (signed out, expired)
            return Freshness.SIGNED_OUT
        if latest is not None and not needs_refresh(latest, time.time()):
            _use(session, latest)
            return Freshness.FRESH
        if _still_valid(latest or (hint if old_shape else None)):
            # Only within the refresh margin: this page is served with the token it has, at once,
            # whatever the other request's refresh takes (a slow IdP, a lock that outlived its holder).
            return Freshness.FRESH
        # Expired: nothing to serve the page with but the other request's result.
        if time.time() > deadline:
            raise IdentityProviderUnavailable("timed out waiting for another request's token refresh")
        time.sleep(0.05)


def _use(session: SessionBase, token: Mapping[str, object]) -> None:
    """Take `token`'s hint into this request's session without writing the session for it: the
    store has it already, or will have it from whoever refreshed."""
    modified = session.modified
    session[SESSION_TOKEN_KEY] = token_hint(token)
    session.modified = modified


def _under_lock(request: HttpRequest) -> Freshness:
    """With the session's refresh lock held: read the tokens (the truth), refresh them if due."""
    session = request.session
    token = read_token(session.session_key)
    if token is None:
        token = _moved_from_the_session(session)
        if token is None:
            logout(request)  # the session was ended elsewhere (signed out, expired)
            return Freshness.SIGNED_OUT
        if not _store(session, token):
            logout(request)
            return Freshness.SIGNED_OUT
    if not needs_refresh(token, time.time()):
        # Another request refreshed it (or this request's session was saved back with an old hint).
        _use(session, token)
        return Freshness.FRESH
    return _refresh(request, token)


def _moved_from_the_session(session: SessionBase) -> dict | None:
    """The tokens a session of the version before holds, as the store has them now, or None."""
    if not session.session_key:
        return None
    stored = type(session)(session_key=session.session_key).load().get(SESSION_TOKEN_KEY)
    return kept_token(stored) if stored and holds_tokens(stored) else None


def _store(session: SessionBase, token: dict) -> bool:
    """Write the tokens (under the lock) and the hint; False when the session has ended meanwhile."""
    _cache().set(token_key(session.session_key), token, session.get_expiry_age())
    _use(session, token)
    # The hint goes into the session as the store has it now (read afresh, so that nothing else
    # in it is changed back), not into this request's copy, which is saved only if the page writes it.
    stored = type(session)(session_key=session.session_key)
    try:
        if stored.get(SESSION_KEY) is None:
            raise UpdateError  # ended (signed out, expired) while this request ran
        stored[SESSION_TOKEN_KEY] = token_hint(token)
        stored.save()  # before the lock opens: the next request must read the new hint
    except UpdateError:  # sso_client.sessions: a logout ended this session while the refresh ran
        forget_tokens(session.session_key)
        return False
    return True


def _refresh(request: HttpRequest, latest: dict) -> Freshness:
    from authlib.integrations.base_client import OAuthError

    if not idp_breaker.may_call():
        # A call to the IdP timed out or could not connect a moment ago (sso_client.idp_breaker):
        # no page waits for it. A token still valid serves; an expired one gets the unavailable page.
        token_refresh_counted("skipped_idp_unreachable")
        if _still_valid(latest):
            return Freshness.FRESH
        raise IdentityProviderUnavailable("the identity provider did not answer a moment ago: not called")
    # A refresh ahead of expiry is a favour to the page, not a need: it waits briefly, so that a
    # slow IdP ties up no worker for long before the breaker opens. An expired token waits fully.
    timeout = sso_settings.HTTP_TIMEOUT_SECONDS
    if _still_valid(latest):
        timeout = min(timeout, sso_settings.REFRESH_AHEAD_TIMEOUT_SECONDS)
    try:
        fresh = identity_provider().fetch_access_token(
            grant_type="refresh_token", refresh_token=latest["refresh_token"], timeout=timeout
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
        if _still_valid(latest):
            return Freshness.FRESH
        raise IdentityProviderUnavailable(type(error).__name__) from error
    token_refresh_counted("refreshed")
    if not _store(request.session, kept_token(fresh, previous=latest)):
        logout(request)  # a logout ended this session while the refresh ran
        return Freshness.SIGNED_OUT
    return Freshness.FRESH
