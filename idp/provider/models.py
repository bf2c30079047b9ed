"""What the IdP knows about a person beyond Django's User: the subject identifier it publishes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


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
