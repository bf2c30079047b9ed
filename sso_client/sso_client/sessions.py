"""The session engine for sites that use sso_client: Django's cache sessions, kept ended.

SESSION_ENGINE = "sso_client.sessions"

A back-channel logout deletes a person's sessions from Redis. A request of that person still
running at that moment would, with Django's cache engine, save its session again when it
finishes, and sign the person back in. Django's database engine refuses such a save (the row is
gone: UpdateError, which SessionMiddleware answers with a 400); this engine does the same, from
a marker the logout leaves behind. The marker is read only when a session is written, so page
views that change nothing cost nothing more.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore

ENDED_PREFIX = "sso_client:ended:"


class SessionStore(CacheSessionStore):
    def save(self, must_create: bool = False) -> None:
        if not must_create and self.session_key and self._cache.get(ENDED_PREFIX + self.session_key):
            raise UpdateError  # ended by a logout while this request ran
        super().save(must_create)

    def end(self, session_key: str) -> bool:
        """Delete the session for good; True when it existed."""
        self._cache.set(ENDED_PREFIX + session_key, 1, self.get_expiry_age())
        existed = self.exists(session_key)
        self.delete(session_key)
        return existed
