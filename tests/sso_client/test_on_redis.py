"""The tokens' keys and the pending sign-ins on a real Redis (django-redis, JSON), as the sites keep them.

The other unit tests run on Django's in-memory cache; here a redis-server of the tests' own holds
the sessions and the cache, so that the sorted set of a browser's pending sign-ins, the keys'
lifetimes and their JSON are Redis's own.
"""

from __future__ import annotations

import json

import pytest
import redis

from devstack.redis_server import RedisServer
from sso_client.client import identity_provider
from sso_client.conf import sso_settings
from sso_client.sign_in_states import BROWSER_SESSION_KEY, PENDING_SIGN_INS_KEPT
from tests.sso_client.conftest import METADATA, make_id_token
from tests.sso_client.test_callback import begin, finish, token_response
from tests.sso_client.test_races import complete, start_in_tabs, write_spanning_a_refresh

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def raw(redis_url, settings, signing_key):
    """The site's cache and sessions on Redis (with the IdP's metadata in it); a plain client to look."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "site",
            "OPTIONS": {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
        }
    }
    from django.core.cache import cache

    identity_provider.cache_clear()
    cache.clear()
    cache.set(f"sso_client:metadata:{sso_settings.metadata_url}", METADATA)
    cache.set(f"sso_client:jwks:{METADATA['jwks_uri']}", {"keys": [signing_key.as_dict(private=False)]})
    client = redis.Redis.from_url(redis_url)
    yield client
    cache.clear()
    client.close()


def test_one_browser_keeps_its_newest_pending_sign_ins_each_under_a_key_that_lives_minutes(client, raw, signing_key):
    started = [begin(client, f"/page/{n}/") for n in range(PENDING_SIGN_INS_KEPT + 3)]
    browser = client.session[BROWSER_SESSION_KEY]
    [index] = raw.keys(f"site:1:sso_client:signins:{browser}")
    assert raw.type(index) == b"zset" and raw.zcard(index) == PENDING_SIGN_INS_KEPT
    assert {member.decode() for member in raw.zrange(index, 0, -1)} == {
        request["state"] for request in started[-PENDING_SIGN_INS_KEPT:]
    }
    keys = raw.keys(f"site:1:sso_client:signin:{browser}:*")
    assert len(keys) == PENDING_SIGN_INS_KEPT
    for key in [*keys, index]:
        assert 0 < raw.ttl(key) <= sso_settings.SIGN_IN_STATE_SECONDS
    record = json.loads(raw.get(keys[0]))  # JSON, never pickle
    assert set(record) == {"data", "exp"}

    oldest, fetch = finish(client, started[0], token_response(None))
    assert oldest.status_code == 400 and not fetch.called
    newest = started[-1]
    response = complete(client, signing_key, newest)
    assert response.status_code == 302 and response["Location"] == f"/page/{PENDING_SIGN_INS_KEPT + 2}/"
    assert raw.zcard(index) == PENDING_SIGN_INS_KEPT - 1, "the one used is gone, the others' tabs still pend"


def test_tabs_started_at_once_all_complete_on_redis(client, raw, signing_key):
    begin(client, "/earlier/")
    started = start_in_tabs(client, [f"/tab/{n}/" for n in range(4)])
    for n in (3, 1, 0, 2):
        response = complete(client, signing_key, started[n])
        assert response.status_code == 302 and response["Location"] == f"/tab/{n}/", response.content.decode()
    # The last sign-in leaves no pending one behind but "earlier": the browser's value stays for it.
    assert BROWSER_SESSION_KEY in client.session


def test_the_tokens_key_is_json_lives_as_long_as_the_session_and_goes_with_it(client, raw, signing_key):
    request = begin(client)
    id_token = make_id_token(signing_key, nonce=request["nonce"], sid="sid-r")
    assert finish(client, request, token_response(id_token))[0].status_code == 302
    session_key = client.session.session_key
    [session] = raw.keys(f"site:1:django.contrib.sessions.cache{session_key}")
    [tokens] = raw.keys(f"site:1:sso_client:token:{session_key}")
    assert set(json.loads(raw.get(tokens))) == {"access_token", "refresh_token", "expires_at", "sid"}
    assert set(json.loads(raw.get(session))) == {"_auth_user_id", "_auth_user_hash", "_sso_token"}
    assert abs(raw.ttl(tokens) - raw.ttl(session)) <= 1

    page = client.get("/sso/logout/")
    client.post("/sso/logout/", {"csrfmiddlewaretoken": page.context["csrf_token"]})
    assert not raw.exists(session) and not raw.exists(tokens)


def test_a_session_write_spanning_a_refresh_on_redis_signs_nobody_out(
    client, raw, signing_key, settings, held_while_writing
):
    write_spanning_a_refresh(client, signing_key, settings, held_while_writing)
