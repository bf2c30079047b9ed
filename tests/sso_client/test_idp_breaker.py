"""A slow or unreachable IdP ties up no worker: after a call to it times out or cannot connect,
the site stops calling it for a while (a breaker shared by its processes, in the cache).

While the breaker is open: a token still valid is served as it is (no refresh tried, no wait), a
token already expired gets the "identity provider unavailable" page at once, and a sign-in is not
started. A refusal by the IdP (an answer) never opens it; any answer closes it.

Every HTTP call goes through requests.Session.request (Authlib's OAuth2Session is one, and so is
requests.get): a fake IdP stands in for it here, as in test_fast_paths.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from django.core.cache import cache
from django.test import Client
from prometheus_client import REGISTRY

from sso_client.client import IdentityProviderUnavailable, fetch_json
from sso_client.tokens import Freshness, access_token, keep_token_fresh, read_token
from tests.sso_client import test_tokens
from tests.sso_client.conftest import ISSUER, METADATA
from tests.sso_client.test_callback import begin

#: Fixtures of other modules, used here too.
request_with_token = test_tokens.request_with_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idp_in_cache")]

BREAKER_KEY = f"sso_client:idp-unreachable:{ISSUER}"  # the breaker of this site's IdP


class FakeIdp:
    """Answers every HTTP call with `answer` (an exception is raised instead); counts the calls."""

    def __init__(self) -> None:
        self.answer: object = self.refreshed
        self.calls = 0

    @staticmethod
    def refreshed() -> requests.Response:
        return json_response(
            200, {"access_token": "new", "refresh_token": "r2", "token_type": "Bearer", "expires_in": 300}
        )

    def __call__(self, session, method, url, *args, **kwargs) -> requests.Response:
        self.calls += 1
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer()


def json_response(status: int, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.url = METADATA["token_endpoint"]
    return response


@pytest.fixture
def idp(monkeypatch) -> FakeIdp:
    fake = FakeIdp()
    monkeypatch.setattr(requests.Session, "request", lambda session, *a, **kw: fake(session, *a, **kw))
    return fake


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("sso_client_token_refreshes_total", {"outcome": outcome}) or 0.0


def breaker_open() -> bool:
    return cache.get(BREAKER_KEY) is not None


@pytest.mark.parametrize("failure", [requests.ReadTimeout(), requests.ConnectTimeout(), requests.ConnectionError()])
def test_a_refresh_that_times_out_or_cannot_connect_opens_the_breaker_for_every_session(
    request_with_token,
    idp,
    failure,
):
    first = request_with_token(expires_in=30)
    idp.answer = failure
    assert keep_token_fresh(first) is Freshness.FRESH  # still valid: served with the token it has
    assert idp.calls == 1 and breaker_open()

    # Another session's token is due too: the IdP is not called, the page is served at once.
    second = request_with_token(expires_in=30)
    skipped = counted("skipped_idp_unreachable")
    started = time.monotonic()
    assert keep_token_fresh(second) is Freshness.FRESH
    assert time.monotonic() - started < 0.5
    assert idp.calls == 1, "the IdP known unreachable was not called again"
    assert access_token(second) == "old"
    assert counted("skipped_idp_unreachable") == skipped + 1


def test_while_open_an_expired_token_is_unavailable_at_once(request_with_token, idp):
    idp.answer = requests.ReadTimeout()
    keep_token_fresh(request_with_token(expires_in=30))
    expired = request_with_token(expires_in=-5)
    with pytest.raises(IdentityProviderUnavailable):
        keep_token_fresh(expired)
    assert idp.calls == 1
    assert read_token(expired.session.session_key)["refresh_token"] == "r1", "nothing stored was lost"


def test_while_open_an_expired_session_gets_the_unavailable_page_and_nobody_is_sent_to_sign_in(
    client,
    request_with_token,
    idp,
):
    idp.answer = requests.ReadTimeout()
    keep_token_fresh(request_with_token(expires_in=30))
    expired = request_with_token(expires_in=-5)
    tab = Client()
    tab.cookies["sessionid"] = expired.session.session_key
    page = tab.get("/", HTTP_ACCEPT="text/html")
    assert page.status_code == 503 and b"cannot be reached" in page.content

    # A sign-in is not started while the IdP is known unreachable: the page says so instead.
    for path in ("/", "/sso/login/?next=/"):
        answer = client.get(path, HTTP_ACCEPT="text/html")
        assert answer.status_code == 503 and b"cannot be reached" in answer.content, path
    assert idp.calls == 1


def test_a_refusal_by_the_idp_never_opens_the_breaker(request_with_token, idp):
    idp.answer = lambda: json_response(400, {"error": "invalid_grant"})
    assert keep_token_fresh(request_with_token(expires_in=30)) is Freshness.SIGNED_OUT  # as before
    assert not breaker_open()
    idp.answer = lambda: json_response(503, {"error": "temporarily_unavailable"})
    with pytest.raises(IdentityProviderUnavailable):
        keep_token_fresh(request_with_token(expires_in=-5))
    assert not breaker_open(), "the IdP answered: it is not unreachable"


def test_the_breaker_closes_by_itself_then_one_request_tries_the_idp_and_its_answer_closes_it(
    client,
    request_with_token,
    idp,
    settings,
):
    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "IDP_UNREACHABLE_SECONDS": 1}
    idp.answer = requests.ReadTimeout()
    keep_token_fresh(request_with_token(expires_in=30))
    assert client.get("/sso/login/").status_code == 503
    prober, other = request_with_token(expires_in=30), request_with_token(expires_in=30)
    time.sleep(1.1)

    assert begin(Client()), "its time over, a sign-in starts again"
    seen_meanwhile = []

    def answer_late():
        if not seen_meanwhile:  # while this request tries the IdP, another session's due token...
            seen_meanwhile.append(keep_token_fresh(other))
        return FakeIdp.refreshed()

    idp.answer = answer_late
    assert keep_token_fresh(prober) is Freshness.FRESH
    assert seen_meanwhile == [Freshness.FRESH] and access_token(other) == "old", "...is served, not tried too"
    assert idp.calls == 2 and access_token(prober) == "new"
    assert not breaker_open(), "the IdP answered"
    assert keep_token_fresh(other) is Freshness.FRESH and access_token(other) == "new"
    assert idp.calls == 3


def test_a_discovery_fetch_that_times_out_opens_the_breaker(idp):
    idp.answer = requests.ReadTimeout()
    with pytest.raises(IdentityProviderUnavailable):
        fetch_json(METADATA["jwks_uri"])
    assert breaker_open()


def test_the_breaker_is_the_issuers_own(request_with_token, idp, settings):
    """A process of the site set up with another IdP (sharing its cache) trips its own breaker only."""
    idp.answer = requests.ConnectionError()
    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "ISSUER": "http://127.0.0.1:9/o"}
    with pytest.raises(IdentityProviderUnavailable):
        fetch_json("http://127.0.0.1:9/o/.well-known/openid-configuration")
    settings.SSO_CLIENT = {**settings.SSO_CLIENT, "ISSUER": ISSUER}
    assert not breaker_open()
    assert begin(Client()), "this site's IdP is not known unreachable: a sign-in starts"


def test_a_code_exchange_that_times_out_opens_the_breaker(client, idp):
    request = begin(client)
    idp.answer = requests.ReadTimeout()
    response = client.get("/sso/callback/", {"code": "c", "state": request["state"]})
    assert response.status_code == 503
    assert breaker_open()
