"""The end-session endpoint (OIDC RP-Initiated Logout 1.0), on the toolkit's view.

Changes:
- A `post_logout_redirect_uri` the client has not registered does not stop the sign-out. The
  person asked to sign out, so they are signed out; they are just not sent to an address
  nobody vouched for, and the page says so (400).
- An unknown `client_id` is a 400 page (invalid_request), not a server error.
- The `id_token_hint` is read by `provider.id_token_hint`: whatever a client sends, it is
  either this IdP's ID token (signature, issuer, and audience when `client_id` is given) or a
  400 page; an expired one is accepted (section 2: the hint may have expired).
- Without an `id_token_hint`, a known `client_id` with `logout_hint` set to the `sid` of this
  browser's login session (one the client got tokens in) counts as one for the signed-in
  person: the clients keep no ID token in their sessions. Any other `logout_hint` is ignored:
  the person is asked, as without a hint.
"""

from __future__ import annotations

import hmac
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
from provider.login_sessions import SID_SESSION_KEY, active
from provider.models import Account, LoginSessionClient
from provider.selectors import subject_uuid

#: Longer than any sid this IdP issues (43 characters); a longer logout_hint is no hint.
MAX_LOGOUT_HINT_LENGTH = 128


class EndSessionView(RPInitiatedLogoutView):
    refused_redirect_uri: str | None = None

    def _application(self, client_id: str):
        """The client named `client_id`, read once per request; None when there is no such client."""
        cache = self.__dict__.setdefault("_applications", {})
        if client_id not in cache:
            known = "\x00" not in client_id  # a NUL character: no such client (PostgreSQL could not look it up)
            cache[client_id] = get_application_model().objects.filter(client_id=client_id).first() if known else None
        return cache[client_id]

    def validate_logout_request_user(self, id_token_hint, client_id):
        """The hint's client and person (or None without a hint): what the toolkit's view needs."""
        if not id_token_hint:
            return self._logout_hint_user(client_id)
        try:
            claims = id_token_hint_claims(id_token_hint, issuer=oauth2_settings.oidc_issuer(self.request))
        except HintInvalid as refusal:
            raise InvalidIDTokenError(str(refusal)) from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if client_id and client_id not in audiences:
            raise ClientIdMissmatch()
        if client_id:
            application = self._application(client_id)
        else:
            names = [a for a in audiences if isinstance(a, str)]
            application = get_application_model().objects.filter(client_id__in=names).first()
        account = Account.objects.select_related("user").filter(sub=subject_uuid(claims["sub"])).first()
        if application is None or account is None:
            raise InvalidIDTokenError("id_token_hint names no client or person known here.")
        return SimpleNamespace(application=application, user=account.user)

    def _logout_hint_user(self, client_id):
        """The person signed in here, when `logout_hint` is the sid of this browser's login session.

        A client that keeps no ID token sends `client_id` and, as `logout_hint`, the `sid` of
        the ID token it was given (OIDC RP-Initiated Logout 1.0 section 2: an OP-defined hint).
        It counts as an id_token_hint of that person for that client only when it is this
        browser's live login session and the client got tokens in it; anything else (another
        sid, garbage) is no hint at all, and the person is asked, as without one.
        """
        params = self.request.POST if self.request.method == "POST" else self.request.GET
        hint = params.get("logout_hint")
        if not hint or not client_id or len(hint) > MAX_LOGOUT_HINT_LENGTH or "\x00" in hint:
            return None
        if not self.request.user.is_authenticated:
            return None  # nobody is signed in here: there is nothing to ask about
        sid = self.request.session.get(SID_SESSION_KEY)
        if not isinstance(sid, str) or not hmac.compare_digest(hint.encode(), sid.encode()):
            return None
        application = self._application(client_id)
        login_session = active(sid) if application is not None else None
        if login_session is None or login_session.user_id != self.request.user.pk:
            return None
        if not LoginSessionClient.objects.filter(login_session=login_session, application=application).exists():
            return None  # this client never got tokens in this session: it cannot know its sid
        self.request.idp_login_session = login_session  # the sign-out ends it (provider.signals)
        return SimpleNamespace(application=application, user=self.request.user)

    def get_request_application(self, id_token, client_id):
        if client_id:
            application = self._application(client_id)
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
