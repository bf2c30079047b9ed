"""Helpers for the hostile-input tests: what may never come back, and forged tokens to send.

Used by `test_hostile_input.py` (the catalogue), `test_never_a_server_error.py` (hypothesis) and
`test_no_secret_in_logs.py`. Everything here talks to the running stack as an outsider would,
except for reading the IdP's database and Redis to learn what an answer must not contain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from devstack.stack import IDP, Stack
from tests.e2e.conftest import idp_sql
from tests.e2e.oidc import Client, Provider

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: Text that only a server error or a debug page shows.
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "Exception Value:", "Request Method:")


# --- what must never appear ---------------------------------------------------------------------
def stack_secrets(stack: Stack) -> dict[str, str]:
    """The secrets of the running stack's configuration, by name."""
    names = ("DJANGO_SECRET_KEY", "SITE_A_CLIENT_SECRET", "SITE_B_CLIENT_SECRET", "DEMO_PASSWORD", "ADMIN_PASSWORD")
    return {name: stack.env[name] for name in names if stack.env.get(name)}


def leaks(text: str, values: Iterable[str]) -> list[str]:
    """The traceback markers and the `values` (secrets, tokens) that `text` contains."""
    found = [marker for marker in TRACEBACK_MARKERS if marker in text]
    return found + [f"{value[:6]}…" for value in values if value and value in text]


def assert_nothing_leaked(response: requests.Response, values: Iterable[str]) -> None:
    found = leaks(response.text, values)
    assert not found, f"{response.request.method} {response.url[:120]} ({response.status_code}) shows {found}"


def assert_no_server_error(response: requests.Response) -> None:
    assert response.status_code < 500, (
        f"{response.request.method} {response.url[:200]} answered {response.status_code}: {response.text[:300]}"
    )


# --- where a redirect may go ----------------------------------------------------------------------
def registered_uris(stack: Stack) -> dict[str, set[str]]:
    """Every client's registered redirect URIs and post-logout redirect URIs, by client id."""
    rows = idp_sql(stack, "SELECT client_id, redirect_uris, post_logout_redirect_uris FROM oauth2_provider_application")
    return {client_id: set(f"{uris} {post_logout}".split()) for client_id, uris, post_logout in rows}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def hint_audience(id_token_hint: str) -> set[str]:
    """The `aud` of an ID token, read without checking it: the client an end-session request names."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(id_token_hint.split(".")[1] + "=="))
        audience = claims["aud"]
    except (ValueError, IndexError, KeyError, TypeError):
        return set()
    audiences = audience if isinstance(audience, list) else [audience]
    return {name for name in audiences if isinstance(name, str)}


def client_ids_of(request: requests.PreparedRequest) -> set[str]:
    """The client ids a request names in its query or form: `client_id`, else an `id_token_hint`'s `aud`."""
    pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    body = request.body
    content_type = request.headers.get("Content-Type", "")
    if body and "application/x-www-form-urlencoded" in content_type:
        text = body.decode("latin-1") if isinstance(body, bytes) else body
        pairs += parse_qsl(text, keep_blank_values=True)
    # An empty value is no value: "parameters sent without a value MUST be treated as if they were
    # omitted from the request" (RFC 6749 section 3.1).
    names = {value for key, value in pairs if key == "client_id" and value}
    if not names:  # end-session may name its client by the hint alone
        for key, value in pairs:
            if key == "id_token_hint":
                names |= hint_audience(value)
    return names


def redirect_problem(
    response: requests.Response, *, idp_url: str, registered: dict[str, set[str]], client_ids: set[str] | None = None
) -> str | None:
    """Why the response's Location is not allowed, or None when it is (or there is none).

    From the IdP, a redirect may stay on the IdP or go to a URI registered, exactly, for the
    client the request names (and only when it names one). From a client site, a redirect may
    stay on the site or go to the IdP.
    """
    location = response.headers.get("Location")
    if location is None:
        return None
    target = urljoin(response.url, location)
    parts = urlsplit(target)
    if parts.username is not None or parts.password is not None or "\\" in target:
        return f"a redirect with userinfo or a backslash: {target[:200]}"
    home = origin(response.url)
    if origin(target) == home:
        return None
    if home != origin(idp_url):
        return None if origin(target) == origin(idp_url) else f"a site redirected off itself: {target[:200]}"
    names = client_ids_of(response.request) if client_ids is None else client_ids
    if len(names) == 1:
        (name,) = names
        if f"{parts.scheme}://{parts.netloc}{parts.path}" in registered.get(name, set()):
            return None
    return f"the IdP redirected to {target[:200]}, not a URI registered for {sorted(names) or 'no client'}"


