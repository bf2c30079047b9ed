"""Django's cache session engine, except that Redis being unreachable is an error, not "no session".

    SESSION_ENGINE = "sso_client.cache_sessions"   # the IdP; sites use sso_client.sessions

Django's cache engine reads a session it cannot fetch as empty (for memcached's refusals of odd
keys). With Redis down or failing over, that makes a signed-in person look signed out for a
moment: the page starts a new sign-in, and the new session's cookie replaces theirs for good. Here
the outage reaches the page instead, which answers a readable 503 (sso_client.pages.server_error)
and leaves the person's cookie alone, so they are still signed in once Redis is back.
"""

from __future__ import annotations

from django.contrib.sessions.backends.cache import SessionStore as DjangoCacheSessionStore

from sso_client.redis_deployment import is_redis_outage


class SessionStore(DjangoCacheSessionStore):
    def load(self) -> dict:
        try:
            session_data = self._cache.get(self.cache_key)
        except Exception as error:
            if is_redis_outage(error):
                raise
            session_data = None  # as Django: a key the cache refuses is no session
        if session_data is not None:
            return session_data
        self._session_key = None
        return {}

    async def aload(self) -> dict:
        try:
            session_data = await self._cache.aget(await self.acache_key())
        except Exception as error:
            if is_redis_outage(error):
                raise
            session_data = None
        if session_data is not None:
            return session_data
        self._session_key = None
        return {}
