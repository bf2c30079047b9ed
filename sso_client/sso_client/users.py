"""Local users from the IdP's claims: created on first sign-in, updated on every one after."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from sso_client.models import Identity


def _free_username(wanted: str) -> str:
    User = get_user_model()
    wanted = (wanted or "user")[: User._meta.get_field(User.USERNAME_FIELD).max_length - 8]
    candidate, n = wanted, 1
    while User._default_manager.filter(**{User.USERNAME_FIELD: candidate}).exists():
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def profile_fields(claims: Mapping[str, object]) -> dict[str, str]:
    return {
        "email": str(claims.get("email") or ""),
        "first_name": str(claims.get("given_name") or "")[:150],
        "last_name": str(claims.get("family_name") or "")[:150],
    }


def user_from_claims(*, issuer: str, claims: Mapping[str, object]) -> AbstractBaseUser:
    """The local user of `claims["sub"]` at `issuer`, created or brought up to date."""
    subject = str(claims["sub"])
    fields = profile_fields(claims)
    identity = Identity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is not None:
        user = identity.user
        changed = [name for name, value in fields.items() if getattr(user, name) != value]
        for name in changed:
            setattr(user, name, fields[name])
        if changed:
            user.save(update_fields=changed)
        return user

    User = get_user_model()
    try:
        with transaction.atomic():
            user = User(**{User.USERNAME_FIELD: _free_username(str(claims.get("preferred_username") or ""))}, **fields)
            user.set_unusable_password()  # people only ever sign in through the IdP
            user.save()
            Identity.objects.create(user=user, issuer=issuer, subject=subject)
    except IntegrityError:
        # Two first sign-ins of one person at once: the other request created the identity.
        return Identity.objects.select_related("user").get(issuer=issuer, subject=subject).user
    return user