# --- the parties' secrets and tokens -------------------------------------------------------------
def session_tokens(redis_client, prefix: str, session_key: str | None) -> dict[str, str]:
    """The tokens a site keeps for the session `session_key` (JSON in Redis, under a key of their own)."""
    if not session_key:
        return {}
    keys = redis_client.keys(f"{prefix}:*:sso_client:token:{session_key}")
    if not keys:
        return {}
    token = json.loads(redis_client.get(keys[0]) or b"{}")
    return {name: value for name, value in token.items() if isinstance(value, str)}


def register_app(stack: Stack, name: str, *, redirect_uri: str, trusted: bool, backchannel_uri: str = "") -> Client:
    """A confidential application of a test's own, registered with `manage.py register_app`."""
    client_id = f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}-{secrets.token_hex(3)}"
    args = ["register_app", name, "--redirect-uri", redirect_uri, "--client-id", client_id]
    if trusted:
        args.append("--trusted")
    if backchannel_uri:
        args += ["--backchannel-logout-uri", backchannel_uri]
    printed = stack.manage(IDP, *args)
    secret = re.search(r"^client_secret: (\S+)$", printed, re.MULTILINE)
    assert secret, printed
    return Client(client_id, secret.group(1), redirect_uri)


def create_person(stack: Stack, username: str, password: str) -> None:
    """A person of a test's own at the IdP (sign-in failures of theirs lock nobody else out)."""
    stack.manage(
        IDP,
        "shell",
        "-c",
        "from provider.services import user_ensure;"
        f"user_ensure(username={username!r}, password={password!r}, email='{username}@example.com',"
        f" full_name='Test Person')",
    )


def idp_sid(stack: Stack, idp_session_key: str | None) -> str:
    """The `sid` of the IdP login session that the browser with this IdP session cookie holds."""
    rows = idp_sql(stack, "SELECT sid FROM provider_loginsession WHERE session_key = %s", (idp_session_key,))
    assert rows, "the IdP keeps a login session for this browser"
    return rows[0][0]


# --- forged tokens ---------------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value) -> str:
    return b64(json.dumps(value).encode())


def idp_signing_key(stack: Stack, idp: Provider) -> RSAKey:
    """The IdP's own private signing key, with the kid its JWKS publishes: genuine signatures."""
    key = RSAKey.import_key(Path(stack.env["OIDC_RSA_PRIVATE_KEY_FILE"]).read_text())
    kid = requests.get(idp.metadata["jwks_uri"], timeout=10).json()["keys"][0]["kid"]
    return RSAKey.import_key(key.as_dict(private=True), parameters={"kid": kid})


def logout_claims(issuer: str, *, audience: str = "site-a", **changes) -> dict:
    """The claims of a valid logout token (spec section 2.4); a change of None drops the claim."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **changes,
    }
    return {name: value for name, value in claims.items() if value is not None}


def signed(key: RSAKey, claims: dict, **header) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "logout+jwt", **header}, claims, key)


def unsigned(claims: dict) -> str:
    """`alg: none`: a token anyone can write."""
    return f"{segment({'alg': 'none', 'typ': 'logout+jwt'})}.{segment(claims)}."


def hs256_with_public_key(public_jwk: dict, claims: dict) -> str:
    """The algorithm-confusion forgery: HMAC-SHA256 keyed with the IdP's public key (PEM)."""
    pem = RSAKey.import_key(public_jwk).as_pem(private=False)
    signing_input = f"{segment({'alg': 'HS256', 'kid': public_jwk.get('kid'), 'typ': 'JWT'})}.{segment(claims)}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"
