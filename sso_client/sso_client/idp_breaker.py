"""A breaker shared by the site's processes: after a call to the IdP timed out or could not connect,
stop calling it for a while, so that no page waits for an IdP known not to answer.

Without it, every page view of a session whose access token is due waits HTTP_TIMEOUT_SECONDS for
a slow IdP, again on every page view, and enough such people tie up every worker thread: even
public pages wait. With it, the first call that times out opens the breaker for all the site's
processes (a key in the site's cache, `sso_client:idp-unreachable:<issuer>`) for IDP_UNREACHABLE_SECONDS:

- a refresh is not tried: a token still valid is used as it is (the page is served at once), a
  token already expired gets the "identity provider unavailable" page at once;
- a sign-in is not started (the browser is not sent to an IdP known to be down): the same page.

Once that time is over, one request at a time tries the IdP again (the others go on as while
open), and the first answer closes the breaker; a call that times out again opens it again. The
key expires by itself besides. Only a call that timed out or could not connect opens it: an answer
from the IdP, whatever it says (a refused refresh signs the person out as before), closes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import requests
from django.core.cache import caches

from sso_client.conf import sso_settings


def breaker_key() -> str:
    """The breaker of this site's IdP: processes sharing the cache but set up with another issuer
    (a site being moved to another IdP, say) do not share it."""
    return f"sso_client:idp-unreachable:{sso_settings.ISSUER}"


def probe_key() -> str:
    """Taken by the one request that tries the IdP again once the breaker's time is over."""
    return f"sso_client:idp-probe:{sso_settings.ISSUER}"


def _cache():
    return caches[sso_settings.CACHE_ALIAS]


def is_unreachable(error: BaseException) -> bool:
    """Whether `error` says the IdP did not answer: a timeout, or no connection."""
    return isinstance(error, requests.Timeout | requests.ConnectionError | TimeoutError | ConnectionError)


def opened() -> None:
    """A call to the IdP timed out or could not connect: open the breaker, for every process."""
    seconds = sso_settings.IDP_UNREACHABLE_SECONDS
    # The key outlives the open time, so that once it is over one request at a time tries the IdP.
    _cache().set(breaker_key(), {"until": time.time() + seconds}, timeout=max(1, 3 * seconds))
    _cache().delete(probe_key())


def closed() -> None:
    """The IdP answered: close the breaker."""
    _cache().delete_many([breaker_key(), probe_key()])


def _until() -> float | None:
    state = _cache().get(breaker_key())
    if not isinstance(state, dict):
        return None
    try:
        return float(state.get("until"))
    except (TypeError, ValueError):
        return None


def is_open() -> bool:
    """Whether the IdP is known unreachable now (a call timed out less than IDP_UNREACHABLE_SECONDS ago)."""
    until = _until()
    return until is not None and time.time() < until


def may_call() -> bool:
    """Whether this request may call the IdP: always while the breaker is closed, never while it is
    open, and once its time is over, when no other request of the site is trying the IdP already."""
    until = _until()
    if until is None:
        return True
    if time.time() < until:
        return False
    return _cache().add(probe_key(), 1, timeout=2 * sso_settings.HTTP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """Around one call to the IdP: a timeout or no connection opens the breaker, an answer closes it."""
    from authlib.integrations.base_client import OAuthError

    try:
        yield
    except OAuthError:
        closed()  # the IdP answered (an OAuth error): it is reachable
        raise
    except Exception as error:
        if is_unreachable(error):
            opened()
        raise
    closed()
