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
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from ops.metrics import login_session_ended
from provider.compiled_queries import CompiledQuery
from provider.models import GrantSession, LoginSession, LoginSessionClient, RefreshTokenSession

Grant = get_grant_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()

#: Where the IdP's own Django session keeps the sid of its login session.
SID_SESSION_KEY = "_idp_sid"


def login_session_start(
    *, session: SessionBase, user: AbstractBaseUser, amr: list[str] | tuple[str, ...] = ("pwd",)
) -> LoginSession:
    """A sign-in: a new login session, or, when this browser's session is already this person's,
    a re-authentication of it (prompt=login, max_age): the sid stays, `auth_time` and `amr` move on.

    `amr` names how the person proved who they are (RFC 8176: "pwd", "otp").
    """
    now = timezone.now()
    if (current := active(session.get(SID_SESSION_KEY))) and current.user_id == user.pk:
        current.auth_time, current.amr, current.session_key = now, list(amr), session.session_key or ""
        current.save(update_fields=["auth_time", "amr", "session_key"])
        return current
    login_session = LoginSession.objects.create(
        sid=secrets.token_urlsafe(32),
        user=user,
        session_key=session.session_key or "",
        expires=now + timedelta(seconds=session.get_expiry_age()),
        auth_time=now,
        amr=list(amr),
    )
    session[SID_SESSION_KEY] = login_session.sid
    return login_session


#: The login session of a sid (unique), compiled once per process: every authorization reads it.
LOGIN_SESSION_BY_SID = CompiledQuery(LoginSession, lambda sid: LoginSession.objects.filter(sid=sid)[:1], "\x01sid")


def active(sid: str | None) -> LoginSession | None:
    """The live (not ended, not expired) login session of `sid`, if there is one."""
    if not sid:
        return None
    login_session = LOGIN_SESSION_BY_SID.first(sid)
    return login_session if is_active(login_session) else None


def is_active(login_session: LoginSession | None) -> bool:
    """`active()`'s test, for a login session already loaded (with a code or a refresh token)."""
    return login_session is not None and login_session.ended is None and login_session.expires > timezone.now()


def grant_link(*, grant, login_session: LoginSession | None) -> None:
    """The code's row of GrantSession: its login session (if live) and, later, its use."""
    GrantSession.objects.create(grant=grant, login_session=login_session if is_active(login_session) else None)


def refresh_token_link(
    *, refresh_token, login_session: LoginSession | None = None, sid: str | None = None, new_client: bool = True
) -> None:
    """Record that `refresh_token` (and so its client) belongs to the login session (or `sid`).

    `new_client`: the client may be new to the session (a code exchange); a refresh rotates a
    token the client already got in this session, so its LoginSessionClient row exists.
    """
    if login_session is None and sid:
        login_session = active(sid)
    if not is_active(login_session):
        return
    RefreshTokenSession.objects.create(refresh_token=refresh_token, login_session=login_session)
    if new_client:
        # One INSERT ... ON CONFLICT DO NOTHING, not get_or_create's SELECT and savepointed INSERT.
        LoginSessionClient.objects.bulk_create(
            [LoginSessionClient(login_session=login_session, application_id=refresh_token.application_id)],
            ignore_conflicts=True,
        )


def login_session_end(login_session: LoginSession) -> list[tuple[int, str]]:
    """End the session: revoke its tokens; return (application id, sid) of clients to notify.

    A fixed number of queries however many tokens the session holds: set-based, never per token.
    """
    with transaction.atomic():
        now = timezone.now()
        ended = LoginSession.objects.filter(pk=login_session.pk, ended__isnull=True).update(ended=now)
        if not ended:
            return []  # ended already (by another request or replica)
        login_session_ended()  # counted for /-/metrics
        # Codes not yet exchanged die with the session: a code is worth what the session was.
        Grant.objects.filter(grantsession__login_session=login_session, grantsession__used__isnull=True).delete()
        # Its refresh tokens are revoked, and their access tokens deleted, as RefreshToken.revoke()
        # does one by one (refresh token first, then access token: the toolkit's lock order).
        session_tokens = RefreshToken.objects.filter(refreshtokensession__login_session=login_session)
        session_tokens.filter(revoked__isnull=True).update(revoked=now, updated=now)
        AccessToken.objects.filter(pk__in=session_tokens.values("access_token_id")).delete()  # as revoke_family
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


#: `acr` values (OIDC Core 2): "1" a password alone, "2" a password and a second factor.
ACR_PASSWORD = "1"  # noqa: S105 - an acr value, not a password
ACR_TWO_FACTOR = "2"


def acr_of(amr: list[str]) -> str:
    return ACR_TWO_FACTOR if len(set(amr)) > 1 else ACR_PASSWORD
