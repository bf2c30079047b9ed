"""Structured logs: every record one JSON line (or a readable one), carrying the request's id.

In a site's settings:

    LOG_FORMAT = os.environ.get("LOG_FORMAT") or ("console" if DEBUG else "json")
    LOGGING = logging_settings(LOG_FORMAT, quiet=["authlib"])

and sso_client.request_log.RequestLogMiddleware in MIDDLEWARE, which binds the request id and
writes one line per request. Every record goes through one formatter, structlog's and the
standard library's alike (Django's, gunicorn's, this app's `logging` calls): JSON in production,
structlog's ConsoleRenderer with LOG_FORMAT=console. The request id also goes, as X-Request-ID,
with every call this app makes to the IdP, so the IdP's log line of that call carries it too.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable

import structlog
from django.core.exceptions import ImproperlyConfigured

LOG_FORMATS = ("json", "console")
REQUEST_ID_HEADER = "X-Request-ID"
#: A caller's request id is taken only when it looks like one; anything else gets a new id.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: What every line says besides its message: the request's bound values, logger, level, time.
SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_structlog() -> None:
    """structlog's loggers hand their events to the standard library's handlers (and formatter)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def renderers(log_format: str) -> list:
    if log_format == "console":
        # Plain tracebacks: a "pretty" one may print local variables, and they may hold secrets.
        console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
        return [structlog.stdlib.ProcessorFormatter.remove_processors_meta, console]
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,  # the traceback as text, never its local variables
        structlog.processors.JSONRenderer(),
    ]


def logging_settings(log_format: str, *, quiet: Iterable[str] = ()) -> dict:
    """LOGGING: every record to stderr through structlog's ProcessorFormatter; `quiet` loggers at WARNING."""
    if log_format not in LOG_FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be json or console, not {log_format!r}.")
    configure_structlog()
    logging.captureWarnings(True)  # a library's warning is a log line too, not loose text on stderr
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": SHARED_PROCESSORS,
                "processors": renderers(log_format),
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": "INFO"},
        "loggers": {
            **{name: {"level": "WARNING"} for name in quiet},
            "django.request": {"level": "ERROR"},  # 4xx answers are in the request line already
            # gunicorn's own lines (start-up, workers, signals) through the same formatter. With
            # preload_app the application, and so this configuration, loads before gunicorn says a
            # word; gunicorn's access log is off (gunicorn.conf.py): the request line replaces it.
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it looks sane (up to 64 of A-Z a-z 0-9 . _ -), else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def request_id_headers() -> dict[str, str]:
    """X-Request-ID for a call made while serving a request, so that the IdP logs the same id."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


def send_request_id(session) -> None:
    """Authlib's `compliance_fix` hook, run on each client it builds (one per call to the IdP).

    Authlib builds a new requests session for every token call (code exchange, refresh), in the
    request being served: the header set here goes with that call.
    """
    session.headers.update(request_id_headers())
