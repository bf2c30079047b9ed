"""sso_client.metrics: who may read /-/metrics, and the site's counters (refreshes, back-channel logouts)."""

from __future__ import annotations

import contextlib
import time
from unittest import mock

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cache import SessionStore
from django.test import RequestFactory
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sso_client.client import IdentityProviderApp, IdentityProviderUnavailable
from sso_client.metrics import metrics_view
from sso_client.prometheus import PrometheusAfterMiddleware, check_metrics_allowed_ips
from sso_client.tokens import SESSION_TOKEN_KEY, keep_token_fresh

TOKEN = "metrics-token-for-tests"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(**meta) -> int:
    return metrics_view(RequestFactory().get("/-/metrics", **meta)).status_code


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_ALLOWED_IPS = ["192.0.2.7", "10.20.0.0/16"]
    settings.METRICS_TOKEN = TOKEN
    settings.CLIENT_ADDRESS_FROM_PROXY = False


# --- who may read the metrics --------------------------------------------------------------------
@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_read_the_metrics(address):
    assert scrape(REMOTE_ADDR=address) == 200


@pytest.mark.parametrize("address", ["203.0.113.5", "192.0.2.8", "10.21.0.1", ""])
def test_any_other_address_is_refused(address):
    assert scrape(REMOTE_ADDR=address) == 403


@pytest.mark.parametrize("address", ["192.0.2.7", "10.20.0.1"])
def test_addresses_and_networks_of_metrics_allowed_ips_may_read_them(address):
    assert scrape(REMOTE_ADDR=address) == 200


def test_the_right_bearer_token_opens_them_and_a_wrong_one_does_not():
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION=f"Bearer {TOKEN}") == 200
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION=f"Bearer {TOKEN}-") == 403
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer wrong") == 403


def test_a_site_without_the_settings_opens_them_to_loopback_only(settings):
    del settings.METRICS_ALLOWED_IPS, settings.METRICS_TOKEN, settings.CLIENT_ADDRESS_FROM_PROXY
    assert scrape(REMOTE_ADDR="127.0.0.1") == 200
    assert scrape(REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer ") == 403


def test_behind_the_proxy_the_address_the_proxy_appended_is_judged(settings):
    settings.CLIENT_ADDRESS_FROM_PROXY = True
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5") == 403
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.5") == 403
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.20.3.4") == 200
    settings.CLIENT_ADDRESS_FROM_PROXY = False
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1") == 403


def test_a_bad_entry_of_metrics_allowed_ips_is_named_by_a_check(settings):
    settings.METRICS_ALLOWED_IPS = ["office", "10.0.0.0/8"]
    [error] = check_metrics_allowed_ips(None)
    assert error.id == "sso_client.E101" and "'office'" in error.msg


def test_the_metrics_are_prometheus_text():
    response = metrics_view(RequestFactory().get("/-/metrics", REMOTE_ADDR="127.0.0.1"))
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"sso_client_token_refreshes", "sso_client_backchannel_logouts"} <= names


def test_an_http_method_of_nobodys_is_one_label_value():
    middleware = PrometheusAfterMiddleware(lambda request: None)
    histogram = middleware.metrics.requests_latency_by_view_method
    assert middleware.label_metric(histogram, None, view="v", method="BREW") is histogram.labels(
        view="v", method="<invalid method>"
    )


# --- the site's counters ----------------------------------------------------------------------------
@pytest.fixture
def due_for_refresh():
    user = get_user_model().objects.create(username=f"u{time.monotonic_ns()}")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session[SESSION_TOKEN_KEY] = {"access_token": "a", "refresh_token": "r", "expires_at": time.time() + 10}
    session.save()
    request = RequestFactory().get("/")
    request.session, request.user = SessionStore(session_key=session.session_key), user
    return request


@pytest.mark.django_db
@pytest.mark.usefixtures("idp_in_cache")
@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ({"access_token": "b", "refresh_token": "r2", "expires_at": time.time() + 300}, "refreshed"),
        (OAuthError(error="invalid_grant"), "refused"),
        (OAuthError(error="server_error"), "idp_error"),
        (requests.ConnectionError(), "idp_unreachable"),
    ],
)
def test_token_refreshes_are_counted_by_outcome(due_for_refresh, answer, outcome):
    before = value("sso_client_token_refreshes_total", outcome=outcome)
    effect = {"side_effect": answer} if isinstance(answer, Exception) else {"return_value": answer}
    with (
        mock.patch.object(IdentityProviderApp, "fetch_access_token", **effect),
        contextlib.suppress(IdentityProviderUnavailable),  # what the middleware then answers
    ):
        keep_token_fresh(due_for_refresh)
    assert value("sso_client_token_refreshes_total", outcome=outcome) == before + 1


@pytest.mark.django_db
@pytest.mark.usefixtures("idp_in_cache")
def test_a_refused_logout_token_is_counted(client):
    before = value("sso_client_backchannel_logouts_total", outcome="refused")
    assert client.post("/sso/backchannel-logout/", {"logout_token": "not-a-jwt"}).status_code == 400
    assert value("sso_client_backchannel_logouts_total", outcome="refused") == before + 1
