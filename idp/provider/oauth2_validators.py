"""django-oauth-toolkit's validator, extended with this IdP's claims and redirect-URI rule."""

from __future__ import annotations

from oauth2_provider.models import get_grant_model, redirect_to_uri_allowed
from oauth2_provider.oauth2_validators import OAuth2Validator as ToolkitOAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from provider.code_replay import code_replayed, code_use_record
from provider.login_sessions import (
    acr_of,
    active,
    grant_link,
    refresh_token_link,
    sid_of_grant,
    sid_of_refresh_token,
)
from provider.oauth2_backends import NUL
from provider.selectors import CLAIM_NAMES, user_claims


def grant_problem(request) -> str | None:
    """Why the grant could not keep what this authorization request asks for, if it could not.

    PostgreSQL refuses a NUL character in text and a value longer than its column (SQLite took
    both): checked here, such a request is an invalid_request sent back to the client, not a 500.
    """
    nonce = getattr(request, "nonce", None) or ""
    longest = get_grant_model()._meta.get_field("nonce").max_length
    if len(nonce) > longest:
        return f"nonce must be at most {longest} characters."
    stored = [nonce, request.redirect_uri, request.code_challenge, request.code_challenge_method]  # claims: JSON
    stored += [*(request.scopes or []), *(getattr(request, "resource", None) or [])]
    if any(NUL in str(value) for value in stored if value):
        return "A parameter holds a NUL character."
    return None


class OAuth2Validator(ToolkitOAuth2Validator):
    # Which scope releases which claim (OIDC Core 5.4); `sub` goes with `openid`.
    oidc_claim_scope = {
        **ToolkitOAuth2Validator.oidc_claim_scope,
        "preferred_username": "profile",
        "email_verified": "email",
        "sid": "openid",
    }

    def get_additional_claims(self, request) -> dict[str, object]:
        # Replaces the toolkit's `sub` (the database id) with the account's opaque UUID, and adds
        # the IdP session id to ID tokens (OIDC Back-Channel Logout 1.0, section 2.1).
        claims = user_claims(request.user)
        if sid := getattr(request, "sid", None):
            claims["sid"] = sid
        return claims

    # --- the login session (sid) follows the code, then the refresh tokens -----------------------
    def _create_authorization_code(self, request, code, expires=None):
        if problem := grant_problem(request):
            raise errors.InvalidRequestError(description=problem, request=request)  # back to the client
        grant = super()._create_authorization_code(request, code, expires)
        if sid := getattr(request, "sid", None):
            grant_link(sid=sid, grant=grant)
        return grant

    def _load_application(self, client_id, request):
        """No client for a client id holding a NUL character (from HTTP Basic credentials, say):
        PostgreSQL could not even look it up."""
        if client_id and NUL in client_id:
            return None
        return super()._load_application(client_id, request)

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if code_replayed(code=code, application=client):
            return False  # invalid_grant; what the first use issued is revoked
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if valid:
            request.sid = sid_of_grant(code)
        return valid

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        """Mark the code used instead of deleting it, so that a replay can be told (see GrantUse)."""
        if not code_use_record(
            code=code,
            application=request.client,
            refresh_token=getattr(request, "issued_refresh_token", None),
            access_token=getattr(request, "issued_access_token", None),
        ):
            raise errors.InvalidGrantError(request=request)

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        access_token = super()._create_access_token(expires, request, token, source_refresh_token)
        request.issued_access_token = access_token
        return access_token

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if valid:
            request.sid = sid_of_refresh_token(request.refresh_token_instance)
        return valid

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh_token = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        request.issued_refresh_token = refresh_token
        if sid := getattr(request, "sid", None):
            refresh_token_link(sid=sid, refresh_token=refresh_token)
        return refresh_token

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs) -> bool:
        """Exact string match for confidential clients (RFC 9700 2.1, OIDC Core 3.1.2.1).

        The toolkit lets any port through for 127.0.0.1 redirect URIs (RFC 8252 7.3), which is
        meant for native apps on ephemeral ports. A web client's code must go to the very URI
        it registered, so that exemption stays for public clients only.
        """
        client = request.client
        if client.client_type == client.CLIENT_CONFIDENTIAL:
            return redirect_uri in client.redirect_uris.split()
        return redirect_to_uri_allowed(redirect_uri, client.redirect_uris.split())

    # --- who is signed in, and how: decided by the authorization view -----------------------------
    # oauthlib asks these for prompt=none and id_token_hint. provider.authorize.AuthorizationView
    # has settled both before oauthlib runs (it answers login_required, consent_required or sends
    # the person to sign in), so by the time they are asked, the answer is yes.
    def validate_silent_login(self, request) -> bool:
        return True

    def validate_silent_authorization(self, request) -> bool:
        return True

    def validate_user_match(self, id_token_hint, scopes, claims, request) -> bool:
        return True

    def validate_user(self, username, password, client, request, *args, **kwargs) -> bool:
        """Passwords are checked by the login form only, behind its lock-out: never here."""
        return False

    def get_id_token_dictionary(self, token, token_handler, request):
        """`auth_time`, `amr` and `acr` of the login session the tokens were issued in (OIDC Core 2).

        The toolkit takes `auth_time` from the person's last sign-in anywhere; what counts is when
        they proved who they are in *this* browser session.
        """
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        if login_session := active(getattr(request, "sid", None)):
            claims["auth_time"] = int(login_session.auth_time.timestamp())
            claims["amr"] = login_session.amr
            claims["acr"] = acr_of(login_session.amr)
        return claims, expiration_time

    def get_discovery_claims(self, request) -> list[str]:
        # The toolkit lists only `sub` when claims depend on the request, as ours do.
        return [*CLAIM_NAMES, "sid", "auth_time", "amr", "acr"]
