"""Login sessions at the IdP: started at sign-in, ended at sign-out, everywhere they reached.

The session's `sid` goes into every ID token issued in it (OIDC Front-/Back-Channel Logout),
and ending it revokes the tokens issued in it and tells each client by a back-channel logout
token. Other sessions of the same person (another browser) are left alone.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils import timezone

from provider.models import GrantSession, LoginSession, LoginSessionClient, RefreshTokenSession

#: Where the IdP's own Django session keeps the sid of its login session.
SID_SESSION_KEY = "_idp_sid"


def login_session_start(*, session: SessionBase, user: AbstractBaseUser) -> LoginSession:
    login_session = LoginSession.objects.create(
        sid=secrets.token_urlsafe(32),
        user=user,
        session_key=session.session_key or "",
        expires=timezone.now() + timedelta(seconds=session.get_expiry_age()),
    )
    session[SID_SESSION_KEY] = login_session.sid
    return login_session


def active(sid: str | None) -> LoginSession | None:
    if not sid:
        return None
    return LoginSession.objects.filter(sid=sid, ended__isnull=True, expires__gt=timezone.now()).first()


def sid_of_grant(code: str) -> str | None:
    return GrantSession.objects.filter(grant__code=code).values_list("login_session__sid", flat=True).first()


def sid_of_refresh_token(refresh_token) -> str | None:
    return (
        RefreshTokenSession.objects.filter(refresh_token=refresh_token)
        .values_list("login_session__sid", flat=True)
        .first()
    )


def grant_link(*, sid: str, grant) -> None:
    if login_session := active(sid):
        GrantSession.objects.create(grant=grant, login_session=login_session)


def refresh_token_link(*, sid: str, refresh_token) -> None:
    """Record that `refresh_token` (and so its client) belongs to the login session `sid`."""
    if login_session := active(sid):
        RefreshTokenSession.objects.create(refresh_token=refresh_token, login_session=login_session)
        LoginSessionClient.objects.get_or_create(login_session=login_session, application=refresh_token.application)


def login_session_end(login_session: LoginSession) -> list[tuple[int, str]]:
    """End the session: revoke its tokens; return (application id, sid) of clients to notify."""
    with transaction.atomic():
        ended = LoginSession.objects.filter(pk=login_session.pk, ended__isnull=True).update(ended=timezone.now())
        if not ended:
            return []  # ended already (by another request or replica)
        for link in RefreshTokenSession.objects.filter(login_session=login_session).select_related("refresh_token"):
            if link.refresh_token.revoked is None:
                link.refresh_token.revoke()  # also deletes its access token
        clients = list(
            LoginSessionClient.objects.filter(
                login_session=login_session, application__logout_settings__backchannel_logout_uri__gt=""
            ).values_list("application_id", flat=True)
        )
    return [(application_id, login_session.sid) for application_id in clients]


def user_sign_out_everywhere(user: AbstractBaseUser) -> list[tuple[int, str]]:
    """End every login session of `user`, including the IdP's own browser sessions."""
    engine = import_module(settings.SESSION_ENGINE)
    notify = []
    for login_session in LoginSession.objects.filter(user=user, ended__isnull=True):
        notify += login_session_end(login_session)
        if login_session.session_key:
            engine.SessionStore(session_key=login_session.session_key).delete()
    return notify
