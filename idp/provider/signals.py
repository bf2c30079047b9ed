"""Sign-in starts a login session at the IdP; every way of signing out ends it.

`user_logged_out` is sent by Django's logout whatever called it: the IdP's sign-out button,
RP-initiated logout (the end-session endpoint) or the admin's logout.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from provider import backchannel
from provider.login_sessions import SID_SESSION_KEY, active, login_session_end, login_session_start


@receiver(user_logged_in, dispatch_uid="provider.login_session_start")
def start_login_session(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.set_expiry(None)  # a visitor's short session gets a signed-in lifetime
        # A sign-in view that checked more than the password says so on the request.
        login_session_start(session=request.session, user=user, amr=getattr(request, "auth_methods", ["pwd"]))


@receiver(user_logged_out, dispatch_uid="provider.login_session_end")
def end_login_session(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    sid = request.session.get(SID_SESSION_KEY)
    # The end-session endpoint may have read this very login session already (a logout_hint).
    login_session = getattr(request, "idp_login_session", None)
    if login_session is None or login_session.sid != sid:
        login_session = active(sid)
    if login_session is not None:
        backchannel.notify(login_session_end(login_session))
