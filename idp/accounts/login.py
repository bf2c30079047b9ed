"""The hook into the sign-in pages, and wrong codes counted as failed sign-ins.

`TwoFactorLoginMixin` goes first in the bases of provider.views.LoginView (and so of the
re-authentication page, its subclass): after the right password, a person who has (or must
have) a second factor is handed to the second step instead of being signed in.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.pending import CODE, ENROL, pending_start
from accounts.selectors import two_factor_enabled, two_factor_required


class TwoFactorLoginMixin:
    """For a LoginView: the password alone signs in only a person without two-factor sign-in.

    Django's LoginView calls form_valid once the form has checked the password (through
    authenticate(), so django-axes saw it); its own form_valid would call login() at once.
    """

    def form_valid(self, form) -> HttpResponse:
        user = form.get_user()
        if two_factor_enabled(user):
            step, url = CODE, reverse("two-factor-verify")
        elif two_factor_required(user):
            step, url = ENROL, reverse("two-factor-enrol")
        else:
            return super().form_valid(form)
        # get_success_url() is LoginView's `next`, already checked to stay on this site.
        pending_start(self.request, user=user, step=step, next_url=self.get_success_url())
        return HttpResponseRedirect(url)


def _axes_installed() -> bool:
    return apps.is_installed("axes")


def sign_in_locked_out(request: HttpRequest, user: AbstractBaseUser) -> bool:
    """Whether django-axes refuses sign-ins to this account (or from this address) right now."""
    if not _axes_installed():
        return False
    from axes.handlers.proxy import AxesProxyHandler

    return AxesProxyHandler.is_locked(request, {"username": user.get_username()})


def locked_out_response(request: HttpRequest, user: AbstractBaseUser) -> HttpResponse:
    """django-axes' lock-out page (429, when to try again), as for a password."""
    from axes.helpers import get_lockout_response

    credentials = {"username": user.get_username()}
    return get_lockout_response(request, None, credentials)


def code_refused(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Count a wrong code as a failed sign-in of the account, as a wrong password is.

    Django's user_login_failed signal is what django-axes listens to; the credentials carry the
    username only. At the limit axes flags the request and its middleware answers with the
    lock-out page instead of ours.
    """
    user_login_failed.send(sender=__name__, credentials={"username": user.get_username()}, request=request)
