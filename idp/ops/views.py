"""`/-/metrics` of the IdP: every worker's counters, and the back-channel logouts' (the retry queue,
the deliveries not made yet per application), read at scrape.

Who may read it is the rule of every process of the product (sso_client.prometheus): loopback,
METRICS_ALLOWED_IPS, or `Authorization: Bearer <METRICS_TOKEN>`; behind the TLS proxy
(DJANGO_BEHIND_TLS_PROXY) judged by the last X-Forwarded-For entry, the address the proxy saw, so
a proxy on loopback does not open the metrics to everyone it forwards.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from ops.backchannel import RetryQueueCollector, UndeliveredCollector
from provider.backchannel import QUEUE_NAME
from sso_client.prometheus import exposition, metrics_allowed


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("Metrics are not open to this address.\n", status=403, content_type="text/plain")
    return HttpResponse(
        exposition(RetryQueueCollector(QUEUE_NAME), UndeliveredCollector()), content_type=CONTENT_TYPE_LATEST
    )
