"""The end-session endpoint (OIDC RP-Initiated Logout 1.0), on the toolkit's view.

One change: a `post_logout_redirect_uri` the client has not registered does not stop the
sign-out. The person asked to sign out, so they are signed out; they are just not sent to an
address nobody vouched for, and the page says so (400).
"""

from __future__ import annotations

from django.shortcuts import render
from oauth2_provider.exceptions import InvalidOIDCRedirectURIError
from oauth2_provider.views import RPInitiatedLogoutView


class EndSessionView(RPInitiatedLogoutView):
    refused_redirect_uri: str | None = None

    def validate_post_logout_redirect_uri(self, application, post_logout_redirect_uri):
        try:
            super().validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        except InvalidOIDCRedirectURIError:
            self.refused_redirect_uri = post_logout_redirect_uri

    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        if self.refused_redirect_uri is None:
            return super().do_logout(application, post_logout_redirect_uri, state, token_user)
        super().do_logout(application, None, state, token_user)
        return render(self.request, "provider/signed_out_not_redirected.html", {"application": application}, status=400)
