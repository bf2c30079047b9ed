"""Which local sessions belong to an IdP session (`sid`) or a person (`sub`).

Recorded at sign-in so that a back-channel logout finds the sessions to end without ever
scanning Redis. On django-redis the index is a Redis set per sid and per sub (SADD is atomic),
expiring with the sessions; on another cache backend it is a plain list in the cache.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import caches

from sso_client.conf import sso_settings


def _sid_key(sid: str) -> str:
    return f"sso_client:sid:{sid}"


def _sub_key(sub: str) -> str:
    return f"sso_client:sub:{sub}"


def _redis():
    """The raw Redis client behind the cache, or None when the cache is not django-redis."""
    try:
        from django_redis import get_redis_connection

        return get_redis_connection(sso_settings.CACHE_ALIAS)
    except (ImportError, NotImplementedError):
        return None


def index_session(session: SessionBase, *, sid: str | None, sub: str) -> None:
    """Remember that `session` belongs to IdP session `sid` and to person `sub`."""
    cache = caches[sso_settings.CACHE_ALIAS]
    ttl = session.get_expiry_age()
    client = _redis()
    for key in [_sub_key(sub), *([_sid_key(sid)] if sid else [])]:
        if client is not None:
            raw_key = cache.make_key(key)
            client.sadd(raw_key, session.session_key)
            client.expire(raw_key, ttl)
        else:
            cache.set(key, [*(cache.get(key) or []), session.session_key], ttl)


def _members(key: str) -> set[str]:
    cache = caches[sso_settings.CACHE_ALIAS]
    client = _redis()
    if client is not None:
        return {member.decode() for member in client.smembers(cache.make_key(key))}
    return set(cache.get(key) or [])


def end_sessions(*, sid: str | None, sub: str | None) -> int:
    """Delete every local session of `sid`, or of `sub` when no sid is given; return how many."""
    key = _sid_key(sid) if sid else _sub_key(sub)
    engine = import_module(settings.SESSION_ENGINE)
    ended = 0
    for session_key in _members(key):
        store = engine.SessionStore(session_key=session_key)
        if hasattr(store, "end"):  # sso_client.sessions: stays ended even if a running request saves it
            ended += store.end(session_key)
        elif store.exists(session_key):
            store.delete(session_key)
            ended += 1
    caches[sso_settings.CACHE_ALIAS].delete(key)
    return ended
