"""The IdP's own pages: sign-in, landing page, health and error pages."""

import re
import socket

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from sso_client.redis_deployment import RedisDeployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", email="alice@example.com", password="right-password")


def test_wrong_password_shows_the_form_again_with_a_message(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "do not match" in page
    assert 'name="password"' in page
    assert "wrong" not in page.replace("wrong-", ""), "the password typed is never echoed"


def test_unknown_user_gets_the_very_same_answer(client, alice):
    known = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    unknown = client.post(reverse("login"), {"username": "nobody", "password": "wrong"})

    def page(response, username):  # what differs by design: the name typed, the CSRF token
        text = response.content.decode().replace(f'value="{username}"', "")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)

    assert unknown.status_code == known.status_code
    assert page(unknown, "nobody") == page(known, "alice")


def test_right_password_signs_in_and_lands_on_the_account_page(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "right-password"}, follow=True)
    assert response.status_code == 200
    assert "Signed in as alice" in response.content.decode()


def test_login_form_is_protected_against_csrf(alice):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        reverse("login"), {"username": "alice", "password": "right-password"}
    )
    assert response.status_code == 403
    assert "expired" in response.content.decode()


def test_account_page_requires_sign_in(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_health_live(client):
    assert client.get("/-/health/live/").json() == {"status": "ok"}


def test_health_ready_reports_an_unreachable_redis(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/-/health/ready/")
    assert response.status_code == 503
    assert "REDIS_URL" in response.json()["problems"]["redis"]


def test_session_store_outage_is_a_503_page_not_a_500(client, settings):
    """Redis unreachable: a readable 503, and the person's session cookie left as it was."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {"default": RedisDeployment(f"redis://127.0.0.1:{port}/0").cache(key_prefix="idp")}
    client.raise_request_exception = False
    client.cookies["idp_sessionid"] = "some-session"
    response = client.get(reverse("home"))
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.content.decode()
    assert int(response["Retry-After"]) > 0
    assert "idp_sessionid" not in response.cookies


def test_unknown_page_is_a_readable_404(client, settings):
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
