"""Prometheus plumbing of every Django process of the product, the IdP's and the sites' alike.

`PrometheusAfterMiddleware` (django-prometheus's, with bounded labels), who may read `/-/metrics`
(loopback, METRICS_ALLOWED_IPS, `Authorization: Bearer <METRICS_TOKEN>`), the address a request
came from (CLIENT_ADDRESS_FROM_PROXY: behind a TLS proxy, the last X-Forwarded-For entry), and
the exposition that adds up every gunicorn worker's counters (PROMETHEUS_MULTIPROC_DIR, set by
gunicorn.conf.py). A site's own counters and view are in `sso_client.metrics`; the IdP's in `ops`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from functools import lru_cache

from django.conf import settings
from django.core import checks
from django.http import HttpRequest
from django_prometheus.middleware import PrometheusAfterMiddleware as ToolkitPrometheusAfterMiddleware
from django_prometheus.utils import Time, TimeSince
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

#: The methods HTTP defines; any other is counted as "<invalid method>", as django-prometheus does.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})


class PrometheusAfterMiddleware(ToolkitPrometheusAfterMiddleware):
    """django-prometheus's, with the `method` label of every metric kept to the methods HTTP defines.

    django-prometheus labels its latency histogram with the method as sent, and gunicorn passes any
    method of up to 20 capitals: one client could add series without end. Last in MIDDLEWARE.
    """

    def label_metric(self, metric, request, response=None, **labels):
        if "method" in labels and labels["method"] not in HTTP_METHODS:
            labels["method"] = "<invalid method>"
        return super().label_metric(metric, request, response, **labels)

    # django-prometheus counts each request in thirteen series (each an mmap write in gunicorn's
    # multiprocess mode), most of them sums of the others. Kept: requests by view, transport and
    # method; responses by status, view and method; latency by view and method; exceptions.
    # Dropped: requests by method, by transport and as "AJAX", responses by status alone, by
    # charset, streaming, by template, and the request and response body size histograms.
    def process_request(self, request):
        request.prometheus_after_middleware_event = Time()

    def process_template_response(self, request, response):
        return response

    def process_response(self, request, response):
        method, view = self._method(request), self._get_view_name(request)
        status = str(response.status_code)
        self.label_metric(
            self.metrics.responses_by_status_view_method, request, response, status=status, view=view, method=method
        ).inc()
        if hasattr(request, "prometheus_after_middleware_event"):
            self.label_metric(
                self.metrics.requests_latency_by_view_method, request, response, view=view, method=method
            ).observe(TimeSince(request.prometheus_after_middleware_event))
        else:
            self.label_metric(self.metrics.requests_unknown_latency, request, response).inc()
        return response


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


def exposition(*extra_collectors) -> bytes:
    """Every metric in Prometheus' text format, all gunicorn workers' added up, then `extra_collectors`'
    (metrics read at scrape time, such as the IdP's retry queue)."""
    # prometheus_client's own variable, which gunicorn.conf.py sets: without it (manage.py, unit
    # tests) this process's registry is the whole story.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scraped = CollectorRegistry()
    for collector in extra_collectors:
        scraped.register(collector)
    return generate_latest(registry) + (generate_latest(scraped) if extra_collectors else b"")


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
