"""Discovery and JWKS come from the Django cache: one fetch serves every page and process."""

import time
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core.cache import cache

from sso_client.client import JWKS_REFETCH_SECONDS, IdentityProviderUnavailable, identity_provider
from tests.sso_client.conftest import METADATA


def test_metadata_is_fetched_once_then_served_from_the_cache():
    cache.clear()
    identity_provider.cache_clear()
    with mock.patch("sso_client.client.fetch_json", return_value=METADATA) as fetch:
        for _ in range(3):
            assert identity_provider().load_server_metadata()["issuer"] == METADATA["issuer"]
    assert fetch.call_count == 1


def test_an_unknown_signing_key_forces_one_fresh_jwks_fetch():
    cache.clear()
    identity_provider.cache_clear()
    with mock.patch("sso_client.client.fetch_json", side_effect=[METADATA, {"keys": ["old"]}, {"keys": ["new"]}]):
        idp = identity_provider()
        assert idp.fetch_jwk_set() == {"keys": ["old"]}
        assert idp.fetch_jwk_set() == {"keys": ["old"]}
        assert idp.fetch_jwk_set(force=True) == {"keys": ["new"]}
        assert idp.fetch_jwk_set() == {"keys": ["new"]}


def test_forced_jwks_fetches_are_one_per_interval_for_all_processes_together():
    """Anyone can post tokens naming made-up keys: each would ask for a forced fetch."""
    cache.clear()
    identity_provider.cache_clear()
    answers = iter([{"keys": ["first"]}, {"keys": ["second"]}, {"keys": ["third"]}])

    def fetch_json(url):
        return METADATA if url.endswith("/openid-configuration") else next(answers)

    with mock.patch("sso_client.client.fetch_json", side_effect=fetch_json) as fetch:
        assert identity_provider().fetch_jwk_set() == {"keys": ["first"]}
        for _ in range(20):
            assert identity_provider().fetch_jwk_set(force=True) == {"keys": ["second"]}
            identity_provider.cache_clear()  # the next call as another process would make it: one cache
        assert fetch.call_count == 3, "discovery, the JWKS, one forced fetch: not one per unknown key"

        # Once the interval is over, a key not seen yet is fetched again.
        later = time.time() + JWKS_REFETCH_SECONDS + 1
        with mock.patch("django.core.cache.backends.locmem.time", SimpleNamespace(time=lambda: later)):
            assert identity_provider().fetch_jwk_set(force=True) == {"keys": ["third"]}
        assert fetch.call_count == 4


def test_an_unreachable_idp_is_reported_as_such():
    cache.clear()
    identity_provider.cache_clear()
    with (
        mock.patch("sso_client.client.requests.get", side_effect=OSError("refused")),
        pytest.raises(IdentityProviderUnavailable),
    ):
        identity_provider().load_server_metadata()
