"""Authorization codes are single-use, and a second use revokes what the first one issued.

RFC 6749 section 4.1.2: "If an authorization code is used more than once, the authorization
server MUST deny the request and SHOULD revoke (when possible) all tokens previously issued based
on that authorization code." RFC 9700 section 4.2.4 makes it a must for a stolen code. The code
stays in the database, marked used (GrantSession.used), until `cleartokens` removes it with the
other expired grants.

The code's GrantSession row is read with the code itself (one query, see the validator), and the
use is recorded by one `UPDATE ... WHERE used IS NULL`: the database lets only one exchange
of a code record it, however many run at once.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from provider.models import GrantSession

logger = logging.getLogger(__name__)
Grant = get_grant_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


def issued_revoke(*, refresh_token, access_token_id: int | None) -> None:
    """Revoke the refresh token a code gave, with every token rotated out of it since."""
    if refresh_token is not None:
        RefreshToken.revoke_family(refresh_token.token_family)
        refresh_token.revoke()  # a family-less token (older rows): itself and its access token
    if access_token_id is not None:
        AccessToken.objects.filter(pk=access_token_id).delete()


def code_replayed(grant_session: GrantSession | None, *, client_id: str) -> bool:
    """True when the code of `grant_session` was exchanged before: its tokens are revoked now."""
    if grant_session is None or grant_session.used is None:
        return False
    logger.warning("An authorization code of %s was used twice: its tokens are revoked", client_id)
    issued_revoke(refresh_token=grant_session.refresh_token, access_token_id=grant_session.access_token_id)
    return True


def code_use_record(*, grant, client_id: str, refresh_token, access_token) -> bool:
    """Record the first use of `grant`'s code; False when it was used already (then all is revoked)."""
    use = {"used": timezone.now(), "refresh_token": refresh_token, "access_token_id": getattr(access_token, "pk", None)}
    if GrantSession.objects.filter(grant_id=grant.pk, used__isnull=True).update(**use):
        return True
    # Not recorded: used already (two exchanges of one code at the same moment: both lose), or
    # the code has no row (issued before rows were written for every code, or deleted since).
    if not GrantSession.objects.filter(grant_id=grant.pk).exists() and Grant.objects.filter(pk=grant.pk).exists():
        try:
            with transaction.atomic():
                GrantSession.objects.create(grant_id=grant.pk, **use)
            return True
        except IntegrityError:
            pass  # another exchange recorded it first
    issued_revoke(refresh_token=refresh_token, access_token_id=use["access_token_id"])
    code_replayed(GrantSession.objects.filter(grant_id=grant.pk).first(), client_id=client_id)
    return False
