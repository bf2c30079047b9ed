"""Discovery and JWKS come from the Django cache: one fetch serves every page and process."""

from unittest import mock

import pytest
from django.core.cache import cache

from sso_client.client import IdentityProviderUnavailable, identity_provider
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


def test_an_unreachable_idp_is_reported_as_such():
    cache.clear()
    identity_provider.cache_clear()
    with (
        mock.patch("sso_client.client.requests.get", side_effect=OSError("refused")),
        pytest.raises(IdentityProviderUnavailable),
    ):
        identity_provider().load_server_metadata()
