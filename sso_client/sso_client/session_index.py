"""Which local sessions belong to an IdP session (`sid`) or a person (`sub`).

Recorded at sign-in so that a back-channel logout finds the sessions to end without ever
scanning Redis. On django-redis the index is a sorted set per sid and per sub: its members are
session keys, scored with the time each session expires (ZADD is atomic, and sessions that
expired are dropped whenever one is added). Redis keeps a small sorted set compactly (listpack):
one of one member costs what a plain string would, about 60% of a plain set (hashtable) of one.
The key expires with its last session. On another cache backend the index is a plain list.

Versions before kept plain sets under other names (`sso_client:sid:`, `sso_client:sub:`); a
logout still reads those until they expire with their sessions.
"""

from __future__ import annotations

import time
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import caches

from sso_client.conf import sso_settings
from sso_client.tokens import forget_tokens


# Short names: Redis allocates a key's name in size classes, and under a site's KEY_PREFIX
# ("site_a:1:") these keep a sid's or a sub's key in the class below (64 bytes, not 80).
def _sid_key(sid: str) -> str:
    return f"sso:sid:{sid}"


def _sub_key(sub: str) -> str:
    return f"sso:sub:{sub}"


def _legacy_key(kind: str, value: str) -> str:
    """Where versions before kept the index, as plain sets (read by logouts until they expire)."""
    return f"sso_client:{kind}:{value}"


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
    now = int(time.time())
    keys = [_sub_key(sub), *([_sid_key(sid)] if sid else [])]
    client = _redis()
    if client is None:
        for key in keys:
            cache.set(key, [*(cache.get(key) or []), session.session_key], ttl)
        return
    pipeline = client.pipeline(transaction=False)  # one round trip
    for key in keys:
        raw_key = cache.make_key(key)
        pipeline.zremrangebyscore(raw_key, "-inf", now)  # sessions of this sid or sub that expired
        pipeline.zadd(raw_key, {session.session_key: now + ttl})
        pipeline.expire(raw_key, ttl)  # with its newest session (sessions signed in here all live as long)
    pipeline.execute()


def _members(kind: str, value: str) -> tuple[set[str], list[str]]:
    """The session keys indexed under sid or sub `value`, and the cache keys holding them."""
    cache = caches[sso_settings.CACHE_ALIAS]
    key = _sid_key(value) if kind == "sid" else _sub_key(value)
    client = _redis()
    if client is None:
        return set(cache.get(key) or []), [key]
    legacy = _legacy_key(kind, value)
    pipeline = client.pipeline(transaction=False)
    pipeline.zrangebyscore(cache.make_key(key), int(time.time()), "+inf")
    pipeline.smembers(cache.make_key(legacy))
    current, old = pipeline.execute()
    return {member.decode() for member in (*current, *old)}, [key, legacy]


def _forget(kind: str, value: str, session_keys: set[str]) -> None:
    """Take `session_keys` (ended) out of the index of sid or sub `value`, which stays for the rest."""
    cache = caches[sso_settings.CACHE_ALIAS]
    key = _sid_key(value) if kind == "sid" else _sub_key(value)
    client = _redis()
    if client is None:
        if kept := [member for member in cache.get(key) or [] if member not in session_keys]:
            cache.set(key, kept, settings.SESSION_COOKIE_AGE)  # as long as a signed-in session lives
        else:
            cache.delete(key)
        return
    pipeline = client.pipeline(transaction=False)
    pipeline.zrem(cache.make_key(key), *session_keys)
    pipeline.srem(cache.make_key(_legacy_key(kind, value)), *session_keys)
    pipeline.execute()


def end_sessions(*, sid: str | None, sub: str | None) -> int:
    """Delete every local session of `sid`, or of `sub` when no sid is given, with its tokens; return how many.

    With both, only the sid's sessions end, and they are taken out of the sub's index too (the
    person's other sessions stay), so that it does not keep naming sessions that are gone.
    """
    session_keys, index_keys = _members("sid", sid) if sid else _members("sub", sub)
    engine = import_module(settings.SESSION_ENGINE)
    ended = 0
    for session_key in session_keys:
        store = engine.SessionStore(session_key=session_key)
        if hasattr(store, "end"):  # sso_client.sessions: stays ended even if a running request saves it
            ended += store.end(session_key)
        elif store.exists(session_key):
            store.delete(session_key)
            ended += 1
    if not hasattr(engine.SessionStore, "end"):  # sso_client.sessions deletes the tokens with the session
        forget_tokens(*session_keys)
    caches[sso_settings.CACHE_ALIAS].delete_many(index_keys)
    if sid and sub and session_keys:
        _forget("sub", sub, session_keys)
    return ended
