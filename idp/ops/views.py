"""`/-/metrics`: Prometheus metrics, for loopback, METRICS_ALLOWED_IPS and the METRICS_TOKEN bearer only.

The same rule as sso_client.metrics, kept here so the IdP needs no client app. The caller's
address is the one the sign-in lock-out judges (provider.lockout.client_address): behind the TLS
proxy (DJANGO_BEHIND_TLS_PROXY) the last X-Forwarded-For entry, the address the proxy saw, not
the proxy's own. So a proxy on loopback does not open the metrics to everyone it forwards.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from ops.backchannel import RetryQueueCollector
from provider.backchannel import QUEUE_NAME
from provider.lockout import client_address

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    """METRICS_ALLOWED_IPS as networks; an entry that is neither is skipped (check ops.E001 names it)."""
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
    if bearer_token_matches(request, settings.METRICS_TOKEN):
        return True
    address = parsed_address(client_address(request))
    if address is None:
        return False
    return address.is_loopback or any(
        address in network for network in allowed_networks(tuple(settings.METRICS_ALLOWED_IPS))
    )


def exposition() -> bytes:
    """Every metric in Prometheus' text format: all gunicorn workers' counters, and the retry queue's."""
    # prometheus_client's own variable, which gunicorn.conf.py sets: without it (manage.py, unit
    # tests) this process's registry is the whole story.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scraped = CollectorRegistry()
    scraped.register(RetryQueueCollector(QUEUE_NAME))
    return generate_latest(registry) + generate_latest(scraped)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("Metrics are not open to this address.\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
