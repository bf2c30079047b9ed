"""A lock in the site's cache that only its holder releases (each holding has a random value).

A holder may outlive its lock (a call to a slow IdP takes longer than the lock's lifetime), and
another request may take the lock meanwhile: releasing must then leave the other's lock alone.
On Redis (django-redis) the release compares and deletes in one step, a small Lua script; on
other caches (the unit tests' in-memory cache) it reads, then deletes.
"""

from __future__ import annotations

import secrets

from django.core.cache import caches

from sso_client.conf import sso_settings

#: Delete KEYS[1] only while it holds ARGV[1] (the holder's value, as the cache encodes it).
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class OwnedLock:
    def __init__(self, name: str, *, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self.owner: str | None = None

    @property
    def cache(self):
        return caches[sso_settings.CACHE_ALIAS]

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; True when taken (with a value of this holding's own)."""
        owner = secrets.token_urlsafe(16)
        if self.cache.add(self.name, owner, timeout=self.timeout):
            self.owner = owner
            return True
        return False

    def release(self) -> None:
        """Release the lock if it is still this holder's; another's is left alone."""
        owner, self.owner = self.owner, None
        if owner is None:
            return
        cache = self.cache
        client = _redis(cache)
        if client is None:
            if cache.get(self.name) == owner:
                cache.delete(self.name)
            return
        client.eval(_COMPARE_AND_DELETE, 1, cache.make_key(self.name), cache.client.encode(owner))


def _redis(cache):
    """The raw Redis client behind a django-redis cache, or None for another cache."""
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client") or not hasattr(client, "encode"):
        return None
    return client.get_client(write=True)
