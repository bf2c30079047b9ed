"""Prometheus metrics of a site: requests by view (django-prometheus), token refreshes, back-channel logouts.

In a site's settings and URLs:

    INSTALLED_APPS += ["django_prometheus"]
    MIDDLEWARE = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first
        ...,
        "sso_client.prometheus.PrometheusAfterMiddleware",  # last
    ]
    METRICS_ALLOWED_IPS = ["10.0.0.0/8"]  # addresses or networks; loopback always
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN")  # or `Authorization: Bearer <token>`
    CLIENT_ADDRESS_FROM_PROXY = False  # True behind a TLS proxy that appends X-Forwarded-For
    path("-/metrics", include("sso_client.metrics"))  # and "/-/metrics" in SSO_CLIENT["PUBLIC_PATHS"]

Every label takes its values from a small fixed set: nothing a client sends, so no one can grow
the number of series. Under gunicorn each worker writes its counters to files in
PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py) and the view adds them up.
"""

from __future__ import annotations

import structlog
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, Counter

from sso_client.prometheus import exposition, metrics_allowed

log = structlog.get_logger(__name__)

REFRESH_OUTCOMES = ("refreshed", "refused", "idp_error", "idp_unreachable", "skipped_idp_unreachable")
BACKCHANNEL_OUTCOMES = ("accepted", "refused", "unavailable")

TOKEN_REFRESHES = Counter(
    "sso_client_token_refreshes",
    "Access token refreshes by outcome: refreshed; refused (the grant was revoked: the local session "
    "ended); idp_error (another OAuth error); idp_unreachable (no answer, or not OAuth); "
    "skipped_idp_unreachable (not tried: a call to the IdP timed out or could not connect a moment ago).",
    ["outcome"],
)
BACKCHANNEL_LOGOUTS = Counter(
    "sso_client_backchannel_logouts",
    "Back-channel logout tokens received from the IdP: accepted, refused (400), unavailable (503: the "
    "IdP's keys could not be fetched; the IdP retries).",
    ["outcome"],
)
for _outcome in REFRESH_OUTCOMES:  # every series from start-up, at zero
    TOKEN_REFRESHES.labels(outcome=_outcome)
for _outcome in BACKCHANNEL_OUTCOMES:
    BACKCHANNEL_LOGOUTS.labels(outcome=_outcome)


def token_refresh_counted(outcome: str) -> None:
    TOKEN_REFRESHES.labels(outcome=outcome).inc()
    log.info("token_refresh", outcome=outcome)


def backchannel_logout_counted(outcome: str) -> None:
    BACKCHANNEL_LOGOUTS.labels(outcome=outcome).inc()


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("Metrics are not open to this address.\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


urlpatterns = [path("", metrics_view, name="metrics")]
