"""sso_client.logs and sso_client.request_log: one JSON line per request, and its id sent on to the IdP."""

from __future__ import annotations

import json
import logging
from unittest import mock

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.http import FileResponse, HttpResponse
from django.test import RequestFactory

from sso_client.client import fetch_json, identity_provider
from sso_client.logs import logging_settings, request_id_from, send_request_id
from sso_client.request_log import RequestLogMiddleware


@pytest.fixture(autouse=True)
def structured_logs():
    """What a site's settings do with LOGGING (this test site keeps Django's default logging)."""
    logging_settings("json")


def test_a_sane_request_id_is_kept_and_anything_else_replaced():
    assert request_id_from("abc-123") == "abc-123"
    for sent in (None, "x" * 65, "a b", "a\r\nb", "%0a"):
        assert request_id_from(sent) != sent


def test_the_callback_is_logged_by_its_path_only_with_the_request_id(log_lines):
    middleware = RequestLogMiddleware(lambda request: HttpResponse(status=302))
    response = middleware(
        RequestFactory().get("/sso/callback/?code=the-code&state=s", HTTP_X_REQUEST_ID="abc-123", REMOTE_ADDR="::1")
    )
    assert response["X-Request-ID"] == "abc-123"
    [line] = log_lines()
    assert line["event"] == "request_finished" and line["request"] == "GET /sso/callback/"
    assert line["request_id"] == "abc-123" and line["client"] == "::1" and line["code"] == 302
    assert "the-code" not in json.dumps(line)


def test_a_static_file_is_one_line_and_keeps_its_file_for_sendfile(log_lines, tmp_path):
    static = tmp_path / "site.css"
    static.write_text("body {}")
    response = RequestLogMiddleware(lambda request: FileResponse(static.open("rb")))(
        RequestFactory().get("/static/site.css")
    )
    assert response.file_to_stream is not None, "gunicorn can still send the file itself"
    response.file_to_stream.close()
    assert [line["event"] for line in log_lines()] == ["request_finished"]


def test_behind_the_proxy_the_line_names_the_client_not_the_proxy(log_lines, settings):
    settings.CLIENT_ADDRESS_FROM_PROXY = True
    RequestLogMiddleware(lambda request: HttpResponse())(
        RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5")
    )
    assert log_lines()[0]["client"] == "203.0.113.5"


def test_calls_to_the_idp_carry_the_request_id(log_lines, settings):
    sent = {}

    def view(request):
        logging.getLogger("sso_client.views").info("Back-channel logout ended %d session(s)", 1)
        with mock.patch("sso_client.client.requests.get") as get:
            get.return_value.json.return_value = {}
            fetch_json("https://idp.example/o/.well-known/openid-configuration")
        sent["discovery"] = get.call_args.kwargs["headers"]
        session = requests.Session()
        send_request_id(session)  # Authlib's compliance_fix, on the session of a token call
        sent["token call"] = dict(session.headers)
        return HttpResponse()

    RequestLogMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-123"))
    assert sent["discovery"] == {"X-Request-ID": "abc-123"}
    assert sent["token call"]["X-Request-ID"] == "abc-123"
    [line] = [line for line in log_lines() if line["logger"] == "sso_client.views"]
    assert line["event"] == "Back-channel logout ended 1 session(s)" and line["request_id"] == "abc-123"


def test_authlib_is_told_to_send_the_request_id(settings):
    identity_provider.cache_clear()
    assert identity_provider().compliance_fix is send_request_id


def test_log_format_is_json_or_console_and_nothing_else():
    assert logging_settings("console")["root"]["handlers"] == ["console"]
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_settings("text")
