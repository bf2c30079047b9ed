"""Is the session store (Redis) reachable? Asked at start-up and by the readiness endpoint."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from django.conf import settings

from sso_client.health import redis_cluster_problem


def redacted(url: str) -> str:
    """`url` with any password replaced, fit to print."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def redis_problem() -> str | None:
    """None when Redis answers; otherwise one line saying what is wrong and what to set."""
    url = settings.REDIS_URL
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
            client.ping()
            if problem := redis_cluster_problem(client):
                return problem
    except (redis.RedisError, ValueError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"Cannot reach Redis at {redacted(url)} ({reason}). Start Redis or set REDIS_URL to a running one."
    return None
