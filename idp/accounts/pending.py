"""The half-signed-in state between the password and the second factor, kept in the session.

After the right password, a person with two-factor sign-in is not signed in yet: no
django.contrib.auth login, so no IdP session and no login session exists. The session notes
only who proved the password (their id, never the password), which authentication backend
said so, where to go afterwards and until when the note is good. The second step (the code,
or a first enrolment when MFA_REQUIRED asks for one) reads it and only then signs the person in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

#: Where the session keeps the note (JSON: strings and numbers only).
PENDING_SESSION_KEY = "_idp_two_factor_pending"
#: The code step: time to open the app and type six digits.
CODE_STEP_SECONDS = 5 * 60
#: A first enrolment: time to install an app, scan the QR code and type its first code.
ENROL_STEP_SECONDS = 15 * 60
CODE, ENROL = "code", "enrol"


@dataclass(frozen=True)
class Pending:
    user: AbstractBaseUser
    backend: str
    next_url: str
    step: str  # CODE or ENROL


def pending_start(request: HttpRequest, *, user: AbstractBaseUser, step: str, next_url: str) -> None:
    """Note that `user` proved their password here and still owes `step`."""
    seconds = ENROL_STEP_SECONDS if step == ENROL else CODE_STEP_SECONDS
    if not request.user.is_authenticated:
        # A visitor's session lives no longer than the note; signing in gives it its full life
        # (provider.signals). A signed-in person re-authenticating keeps theirs, and its key: the
        # login session records that key, to end the browser's session on sign-out everywhere.
        request.session.set_expiry(seconds)
        # A new key, so that one planted in this browser before the password is worth nothing.
        request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user": user._meta.pk.value_to_string(user),
        "backend": user.backend,  # set by authenticate(); login() needs it with several backends
        "next": next_url,
        "step": step,
        "until": time.time() + seconds,
    }


def pending_of(request: HttpRequest, *, step: str) -> Pending | None:
    """The note for `step`, if there is one, it is fresh and its person may still sign in."""
    note = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(note, dict) or note.get("step") != step or note.get("until", 0) < time.time():
        return None
    user = get_user_model()._default_manager.filter(pk=note.get("user"), is_active=True).first()
    if user is None:
        return None
    return Pending(user=user, backend=note["backend"], next_url=note.get("next", ""), step=step)


def pending_next_url(request: HttpRequest) -> str:
    """Where a person whose note ran out was going, to send them back to the sign-in page with it."""
    note = request.session.get(PENDING_SESSION_KEY)
    return note.get("next", "") if isinstance(note, dict) else ""


def pending_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)


def sign_in_with_second_factor(request: HttpRequest, pending: Pending) -> None:
    """The end of a two-factor sign-in: django.contrib.auth's login, saying how it was proved.

    The login session (provider.signals) records amr ["pwd", "otp"] (RFC 8176), so ID tokens
    issued in it carry that amr and acr "2".
    """
    pending_clear(request)
    request.auth_methods = ["pwd", "otp"]
    login(request, pending.user, backend=pending.backend)
