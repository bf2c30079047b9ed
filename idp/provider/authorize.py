"""The authorization endpoint: the toolkit's view, with OpenID Connect's sign-in parameters honoured.

OIDC Core 3.1.2.1 lets a client say how the person must have signed in:

- `prompt=none`: no page may be shown. Signed in (and consented): a code; otherwise the browser
  goes back to the client with `error=login_required` or `consent_required` (3.1.2.6).
- `prompt=login` (and `select_account`): the OP MUST ask for the password again, even when
  signed in; `max_age=N`: the same when the last sign-in is older than N seconds.
- `id_token_hint`: an ID token this IdP issued; when it names another person than the one
  signed in, that person must sign in (or, with prompt=none, `login_required`).

Nothing here is decided before the toolkit (oauthlib) has checked the client and its redirect
URI, so every error that goes back to a client goes to a registered URI; anything else is an
error page (400). A re-authentication goes through `ReauthenticateView` and comes back to the
same authorization request; a marker in the session says "asked for and done" so that a
`max_age` shorter than the sign-in itself cannot loop.
"""

from __future__ import annotations

import hashlib
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView as ToolkitAuthorizationView
from oauthlib.common import add_params_to_uri

from provider.id_token_hint import HintInvalid, id_token_hint_claims
from provider.login_sessions import SID_SESSION_KEY, active
from provider.selectors import account_for
from provider.views import LoginView

#: The session's note of a re-authentication asked for: which request, and since when.
REAUTH_SESSION_KEY = "_idp_reauth"
#: How long a visitor's session lives before they have signed in.
ANONYMOUS_SESSION_SECONDS = 600
PKCE_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
SUPPORTED_PROMPTS = {"none", "login", "consent", "select_account"}
#: Parameters read here, which must appear once at most (RFC 6749 3.1: "MUST NOT be included
#: more than once"); oauthlib checks its own (client_id, redirect_uri, state, scope…).
SINGLE_PARAMETERS = ("prompt", "max_age", "id_token_hint", "login_hint", "nonce", "code_challenge")


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


