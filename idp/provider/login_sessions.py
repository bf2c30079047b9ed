"""Login sessions at the IdP: started at sign-in, ended at sign-out, everywhere they reached.

The session's `sid` goes into every ID token issued in it (OIDC Front-/Back-Channel Logout),
and ending it revokes the tokens issued in it and tells each client by a back-channel logout
token. Other sessions of the same person (another browser) are left alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.core.cache import caches
from django.db import transaction
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from ops.metrics import login_session_ended
from provider import backchannel
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


@dataclass(frozen=True)
class Ended:
    """What ending many login sessions leaves to do once committed."""

    #: (application id, sid) of every client to tell.
    deliveries: list[tuple[int, str]]
    #: The same clients, as the query of their LoginSessionClient rows (to record them set-based).
    clients: QuerySet
    #: The IdP's browser sessions to delete (`idp_sessions_delete`).
    session_keys: list[str]


def login_sessions_end(login_sessions: QuerySet[LoginSession]) -> Ended:
    """End every live session `login_sessions` selects, as login_session_end does one, in a fixed
    number of queries however many sessions and tokens there are.

    Call it in a transaction of the caller's, in which `Ended.clients` is read too. Each row is
    ended by one UPDATE `WHERE ended IS NULL`: a session another request is ending at the same
    time is ended (and told about) by one of the two only. The sessions ended here are then
    known by their `ended` time, this transaction's own.
    """
    now = timezone.now()
    count = login_sessions.filter(ended__isnull=True).update(ended=now)
    ended = login_sessions.filter(ended=now)
    clients = LoginSessionClient.objects.filter(
        login_session__in=ended, application__logout_settings__backchannel_logout_uri__gt=""
    )
    if not count:
        return Ended(deliveries=[], clients=clients, session_keys=[])
    login_session_ended(count)  # counted for /-/metrics
    Grant.objects.filter(grantsession__login_session__in=ended, grantsession__used__isnull=True).delete()
    # Their refresh tokens are revoked and their access tokens deleted, as RefreshToken.revoke()
    # does one by one, without loading them: the access tokens first, found through the refresh
    # tokens' pointers, which one UPDATE then clears as it revokes. The foreign key is checked at
    # commit (Django makes them deferred), hence the transaction, a savepoint in the caller's.
    session_tokens = RefreshToken.objects.filter(refreshtokensession__login_session__in=ended)
    with transaction.atomic():
        access_tokens = AccessToken.objects.filter(
            pk__in=session_tokens.filter(access_token__isnull=False).values("access_token_id")
        )
        access_tokens._raw_delete(access_tokens.db)  # what QuerySet.delete() ends with, minus the loading
        session_tokens.filter(Q(revoked__isnull=True) | Q(access_token__isnull=False)).update(
            revoked=Coalesce("revoked", Value(now)), updated=now, access_token=None
        )
    return Ended(
        deliveries=list(clients.values_list("application_id", "login_session__sid")),
        clients=clients,
        session_keys=list(ended.exclude(session_key="").values_list("session_key", flat=True)),
    )


def idp_sessions_delete(session_keys: list[str]) -> None:
    """Delete the IdP's own browser sessions: their next request at the IdP asks them to sign in.

    With the cache engine (the IdP's), one round trip to Redis for them all.
    """
    if not session_keys:
        return
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if issubclass(store, CacheSessionStore):
        caches[settings.SESSION_CACHE_ALIAS].delete_many([store.cache_key_prefix + key for key in session_keys])
        return
    for session_key in session_keys:
        store(session_key=session_key).delete()


def user_sign_out_everywhere(user: AbstractBaseUser) -> list[tuple[int, str]]:
    """End every login session of `user`, including the IdP's own browser sessions."""
    with transaction.atomic():
        ended = login_sessions_end(LoginSession.objects.filter(user=user))
    idp_sessions_delete(ended.session_keys)
    return ended.deliveries


#: People signed out per transaction by people_sign_out_everywhere.
PEOPLE_PER_TRANSACTION = 500


def people_sign_out_everywhere(user_ids: list[int]) -> int:
    """An administrator's sign-out of many people: their login sessions and tokens end now, their
    IdP browser sessions are deleted, and the back-channel logouts are left to the worker (queued
    in Redis, recorded in the database); returns how many deliveries were queued.

    Never posts to a site, and costs a fixed number of queries per PEOPLE_PER_TRANSACTION people,
    however many sessions, tokens and sites they have.
    """
    queued = 0
    for start in range(0, len(user_ids), PEOPLE_PER_TRANSACTION):
        people = user_ids[start : start + PEOPLE_PER_TRANSACTION]
        with transaction.atomic():
            ended = login_sessions_end(LoginSession.objects.filter(user_id__in=people))
            jobs = backchannel.record_for_the_worker(ended.clients, ended.deliveries)
        idp_sessions_delete(ended.session_keys)
        backchannel.enqueue_jobs(jobs)  # once committed: the worker must find the rows
        queued += len(ended.deliveries)
    return queued


#: `acr` values (OIDC Core 2): "1" a password alone, "2" a password and a second factor.
ACR_PASSWORD = "1"  # noqa: S105 - an acr value, not a password
ACR_TWO_FACTOR = "2"


def acr_of(amr: list[str]) -> str:
    return ACR_TWO_FACTOR if len(set(amr)) > 1 else ACR_PASSWORD
