"""The end-session endpoint (OIDC RP-Initiated Logout 1.0), on the toolkit's view.

Changes:
- A `post_logout_redirect_uri` the client has not registered does not stop the sign-out. The
  person asked to sign out, so they are signed out; they are just not sent to an address
  nobody vouched for, and the page says so (400).
- An unknown `client_id` is a 400 page (invalid_request), not a server error.
- The `id_token_hint` is read by `provider.id_token_hint`: whatever a client sends, it is
  either this IdP's ID token (signature, issuer, and audience when `client_id` is given) or a
  400 page; an expired one is accepted (section 2: the hint may have expired).
"""

from __future__ import annotations

from types import SimpleNamespace

from django.shortcuts import render
from oauth2_provider.exceptions import (
    ClientIdMissmatch,
    InvalidIDTokenError,
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
)
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import RPInitiatedLogoutView

from provider.id_token_hint import HintInvalid, id_token_hint_claims
from provider.models import Account
from provider.selectors import subject_uuid


class EndSessionView(RPInitiatedLogoutView):
    refused_redirect_uri: str | None = None

    def validate_logout_request_user(self, id_token_hint, client_id):
        """The hint's client and person (or None without a hint): what the toolkit's view needs."""
        if not id_token_hint:
            return None
        try:
            claims = id_token_hint_claims(id_token_hint, issuer=oauth2_settings.oidc_issuer(self.request))
        except HintInvalid as refusal:
            raise InvalidIDTokenError(str(refusal)) from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if client_id and client_id not in audiences:
            raise ClientIdMissmatch()
        application = get_application_model().objects.filter(client_id__in=[a for a in audiences if isinstance(a, str)])
        account = Account.objects.select_related("user").filter(sub=subject_uuid(claims["sub"])).first()
        if not application.exists() or account is None:
            raise InvalidIDTokenError("id_token_hint names no client or person known here.")
        return SimpleNamespace(application=application.first(), user=account.user)

    def get_request_application(self, id_token, client_id):
        if client_id:
            # A NUL character: no such client (PostgreSQL could not even look it up).
            known = "\x00" not in client_id
            application = get_application_model().objects.filter(client_id=client_id).first() if known else None
            if application is None:
                raise InvalidOIDCClientError()
            return application
        return id_token.application if id_token else None

    def validate_post_logout_redirect_uri(self, application, post_logout_redirect_uri):
        try:
            super().validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        except InvalidOIDCRedirectURIError:
            self.refused_redirect_uri = post_logout_redirect_uri
            return
        # The toolkit lets any port through on 127.0.0.1 (RFC 8252, for native apps); a web
        # client is sent only to the very URI it registered, as for redirect URIs.
        if (
            post_logout_redirect_uri
            and application.client_type == application.CLIENT_CONFIDENTIAL
            and post_logout_redirect_uri not in application.post_logout_redirect_uris.split()
        ):
            self.refused_redirect_uri = post_logout_redirect_uri

    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        if self.refused_redirect_uri is None:
            return super().do_logout(application, post_logout_redirect_uri, state, token_user)
        super().do_logout(application, None, state, token_user)
        return render(self.request, "provider/signed_out_not_redirected.html", {"application": application}, status=400)
