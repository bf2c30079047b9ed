"""Writes: enrolling an authenticator app, checking codes, recovery codes, turning it all off.

Built on django-otp's devices, not beside them: a TOTPDevice is the authenticator app (its
`last_t` refuses a code used once, its throttling slows guessing), a StaticDevice holds the
recovery codes (each deleted when used). The admin lists and deletes both through django-otp's
own admin pages.
"""

from __future__ import annotations

import re
from base64 import b32encode
from dataclasses import dataclass
from datetime import timedelta

import segno
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.selectors import totp_device_of

RECOVERY_CODE_COUNT = 10
#: An enrolment not confirmed within this time starts again with a new secret.
ENROLMENT_SECONDS = 30 * 60
TOTP_CODE = re.compile(r"\d{6}")


@dataclass(frozen=True)
class CodeCheck:
    """The answer to a code typed at sign-in."""

    accepted: bool
    #: "otp" (the app's code) or "recovery" (a recovery code) when accepted.
    method: str = ""
    #: When refused because of earlier wrong codes: how long before the next one is looked at.
    wait_seconds: int = 0


def normalised(code: str) -> str:
    """A code as typed ("123 456", "ABCD-EFGH") as stored ("123456", "abcdefgh")."""
    return re.sub(r"[\s-]", "", code).lower()


def totp_device_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """The unconfirmed device the enrolment page shows: the same one while it is fresh, so that
    reloading the page keeps the QR code already scanned; an old one is replaced (its secret may
    have been on a screen for anyone to see)."""
    TOTPDevice.objects.filter(
        user=user, confirmed=False, created_at__lt=timezone.now() - timedelta(seconds=ENROLMENT_SECONDS)
    ).delete()
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing into an app by hand."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as a QR code, SVG markup to put in the page as it is.

    Drawn here by segno: the secret never goes to a QR code service. Only elements and
    presentation attributes, no `style`, so a strict Content-Security-Policy allows it.
    """
    return segno.make(device.config_url, error="m").svg_inline(scale=4, light="#fff", title="QR code")


def totp_device_confirm(*, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm an enrolment with the first code from the app; None if the code is not right.

    On success the device is the person's only authenticator app and they get new recovery
    codes, returned in clear this once (they are to be shown, never stored elsewhere).
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not TOTP_CODE.fullmatch(normalised(code)) or not device.verify_token(normalised(code)):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
        return recovery_codes_replace(user=device.user)


def recovery_codes_replace(*, user: AbstractBaseUser) -> list[str]:
    """New recovery codes; the old ones stop working. Returns them in clear, to show once."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def second_factor_verify(*, user: AbstractBaseUser, code: str) -> CodeCheck:
    """Check a code at sign-in: six digits from the app, or else a recovery code (used up).

    django-otp refuses a TOTP code whose time step was used already (a replay) and, after n
    wrong codes in a row, any code for 2^(n-1) seconds; the caller counts a refusal as a failed
    sign-in too (django-axes), which locks the account out after a few.
    """
    code = normalised(code)
    if TOTP_CODE.fullmatch(code):
        device, method = totp_device_of(user), "otp"
    else:
        device, method = StaticDevice.objects.filter(user=user, confirmed=True).first(), "recovery"
    if device is None or not code:
        return CodeCheck(accepted=False)
    with transaction.atomic():
        # Locked, so that two requests with the same code cannot both pass (last_t, a used token).
        device = type(device).objects.select_for_update().get(pk=device.pk)
        allowed, why = device.verify_is_allowed()
        if not allowed:
            wait = (why["locked_until"] - timezone.now()).total_seconds() if why and "locked_until" in why else 1
            return CodeCheck(accepted=False, wait_seconds=max(1, int(wait + 0.999)))
        if device.verify_token(code):
            return CodeCheck(accepted=True, method=method)
    return CodeCheck(accepted=False)


def two_factor_remove(*, user: AbstractBaseUser) -> None:
    """Forget the person's authenticator apps and recovery codes: the password alone signs in."""
    with transaction.atomic():
        device: Device
        for device in list(devices_for_user(user, confirmed=None)):
            device.delete()
