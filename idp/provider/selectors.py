"""Reads used by the OIDC claims and the pages."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser

from provider.models import Account


def subject_uuid(sub: str) -> uuid.UUID | None:
    """`sub` as the UUID it must be; None for anything else (never an error to a client)."""
    try:
        return uuid.UUID(sub)
    except (ValueError, TypeError, AttributeError):
        return None


def account_for(user: AbstractBaseUser) -> Account:
    account = getattr(user, "account", None)
    if account is None:
        account, _ = Account.objects.get_or_create(user=user)
    return account


CLAIM_NAMES = ("sub", "preferred_username", "name", "given_name", "family_name", "email", "email_verified")


def user_claims(user: AbstractBaseUser) -> dict[str, object]:
    """The OpenID Connect standard claims of `user` (scopes filter them later)."""
    account = account_for(user)
    return {
        "sub": str(account.sub),
        "preferred_username": user.get_username(),
        "name": user.get_full_name() or user.get_username(),
        "given_name": user.first_name,
        "family_name": user.last_name,
        "email": user.email,
        "email_verified": account.email_verified,
    }
