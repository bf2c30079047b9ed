"""One log line per request (django-structlog's), with a request id that travels to the IdP.

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "sso_client.request_log.RequestLogMiddleware",  # right after: its line has the final status
    ...
]
"""

from __future__ import annotations

import time

import structlog
from django.http import HttpRequest, HttpResponse
from django_structlog.middlewares import RequestMiddleware

from sso_client.logs import REQUEST_ID_HEADER, request_id_from
from sso_client.prometheus import client_address

#: django-structlog's logger: "request_failed" lines (from its exception hook) come from it too.
log = structlog.get_logger("django_structlog.middlewares.request")


class RequestLogMiddleware(RequestMiddleware):
    """django-structlog's request line, one per request, with a request id that travels.

    The request id is the caller's X-Request-ID when it looks sane, else a new one; it is bound
    to every line logged while the request is served, sent back in X-Request-ID and sent on with
    every call to the IdP (sso_client.logs). The line names the path only, never the query string
    (the callback's carries the authorization code), and neither headers nor the body.
    django-structlog's "request_started" line is not written: one line per request,
    "request_finished" (or "request_failed" with the traceback when a view raised).
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
        return f"{request.method} {request.path}"  # the path only: the callback's query carries a code

    @staticmethod
    def bind_user_id(request: HttpRequest) -> None:
        """The signed-in person's id, when the request looked them up anyway: never a session read of its own."""
        user = getattr(request, "_cached_user", None)  # django.contrib.auth's, once request.user was used
        if user is not None and user.is_authenticated:
            structlog.contextvars.bind_contextvars(user_id=user.pk)