class AuthorizationView(ToolkitAuthorizationView):
    _validated: tuple | None = None

    def validate_authorization_request(self, request: HttpRequest):
        # Checked here first, then again by the toolkit's get(): the same answer, worked out once.
        if self._validated is None:
            self._validated = super().validate_authorization_request(request)
        return self._validated

    # A HEAD (a link checker, a prefetch) must not issue a code: it gets 405.
    http_method_names = ["get", "post", "options"]

    def error_response(self, error, application, **kwargs) -> HttpResponse:
        """The toolkit's error answer, with `iss` on a redirect back to the client (RFC 9207 2)."""
        response = super().error_response(error, application, **kwargs)
        if response.status_code in (301, 302, 303, 307) and "iss" not in query_of(response["Location"]):
            response["Location"] = add_params_to_uri(
                response["Location"], [("iss", oauth2_settings.oidc_issuer(self.request))]
            )
        return response

    def handle_no_permission(self) -> HttpResponse:
        # Not signed in: the same judgement as for a signed-in person (prompt=none answers
        # login_required to the client; anything else goes to the sign-in page).
        if self.request.method == "GET":
            return self.get(self.request)
        return super().handle_no_permission()

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        # The client oauthlib loaded to validate the request (the toolkit would read it again).
        application = getattr(credentials.get("request"), "client", None)
        if application is None or application.client_id != credentials["client_id"]:
            application = get_application_model().objects.get(client_id=credentials["client_id"])
        redirect_uri, state = credentials["redirect_uri"], credentials.get("state")

        def to_client(error: str, description: str) -> HttpResponse:
            """An authentication error response (OIDC Core 3.1.2.6) with `iss` (RFC 9207)."""
            params = {"error": error, "error_description": description, "iss": oauth2_settings.oidc_issuer(request)}
            if state:
                params["state"] = state
            separator = "&" if "?" in redirect_uri else "?"
            return self.redirect(f"{redirect_uri}{separator}{urlencode(params)}", application)

        for name in SINGLE_PARAMETERS:
            if len(request.GET.getlist(name)) > 1:
                return to_client("invalid_request", f"{name} must not be repeated.")
        prompt = set(request.GET.get("prompt", "").split())
        if unknown := prompt - SUPPORTED_PROMPTS:
            return to_client("invalid_request", f"Unsupported prompt value: {' '.join(sorted(unknown))[:40]}.")
        challenge = request.GET.get("code_challenge", "")
        if request.GET.get("code_challenge_method") == "S256" and not PKCE_S256_CHALLENGE.fullmatch(challenge):
            # RFC 7636 4.2: BASE64URL of a SHA-256, 43 characters; no verifier could ever match another.
            return to_client("invalid_request", "code_challenge is not an S256 challenge.")
        max_age = request.GET.get("max_age")
        if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 9):
            return to_client("invalid_request", "max_age must be a whole number of seconds.")
        hinted_sub = None
        if hint := request.GET.get("id_token_hint"):
            try:
                hinted_sub = id_token_hint_claims(
                    hint, issuer=oauth2_settings.oidc_issuer(request), client_id=application.client_id
                )["sub"]
            except HintInvalid as refusal:
                return to_client("invalid_request", str(refusal))

        login_session = active(request.session.get(SID_SESSION_KEY)) if request.user.is_authenticated else None
        request.idp_login_session = login_session  # handed to the code (provider.oauth2_backends)
        # Who is signed in, by `sub`: asked only to compare with an id_token_hint's.
        current_sub = str(account_for(request.user).sub) if login_session and hinted_sub is not None else None
        reauthenticated = self._reauthentication_done(login_session)
        must_sign_in = login_session is None or (
            not reauthenticated
            and (
                bool(prompt & {"login", "select_account"})
                or (max_age is not None and time.time() - login_session.auth_time.timestamp() > int(max_age))
                or (hinted_sub is not None and hinted_sub != current_sub)
            )
        )
        if must_sign_in:
            if "none" in prompt:
                return to_client("login_required", "The person must sign in.")
            return self._send_to_sign_in(signed_in=login_session is not None)
        if hinted_sub is not None and hinted_sub != current_sub:
            # Signed in again, as someone else than the hint names (OIDC Core 3.1.2.1).
            return to_client("login_required", "The signed-in person is not the one id_token_hint names.")
        if "none" in prompt and not self._consented(application, scopes):
            return to_client("consent_required", "The person has not allowed this application yet.")
        return super().get(request, *args, **kwargs)

    def handle_prompt_login(self) -> HttpResponse:
        # The toolkit's own handling sends a signed-in person to the login page, which (as it
        # should for a plain visit) sends them straight back: ask for the password instead.
        return self._send_to_sign_in(signed_in=self.request.user.is_authenticated)

    # --- re-authentication ------------------------------------------------------------------------
    def _request_digest(self) -> str:
        """This authorization request, whatever its prompt, as a short fingerprint."""
        items = sorted((key, value) for key, value in self.request.GET.lists() if key != "prompt")
        return hashlib.sha256(repr(items).encode()).hexdigest()[:32]

    def _reauthentication_done(self, login_session) -> bool:
        """Whether this very request sent the person to sign in, and they since did."""
        asked = self.request.session.get(REAUTH_SESSION_KEY)
        if not asked or login_session is None or asked.get("request") != self._request_digest():
            return False
        del self.request.session[REAUTH_SESSION_KEY]
        return login_session.auth_time.timestamp() >= asked.get("at", 0)

    def _send_to_sign_in(self, *, signed_in: bool) -> HttpResponse:
        if signed_in or "max_age" in self.request.GET:
            # (A visitor not signed in needs the note only for max_age: a plain visit to the
            # authorization endpoint stores no session.) Short-lived until they do sign in.
            if not signed_in:
                self.request.session.set_expiry(ANONYMOUS_SESSION_SECONDS)
            self.request.session[REAUTH_SESSION_KEY] = {"request": self._request_digest(), "at": time.time()}
        # Back to this request without `login`/`select_account`: they are satisfied by then.
        query = self.request.GET.copy()
        if remaining := " ".join(sorted(set(query.get("prompt", "").split()) - {"login", "select_account"})):
            query["prompt"] = remaining
        else:
            query.pop("prompt", None)
        next_url = f"{self.request.path}?{query.urlencode()}"
        login_url = reverse("reauthenticate" if signed_in else "login")
        return redirect_to_login(next_url, login_url)

    def _consented(self, application, scopes: list[str]) -> bool:
        if application.skip_authorization:
            return True
        tokens = get_access_token_model().objects.filter(
            user=self.request.user, application=application, expires__gt=timezone.now()
        )
        return any(token.allow_scopes(scopes) for token in tokens)


class ReauthenticateView(LoginView):
    """The sign-in page for someone already signed in, asked for their password again.

    Signing in here as the same person refreshes the login session's `auth_time` and keeps its
    sid; signing in as someone else first signs the current person out everywhere they were.
    """

    redirect_authenticated_user = False

    def form_valid(self, form):
        asked = self.request.session.get(REAUTH_SESSION_KEY)
        if self.request.user.is_authenticated and form.get_user().pk != self.request.user.pk:
            logout(self.request)  # ends the current login session, with back-channel logout
        response = super().form_valid(form)
        if asked:  # a new person's session starts empty: keep the note for the authorization
            self.request.session[REAUTH_SESSION_KEY] = asked
        return response
