"""`next` stays on the site; the middleware decides who must sign in; checks name settings."""

import pytest
from django.core import checks

from sso_client.flow import safe_next


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/account/?tab=1", "/account/?tab=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https:evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("relative/path", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_safe_next(candidate, expected):
    assert safe_next(candidate) == expected


@pytest.mark.django_db
@pytest.mark.usefixtures("idp_in_cache")
def test_a_visitor_is_sent_to_the_idp_and_public_pages_are_not_protected(client):
    response = client.get("/", HTTP_ACCEPT="text/html")
    assert response.status_code == 302 and response["Location"].startswith("https://idp.example/o/authorize/")
    assert client.get("/public/").status_code == 200
    assert client.get("/", HTTP_ACCEPT="application/json").status_code == 401


@pytest.mark.django_db
@pytest.mark.usefixtures("idp_in_cache")
def test_only_a_page_navigation_starts_a_sign_in(client):
    """A favicon or script fetched by the browser must not replace the sign-in its page started."""
    favicon = client.get("/favicon.ico", HTTP_ACCEPT="*/*", HTTP_SEC_FETCH_MODE="no-cors")
    assert favicon.status_code == 401
    assert "_state_idp_" not in str(dict(client.session))
    page = client.get("/", HTTP_ACCEPT="*/*", HTTP_SEC_FETCH_MODE="navigate", HTTP_SEC_FETCH_DEST="document")
    assert page.status_code == 302


def test_missing_mandatory_setting_is_named(settings):
    settings.SSO_CLIENT = {"ISSUER": "https://idp.example/o", "CLIENT_SECRET": "x"}
    messages = [m for m in checks.run_checks() if m.id == "sso_client.E001"]
    assert [m.msg for m in messages] == ['SSO_CLIENT["CLIENT_ID"] is not set.']


def test_middleware_order_is_checked(settings):
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "sso_client.middleware.SsoMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    assert "sso_client.E003" in {m.id for m in checks.run_checks()}
    settings.MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
    assert "sso_client.E002" in {m.id for m in checks.run_checks()}


def test_sessions_outside_the_cache_are_warned_about(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    assert "sso_client.W001" in {m.id for m in checks.run_checks()}
