"""The IdP's Redis (one server, or a Sentinel deployment), as the settings name it."""

from __future__ import annotations

from django.conf import settings

from sso_client.redis_deployment import RedisDeployment


def redis_deployment() -> RedisDeployment:
    """REDIS_URL, REDIS_SENTINELS and REDIS_SENTINEL_PASSWORD, read from the settings on each call."""
    return RedisDeployment(
        url=settings.REDIS_URL,
        sentinels=tuple(tuple(sentinel) for sentinel in getattr(settings, "REDIS_SENTINELS", ())),
        sentinel_password=getattr(settings, "REDIS_SENTINEL_PASSWORD", None),
    )


def redis_problem() -> str | None:
    """None when the Redis primary answers; otherwise one line saying what is wrong and what to set."""
    return redis_deployment().problem()
