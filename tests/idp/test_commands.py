"""`seed_demo` and `register_app`: what an operator runs from the shell."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from oauth2_provider.models import get_application_model

Application = get_application_model()
pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_creates_the_demo_users_and_trusted_confidential_sites(settings):
    output = run("seed_demo")
    assert "site-a" in output and "site-b" in output
    alice = get_user_model().objects.get(username="alice")
    assert alice.check_password(settings.DEMO_PASSWORD) and not alice.is_staff
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(settings.ADMIN_PASSWORD)
    site_a = Application.objects.get(client_id="site-a")
    assert site_a.client_type == Application.CLIENT_CONFIDENTIAL
    assert site_a.skip_authorization
    assert site_a.redirect_uris == f"{settings.SITE_A_URL}/sso/callback/"
    assert settings.DEMO_CLIENTS[0]["secret"] not in site_a.client_secret, "secrets are stored hashed"
    assert check_password(settings.DEMO_CLIENTS[0]["secret"], site_a.client_secret)


def test_seeding_twice_changes_nothing_and_prints_the_client_ids():
    run("seed_demo")
    before = list(Application.objects.values_list("client_id", "client_secret", "updated").order_by("id"))
    users_before = list(get_user_model().objects.values_list("username", "password").order_by("id"))
    output = run("seed_demo")
    assert "site-a" in output and "site-b" in output
    assert "created" not in output
    assert list(Application.objects.values_list("client_id", "client_secret", "updated").order_by("id")) == before
    assert list(get_user_model().objects.values_list("username", "password").order_by("id")) == users_before


def test_seeding_repairs_a_changed_redirect_uri(settings):
    run("seed_demo")
    Application.objects.filter(client_id="site-a").update(redirect_uris="http://elsewhere.example/cb")
    run("seed_demo")
    assert Application.objects.get(client_id="site-a").redirect_uris == f"{settings.SITE_A_URL}/sso/callback/"


def test_register_app_prints_id_and_secret_once_and_stores_the_secret_hashed():
    output = run("register_app", "Reports", "--redirect-uri", "https://reports.example/callback", "--trusted")
    lines = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    app = Application.objects.get(client_id=lines["client_id"])
    assert app.name == "Reports" and app.skip_authorization
    assert app.client_type == Application.CLIENT_CONFIDENTIAL
    assert app.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert app.algorithm == Application.RS256_ALGORITHM
    assert lines["client_secret"] not in app.client_secret
    assert check_password(lines["client_secret"], app.client_secret)


def test_register_public_app_has_no_secret():
    output = run("register_app", "Mobile", "--public", "--redirect-uri", "https://mobile.example/cb")
    assert "client_secret" not in output
    app = Application.objects.get(name="Mobile")
    assert app.client_type == Application.CLIENT_PUBLIC and not app.skip_authorization


def test_register_app_refuses_a_bad_redirect_uri_and_stores_nothing():
    with pytest.raises(CommandError, match="redirect"):
        run("register_app", "Broken", "--redirect-uri", "not a uri")
    assert not Application.objects.filter(name="Broken").exists()


def test_register_app_refuses_a_taken_client_id():
    run("seed_demo")
    with pytest.raises(CommandError, match="site-a"):
        run("register_app", "Impostor", "--client-id", "site-a", "--redirect-uri", "https://x.example/cb")
    assert Application.objects.get(client_id="site-a").name == "Client site A"
