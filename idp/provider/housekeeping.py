"""Keeping the database from growing forever: expired tokens and codes, old login sessions.

Run by `manage.py housekeeping` (once, or `--every SECONDS` as a service). Every delete works in
batches of short transactions, so sign-ins going on at the same time are never held up for long.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from oauth2_provider.models import clear_expired

from provider.models import LoginSession

logger = logging.getLogger(__name__)

#: How long an ended or expired login session is kept: longer than the back-channel worker's
#: retries (about 20 minutes), which need it to sign their logout tokens.
LOGIN_SESSION_RETENTION = timedelta(days=1)
BATCH_SIZE = 500


def delete_in_batches(queryset: QuerySet, *, batch_size: int = BATCH_SIZE) -> int:
    """Delete what `queryset` selects, `batch_size` rows per transaction; return how many."""
    deleted = 0
    while True:
        batch = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        with transaction.atomic():
            queryset.model.objects.filter(pk__in=batch).delete()
        deleted += len(batch)


def login_sessions_clear(*, now=None) -> int:
    """Delete login sessions that ended or expired more than a retention period ago (with their links)."""
    cutoff = (now or timezone.now()) - LOGIN_SESSION_RETENTION
    return delete_in_batches(LoginSession.objects.filter(Q(ended__lt=cutoff) | Q(expires__lt=cutoff)))


def housekeeping_run() -> dict[str, int]:
    """One round: the toolkit's `cleartokens` (in its own batches), then old login sessions."""
    clear_expired()  # expired access and ID tokens, expired and long-revoked refresh tokens, old codes
    cleared = {"login_sessions": login_sessions_clear()}
    logger.info("Housekeeping: deleted %d old login sessions", cleared["login_sessions"])
    return cleared
