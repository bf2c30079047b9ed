"""The sign-in itself: send the visitor to the IdP, then complete the callback.

Each started sign-in (`state`, `nonce`, the PKCE verifier, where to go next) is kept under a key
of its own, bound to the browser's session (sso_client.sign_in_states): tabs that start signing
in at once all complete. The session is saved before the redirect leaves (see `start_sign_in`).

Every visitor sent to sign in gets a session, so a pending sign-in must cost little: it is
valid for SSO_CLIENT["SIGN_IN_STATE_SECONDS"], a session holding nothing else expires with it,
and one browser keeps only its newest few. Signing in gives the session its full lifetime.
"""

from __future__ import annotations

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from sso_client import idp_breaker
from sso_client.client import IdentityProviderUnavailable, identity_provider
from sso_client.conf import sso_settings
from sso_client.session_index import index_session
from sso_client.sign_in_states import holds_only_sign_ins
from sso_client.tokens import store_token
from sso_client.users import user_from_claims


class SignInFailed(Exception):
    """The callback cannot complete: `reason` says why, in words fit for the page."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def safe_next(candidate: str | None) -> str:
    """A path on this site to go to after signing in; anything else (another site) is ignored."""
    if (
        candidate
        and candidate.startswith("/")
        and url_has_allowed_host_and_scheme(candidate, allowed_hosts=set(), require_https=False)
    ):
        return candidate
    return sso_settings.LOGIN_REDIRECT_URL


def redirect_uri(request: HttpRequest) -> str:
    return sso_settings.REDIRECT_URI or request.build_absolute_uri(reverse("sso_client:callback"))


def post_logout_redirect_uri(request: HttpRequest) -> str:
    return sso_settings.POST_LOGOUT_REDIRECT_URI or request.build_absolute_uri(reverse("sso_client:signed-out"))


def start_sign_in(request: HttpRequest, next_path: str | None) -> HttpResponseRedirect:
    if idp_breaker.is_open():
        # A call to the IdP timed out or could not connect a moment ago: the browser is not sent
        # there (the callers answer the "unavailable" page).
        raise IdentityProviderUnavailable("the identity provider did not answer a moment ago")
    idp = identity_provider()
    uri = redirect_uri(request)
    authorization = idp.create_authorization_url(uri)
    session = request.session
    if holds_only_sign_ins(session, idp.framework.legacy_prefix):
        # Nobody is signed in and nothing else is kept: the session need not outlive the sign-in.
        session.set_expiry(sso_settings.SIGN_IN_STATE_SECONDS)
    idp.framework.set_state_data(
        session,
        authorization["state"],
        {
            "redirect_uri": uri,
            "code_verifier": authorization["code_verifier"],
            "nonce": authorization["nonce"],
            "next": safe_next(next_path),
        },
    )
    # Saved now, not only when the response passes SessionMiddleware: the session that binds the
    # sign-in to this browser must be in Redis before the browser can possibly come back.
    if session.modified or session.session_key is None:
        session.save()
    return HttpResponseRedirect(authorization["url"])


def complete_sign_in(request: HttpRequest) -> str:
    """Exchange the code, check the ID token, sign the person in; return where to go next."""
    from authlib.integrations.base_client import OAuthError
    from joserfc.errors import InvalidKeyIdError, JoseError

    idp = identity_provider()
    state = request.GET.get("state")
    if error := request.GET.get("error"):
        # The IdP said no (access_denied, invalid_request…): drop the state it answered.
        if state:
            idp.framework.clear_state_data(request.session, state)
        raise SignInFailed(f"The identity provider refused the sign-in ({error}).")
    # Taken (deleted) now: one callback per state, even when two race. An expired one is refused.
    state_data = idp.framework.take_state_data(request.session, state)
    if not state_data or not request.GET.get("code"):
        raise SignInFailed("This sign-in link is not valid here: it was used already, or it expired.")

    metadata = idp.load_server_metadata()
    if (iss := request.GET.get("iss")) and iss != metadata["issuer"]:
        # RFC 9207: the answer must come from the provider the request went to.
        raise SignInFailed("The answer came from another identity provider than the one asked.")
    try:
        token = idp.authorize_access_token(
            request,
            claims_options={
                "iss": {"essential": True, "value": metadata["issuer"]},
                "aud": {"essential": True, "value": sso_settings.CLIENT_ID},
            },
            leeway=sso_settings.CLOCK_SKEW_SECONDS,
        )
    except OAuthError as error:
        raise SignInFailed(f"The identity provider did not accept this sign-in ({error.error}).") from error
    except InvalidKeyIdError as error:  # not in the JWKS, even fetched again (sso_client.client)
        raise SignInFailed("The identity token is signed with a key the identity provider does not publish.") from error
    except JoseError as error:
        raise SignInFailed(f"The identity token could not be verified ({error.error}).") from error
    claims = token.get("userinfo")
    if not claims:
        raise SignInFailed("The identity provider sent no identity token.")

    user = user_from_claims(issuer=metadata["issuer"], claims=claims)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # also rotates the session key
    request.session.set_expiry(None)  # signed in: the site's full session lifetime (SESSION_COOKIE_AGE)
    sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
    # The tokens, under the new session key (the old key's went with it): they replace the ones
    # before, whole. Not the ID token: its claims were read, its sid kept.
    store_token(request.session, token, sid=sid)
    idp.framework.forget_browser_if_idle(request.session)  # unless other tabs' sign-ins are pending
    # So that a back-channel logout of this IdP session (sid) finds this session.
    index_session(request.session, sid=sid, sub=str(claims["sub"]))
    return state_data["next"]
