"""Sign-ins a browser has started (state, nonce, PKCE verifier, where to go next), each under a key of its own.

Authlib keeps a started sign-in through its framework integration (`set_state_data`,
`get_state_data`, `clear_state_data`), by default in the Django session. Two tabs that start a
sign-in at once would each add theirs to the session as they read it, and the session saved last
would win: the other tab would end on the "sign in again" page. Here each pending sign-in is a
cache key of its own (Redis, JSON), `sso_client:signin:<browser>:<state>`, expiring after
SSO_CLIENT["SIGN_IN_STATE_SECONDS"], so tabs that start at once all keep theirs.

`<browser>` is a value the browser's session keeps (`_sso_sign_in`): the session key it had when
its first sign-in started, so that tabs starting at once all choose the same, and carried to the
new session key a sign-in gives, so that the other tabs' sign-ins still complete after one did.
A state is good only in the browser that started it, and once: taking it at the callback deletes
it, and of two callbacks racing with one state only one can. One browser keeps at most
PENDING_SIGN_INS_KEPT: a sorted set per browser (`sso_client:signins:<browser>`, scored by expiry,
expiring with its newest sign-in) names them, and the oldest are dropped. On a cache that is not
django-redis, that index is a plain list.
"""

from __future__ import annotations

import secrets
import time

from authlib.integrations.django_client import DjangoIntegration
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import caches

from sso_client.conf import sso_settings

#: The session key naming the browser's pending sign-ins.
BROWSER_SESSION_KEY = "_sso_sign_in"
#: Pending sign-ins one browser keeps: a few tabs may sign in at once, a script cannot pile up more.
PENDING_SIGN_INS_KEPT = 5


def _state_key(browser: str, state: str) -> str:
    return f"sso_client:signin:{browser}:{state}"


def _index_key(browser: str) -> str:
    return f"sso_client:signins:{browser}"


def _cache():
    return caches[sso_settings.CACHE_ALIAS]


def _redis():
    from sso_client.session_index import _redis

    return _redis()


def browser_of(session: SessionBase, *, create: bool = False) -> str | None:
    """The value binding pending sign-ins to this browser's session; made on the first sign-in."""
    browser = session.get(BROWSER_SESSION_KEY)
    if browser or not create:
        return browser
    # The session key, when the session has one: tabs that start at once on one session all
    # choose the same value, whichever of their sessions is saved last.
    browser = session.session_key or secrets.token_urlsafe(24)
    session[BROWSER_SESSION_KEY] = browser
    return browser


def holds_only_sign_ins(session: SessionBase, legacy_prefix: str) -> bool:
    """Whether the session keeps nothing but pending sign-ins: nobody is signed in, nothing else is kept."""
    keys = session.keys()  # a session is not iterable
    return all(key in (BROWSER_SESSION_KEY, "_session_expiry") or key.startswith(legacy_prefix) for key in keys)


def _add_to_index(browser: str, state: str, expires: float, lifetime: int) -> list[str]:
    """Name `state` among the browser's pending sign-ins; return those dropped (the oldest beyond the limit)."""
    cache, now, index = _cache(), time.time(), _index_key(browser)
    client = _redis()
    if client is None:
        entries = [entry for entry in cache.get(index) or [] if entry[1] > now and entry[0] != state]
        entries = sorted([*entries, [state, expires]], key=lambda entry: entry[1])
        cache.set(index, entries[-PENDING_SIGN_INS_KEPT:], lifetime)
        return [entry[0] for entry in entries[:-PENDING_SIGN_INS_KEPT]]
    raw_key = cache.make_key(index)
    pipeline = client.pipeline(transaction=True)  # one round trip, seen whole by a tab starting at the same time
    pipeline.zremrangebyscore(raw_key, "-inf", now)  # expired: their own keys expired with them
    pipeline.zadd(raw_key, {state: expires})
    pipeline.expire(raw_key, lifetime)
    pipeline.zrange(raw_key, 0, -(PENDING_SIGN_INS_KEPT + 1))  # all but the newest few, oldest first
    pipeline.zremrangebyrank(raw_key, 0, -(PENDING_SIGN_INS_KEPT + 1))
    dropped = pipeline.execute()[3]
    return [member.decode() for member in dropped]


