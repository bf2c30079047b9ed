"""django-oauth-toolkit's validator, extended with this IdP's claims and redirect-URI rule."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from jwcrypto import jwt
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
    redirect_to_uri_allowed,
    refresh_token_expire_timedelta,
)
from oauth2_provider.oauth2_validators import OAuth2Validator as ToolkitOAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors, utils

from provider.code_replay import code_replayed, code_use_record
from provider.compiled_queries import CompiledQuery
from provider.login_sessions import acr_of, active, grant_link, is_active, refresh_token_link
from provider.oauth2_backends import NUL
from provider.selectors import CLAIM_NAMES, user_claims
from provider.signing import key_id, signing_key, signing_pem

Grant = get_grant_model()
AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Application = get_application_model()

# The lookups every token request makes, compiled to SQL once per process (provider.compiled_queries).
# The placeholders are values no client id, code or SHA-256 checksum can be.
APPLICATION_BY_CLIENT_ID = CompiledQuery(
    Application, lambda client_id: Application.objects.filter(client_id=client_id)[:1], "\x01client_id"
)
# A code with its person, their account, its use (replay) and its login session (sid, auth_time).
GRANT_BY_CODE = CompiledQuery(
    Grant,
    lambda code: Grant.objects.select_related("user__account", "grantsession__login_session").filter(code=code)[:1],
    "\x01code",
)
# userinfo's claims need the account (`sub`): read with the token, not after it.
ACCESS_TOKEN_BY_CHECKSUM = CompiledQuery(
    AccessToken,
    lambda checksum: (
        AccessToken.objects.select_related("application", "user__account")
        .filter(token_checksum=checksum)
        .order_by("pk")[:1]
    ),
    "\x01checksum",
)
# Several rows may share a checksum (uniqueness is (token_checksum, revoked)): the unrevoked row
# first, otherwise the most recently revoked one.
REFRESH_TOKEN_BY_CHECKSUM = CompiledQuery(
    RefreshToken,
    lambda checksum: (
        RefreshToken.objects.filter(token_checksum=checksum)
        .select_related("access_token", "user__account", "refreshtokensession__login_session")
        .order_by(F("revoked").desc(nulls_first=True))[:1]
    ),
    "\x01checksum",
)


def grant_problem(request) -> str | None:
    """Why the grant could not keep what this authorization request asks for, if it could not.

    PostgreSQL refuses a NUL character in text and a value longer than its column (SQLite took
    both): checked here, such a request is an invalid_request sent back to the client, not a 500.
    """
    nonce = getattr(request, "nonce", None) or ""
    longest = Grant._meta.get_field("nonce").max_length
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
    # oauthlib asks about the code many times in one exchange (scopes, the client's code, the
    # PKCE challenge and method, the redirect URI, the nonce, RFC 8707 resources, invalidation):
    # the toolkit answers each with a query. Here the code is read once, with its person, their
    # account, its GrantSession row (replay) and login session (sid, auth_time), and kept on
    # the request.
    def _grant(self, request, code):
        cached = getattr(request, "idp_grant", None)
        if cached is None or cached[0] != code:
            grant = GRANT_BY_CODE.first(code) if code and NUL not in code else None
            cached = request.idp_grant = (code, grant)
        return cached[1]

    def _client_grant(self, request, code, client):
        grant = self._grant(request, code)
        return grant if grant is not None and client is not None and grant.application_id == client.pk else None

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        grant = self._grant(request, code)
        return utils.scope_to_list(grant.scope) if grant is not None and grant.scope else []

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = self._grant(request, code)
        return (grant.nonce or None) if grant is not None else None

    def get_code_challenge(self, code, request):
        grant = self._client_grant(request, code, request.client)
        return (grant.code_challenge or None) if grant is not None else None

    def get_code_challenge_method(self, code, request):
        grant = self._client_grant(request, code, request.client)
        return (grant.code_challenge_method or None) if grant is not None else None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        grant = self._client_grant(request, code, client)
        return grant is not None and grant.redirect_uri_allowed(redirect_uri)

    def _create_authorization_code(self, request, code, expires=None):
        if problem := grant_problem(request):
            raise errors.InvalidRequestError(description=problem, request=request)  # back to the client
        grant = super()._create_authorization_code(request, code, expires)
        # The authorization view hands over the login session it already read; else it is looked up.
        login_session = getattr(request, "login_session", None)
        sid = getattr(request, "sid", None)
        if login_session is None or login_session.sid != sid:
            login_session = active(sid)
        grant_link(grant=grant, login_session=login_session)
        return grant

    def _load_application(self, client_id, request):
        """No client for a client id holding a NUL character (from HTTP Basic credentials, say):
        PostgreSQL could not even look it up."""
        if client_id and NUL in client_id:
            return None
        if client_id and request.client is None:
            # Found here, the toolkit takes it as its cached client; not found, it looks again.
            request.client = APPLICATION_BY_CLIENT_ID.first(client_id)
        return super()._load_application(client_id, request)

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        """The toolkit's checks, on the code read once; a code used before revokes what it gave."""
        grant = self._client_grant(request, code, client)
        if grant is None:
            return False
        grant_session = getattr(grant, "grantsession", None)
        if code_replayed(grant_session, client_id=client.client_id):
            return False  # invalid_grant; what the first use issued is revoked
        if grant.is_expired():
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            request.claims = json.loads(grant.claims)
        login_session = grant_session.login_session if grant_session is not None else None
        request.login_session = login_session
        request.sid = login_session.sid if login_session is not None else None
        return True

    def _check_and_set_request_resource(self, request):
        # The toolkit reads the code again for its RFC 8707 resources: not when neither the code
        # nor the token request names any (the answer is then no resource, with nothing to check).
        if request.grant_type == "authorization_code" and not getattr(request, "resource", None):
            grant = self._client_grant(request, request.code, request.client)
            if grant is not None and not grant.resource:
                request.resource = []
                return
        super()._check_and_set_request_resource(request)

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        """Mark the code used instead of deleting it, so that a replay can be told (see GrantSession)."""
        grant = self._client_grant(request, code, request.client)
        if grant is None or not code_use_record(
            grant=grant,
            client_id=request.client.client_id,
            refresh_token=getattr(request, "issued_refresh_token", None),
            access_token=getattr(request, "issued_access_token", None),
        ):
            raise errors.InvalidGrantError(request=request)

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        """The toolkit's, with the ID token just signed taken from the request: the toolkit
        verifies the JWT it has just made and reads its client and row back (two queries)."""
        id_token = None
        if token.get("id_token"):
            id_token = getattr(request, "idp_id_token", None) or self._load_id_token(token["id_token"])
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),  # RFC 8707
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        request.issued_access_token = access_token
        return access_token

    def _load_access_token(self, token):
        return ACCESS_TOKEN_BY_CHECKSUM.first(hashlib.sha256(token.encode("utf-8")).hexdigest())

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """The toolkit's checks (oauth2_provider 3.4, kept in step with it), on one query that
        also reads the person, their account and the token's login session."""
        rt = REFRESH_TOKEN_BY_CHECKSUM.first(hashlib.sha256(refresh_token.encode("utf-8")).hexdigest())
        if not rt:
            return False
        if rt.revoked is not None:
            # A rotated-out or revoked token: refused; used again outside the grace period (or
            # never superseded, i.e. revoked on purpose), it revokes its whole family.
            grace_expired = rt.revoked <= timezone.now() - timedelta(
                seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS
            )
            if grace_expired or not AccessToken.objects.filter(source_refresh_token=rt).exists():
                if oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION and rt.token_family:
                    RefreshToken.revoke_family(rt.token_family)
                return False
        else:
            if rt.access_token is None:
                return False  # an orphan: nothing left to refresh against
            expire_delta = refresh_token_expire_timedelta()
            if expire_delta and rt.access_token.expires + expire_delta <= timezone.now():
                return False
        request.user = rt.user
        request.refresh_token = refresh_token
        request.refresh_token_instance = rt
        if client is None or rt.application_id != client.pk:
            return False
        rt.application = client  # the same row: no second read of it
        link = getattr(rt, "refreshtokensession", None)
        request.login_session = link.login_session if link is not None else None
        request.sid = request.login_session.sid if request.login_session is not None else None
        return True

    def _save_bearer_token(self, token, request, *args, **kwargs):
        """A refresh with rotation in a fixed handful of queries; anything else as the toolkit does.

        The toolkit locks the old refresh token (SELECT ... FOR UPDATE, twice), looks for an
        access token already minted from it, then revokes it row by row. Here one
        `UPDATE ... WHERE revoked IS NULL` both locks and revokes it: only the request whose
        UPDATE changed the row mints the new pair. A request that lost that race (the token
        was rotated by a concurrent request since it was read) takes the toolkit's own path,
        which hands back what the winner minted, exactly as before.
        """
        rt = getattr(request, "refresh_token_instance", None)
        if not (
            request.grant_type == "refresh_token"
            and token.get("refresh_token")
            and "scope" in token
            and self.rotate_refresh_token(request)
            and isinstance(rt, RefreshToken)
        ):
            return super()._save_bearer_token(token, request, *args, **kwargs)
        if rt.revoked is not None:  # rotated out within the grace period (validate_refresh_token)
            return self._reissue_lost_pair(token, request, rt)
        self._check_and_set_request_resource(request)  # the refresh token's own resources: no query
        now = timezone.now()
        expires = now + timedelta(seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS))
        old_access_token_id = rt.access_token_id
        revoked = RefreshToken.objects.filter(pk=rt.pk, revoked__isnull=True).update(
            revoked=now, updated=now, access_token=None
        )
        if not revoked:
            return super()._save_bearer_token(token, request, *args, **kwargs)
        rt.revoked, rt.access_token = now, None
        if old_access_token_id is not None:
            # RefreshToken.revoke() deletes the access token; the one row pointing at it (this
            # refresh token, a one-to-one) was cleared just above, so nothing is left to update.
            AccessToken.objects.filter(pk=old_access_token_id)._raw_delete(AccessToken.objects.db)
        access_token = self._create_access_token(expires, request, token, source_refresh_token=rt)
        self._create_refresh_token(request, token["refresh_token"], access_token, rt)

    def _reissue_lost_pair(self, token, request, rt) -> None:
        """A rotated-out refresh token presented again within REFRESH_TOKEN_GRACE_PERIOD_SECONDS:
        the client never received the answer of its rotation (a timeout, a crash, Redis lost).

        Tokens are stored as checksums only, so that answer cannot be given again; instead the
        pair it held is revoked (the client never had it) and a new pair is minted from the same
        refresh token, in the same family. Whoever presents the revoked pair's refresh token
        later, the client or a thief, is refused and revokes the whole family.
        """
        self._check_and_set_request_resource(request)
        now = timezone.now()
        expires = now + timedelta(seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS))
        with transaction.atomic():
            lost = list(AccessToken.objects.select_for_update().filter(source_refresh_token=rt))
            RefreshToken.objects.filter(access_token__in=lost).update(revoked=now, updated=now, access_token=None)
            AccessToken.objects.filter(pk__in=[access_token.pk for access_token in lost]).delete()
            access_token = self._create_access_token(expires, request, token, source_refresh_token=rt)
            self._create_refresh_token(request, token["refresh_token"], access_token, rt)

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh_token = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        request.issued_refresh_token = refresh_token
        refresh_token_link(
            refresh_token=refresh_token,
            login_session=getattr(request, "login_session", None),
            new_client=previous_refresh_token is None,  # a rotation: the session knows this client already
        )
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
        login_session = getattr(request, "login_session", None)  # read with the code or refresh token
        if login_session is None or login_session.sid != getattr(request, "sid", None):
            login_session = active(getattr(request, "sid", None))
        if is_active(login_session):
            claims["auth_time"] = int(login_session.auth_time.timestamp())
            claims["amr"] = login_session.amr
            claims["acr"] = acr_of(login_session.amr)
        return claims, expiration_time

    def finalize_id_token(self, id_token, token, token_handler, request):
        """The toolkit's, signing with the key parsed once per process (provider.signing), and
        saving the ID token's row with one INSERT rather than in a transaction of its own."""
        if request.client.algorithm != request.client.RS256_ALGORITHM:
            return super().finalize_id_token(id_token, token, token_handler, request)
        claims, expiration_time = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:  # oauthlib bug #746, as the toolkit works around it
            id_token["nonce"] = request.nonce
        header = {"typ": "JWT", "alg": request.client.algorithm, "kid": key_id(signing_pem())}
        jwt_token = jwt.JWT(header=json.dumps(header, default=str), claims=json.dumps(id_token, default=str))
        jwt_token.make_signed_token(signing_key())
        id_token_row = self._save_id_token(id_token["jti"], request, expiration_time)
        request.access_token = id_token_row  # as the toolkit sets them
        request.id_token = id_token_row
        request.idp_id_token = id_token_row
        return jwt_token.serialize()

    def get_discovery_claims(self, request) -> list[str]:
        # The toolkit lists only `sub` when claims depend on the request, as ours do.
        return [*CLAIM_NAMES, "sid", "auth_time", "amr", "acr"]
