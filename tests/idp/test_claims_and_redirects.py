"""The validator subclass: claims per scope, opaque subject, exact redirect URIs."""

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_application_model

from provider.oauth2_validators import OAuth2Validator

Application = get_application_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return get_user_model().objects.create_user(
        "alice", email="alice@example.com", password="pw", first_name="Alice", last_name="Liddell"
    )


def claims_for(user, scopes):
    request = SimpleNamespace(user=user, scopes=scopes)
    return OAuth2Validator().get_oidc_claims(None, None, request)


def test_openid_alone_releases_only_the_subject(alice):
    assert set(claims_for(alice, ["openid"])) == {"sub"}


def test_profile_and_email_release_their_claims(alice):
    claims = claims_for(alice, ["openid", "profile", "email"])
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is False


def test_subject_is_opaque_and_stable(alice):
    first = claims_for(alice, ["openid"])["sub"]
    assert first != str(alice.pk)
    alice.username = "alice2"
    alice.save()
    assert claims_for(get_user_model().objects.get(pk=alice.pk), ["openid"])["sub"] == first


@pytest.mark.parametrize(
    ("client_type", "uri", "allowed"),
    [
        ("confidential", "http://127.0.0.1:8001/sso/callback/", True),
        ("confidential", "http://127.0.0.1:9999/sso/callback/", False),  # other port on loopback
        ("confidential", "http://127.0.0.1:8001/sso/callback", False),  # no trailing slash
        ("confidential", "http://127.0.0.1:8001/sso/callback/?x=1", False),
        ("public", "http://127.0.0.1:9999/sso/callback/", True),  # RFC 8252 native apps
        ("public", "http://127.0.0.1:9999/other/", False),
    ],
)
def test_redirect_uri_matching(client_type, uri, allowed):
    app = Application.objects.create(
        name="x",
        client_type=client_type,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1:8001/sso/callback/",
    )
    request = SimpleNamespace(client=app)
    assert OAuth2Validator().validate_redirect_uri(app.client_id, uri, request) is allowed