def _remove_from_index(browser: str, state: str) -> None:
    cache, index = _cache(), _index_key(browser)
    client = _redis()
    if client is None:
        entries = [entry for entry in cache.get(index) or [] if entry[0] != state]
        if entries:
            cache.set(index, entries, sso_settings.SIGN_IN_STATE_SECONDS)
        else:
            cache.delete(index)
        return
    client.zrem(cache.make_key(index), state)


def _pending_count(browser: str) -> int:
    cache, now, index = _cache(), time.time(), _index_key(browser)
    client = _redis()
    if client is None:
        return sum(1 for entry in cache.get(index) or [] if entry[1] > now)
    return client.zcount(cache.make_key(index), now, "+inf")


class PendingSignIns(DjangoIntegration):
    """Authlib's Django integration, keeping each pending sign-in under a key of its own."""

    @property
    def legacy_prefix(self) -> str:
        # The version before kept each pending sign-in in the session, as Authlib does, under
        # this prefix followed by the state: such a sign-in still completes.
        return f"_state_{self.name}_"

    def set_state_data(self, session: SessionBase, state: str, data: dict) -> None:
        browser = browser_of(session, create=True)
        expires = time.time() + self.expires_in
        _cache().set(_state_key(browser, state), {"data": data, "exp": expires}, self.expires_in)
        if dropped := _add_to_index(browser, state, expires, self.expires_in):
            _cache().delete_many([_state_key(browser, old) for old in dropped])

    def take_state_data(self, session: SessionBase, state: str | None) -> dict | None:
        """The pending sign-in `state` of this browser, removed (single use), or None.

        None for a state this browser did not start, one already taken (by a callback racing
        this one, too), or one that expired. Authlib's own `get_state_data` later in the same
        request gets what was taken here.
        """
        if not state:
            return None
        record = session.pop(self.legacy_prefix + state, None)
        if browser := session.get(BROWSER_SESSION_KEY):
            key = _state_key(browser, state)
            if (pending := _cache().get(key)) is not None and _cache().delete(key):  # only one taker deletes it
                record = pending
                _remove_from_index(browser, state)
        if not isinstance(record, dict) or not isinstance(record.get("data"), dict):
            return None
        if float(record.get("exp") or 0) < time.time():
            return None
        session.__dict__.setdefault("_sso_sign_ins_taken", {})[state] = record["data"]
        return record["data"]

    def get_state_data(self, session: SessionBase, state: str | None) -> dict | None:
        taken = session.__dict__.get("_sso_sign_ins_taken", {})
        if state in taken:
            return taken[state]
        browser = session.get(BROWSER_SESSION_KEY)
        record = _cache().get(_state_key(browser, state)) if browser and state else None
        record = record or session.get(self.legacy_prefix + str(state))
        if isinstance(record, dict) and float(record.get("exp") or 0) >= time.time():
            return record.get("data")
        return None

    def clear_state_data(self, session: SessionBase, state: str | None) -> None:
        if session.__dict__.get("_sso_sign_ins_taken", {}).pop(state, None) is not None:
            return  # taken already: its key is gone
        if not state:
            return
        session.pop(self.legacy_prefix + state, None)
        if browser := session.get(BROWSER_SESSION_KEY):
            _cache().delete(_state_key(browser, state))
            _remove_from_index(browser, state)

    def forget_browser_if_idle(self, session: SessionBase) -> None:
        """After a sign-in: drop the browser's value from the session unless other tabs' sign-ins pend."""
        browser = session.get(BROWSER_SESSION_KEY)
        if browser and not _pending_count(browser):
            del session[BROWSER_SESSION_KEY]
            _cache().delete(_index_key(browser))
