"""Local users from the IdP's claims: created on first sign-in, updated on every one after.

A person's first sign-in may come as many callbacks at once (tabs, browsers, a retried request),
each finding no local user yet. Only one of them creates it: the others lose on a unique
constraint (the identity's issuer and subject, or the username just chosen), roll their own
attempt back and find the user that won. Two new people who want one username both get a user,
the second a numbered name.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, router, transaction

from sso_client.models import Identity

#: Tries at finding or creating a person's local user: each race lost to another callback costs one.
CREATE_ATTEMPTS = 5


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


def _existing_user(issuer: str, subject: str, fields: dict[str, str]) -> AbstractBaseUser | None:
    """The local user of (issuer, subject) with its profile brought up to date, or None."""
    identity = Identity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is None:
        return None
    user = identity.user
    changed = [name for name, value in fields.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, fields[name])
    if changed:
        user.save(update_fields=changed)
    return user


def _new_user(issuer: str, subject: str, username: str, fields: dict[str, str]) -> AbstractBaseUser:
    """Create the user and its identity together, or neither (IntegrityError when another won)."""
    User = get_user_model()
    # A transaction of its own, or a savepoint inside the caller's: on PostgreSQL a failed statement
    # spoils the transaction it runs in, so only this attempt is rolled back, never the caller's work.
    with transaction.atomic(using=router.db_for_write(Identity)):
        user = User(**{User.USERNAME_FIELD: _free_username(username)}, **fields)
        user.set_unusable_password()  # people only ever sign in through the IdP
        user.save()
        Identity.objects.create(user=user, issuer=issuer, subject=subject)
    return user


def user_from_claims(*, issuer: str, claims: Mapping[str, object]) -> AbstractBaseUser:
    """The local user of `claims["sub"]` at `issuer`, created or brought up to date."""
    subject = str(claims["sub"])
    fields = profile_fields(claims)
    username = str(claims.get("preferred_username") or "")
    for _ in range(CREATE_ATTEMPTS - 1):
        if (user := _existing_user(issuer, subject, fields)) is not None:
            return user
        try:
            return _new_user(issuer, subject, username, fields)
        except IntegrityError:
            # Another callback got there first: of this person (their user is found on the next
            # turn), or of someone else who took the username just chosen (another is chosen).
            continue
    # The last try: a constraint failing even now is an error of its own, not a race.
    return _existing_user(issuer, subject, fields) or _new_user(issuer, subject, username, fields)
