"""The refresh lock of a session is its holder's: released only by the request that took it.

A request whose lock expired while it was still refreshing (a slow IdP) must not delete the lock
another request of the session took meanwhile: a third request would then refresh at the same
time as the second, and send the refresh token the second is spending.
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache

from sso_client.client import IdentityProviderApp
from sso_client.tokens import Freshness, keep_token_fresh
from tests.sso_client import test_on_redis, test_tokens
from tests.sso_client.test_tokens import refreshed

#: Fixtures of other modules, used here too.
request_with_token = test_tokens.request_with_token
raw, redis_url = test_on_redis.raw, test_on_redis.redis_url

pytestmark = [pytest.mark.django_db]


def lock_of(request) -> str:
    return f"sso_client:refresh-lock:{request.session.session_key}"


def refresh_outliving_its_lock(request, taken_meanwhile: list):
    """A refresh during which the lock expires and another request of the session takes it."""

    def slow_refresh(**kwargs):
        taken_meanwhile.append(cache.get(lock_of(request)))
        cache.delete(lock_of(request))  # expired, as a lock does while the IdP is slow
        assert cache.add(lock_of(request), "another-request", timeout=30)
        return refreshed()

    return mock.patch.object(IdentityProviderApp, "fetch_access_token", side_effect=slow_refresh)


def check_the_lock_is_its_holders(request_with_token):
    request = request_with_token(expires_in=10)
    held = []
    with refresh_outliving_its_lock(request, held):
        assert keep_token_fresh(request) is Freshness.FRESH
    assert cache.get(lock_of(request)) == "another-request", "the other request's lock was left alone"
    assert held[0] not in (None, "1", "another-request"), "the lock holds its owner's own value"

    # Each holding is a value of its own; a lock that is still its holder's is released by it.
    again = request_with_token(expires_in=10)
    seen = []
    with mock.patch.object(
        IdentityProviderApp,
        "fetch_access_token",
        side_effect=lambda **kw: seen.append(cache.get(lock_of(again))) or refreshed(),
    ):
        assert keep_token_fresh(again) is Freshness.FRESH
    assert seen[0] and seen[0] != held[0]
    assert cache.get(lock_of(again)) is None, "released"


@pytest.mark.usefixtures("idp_in_cache")
def test_a_request_releases_only_its_own_refresh_lock(request_with_token):
    check_the_lock_is_its_holders(request_with_token)


def test_a_request_releases_only_its_own_refresh_lock_on_redis(raw, request_with_token):
    check_the_lock_is_its_holders(request_with_token)
    # On Redis the lock is a plain string key with a lifetime, compared and deleted in one step.
    keys = raw.keys("site:*:sso_client:refresh-lock:*")
    assert len(keys) == 1 and 0 < raw.ttl(keys[0]) <= 30
