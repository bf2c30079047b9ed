"""What the IdP knows about a person beyond Django's User: the subject identifier it publishes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Account(models.Model):
    """One per user, created on first need (see `provider.selectors.account_for`).

    `sub` is a random UUID rather than the user's primary key, so that client sites cannot count
    users or guess each other's identifiers, and it never changes when a username does.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account")
    sub = models.UUIDField("subject identifier", default=uuid.uuid4, unique=True, editable=False)
    email_verified = models.BooleanField(
        default=False, help_text="Whether the email address is known to belong to this person."
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.sub})"


class LoginSession(models.Model):
    """One sign-in at the IdP, from one browser: the `sid` of OpenID Connect's logout specs.

    Kept in the database (shared by every IdP replica, surviving restarts) until it ends or
    expires with the browser's session. Records which clients got tokens in it, so that
    signing out notifies each of them and revokes exactly those tokens.
    """

    sid = models.CharField("session id", max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_sessions")
    session_key = models.CharField(max_length=64, help_text="The IdP's own session, in Redis.")
    created = models.DateTimeField(auto_now_add=True)
    # When and how the person last proved who they are in this session (OIDC Core 2: `auth_time`,
    # `amr`): a re-authentication (prompt=login, max_age) updates them, the sid stays.
    auth_time = models.DateTimeField(default=timezone.now)
    amr = models.JSONField("authentication methods", default=list)
    expires = models.DateTimeField()
    ended = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "ended"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.sid[:8]}…)"


class LoginSessionClient(models.Model):
    """A client that received tokens in a login session."""

    login_session = models.ForeignKey(LoginSession, on_delete=models.CASCADE, related_name="clients")
    application = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["login_session", "application"], name="login_session_client_once")
        ]

    def __str__(self) -> str:
        return f"{self.application} in {self.login_session}"


class GrantSession(models.Model):
    """An authorization code's login session (the code exchange has no browser) and its use.

    One row per code, written with the code. The exchange reads it with the code in one query
    (select_related) and marks the code used with one `UPDATE ... WHERE used IS NULL`: of two
    exchanges racing each other only one can, and a second use is recognised as a replay and
    revokes what the first use issued (RFC 6749 section 4.1.2, RFC 9700 section 4.2.4). Codes
    are kept, marked used, until `cleartokens` removes them with the other expired grants.
    """

    grant = models.OneToOneField(settings.OAUTH2_PROVIDER_GRANT_MODEL, on_delete=models.CASCADE)
    # None: the code was issued outside a live login session (it then carries no sid).
    login_session = models.ForeignKey(LoginSession, null=True, on_delete=models.CASCADE)
    used = models.DateTimeField(null=True, blank=True)
    refresh_token = models.ForeignKey(
        settings.OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The access token the exchange issued, by id only: no foreign key, so that deleting an
    # access token (at every refresh) does not have to clear it here first.
    access_token_id = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"grant in {self.login_session}"


class RefreshTokenSession(models.Model):
    """The login session a refresh token belongs to: revoked when that session ends."""

    refresh_token = models.OneToOneField(settings.OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL, on_delete=models.CASCADE)
    login_session = models.ForeignKey(LoginSession, on_delete=models.CASCADE, related_name="refresh_tokens")

    def __str__(self) -> str:
        return f"refresh token in {self.login_session}"


class ApplicationLogout(models.Model):
    """How an application learns that a person signed out (OIDC Back-Channel Logout 1.0)."""

    application = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="logout_settings"
    )
    backchannel_logout_uri = models.URLField(
        "back-channel logout URI",
        blank=True,
        help_text="Where the IdP posts a signed logout token when a person signs out. Empty: not notified.",
    )
    backchannel_logout_session_required = models.BooleanField(
        "requires sid", default=True, help_text="The client needs the session id (sid) in logout tokens."
    )

    class Meta:
        verbose_name = "logout settings"
        verbose_name_plural = "logout settings"

    def __str__(self) -> str:
        return f"Logout settings of {self.application}"


class BackchannelDelivery(models.Model):
    """A back-channel logout the IdP owes a client: one row per (application, login session).

    Written when a delivery is left to the worker (the sign-out's attempt failed, or an
    administrator signed people out), and by the worker after each attempt. It outlives Redis:
    should the retry queue be lost, the rows still say what was not delivered, and the admin's
    "retry now" queues them again. Deleted with its login session (a day after it ended, by
    `manage.py housekeeping`). Holds no token: each attempt signs a fresh one.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # queued for the worker, or waiting out a backoff
        FAILED = "failed", "Failed"  # the worker gave up; "retry now" in the admin
        DELIVERED = "delivered", "Delivered"

    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="backchannel_deliveries"
    )
    login_session = models.ForeignKey(LoginSession, on_delete=models.CASCADE, related_name="backchannel_deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField("last error", max_length=200, blank=True)
    created = models.DateTimeField("signed out", default=timezone.now)
    last_attempt = models.DateTimeField(null=True, blank=True)
    next_attempt = models.DateTimeField(
        null=True, blank=True, help_text="When the worker tries again (pending deliveries)."
    )
    # The worker's job (RQ) that owns the delivery now, or the id shared by the jobs of an
    # administrator's sign-out; "retry now" hands it to a new job.
    job_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "back-channel logout delivery"
        verbose_name_plural = "back-channel logout deliveries"
        constraints = [
            models.UniqueConstraint(fields=["application", "login_session"], name="backchannel_delivery_once")
        ]
        indexes = [models.Index(fields=["status", "application"], name="backchannel_delivery_status")]

    def __str__(self) -> str:
        return f"Back-channel logout to {self.application} ({self.get_status_display().lower()})"
