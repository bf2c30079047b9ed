"""`manage.py housekeeping`: what is old goes, what a signed-in person still needs stays."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model, get_grant_model

from provider.housekeeping import delete_in_batches
from provider.models import GrantSession, LoginSession, LoginSessionClient

pytestmark = pytest.mark.django_db
AccessToken = get_access_token_model()
Grant = get_grant_model()
Application = get_application_model()


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice-housekeeping", password="pw")


@pytest.fixture
def app():
    return Application.objects.create(
        name="x",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://x.example/cb/",
    )


def login_session(user, *, ended_ago=None, expires_in=timedelta(hours=1), name="s") -> LoginSession:
    now = timezone.now()
    return LoginSession.objects.create(
        sid=f"{name}-{now.timestamp()}",
        user=user,
        session_key="k",
        expires=now + expires_in,
        ended=None if ended_ago is None else now - ended_ago,
    )


def run() -> str:
    out = StringIO()
    call_command("housekeeping", stdout=out)
    return out.getvalue()


def test_old_ended_and_expired_sessions_go_with_their_links_and_current_ones_stay(alice, app):
    old_ended = login_session(alice, ended_ago=timedelta(days=2), name="old-ended")
    LoginSessionClient.objects.create(login_session=old_ended, application=app)
    old_expired = login_session(alice, expires_in=-timedelta(days=2), name="old-expired")
    recently_ended = login_session(alice, ended_ago=timedelta(minutes=5), name="recent")  # retries may need it
    active = login_session(alice, name="active")

    assert "Deleted 2 old login session(s)" in run()
    remaining = set(LoginSession.objects.values_list("pk", flat=True))
    assert remaining == {recently_ended.pk, active.pk}
    assert not LoginSessionClient.objects.filter(login_session_id=old_ended.pk).exists()
    assert old_expired.pk not in remaining


def test_expired_tokens_and_codes_go_and_valid_ones_stay(alice, app):
    now = timezone.now()
    expired = AccessToken.objects.create(user=alice, application=app, token="a1", expires=now - timedelta(days=1))
    valid = AccessToken.objects.create(user=alice, application=app, token="a2", expires=now + timedelta(hours=1))
    old_code = Grant.objects.create(
        user=alice, application=app, code="c1", expires=now - timedelta(days=1), redirect_uri="https://x.example/cb/"
    )
    GrantSession.objects.create(grant=old_code, login_session=login_session(alice))
    run()
    assert not AccessToken.objects.filter(pk=expired.pk).exists()
    assert AccessToken.objects.filter(pk=valid.pk).exists()
    assert not Grant.objects.filter(pk=old_code.pk).exists()


def test_deletes_in_batches_until_nothing_is_left(alice):
    for n in range(7):
        login_session(alice, ended_ago=timedelta(days=3), name=f"b{n}")
    assert delete_in_batches(LoginSession.objects.all(), batch_size=3) == 7
    assert not LoginSession.objects.exists()


def test_every_must_be_a_positive_number_of_seconds():
    with pytest.raises((SystemExit, CommandError)):
        call_command("housekeeping", "--every", "0", stderr=StringIO())
