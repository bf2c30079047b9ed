"""Reads: whether a person has, or must have, two-factor sign-in."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice


def totp_device_of(user: AbstractBaseUser) -> TOTPDevice | None:
    """The person's confirmed authenticator app, if they enrolled one."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("-pk").first()


def two_factor_enabled(user: AbstractBaseUser) -> bool:
    """Signing in asks for a code: the person has a confirmed authenticator app."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()


def two_factor_required(user: AbstractBaseUser) -> bool:
    """MFA_REQUIRED says this person may not sign in with a password alone."""
    if settings.MFA_REQUIRED == "all":
        return True
    return settings.MFA_REQUIRED == "staff" and (user.is_staff or user.is_superuser)


def recovery_codes_left(user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
