"""A small, independent OpenID Connect relying party for the tests, on requests and joserfc.

It shares no code with the product, so a test that passes through it checks the IdP against
the specifications, not against itself.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str | None
    redirect_uri: str


@dataclass
class AuthRequest:
    """One authorization request: the values a relying party keeps until the callback."""

    client: Client
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    scope: str = "openid profile email"

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def params(self, **overrides: str | None) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.client.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            **overrides,
        }
        return {key: value for key, value in params.items() if value is not None}


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def submit_login(browser: requests.Session, login_page: requests.Response, username: str, password: str):
    """Fill in and post the IdP's login form, as a person would; the answer is not followed."""
    return browser.post(
        login_page.url.split("?")[0],
        data={
            "csrfmiddlewaretoken": csrf_token(login_page.text),
            "username": username,
            "password": password,
            "next": query(login_page.url).get("next", ""),
        },
        headers={"Referer": login_page.url},
        allow_redirects=False,
        timeout=30,
    )


class Provider:
    """The IdP as a relying party sees it: discovery, then its endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.issuer = f"{url}/o"

    @cached_property
    def metadata(self) -> dict:
        response = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10)
        response.raise_for_status()
        return response.json()

    def jwks(self) -> KeySet:
        return KeySet.import_key_set(requests.get(self.metadata["jwks_uri"], timeout=10).json())

    def authorize_url(self, params: dict[str, str]) -> str:
        return f"{self.metadata['authorization_endpoint']}?{urlencode(params)}"

    # --- a person in a browser ------------------------------------------------------------------
    def end_session(self, browser: requests.Session, **params: str) -> requests.Response:
        """The end-session endpoint (RP-initiated logout) asked by `browser`, not followed."""
        return browser.get(self.metadata["end_session_endpoint"], params=params, allow_redirects=False, timeout=30)

    def still_signed_in(self, browser: requests.Session, client: Client) -> bool:
        """Whether `browser` still has an IdP session: a silent authorization (prompt=none) gives a code."""
        request = AuthRequest(client)
        response = browser.get(self.authorize_url(request.params(prompt="none")), allow_redirects=False, timeout=30)
        return "code=" in response.headers.get("Location", "")

    def follow(self, browser: requests.Session, url: str, *, stop_at: str, limit: int = 10) -> list[requests.Response]:
        """GET `url`, following redirects until one leaves for `stop_at` (not fetched) or a page."""
        hops = []
        for _ in range(limit):
            response = browser.get(url, allow_redirects=False, timeout=10)
            hops.append(response)
            if response.status_code not in (301, 302, 303, 307):
                return hops
            url = urljoin(url, response.headers["Location"])
            if url.startswith(stop_at):
                return hops
        raise AssertionError(f"more than {limit} redirects")

    def sign_in(
        self, browser: requests.Session, request: AuthRequest, username: str, password: str, **overrides: str | None
    ) -> dict[str, str]:
        """Authorize, sign in on the login page if one is shown; return the callback's query."""
        url = self.authorize_url(request.params(**overrides))
        hops = self.follow(browser, url, stop_at=request.client.redirect_uri)
        last = hops[-1]
        if last.status_code == 200 and 'name="password"' in last.text:
            posted = submit_login(browser, last, username, password)
            assert posted.status_code == 302, f"login refused: {posted.status_code}"
            hops = self.follow(
                browser, urljoin(last.url, posted.headers["Location"]), stop_at=request.client.redirect_uri
            )
            last = hops[-1]
        assert last.status_code == 302, f"expected a redirect to the client, got {last.status_code}: {last.text[:300]}"
        location = last.headers["Location"]
        assert location.startswith(request.client.redirect_uri), location
        return query(location)

    # --- the relying party's back channel -------------------------------------------------------
    def token(self, client: Client, **data: str) -> requests.Response:
        auth = (client.client_id, client.client_secret) if client.client_secret else None
        if auth is None:
            data["client_id"] = client.client_id
        return requests.post(self.metadata["token_endpoint"], data=data, auth=auth, timeout=30)

    def exchange(self, request: AuthRequest, code: str, **overrides: str) -> requests.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.client.redirect_uri,
            "code_verifier": request.verifier,
            **overrides,
        }
        return self.token(request.client, **data)

    def verify_id_token(self, id_token: str, request: AuthRequest, *, refreshed: bool = False) -> dict:
        """Check the ID token as OIDC Core 3.1.3.7 tells a relying party to; return its claims.

        An ID token from a refresh (OIDC Core 12.2) need not repeat the nonce, but may not change it.
        """
        token = jwt.decode(id_token, self.jwks(), algorithms=["RS256"])
        assert token.header["alg"] == "RS256"
        claims = token.claims
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": request.client.client_id},
            nonce={"essential": not refreshed, "value": request.nonce},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
        ).validate(claims)
        assert claims["exp"] > time.time()
        return claims

    def userinfo(self, access_token: str) -> requests.Response:
        return requests.get(
            self.metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}, timeout=10
        )

    def introspect(self, client: Client, token: str) -> requests.Response:
        return requests.post(
            self.metadata["introspection_endpoint"],
            data={"token": token},
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )

    def revoke(self, client: Client, token: str, hint: str | None = None) -> requests.Response:
        data = {"token": token, **({"token_type_hint": hint} if hint else {})}
        return requests.post(
            self.metadata["revocation_endpoint"],
            data=data,
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )
