"""Nothing the app keeps in the cache needs pickle, and a cache that pickles is refused.

The sites keep their sessions and caches in a Redis every site shares; a pickle read from it
runs as code (issue 8). So a django-redis cache must use a JSON serializer (system check
sso_client.E005), and every value the app stores must survive a JSON round trip.
"""

from __future__ import annotations

import pickle
from unittest import mock

import pytest
from django.core.cache import cache
from django_redis.serializers.json import JSONSerializer

from sso_client.checks import check_no_pickle_in_redis
from sso_client.client import identity_provider
from tests.sso_client.conftest import METADATA, make_id_token
from tests.sso_client.test_callback import begin, finish, token_response


def django_redis(**options) -> dict:
    return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0", "OPTIONS": options}


@pytest.mark.parametrize("options", [{}, {"SERIALIZER": "django_redis.serializers.pickle.PickleSerializer"}])
def test_a_redis_cache_that_pickles_is_refused_naming_the_setting(settings, options):
    settings.CACHES = {"default": django_redis(), "sessions": django_redis(**options)}
    errors = check_no_pickle_in_redis(None)
    assert [error.id for error in errors] == ["sso_client.E005", "sso_client.E005"]
    assert errors[1].msg.startswith('CACHES["sessions"]["OPTIONS"]["SERIALIZER"] is pickle')
    assert "django_redis.serializers.json.JSONSerializer" in errors[1].hint


def test_a_redis_cache_with_json_is_accepted(settings):
    settings.CACHES = {
        "default": django_redis(SERIALIZER="django_redis.serializers.json.JSONSerializer"),
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},  # not Redis: not shared
    }
    assert check_no_pickle_in_redis(None) == []


def json_round_trip(value):
    serializer = JSONSerializer(options={})
    return serializer.loads(serializer.dumps(value))


@pytest.mark.django_db
@pytest.mark.usefixtures("idp_in_cache")
def test_a_session_and_its_keys_hold_only_json_before_and_after_signing_in(client, signing_key):
    request = begin(client)
    session = dict(client.session.items())  # what binds the pending sign-in to the browser
    assert json_round_trip(session) == session
    pending = cache.get(f"sso_client:signin:{session['_sso_sign_in']}:{request['state']}")
    assert set(pending["data"]) == {"redirect_uri", "code_verifier", "nonce", "next"}
    assert json_round_trip(pending) == pending
    index = cache.get(f"sso_client:signins:{session['_sso_sign_in']}")  # a sorted set on Redis, this list elsewhere
    assert json_round_trip(index) == index

    finish(client, request, token_response(make_id_token(signing_key, nonce=request["nonce"], sid="sid-1")))
    signed_in = dict(client.session.items())  # the user, the token's expiry and sid
    assert "_auth_user_id" in signed_in and "_sso_token" in signed_in
    assert json_round_trip(signed_in) == signed_in
    tokens = cache.get(f"sso_client:token:{client.session.session_key}")
    assert set(tokens) == {"access_token", "refresh_token", "expires_at", "sid"}
    assert json_round_trip(tokens) == tokens


def test_a_cached_document_json_cannot_read_is_fetched_again():
    """After the switch to JSON, a pickle left in Redis by the older version is not an error."""
    identity_provider.cache_clear()
    unreadable = ValueError("not JSON")  # what JSONSerializer.loads raises on a pickle
    with (
        mock.patch.object(cache, "get", side_effect=unreadable) as get,
        mock.patch("sso_client.client.fetch_json", return_value=METADATA) as fetch,
    ):
        assert identity_provider().load_server_metadata() == METADATA
    assert get.called and fetch.call_count == 1
    with pytest.raises(ValueError):  # and that is indeed what JSON makes of a pickle
        JSONSerializer(options={}).loads(pickle.dumps(METADATA))
