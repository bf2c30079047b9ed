"""Is the session store reachable? Checked when a site starts, and by its health endpoints.

Route them with `path("-/health/", include("sso_client.health"))`: `live/` answers while the
process runs, `ready/` only while the session store (Redis) answers too.
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
    if problem := session_store_problem():
        sys.exit(_refuse(f"{problem} Start Redis or set REDIS_URL to a running one."))
    from sso_client.database import database_problem

    if problem := database_problem():
        sys.exit(_refuse(problem))
    return application


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 3


@never_cache
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    if problem := session_store_problem():
        return JsonResponse({"status": "unavailable", "problems": {"redis": problem}}, status=503)
    return JsonResponse({"status": "ok"})


urlpatterns = [path("live/", live, name="health-live"), path("ready/", ready, name="health-ready")]
