"""The session engine for sites that use sso_client: cache sessions, kept ended, stored lean.

SESSION_ENGINE = "sso_client.sessions"

A back-channel logout deletes a person's sessions from Redis. A request of that person still
running at that moment would, with Django's cache engine, save its session again when it
finishes, and sign the person back in. Django's database engine refuses such a save (the row is
gone: UpdateError, which SessionMiddleware answers with a 400); this engine does the same, from
a marker the logout leaves behind. The marker is read only when a session is written, so page
views that change nothing cost nothing more.

Redis unreachable is an error here, not an empty session (sso_client.cache_sessions).

A session's tokens have a key of their own (sso_client.tokens); it ends with the session: deleted
with it (a logout, a back-channel logout, the new session key a sign-in gives), and written with
the session's lifetime.

Every signed-in session is in Redis, so it is stored without what can be derived: Django's
`_auth_user_backend` is left out when it is the first of AUTHENTICATION_BACKENDS (the one
`login()` names when there is only one), and put back when the session is read. Django and the
site see the session as Django wrote it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core.cache import caches

from sso_client.cache_sessions import SessionStore as CacheSessionStore
from sso_client.conf import sso_settings
from sso_client.tokens import forget_tokens, token_key

ENDED_PREFIX = "sso_client:ended:"


def _default_backend() -> str | None:
    backends = settings.AUTHENTICATION_BACKENDS
    return backends[0] if backends else None


def stored_form(data: dict) -> dict:
    """The session as kept in Redis: without the auth backend when it is the default one."""
    if BACKEND_SESSION_KEY in data and data[BACKEND_SESSION_KEY] == _default_backend():
        return {key: value for key, value in data.items() if key != BACKEND_SESSION_KEY}
    return data


def restored(data: dict) -> dict:
    """The session as Django wrote it, from what Redis keeps."""
    if SESSION_KEY in data and BACKEND_SESSION_KEY not in data and (backend := _default_backend()):
        data[BACKEND_SESSION_KEY] = backend
    return data


class SessionStore(CacheSessionStore):
    def load(self) -> dict:
        return restored(super().load())

    async def aload(self) -> dict:
        return restored(await super().aload())

    def save(self, must_create: bool = False) -> None:
        """Django's cache engine's save, storing the lean form; refused for a session a logout ended."""
        if self.session_key is None:
            return self.create()
        if must_create:
            store = self._cache.add
        else:
            # One round trip: the logout's marker, and whether the session is still there.
            found = self._cache.get_many([ENDED_PREFIX + self.session_key, self.cache_key])
            if found.get(ENDED_PREFIX + self.session_key) or found.get(self.cache_key) is None:
                raise UpdateError  # ended by a logout while this request ran, or expired
            store = self._cache.set
        stored = store(self.cache_key, stored_form(self._get_session(no_load=must_create)), self.get_expiry_age())
        if must_create and not stored:
            raise CreateError

    def delete(self, session_key: str | None = None) -> None:
        """Delete the session, and its tokens with it (logout's flush, cycle_key's old key, end)."""
        session_key = session_key or self.session_key
        super().delete(session_key)
        forget_tokens(session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        await super().adelete(session_key)
        if session_key:
            await caches[sso_settings.CACHE_ALIAS].adelete(token_key(session_key))

    def end(self, session_key: str) -> bool:
        """Delete the session for good; True when it existed."""
        self._cache.set(ENDED_PREFIX + session_key, 1, self.get_expiry_age())
        existed = self.exists(session_key)
        self.delete(session_key)
        return existed
