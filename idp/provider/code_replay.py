"""Authorization codes are single-use, and a second use revokes what the first one issued.

RFC 6749 section 4.1.2: "If an authorization code is used more than once, the authorization
server MUST deny the request and SHOULD revoke (when possible) all tokens previously issued based
on that authorization code." RFC 9700 section 4.2.4 makes it a must for a stolen code. The code
stays in the database, marked used (GrantUse), until `cleartokens` removes it with the other
expired grants.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from provider.models import GrantUse

logger = logging.getLogger(__name__)
Grant = get_grant_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()


def _revoke(use: GrantUse) -> None:
    """Revoke the refresh token a code gave, with every token rotated out of it since."""
    if use.refresh_token is not None:
        RefreshToken.revoke_family(use.refresh_token.token_family)
        use.refresh_token.revoke()  # a family-less token (older rows): itself and its access token
    if use.access_token_id is not None:
        AccessToken.objects.filter(pk=use.access_token_id).delete()


def code_replayed(*, code: str, application) -> bool:
    """True when `code` was exchanged before: its tokens are revoked now."""
    use = (
        GrantUse.objects.select_related("refresh_token", "access_token", "grant__application")
        .filter(grant__code=code, grant__application=application)
        .first()
    )
    if use is None:
        return False
    logger.warning("An authorization code of %s was used twice: its tokens are revoked", application.client_id)
    _revoke(use)
    return True


def code_use_record(*, code: str, application, refresh_token, access_token) -> bool:
    """Record the first use of `code`; False when it was used already (then all is revoked)."""
    grant = Grant.objects.filter(code=code, application=application).first()
    if grant is None:
        return False
    try:
        with transaction.atomic():
            GrantUse.objects.create(grant=grant, refresh_token=refresh_token, access_token=access_token)
    except IntegrityError:
        # Two exchanges of one code at the same moment: both lose.
        _revoke(GrantUse(refresh_token=refresh_token, access_token_id=getattr(access_token, "pk", None)))
        code_replayed(code=code, application=application)
        return False
    return True
