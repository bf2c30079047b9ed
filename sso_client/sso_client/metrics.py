"""Prometheus metrics of a site: requests by view (django-prometheus), token refreshes, back-channel logouts.

In a site's settings and URLs:

    INSTALLED_APPS += ["django_prometheus"]
    MIDDLEWARE = [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first
        ...,
        "sso_client.metrics.PrometheusAfterMiddleware",  # last
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

import hmac
import ipaddress
import os
from functools import lru_cache

import structlog
from django.conf import settings
from django.core import checks
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django_prometheus.middleware import PrometheusAfterMiddleware as ToolkitPrometheusAfterMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest, multiprocess

log = structlog.get_logger(__name__)

REFRESH_OUTCOMES = ("refreshed", "refused", "idp_error", "idp_unreachable")
BACKCHANNEL_OUTCOMES = ("accepted", "refused", "unavailable")
#: The methods HTTP defines; any other is counted as "<invalid method>", as django-prometheus does.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})

TOKEN_REFRESHES = Counter(
    "sso_client_token_refreshes",
    "Access token refreshes by outcome: refreshed; refused (the grant was revoked: the local session "
    "ended); idp_error (another OAuth error); idp_unreachable (no answer, or not OAuth).",
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


class PrometheusAfterMiddleware(ToolkitPrometheusAfterMiddleware):
    """django-prometheus's, with the `method` label of every metric kept to the methods HTTP defines.

    django-prometheus labels its latency histogram with the method as sent, and gunicorn passes any
    method of up to 20 capitals: one client could add series without end. Last in MIDDLEWARE.
    """

    def label_metric(self, metric, request, response=None, **labels):
        if "method" in labels and labels["method"] not in HTTP_METHODS:
            labels["method"] = "<invalid method>"
        return super().label_metric(metric, request, response, **labels)


# --- who may read the metrics ----------------------------------------------------------------------
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(request: HttpRequest) -> str:
    """The address a request came from.

    Behind a TLS proxy (CLIENT_ADDRESS_FROM_PROXY, from DJANGO_BEHIND_TLS_PROXY) every connection
    comes from the proxy, often on loopback: the client's address is the last X-Forwarded-For
    entry, the one the proxy appended (entries before it were sent by the client and could say
    anything). This trusts the header as X-Forwarded-Proto is trusted: the site must be reachable
    through the proxy only. The IdP's provider.lockout.client_address is the same rule.
    """
    appended = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    if getattr(settings, "CLIENT_ADDRESS_FROM_PROXY", False) and appended:
        return appended
    return request.META.get("REMOTE_ADDR", "")


def parsed_address(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


@lru_cache(maxsize=8)
def allowed_networks(entries: tuple[str, ...]) -> tuple:
    """METRICS_ALLOWED_IPS as networks; an entry that is neither is skipped (check sso_client.E101 names it)."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return tuple(networks)


def bearer_token_matches(request: HttpRequest, token: str | None) -> bool:
    if not token:
        return False
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_allowed(request: HttpRequest) -> bool:
    """Loopback, an address or network of METRICS_ALLOWED_IPS, or `Authorization: Bearer <METRICS_TOKEN>`."""
    if bearer_token_matches(request, getattr(settings, "METRICS_TOKEN", None)):
        return True
    address = parsed_address(client_address(request))
    if address is None:
        return False
    entries = tuple(getattr(settings, "METRICS_ALLOWED_IPS", ()))
    return address.is_loopback or any(address in network for network in allowed_networks(entries))


# --- the view ----------------------------------------------------------------------------------------
def exposition() -> bytes:
    """Every metric in Prometheus' text format, all gunicorn workers' added up."""
    # prometheus_client's own variable, which gunicorn.conf.py sets: without it (manage.py, unit
    # tests) this process's registry is the whole story.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("Metrics are not open to this address.\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


urlpatterns = [path("", metrics_view, name="metrics")]


@checks.register()
def check_metrics_allowed_ips(app_configs, **kwargs) -> list[checks.CheckMessage]:
    messages = []
    for entry in getattr(settings, "METRICS_ALLOWED_IPS", []):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            messages.append(
                checks.Error(
                    f"METRICS_ALLOWED_IPS holds {entry!r}, which is neither an address nor a network.",
                    hint="Separate addresses (10.0.0.5) and networks (10.0.0.0/8) with commas.",
                    id="sso_client.E101",
                )
            )
    return messages
