"""Sign-ins counted from the signals Django and axes send, whichever page the person used."""

from __future__ import annotations

import structlog
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from ops import metrics

log = structlog.get_logger(__name__)


@receiver(user_logged_in, dispatch_uid="ops.sign_in_succeeded")
def sign_in_succeeded(sender, request, user, **kwargs) -> None:
    metrics.sign_in_counted("succeeded")
    log.info("signed_in", user_id=user.pk)


@receiver(user_login_failed, dispatch_uid="ops.sign_in_failed")
def sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    """A wrong password or code; axes logs who (provider.lockout). Never the credentials here.

    axes' receiver runs first (axes comes before ops in INSTALLED_APPS) and marks the attempt that
    reaches a limit as locked out, as its backend marks those refused during a lock-out: both are
    answered with the lock-out page.
    """
    metrics.sign_in_counted("locked_out" if getattr(request, "axes_locked_out", False) else "failed")


@receiver(user_locked_out, dispatch_uid="ops.lockout_began")
def lockout_began(sender, request=None, **kwargs) -> None:
    metrics.LOCKOUTS.inc()
