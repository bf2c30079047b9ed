"""Writes: registering OAuth applications and seeding the demo data."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AbstractApplication, get_application_model

from provider.models import ApplicationLogout
from provider.selectors import account_for

Application = get_application_model()


@dataclass(frozen=True)
class Registered:
    application: AbstractApplication
    client_secret: str | None  # in clear only here, right after creation: it is stored hashed
    changed: bool


@transaction.atomic
def application_register(
    *,
    name: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str] = (),
    backchannel_logout_uri: str = "",
    confidential: bool = True,
    trusted: bool = False,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> Registered:
    """Create an authorization-code application, or bring an existing `client_id` up to date.

    A confidential client gets `client_secret`, or a generated one. Running this twice with the
    same arguments changes nothing, and a secret that already matches is left as it is.
    """
    fields = {
        "name": name,
        "redirect_uris": " ".join(redirect_uris),
        "post_logout_redirect_uris": " ".join(post_logout_redirect_uris),
        "client_type": Application.CLIENT_CONFIDENTIAL if confidential else Application.CLIENT_PUBLIC,
        "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
        "skip_authorization": trusted,
        "algorithm": Application.RS256_ALGORITHM,
    }
    application = Application.objects.filter(client_id=client_id).first() if client_id else None
    secret = None
    if application is None:
        secret = (client_secret or generate_client_secret()) if confidential else ""
        application = Application(**fields, client_secret=secret, **({"client_id": client_id} if client_id else {}))
        changed = ["created"]
    else:
        changed = [key for key, value in fields.items() if getattr(application, key) != value]
        for key in changed:
            setattr(application, key, fields[key])
        if confidential and client_secret and not check_password(client_secret, application.client_secret):
            application.client_secret = secret = client_secret
            changed.append("client_secret")
    if changed:
        application.full_clean(exclude=["user"])
        application.save()

    logout, _ = ApplicationLogout.objects.get_or_create(application=application)
    if logout.backchannel_logout_uri != backchannel_logout_uri:
        logout.backchannel_logout_uri = backchannel_logout_uri
        logout.full_clean(exclude=["application"])
        logout.save()
        changed.append("backchannel_logout_uri")
    return Registered(application, secret or None, changed=bool(changed))


def user_ensure(*, username: str, password: str, email: str, full_name: str, superuser: bool = False) -> bool:
    """Create the user, or reset what differs; True when anything changed.

    The password must pass AUTH_PASSWORD_VALIDATORS, as one set in the admin must: else a
    ValidationError, before anything is written.
    """
    User = get_user_model()
    first_name, _, last_name = full_name.partition(" ")
    wanted = {
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "is_staff": superuser,
        "is_superuser": superuser,
        "is_active": True,
    }
    # Judged against the user as it will be, so that a password too like the name is refused.
    validate_password(password, User(username=username, **wanted))
    user, created = User.objects.get_or_create(username=username)
    changed = [key for key, value in wanted.items() if getattr(user, key) != value]
    for key in changed:
        setattr(user, key, wanted[key])
    if created or not user.check_password(password):
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save()
    account = account_for(user)
    if not account.email_verified:
        account.email_verified = True  # the demo addresses are the operator's own to vouch for
        account.save(update_fields=["email_verified"])
        changed.append("email_verified")
    return created or bool(changed)


def tokens_revoke(*, user, client_id: str | None = None) -> int:
    """Revoke every refresh and access token of `user` (at one client, or all); returns how many grants."""
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model

    refresh_tokens = get_refresh_token_model().objects.filter(user=user, revoked__isnull=True)
    access_tokens = get_access_token_model().objects.filter(user=user)
    if client_id:
        refresh_tokens = refresh_tokens.filter(application__client_id=client_id)
        access_tokens = access_tokens.filter(application__client_id=client_id)
    revoked = 0
    for refresh_token in refresh_tokens:
        refresh_token.revoke()  # also deletes its access token
        revoked += 1
    access_tokens.delete()
    return revoked
