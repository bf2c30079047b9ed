"""Forms of the two-factor pages; the codes themselves are checked in accounts.services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class CodeForm(forms.Form):
    """A code from the authenticator app (or, at sign-in, a recovery code)."""

    code = forms.CharField(label=_("Code"), max_length=32, strip=True)


class ProofForm(forms.Form):
    """Turning two-factor sign-in off or replacing recovery codes: the app's code or the password."""

    proof = forms.CharField(label=_("A code from your app, or your password"), max_length=4096, strip=False)
