"""The IdP's /-/metrics: who may read it, and its own counters (sign-ins, token grants, sign-outs, retries)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import RequestFactory
from django.urls import reverse
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import free_port
from ops import backchannel as retries
from ops.views import metrics
from sso_client.prometheus import PrometheusAfterMiddleware

TOKEN = "metrics-token-for-tests"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(**meta) -> int:
    return metrics(RequestFactory().get("/-/metrics", **meta)).status_code


# --- who may read the metrics --------------------------------------------------------------------
@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_ALLOWED_IPS = ["192.0.2.7", "10.20.0.0/16", "2001:db8::/32"]
    settings.METRICS_TOKEN = TOKEN
    settings.CLIENT_ADDRESS_FROM_PROXY = False
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: Redis is down


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_read_the_metrics(address):
    assert scrape(REMOTE_ADDR=address) == 200


@pytest.mark.parametrize("address", ["203.0.113.5", "192.0.2.8", "10.21.0.1", "2001:db9::1", "", "not-an-address"])
def test_any_other_address_is_refused(address):
    assert scrape(REMOTE_ADDR=address) == 403


@pytest.mark.parametrize("address", ["192.0.2.7", "10.20.0.1", "10.20.255.254", "2001:db8::42"])
def test_addresses_and_networks_of_metrics_allowed_ips_may_read_them(address):
    assert scrape(REMOTE_ADDR=address) == 200


def test_the_right_bearer_token_opens_them_from_anywhere_and_a_wrong_one_does_not():
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION=f"Bearer {TOKEN}") == 200
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION=f"bearer {TOKEN}") == 200
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}", TOKEN):
        assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION=wrong) == 403, wrong


def test_without_a_token_configured_no_bearer_opens_them(settings):
    settings.METRICS_TOKEN = None
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer ") == 403
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer None") == 403


def test_behind_the_proxy_the_address_the_proxy_appended_is_judged(settings):
    settings.CLIENT_ADDRESS_FROM_PROXY = True  # DJANGO_BEHIND_TLS_PROXY
    # The proxy is on loopback: that must not open the metrics to whoever it forwards.
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5") == 403
    # What the client wrote before the proxy's entry is not believed.
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.5") == 403
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.20.3.4") == 200
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5, 127.0.0.1") == 200
    assert (
        scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5", HTTP_AUTHORIZATION=f"Bearer {TOKEN}") == 200
    )


def test_without_the_proxy_x_forwarded_for_is_ignored():
    assert scrape(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1") == 403
    assert scrape(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5") == 200


def test_a_bad_entry_of_metrics_allowed_ips_is_named_by_a_check(settings):
    from sso_client.prometheus import check_metrics_allowed_ips

    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "office"]
    [error] = check_metrics_allowed_ips(None)
    assert error.id == "sso_client.E101" and "'office'" in error.msg and "METRICS_ALLOWED_IPS" in error.msg
    assert scrape(REMOTE_ADDR="10.1.1.1") == 200, "the good entries still count"


# --- what they say ----------------------------------------------------------------------------------
def test_the_metrics_are_prometheus_text_and_redis_down_costs_only_the_queue_families(client):
    response = client.get("/-/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"idp_sign_ins", "idp_token_grants", "idp_login_sessions_ended", "idp_lockouts"} <= names
    assert {"django_http_requests_total_by_view_transport_method"} <= names
    assert "idp_backchannel_logout_retry_queue_length" not in names


class FakePipeline:
    def __init__(self, answers):
        self.answers = answers

    def llen(self, key):
        assert key == "rq:queue:backchannel-logout"

    def zcard(self, key):
        assert key == "rq:scheduled:backchannel-logout"

    def hgetall(self, key):
        assert key == retries.RETRIES_KEY

    def execute(self):
        return self.answers


class FakeRedis:
    def __init__(self, answers=None):
        self.answers = answers
        self.counts: dict[str, int] = {}

    def pipeline(self, transaction=True):
        return FakePipeline(self.answers)

    def hincrby(self, key, field, amount):
        assert key == retries.RETRIES_KEY
        self.counts[field] = self.counts.get(field, 0) + amount


def test_the_retry_queue_and_the_workers_counts_are_read_at_scrape_time(monkeypatch):
    answers = [3, 2, {b"delivered": b"5", b"given_up": b"1"}]
    monkeypatch.setattr(retries, "scrape_connection", lambda: FakeRedis(answers))
    families = {family.name: family for family in retries.RetryQueueCollector("backchannel-logout").collect()}
    length = {
        sample.labels["state"]: sample.value for sample in families["idp_backchannel_logout_retry_queue_length"].samples
    }
    assert length == {"queued": 3, "scheduled": 2}
    counted = {sample.labels["outcome"]: sample.value for sample in families["idp_backchannel_logout_retries"].samples}
    assert counted == {"delivered": 5, "failed": 0, "given_up": 1}


def test_a_redis_that_is_down_is_left_out_of_the_scrape_quickly(settings):
    collector = retries.RetryQueueCollector("backchannel-logout")
    assert list(collector.collect()) == []
    connection = retries.scrape_connection()
    assert connection.connection_pool.connection_kwargs["socket_timeout"] == retries.REDIS_TIMEOUT_SECONDS
    assert isinstance(connection, redis.Redis)


def test_the_workers_callbacks_count_retries_failures_and_giving_up():
    connection = FakeRedis()
    retries.retry_delivered(SimpleNamespace(), connection, None)
    retries.retry_failed(SimpleNamespace(should_retry=True, args=[1, "sid"]), connection, None, None, None)
    retries.retry_failed(SimpleNamespace(should_retry=False, args=[1, "sid"]), connection, None, None, None)
    assert connection.counts == {"delivered": 1, "failed": 1, "given_up": 1}


def test_an_http_method_of_nobodys_is_one_label_value():
    middleware = PrometheusAfterMiddleware(lambda request: None)
    histogram = middleware.metrics.requests_latency_by_view_method
    child = middleware.label_metric(histogram, None, view="home", method="BREWCOFFEE")
    assert child is histogram.labels(view="home", method="<invalid method>")
    assert middleware.label_metric(histogram, None, view="home", method="GET") is histogram.labels(
        view="home", method="GET"
    )


# --- the IdP's counters ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_token_grants_are_counted_by_grant_type_and_oauth_error(client):
    password = dict(grant_type="other", outcome="unsupported_grant_type")
    code = dict(grant_type="authorization_code", outcome="invalid_client")
    before = value("idp_token_grants_total", **password), value("idp_token_grants_total", **code)
    assert client.post("/o/token/", {"grant_type": "password", "username": "a", "password": "b"}).status_code == 400
    assert client.post("/o/token/", {"grant_type": "authorization_code", "code": "x"}).status_code in (400, 401)
    assert value("idp_token_grants_total", **password) == before[0] + 1
    assert value("idp_token_grants_total", **code) == before[1] + 1


@pytest.mark.django_db
def test_sign_ins_are_counted_succeeded_failed_and_locked_out(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    cache.clear()
    get_user_model().objects.create_user("metrics-erin", password="right-password")
    before = {
        outcome: value("idp_sign_ins_total", outcome=outcome) for outcome in ("succeeded", "failed", "locked_out")
    }
    lockouts = value("idp_lockouts_total")
    ended = value("idp_login_sessions_ended_total")
    login = reverse("login")

    assert client.post(login, {"username": "metrics-erin", "password": "right-password"}).status_code == 302
    assert client.post(reverse("logout")).status_code in (200, 302)
    assert value("idp_login_sessions_ended_total") == ended + 1
    statuses = [client.post(login, {"username": "metrics-erin", "password": "wrong"}).status_code for _ in range(3)]
    assert statuses == [400, 429, 429]
    cache.clear()

    assert value("idp_sign_ins_total", outcome="succeeded") == before["succeeded"] + 1
    assert value("idp_sign_ins_total", outcome="failed") == before["failed"] + 1
    assert value("idp_sign_ins_total", outcome="locked_out") == before["locked_out"] + 2
    assert value("idp_lockouts_total") == lockouts + 1
