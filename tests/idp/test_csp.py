"""provider.csp: the Content-Security-Policy's form-action names the registered clients' origins."""

from unittest import mock

import pytest
from django.urls import reverse
from oauth2_provider.models import get_application_model

from provider import csp
from provider.csp import registered_client_origins

pytestmark = pytest.mark.django_db


@pytest.fixture
def applications():
    Application = get_application_model()
    for name, redirect_uris, post_logout_redirect_uris in [
        ("A", "https://a.example.com/sso/callback/ https://A.example.com/other/", "https://a.example.com/out/"),
        ("B", "http://127.0.0.1:8002/sso/callback/", "https://b.example.com:8443/signed-out/"),
        # Nothing but an origin reaches the header: no custom scheme, no smuggled directive.
        ("C", "com.example.app:/callback https://c.example.com;script-src/x", ""),
    ]:
        Application.objects.create(
            name=name,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
        )


def form_action(response) -> list[str]:
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    return policy["form-action"].split()


def test_origins_of_every_redirect_and_post_logout_redirect_uri(applications):
    assert registered_client_origins() == [
        "http://127.0.0.1:8002",
        "https://a.example.com",
        "https://b.example.com:8443",
    ]


def test_a_page_lets_its_forms_end_at_any_registered_client(client, applications):
    response = client.get(reverse("login"))
    assert form_action(response) == ["'self'", *registered_client_origins()]


def test_redirects_and_json_keep_the_configured_policy(client, applications):
    assert form_action(client.get(reverse("home"))) == ["'self'"]  # a redirect to the login page
    assert form_action(client.get(reverse("oidc-discovery"))) == ["'self'"]


def test_the_origins_are_read_once_per_process_and_again_when_an_application_changes(
    client, applications, django_assert_num_queries
):
    client.get(reverse("login"))
    with django_assert_num_queries(0):
        assert "https://a.example.com" in form_action(client.get(reverse("login")))
    Application = get_application_model()
    added = Application.objects.create(
        name="D",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://d.example.com/cb/",
    )
    assert "https://d.example.com" in form_action(client.get(reverse("login"))), "saved: seen at once"
    added.delete()
    assert "https://d.example.com" not in form_action(client.get(reverse("login"))), "deleted: gone at once"


def test_a_change_made_by_another_process_is_seen_at_once(client, applications):
    client.get(reverse("login"))
    Application = get_application_model()
    # Another process (a replica, `register_app`): its save bumps the shared version, not this copy.
    with mock.patch.object(csp, "client_origins_forget"):
        Application.objects.create(
            name="F",
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="https://f.example.com/cb/",
        )
    assert "https://f.example.com" in form_action(client.get(reverse("login")))


def test_a_change_that_sends_no_signal_is_seen_within_the_time_limit(client, applications, monkeypatch):
    client.get(reverse("login"))
    get_application_model().objects.filter(name="A").update(redirect_uris="https://e.example.com/cb/")
    assert "https://e.example.com" not in form_action(client.get(reverse("login")))
    now = csp.time.monotonic()
    monkeypatch.setattr(csp.time, "monotonic", lambda: now + csp.CLIENT_ORIGINS_SECONDS + 1)
    assert "https://e.example.com" in form_action(client.get(reverse("login")))


def test_without_the_cache_the_origins_come_from_the_database(client, applications):
    with mock.patch.object(csp.cache, "get", side_effect=ConnectionError("no Redis")):
        assert csp.client_origins() == registered_client_origins()
