"""provider.csp: the Content-Security-Policy's form-action names the registered clients' origins."""

import pytest
from django.urls import reverse
from oauth2_provider.models import get_application_model

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
