"""The IdP's request metrics and request log lines, as middleware.

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first
    "ops.middleware.RequestLogMiddleware",  # second: its line has the final status
    ...,
    "ops.middleware.PrometheusAfterMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as axes asks
]
"""

from __future__ import annotations

import time

import structlog
from django.http import HttpRequest, HttpResponse
from django_prometheus.middleware import PrometheusAfterMiddleware as ToolkitPrometheusAfterMiddleware
from django_structlog.middlewares import RequestMiddleware

from ops.logs import REQUEST_ID_HEADER, request_id_from
from provider.lockout import client_address

#: django-structlog's logger: "request_failed" lines (from its exception hook) come from it too.
log = structlog.get_logger("django_structlog.middlewares.request")

#: The methods HTTP defines; any other is counted as "<invalid method>", as django-prometheus does.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})


class PrometheusAfterMiddleware(ToolkitPrometheusAfterMiddleware):
    """django-prometheus's, with the `method` label of every metric kept to the methods HTTP defines.

    django-prometheus labels its latency histogram with the method as sent, and gunicorn passes any
    method of up to 20 capitals: one client could add series without end. Place it after every
    middleware but axes, so that it sees the 429 axes answers a locked-out sign-in with.
    """

    def label_metric(self, metric, request, response=None, **labels):
        if "method" in labels and labels["method"] not in HTTP_METHODS:
            labels["method"] = "<invalid method>"
        return super().label_metric(metric, request, response, **labels)


class RequestLogMiddleware(RequestMiddleware):
    """django-structlog's request line, one per request, with a request id that travels.

    The request id is the caller's X-Request-ID when it looks sane, else a new one; it is bound
    to every line logged while the request is served and sent back in X-Request-ID. The line
    names the path only, never the query string (authorization responses and a site's callback
    carry codes there), and neither headers nor the body. django-structlog's "request_started"
    line is not written: one line per request, "request_finished" (or "request_failed" with the
    traceback when a view raised).
    """

    sync_capable = True
    async_capable = False

    def prepare(self, request: HttpRequest) -> None:
        structlog.contextvars.clear_contextvars()
        request.request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_log_started = time.monotonic()
        structlog.contextvars.bind_contextvars(request_id=request.request_id, client=client_address(request))

    def handle_response(self, request: HttpRequest, response: HttpResponse) -> None:
        """django-structlog's, without its wrapper of streamed responses.

        That wrapper logs two more lines per streamed response, and replaces a FileResponse's
        file with a generator: whitenoise's static files would lose gunicorn's sendfile.
        """
        response[REQUEST_ID_HEADER] = request.request_id
        if hasattr(request, "_raised_exception"):  # logged as "request_failed" when the view raised
            del request._raised_exception
        else:
            self.bind_user_id(request)
            elapsed = time.monotonic() - request.request_log_started
            log.log(
                self._log_level_for_status_code(response.status_code),
                "request_finished",
                code=response.status_code,
                request=self.format_request(request),
                duration_ms=round(elapsed * 1000, 1),
            )
        structlog.contextvars.clear_contextvars()

    @staticmethod
    def format_request(request: HttpRequest) -> str:
        return f"{request.method} {request.path}"  # the path only: a query string may carry a code

    @staticmethod
    def bind_user_id(request: HttpRequest) -> None:
        """The signed-in person's id, when the request looked them up anyway: never a session read of its own."""
        user = getattr(request, "_cached_user", None)  # django.contrib.auth's, once request.user was used
        if user is not None and user.is_authenticated:
            structlog.contextvars.bind_contextvars(user_id=user.pk)
