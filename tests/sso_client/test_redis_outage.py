"""Redis unreachable or failing over: a readable 503 and the person's session left alone; the
Redis settings (one server, or Sentinels) read with clear refusals."""

from __future__ import annotations

import socket

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django_redis.exceptions import ConnectionInterrupted
from redis.sentinel import MasterNotFoundError

from sso_client.redis_deployment import RedisDeployment, is_redis_outage


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    """The site's sessions cache points at a Redis that is not there."""
    settings.CACHES = {"default": RedisDeployment(f"redis://127.0.0.1:{closed_port()}/0").cache(key_prefix="t")}


def test_a_page_answers_a_readable_503_while_redis_is_unreachable(redis_down):
    browser = Client(raise_request_exception=False)
    browser.cookies["sessionid"] = "a-signed-in-persons-session"
    response = browser.get("/", headers={"accept": "text/html"})
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.content.decode()
    assert int(response["Retry-After"]) > 0
    # The person's cookie is left alone: once Redis is back they are still signed in.
    assert "sessionid" not in response.cookies


def test_the_sign_in_pages_answer_503_too(redis_down):
    response = Client(raise_request_exception=False).get("/sso/login/?next=/")
    assert response.status_code == 503


def wrapped(cause: BaseException) -> ConnectionInterrupted:
    """What django-redis raises: its own error, caused by redis-py's."""
    try:
        raise ConnectionInterrupted(connection=None) from cause
    except ConnectionInterrupted as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        wrapped(redis.ConnectionError("Connection refused")),
        wrapped(redis.TimeoutError("Timeout reading from socket")),
        wrapped(TimeoutError("timed out")),
        wrapped(redis.ReadOnlyError("You can't write against a read only replica.")),
        MasterNotFoundError("No master found for 'mymaster'"),
        redis.ResponseError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
    ],
    ids=["refused", "timeout", "socket-timeout", "demoted-primary", "no-primary-yet", "replica-without-primary"],
)
def test_redis_outages_are_recognised(error):
    assert is_redis_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")),
        ValueError("x"),
        None,
    ],
    ids=["a-wrong-command", "not-redis", "nothing"],
)
def test_other_errors_are_not_outages(error):
    assert not is_redis_outage(error)


def test_one_server_from_the_environment():
    deployment = RedisDeployment.from_environ({"REDIS_URL": "redis://:secret@redis.internal:6380/2"})
    assert deployment.sentinels == () and deployment.service is None
    assert deployment.describe() == "redis://:***@redis.internal:6380/2"


def test_a_sentinel_deployment_from_the_environment():
    deployment = RedisDeployment.from_environ(
        {
            "REDIS_URL": "redis://:secret@mymaster/0",
            "REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26379,[::1]:26380",
            "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
        }
    )
    assert deployment.service == "mymaster"
    assert deployment.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert "secret" not in deployment.describe()
    # The same deployment is read back from the cache settings it makes (a site's start-up check).
    assert RedisDeployment.from_cache(deployment.cache(key_prefix="site")) == deployment


@pytest.mark.parametrize("entry", ["10.0.0.1", "10.0.0.1:port", ":26379", "10.0.0.1:70000"])
def test_a_malformed_sentinel_list_is_refused_naming_the_setting(entry):
    with pytest.raises(ImproperlyConfigured, match="REDIS_SENTINELS") as refused:
        RedisDeployment.from_environ({"REDIS_URL": "redis://mymaster/0", "REDIS_SENTINELS": entry})
    assert repr(entry) in str(refused.value)


def test_sentinels_without_a_service_name_are_refused_naming_redis_url():
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        RedisDeployment.from_environ({"REDIS_URL": "redis:///0", "REDIS_SENTINELS": "10.0.0.1:26379"})
