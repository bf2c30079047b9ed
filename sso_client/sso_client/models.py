"""Who a local user is at the identity provider: the (issuer, subject) pair that never changes."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Identity(models.Model):
    """Links a local user to the IdP's `sub`. Users are found by this, never by username."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique_subject")]

    def __str__(self) -> str:
        return f"{self.user} ({self.subject} at {self.issuer})"
