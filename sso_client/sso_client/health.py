"""Is the session store reachable? Checked when a site starts, and by its health endpoints.

Route them with `path("-/health/", include("sso_client.health"))`: `live/` answers while the
process runs, `ready/` only while the session store (Redis) and the database answer too.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache


def session_store_problem() -> str | None:
    """None when the cache that holds sessions answers; otherwise one line saying what is wrong."""
    alias = getattr(settings, "SESSION_CACHE_ALIAS", "default")
    try:
        caches[alias].get("sso_client:ping")
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        host = str(settings.CACHES[alias].get("LOCATION", alias)).rsplit("@", 1)[-1]  # no password
        return f"Cannot reach the session store (Redis at {host}): {reason}."
    return None


def database_unreachable(alias: str = "default") -> str | None:
    """None when the database answers a query now; otherwise one line saying where it is and why not.

    Asked the way requests ask it, through the process's own connection (PostgreSQL: one from
    the pool, which replaces connections the server dropped), so that ready means able to serve.
    """
    from django.db import connections

    from sso_client.database import POSTGRESQL, ask_directly, describe

    connection = connections[alias]
    try:
        if connection.settings_dict["ENGINE"] == POSTGRESQL:
            ask_directly(connection)  # a server that is down is said at once, not after the pool's wait
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"Cannot reach the database ({describe(connection.settings_dict)}): {reason}."
    return None


def redis_cluster_problem(client) -> str | None:
    """One line when `client` (a redis-py client) is connected to a node of a Redis Cluster.

    Cluster is not supported: a session save reads two keys at once, the logout index and the
    back-channel retry queue (RQ) use several keys per operation, and in a cluster such keys live
    in different slots (CROSSSLOT). One Redis server, with a replica and Sentinel for failover, is
    what the product runs on (docs/deploy.md).
    """
    import redis

    try:
        enabled = client.info("cluster").get("cluster_enabled")
    except redis.ResponseError:  # a server or proxy without INFO cluster: no cluster to speak of
        return None
    if not enabled:
        return None
    return (
        "REDIS_URL names a node of a Redis Cluster, which is not supported (keys used together would "
        "live in different slots): give it one Redis server (with a replica and Sentinel for failover)."
    )


def wsgi_application():
    """Django's WSGI application, or exit with one readable line when the site cannot serve.

    Exit code 3 is also gunicorn's "cannot boot"; with gunicorn's preload_app this runs once, in
    the master, before any worker starts.
    """
    from django.core.wsgi import get_wsgi_application

    try:
        application = get_wsgi_application()
    except ImproperlyConfigured as error:
        sys.exit(_refuse(str(error)))
    if problem := session_store_start_problem():
        sys.exit(_refuse(problem))
    from sso_client.database import database_problem

    if problem := database_problem():
        sys.exit(_refuse(problem))
    return application


def session_store_start_problem() -> str | None:
    """Before serving: the session store's Redis answers, is not a cluster node, and, behind
    Sentinels, the Sentinels answer and know the service. One line naming the setting, or None."""
    alias = getattr(settings, "SESSION_CACHE_ALIAS", "default")
    cache = settings.CACHES.get(alias, {})
    if not str(cache.get("BACKEND", "")).startswith("django_redis."):
        # Not django-redis: nothing more to ask than whether the cache answers.
        return session_store_problem()
    from sso_client.redis_deployment import RedisDeployment

    return RedisDeployment.from_cache(cache).problem()


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 3


@never_cache
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the session store and the database both answer; else 503 naming what does not."""
    problems = {}
    if problem := session_store_problem():
        problems["redis"] = problem
    if problem := database_unreachable():
        problems["database"] = problem
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})


urlpatterns = [path("live/", live, name="health-live"), path("ready/", ready, name="health-ready")]
