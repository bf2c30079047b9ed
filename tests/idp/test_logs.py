"""The IdP's request log (sso_client.logs and its middleware): one JSON line per request, with a request id."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory

from sso_client.logs import logging_settings, request_id_from, request_id_headers
from sso_client.request_log import RequestLogMiddleware


def request_lines(log_lines) -> list[dict]:
    return [line for line in log_lines() if line["logger"] == "django_structlog.middlewares.request"]


@pytest.mark.parametrize("sent", ["abc-123", "A.b_C-9", "x" * 64])
def test_a_sane_request_id_is_kept(sent):
    assert request_id_from(sent) == sent


@pytest.mark.parametrize("sent", [None, "", "x" * 65, "a b", "a\nb", "<script>", "ünï", "a,b"])
def test_anything_else_gets_a_new_request_id(sent):
    made = request_id_from(sent)
    assert made != sent and len(made) == 32 and made.isalnum()


def test_one_json_line_per_request_with_the_path_only_and_the_request_id(log_lines):
    middleware = RequestLogMiddleware(lambda request: HttpResponse("ok", status=302))
    request = RequestFactory().get(
        "/o/authorize/?code=secret-code&state=s", HTTP_X_REQUEST_ID="abc-123", REMOTE_ADDR="192.0.2.1"
    )
    response = middleware(request)
    assert response["X-Request-ID"] == "abc-123"
    [line] = request_lines(log_lines)
    assert line["event"] == "request_finished" and line["request"] == "GET /o/authorize/"
    assert line["request_id"] == "abc-123" and line["code"] == 302 and line["client"] == "192.0.2.1"
    assert isinstance(line["duration_ms"], float) and line["level"] == "info" and line["timestamp"]
    assert not [line for line in log_lines() if "secret-code" in json.dumps(line)]
    assert structlog.contextvars.get_contextvars() == {}, "nothing of this request is left for the next"


def test_an_insane_request_id_is_replaced_and_the_new_one_answered(log_lines):
    middleware = RequestLogMiddleware(lambda request: HttpResponse("ok"))
    response = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="forged\u2028line"))
    [line] = request_lines(log_lines)
    assert response["X-Request-ID"] == line["request_id"] != "forged\u2028line"


def test_lines_logged_while_serving_carry_the_request_id_and_calls_send_it_on(log_lines):
    seen = {}

    def view(request):
        logging.getLogger("provider.backchannel").warning("Back-channel logout queued for retry (%s)", "HTTP 503")
        seen["headers"] = request_id_headers()
        return HttpResponse("ok")

    RequestLogMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-123"))
    assert seen["headers"] == {"X-Request-ID": "abc-123"}
    [line] = [line for line in log_lines() if line["logger"] == "provider.backchannel"]
    assert line["event"] == "Back-channel logout queued for retry (HTTP 503)"
    assert line["request_id"] == "abc-123" and line["level"] == "warning" and line["logger"] == "provider.backchannel"
    assert request_id_headers() == {}, "outside a request there is no id to send"


def test_a_view_that_raises_is_one_request_failed_line_with_the_traceback(log_lines):

    def view(request):
        raise RuntimeError("boom")

    from django.core.handlers.exception import convert_exception_to_response

    response = RequestLogMiddleware(convert_exception_to_response(view))(RequestFactory().get("/x/?token=t"))
    assert response.status_code == 500
    [line] = request_lines(log_lines)
    assert line["event"] == "request_failed" and line["request"] == "GET /x/"
    assert "RuntimeError: boom" in line["exception"]


def test_log_format_is_json_or_console_and_nothing_else():
    assert logging_settings("json")["formatters"]["structured"]["processors"][-1].__class__.__name__ == "JSONRenderer"
    assert logging_settings("console")["formatters"]["structured"]["processors"][-1].__class__.__name__ == (
        "ConsoleRenderer"
    )
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_settings("xml")
