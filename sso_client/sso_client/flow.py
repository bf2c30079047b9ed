"""The sign-in itself: send the visitor to the IdP, then complete the callback.

Authlib keeps `state`, `nonce` and the PKCE verifier in the Django session under the state's
own key; the session is saved before the redirect leaves (see `start_sign_in`).

Every visitor sent to sign in gets a session, so a pending sign-in must cost little: it is
valid for SSO_CLIENT["SIGN_IN_STATE_SECONDS"], a session holding nothing else expires with it,
and one browser keeps only its newest few. Signing in gives the session its full lifetime.
"""

from __future__ import annotations

import time

from django.contrib.auth import login
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from sso_client.client import identity_provider
from sso_client.conf import sso_settings
from sso_client.session_index import index_session
from sso_client.tokens import SESSION_TOKEN_KEY, store_token
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


#: Pending sign-ins one session keeps: a few tabs may sign in at once, a script cannot pile up more.
PENDING_SIGN_INS_KEPT = 5


def _pending_sign_in_prefix() -> str:
    # Authlib's FrameworkIntegration keeps each pending sign-in as {"data": ..., "exp": ...}
    # under this session key prefix, followed by the state.
    return f"_state_{identity_provider().framework.name}_"


def _forget_old_sign_ins(session: SessionBase, keep: int) -> None:
    """Drop the session's expired pending sign-ins, and all but its `keep` newest."""
    prefix, now, keys = _pending_sign_in_prefix(), time.time(), session.keys()  # a session is not iterable
    newest_first = sorted(
        (key for key in keys if key.startswith(prefix)), key=lambda key: session[key].get("exp", 0), reverse=True
    )
    for position, key in enumerate(newest_first):
        if position >= keep or session[key].get("exp", 0) <= now:
            del session[key]


def _holds_only_sign_ins(session: SessionBase) -> bool:
    prefix, keys = _pending_sign_in_prefix(), session.keys()
    return all(key.startswith(prefix) or key == "_session_expiry" for key in keys)


def start_sign_in(request: HttpRequest, next_path: str | None) -> HttpResponseRedirect:
    idp = identity_provider()
    uri = redirect_uri(request)
    authorization = idp.create_authorization_url(uri)
    _forget_old_sign_ins(request.session, keep=PENDING_SIGN_INS_KEPT - 1)
    if _holds_only_sign_ins(request.session):
        # Nobody is signed in and nothing else is kept: the session need not outlive the sign-in.
        request.session.set_expiry(sso_settings.SIGN_IN_STATE_SECONDS)
    idp.framework.set_state_data(
        request.session,
        authorization["state"],
        {
            "redirect_uri": uri,
            "code_verifier": authorization["code_verifier"],
            "nonce": authorization["nonce"],
            "next": safe_next(next_path),
        },
    )
    # Saved now, not only when the response passes SessionMiddleware: the state must be in
    # Redis before the browser can possibly come back from the IdP.
    request.session.save()
    return HttpResponseRedirect(authorization["url"])


def complete_sign_in(request: HttpRequest) -> str:
    """Exchange the code, check the ID token, sign the person in; return where to go next."""
    from authlib.integrations.base_client import OAuthError
    from joserfc.errors import InvalidKeyIdError, JoseError

    idp = identity_provider()
    if error := request.GET.get("error"):
        # The IdP said no (access_denied, invalid_request…): drop the state it answered.
        if state := request.GET.get("state"):
            idp.framework.clear_state_data(request.session, state)
        raise SignInFailed(f"The identity provider refused the sign-in ({error}).")
    state = request.GET.get("state")
    state_data = idp.framework.get_state_data(request.session, state)
    # Authlib does not look at the expiry it stamped on the state; a stale one is refused here.
    expires = (request.session.get(_pending_sign_in_prefix() + str(state)) or {}).get("exp", 0)
    if not state_data or not request.GET.get("code") or expires < time.time():
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
    request.session.pop(SESSION_TOKEN_KEY, None)  # a sign-in's token replaces the one before, whole
    store_token(request.session, token, sid=sid)  # not the ID token: its claims were read, its sid kept
    # So that a back-channel logout of this IdP session (sid) finds this session.
    index_session(request.session, sid=sid, sub=str(claims["sub"]))
    return state_data["next"]
