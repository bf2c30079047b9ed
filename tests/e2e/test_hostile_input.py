"""The hostile-input catalogue: one table of crafted requests against the running IdP and sites.

Each row is a short name, how to send the request (a small function of the `Catalogue`: the
stack, a browser signed in at the IdP, a person signed in at both sites, fresh codes, genuine
tokens and the IdP's signing key for forgeries) and the answers it may get. For every row, the
module asserts:

- no 5xx, and one of the row's expected statuses;
- no redirect off the site it was sent to, except from the IdP to a URI registered (exactly)
  for the client the request names, and from a site to the IdP;
- nothing leaked in the body: no traceback, no configured secret, no token or code handed out
  during the catalogue, no session key;
- the row's own check, if it has one (an OAuth error, a session left working).

After the table, nothing stored is lost: the person signed in before the catalogue still is, at
both sites, alice can still sign in, and every seeded application still gets tokens.

Rows that post bad credentials use usernames that are no account (each once): the IdP's
lock-out counts failures per username and per address, and the whole suite signs in from
127.0.0.1 (see `production_env`). Many rows have a focused test elsewhere
(`test_bad_requests`, `test_sites_bad_input`, `test_silent_and_forced_sign_in`,
`test_stolen_codes_and_tokens`, `test_end_session_bad_input`, `test_single_logout`): this is the
table view across all of them.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
import requests
from joserfc.jwk import RSAKey

from devstack.stack import Stack
from tests.e2e.conftest import age_code
from tests.e2e.hostile import (
    assert_no_server_error,
    assert_nothing_leaked,
    hs256_with_public_key,
    idp_sid,
    idp_signing_key,
    logout_claims,
    redirect_problem,
    register_app,
    registered_uris,
    session_tokens,
    signed,
    stack_secrets,
    unsigned,
)
from tests.e2e.oidc import AuthRequest, Client, Provider, csrf_token, query, submit_login
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor

TIMEOUT = 30
SIGN_IN_STATE_SECONDS = 600  # sso_client's SIGN_IN_STATE_SECONDS: the life of an anonymous site session


# --- the catalogue's world ------------------------------------------------------------------------
class Catalogue:
    """The running stack as the rows see it, and what they may never be shown."""

    def __init__(self, stack: Stack, idp: Provider, redis_client, alice: tuple[str, str]) -> None:
        self.stack, self.idp, self.redis, self.alice = stack, idp, redis_client, alice
        self.site_a, self.site_b = stack.env["SITE_A_URL"], stack.env["SITE_B_URL"]
        consent = register_app(
            stack, "Hostile consent", redirect_uri="http://127.0.0.1:9/consent-callback/", trusted=False
        )
        self.clients = {
            "site-a": Client("site-a", stack.env["SITE_A_CLIENT_SECRET"], f"{self.site_a}/sso/callback/"),
            "site-b": Client("site-b", stack.env["SITE_B_CLIENT_SECRET"], f"{self.site_b}/sso/callback/"),
            "consent": consent,
        }
        self.registered = registered_uris(stack)
        self.secrets = {*stack_secrets(stack).values(), consent.client_secret}
        #: Every code and token handed out during the catalogue: no page may ever show one.
        self.known: set[str] = set()
        self.places = {
            "{site_a}": self.site_a,
            "{site_b}": self.site_b,
            "{site_a_netloc}": urlsplit(self.site_a).netloc,
            "{site_a_port}": str(urlsplit(self.site_a).port),
            "{idp}": idp.url,
            "{consent}": consent.client_id,
        }

    def fill(self, value):
        if not isinstance(value, str):
            return value
        for place, replacement in self.places.items():
            value = value.replace(place, replacement)
        return value

    def never_shown(self) -> set[str]:
        sessions = {self.person.cookie(f"{name}_sessionid") for name in ("idp", "site_a", "site_b")}
        sessions.add(self.idp_browser.cookies.get("idp_sessionid"))
        return self.secrets | self.known | {value for value in sessions if value}

    # --- browsers -----------------------------------------------------------------------------------
    def signed_in_browser(self) -> requests.Session:
        """A new browser signed in at the IdP as alice (its own IdP session)."""
        browser = requests.Session()
        code = self.idp.sign_in(browser, AuthRequest(self.clients["site-a"]), *self.alice)["code"]
        self.known.add(code)
        return browser

    @cached_property
    def idp_browser(self) -> requests.Session:
        """A browser signed in at the IdP, for fresh codes; no row signs it out."""
        return self.signed_in_browser()

    @cached_property
    def person(self) -> Visitor:
        """Alice signed in at both sites: the real session that tampering rows must leave working."""
        person = Visitor()
        visit = person.sign_in(f"{self.site_a}/", *self.alice)
        assert signed_in_page_shows_alice(visit.page)
        assert signed_in_page_shows_alice(person.visit(f"{self.site_b}/").page)
        self.person_callback = next(hop.url for hop in visit.hops if urlsplit(hop.url).path == "/sso/callback/")
        self.known.add(query(self.person_callback)["code"])
        self.known.update(session_tokens(self.redis, "site_a", person.cookie("site_a_sessionid")).values())
        return person

    @cached_property
    def person_sid(self) -> str:
        return idp_sid(self.stack, self.person.cookie("idp_sessionid"))

    # --- codes and tokens ---------------------------------------------------------------------------
    def authorize(self, browser: requests.Session, request: AuthRequest, *, also=(), **overrides) -> requests.Response:
        params = list(request.params(**{name: self.fill(value) for name, value in overrides.items()}).items())
        params += [(name, self.fill(value)) for name, value in also]
        url = f"{self.idp.metadata['authorization_endpoint']}?{urlencode(params)}"
        return browser.get(url, allow_redirects=False, timeout=TIMEOUT)

    def fresh_code(self, client: str = "site-a", **overrides) -> tuple[AuthRequest, str]:
        request = AuthRequest(self.clients[client], **overrides)
        response = self.authorize(self.idp_browser, request)
        assert response.status_code == 302, response.text[:300]
        code = query(response.headers["Location"])["code"]
        self.known.add(code)
        return request, code

    def remember(self, response: requests.Response) -> dict:
        answer = response.json()
        self.known.update(value for key, value in answer.items() if key.endswith("token") and isinstance(value, str))
        return answer

    def tokens(self, client: str = "site-a") -> dict:
        request, code = self.fresh_code(client)
        response = self.idp.exchange(request, code)
        assert response.status_code == 200, response.text[:300]
        return self.remember(response)

    def refresh(self, client: str, refresh_token: str) -> requests.Response:
        return self.idp.token(self.clients[client], grant_type="refresh_token", refresh_token=refresh_token)

    @cached_property
    def key(self) -> RSAKey:
        return idp_signing_key(self.stack, self.idp)

    @cached_property
    def public_jwk(self) -> dict:
        return requests.get(self.idp.metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"][0]

    def still_signed_in(self, browser: requests.Session) -> bool:
        response = self.authorize(browser, AuthRequest(self.clients["site-a"]), prompt="none")
        return "code=" in response.headers.get("Location", "")

    def person_intact(self) -> bool:
        """Still signed in at both sites, in the same sessions: no trip to the IdP (which would
        sign them in again silently, hiding a session that was lost)."""
        for site in (self.site_a, self.site_b):
            visit = self.person.visit(f"{site}/")
            if visit.redirects or not signed_in_page_shows_alice(visit.page):
                return False
        return True


@pytest.fixture(scope="module")
def catalogue(stack, idp, redis_client, alice) -> Catalogue:
    world = Catalogue(stack, idp, redis_client, alice)
    assert world.person_intact()
    return world


# --- how rows send their requests ------------------------------------------------------------------
Send = Callable[[Catalogue], requests.Response]


def authorize(*, browser: str = "signed in", client: str = "site-a", also=(), **overrides) -> Send:
    """GET the authorization endpoint: AuthRequest's parameters, changed by `overrides`."""

    def send(c: Catalogue) -> requests.Response:
        who = c.idp_browser if browser == "signed in" else requests.Session()
        return c.authorize(who, AuthRequest(c.clients[client]), also=also, **overrides)

    return send


def http(method: str, where: str, path: str, *, browser: str | None = None, **options) -> Send:
    """Any request to `where` ("idp", "site_a", "site_b"), the path and options as written.

    `browser`: None (no cookies), "idp" (signed in at the IdP) or "person" (signed in at both sites).
    """

    def send(c: Catalogue) -> requests.Response:
        base = {"idp": c.idp.url, "site_a": c.site_a, "site_b": c.site_b}[where]
        if browser == "idp":
            session = c.idp_browser
        elif browser == "person":
            session = c.person.browser
        else:
            session = requests.Session()
        filled = {
            name: ({k: c.fill(v) for k, v in value.items()} if isinstance(value, dict) else c.fill(value))
            for name, value in options.items()
        }
        return session.request(method, base + c.fill(path), allow_redirects=False, timeout=TIMEOUT, **filled)

    return send


def token_endpoint(*, client: str | None = "site-a", **data) -> Send:
    """POST to the token endpoint, authenticated as `client` (None: no authentication)."""

    def send(c: Catalogue) -> requests.Response:
        auth = (c.clients[client].client_id, c.clients[client].client_secret) if client else None
        return requests.post(c.idp.metadata["token_endpoint"], data=data, auth=auth, timeout=TIMEOUT)

    return send


def at_callback(make_params: Callable[[Catalogue], dict | str]) -> Send:
    """GET site A's callback in the person's browser, with the query `make_params` gives."""

    def send(c: Catalogue) -> requests.Response:
        params = make_params(c)
        encoded = params if isinstance(params, str) else urlencode(params, doseq=True)
        return c.person.browser.get(f"{c.site_a}/sso/callback/?{encoded}", allow_redirects=False, timeout=TIMEOUT)

    return send


def backchannel(make_token: Callable[[Catalogue], str]) -> Send:
    """POST a logout token to site A's back-channel logout endpoint, as the IdP would."""

    def send(c: Catalogue) -> requests.Response:
        return requests.post(
            f"{c.site_a}/sso/backchannel-logout/", data={"logout_token": make_token(c)}, timeout=TIMEOUT
        )

    return send


def login_post(username: str, *, extra: dict | None = None) -> Send:
    """Post the IdP's login form (with its CSRF token) as `username`, which is no account."""

    def send(c: Catalogue) -> requests.Response:
        browser = requests.Session()
        page = browser.get(f"{c.idp.url}/accounts/login/", timeout=TIMEOUT)
        data = {"csrfmiddlewaretoken": csrf_token(page.text), "username": username, "password": "not-a-password"}
        return browser.post(
            page.url,
            data={**data, **(extra or {})},
            headers={"Referer": page.url},
            allow_redirects=False,
            timeout=TIMEOUT,
        )

    return send


# --- checks a row may add ---------------------------------------------------------------------------
Check = Callable[[Catalogue, requests.Response], None]


def back_at_client(c: Catalogue, response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text[:300]
    answer = query(response.headers["Location"])
    assert answer.get("iss") == c.idp.issuer, f"no iss in the authorization response (RFC 9207): {answer}"
    return answer


def redirect_error(error: str) -> Check:
    def check(c: Catalogue, response: requests.Response) -> None:
        answer = back_at_client(c, response)
        assert answer.get("error") == error, answer
        assert "code" not in answer

    return check


def redirect_code(c: Catalogue, response: requests.Response) -> None:
    answer = back_at_client(c, response)
    assert "code" in answer, answer
    c.known.add(answer["code"])


def to_sign_in_page(c: Catalogue, response: requests.Response) -> None:
    target = urljoin(response.url, response.headers["Location"])
    assert urlsplit(target).path in ("/accounts/login/", "/accounts/reauthenticate/"), target


def json_error(*errors: str) -> Check:
    def check(c: Catalogue, response: requests.Response) -> None:
        assert response.json()["error"] in errors, response.text[:300]

    return check


def shows(*texts: str) -> Check:
    def check(c: Catalogue, response: requests.Response) -> None:
        for text in texts:
            assert text in response.text, f"{text!r} not in the page"

    return check


def person_intact(c: Catalogue, response: requests.Response) -> None:
    assert c.person_intact(), "the person's real sessions at the sites survive"


def refused_callback(c: Catalogue, response: requests.Response) -> None:
    assert "Sign-in did not complete" in response.text
    person_intact(c, response)


def refused_logout_token(c: Catalogue, response: requests.Response) -> None:
    assert response.json()["error"] == "invalid_request"
    person_intact(c, response)


def not_reflected(c: Catalogue, response: requests.Response) -> None:
    assert "<script>alert(1)" not in response.text, "markup from the request is escaped"


def checks(*all_checks: Check) -> Check:
    def check(c: Catalogue, response: requests.Response) -> None:
        for one in all_checks:
            one(c, response)

    return check


# --- rows that take several steps --------------------------------------------------------------------
def verifier_of_length(length: int) -> Send:
    def send(c: Catalogue) -> requests.Response:
        request, code = c.fresh_code(verifier="v" * length)
        return c.idp.exchange(request, code)

    return send


def exchange_with(*, authenticated: bool = True, **changes) -> Send:
    """Exchange a fresh code of site A with the token request changed (None: left out)."""

    def send(c: Catalogue) -> requests.Response:
        request, code = c.fresh_code()
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.client.redirect_uri,
            "code_verifier": request.verifier,
        }
        for name, value in changes.items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = c.fill(value)
        client = request.client if authenticated else Client(request.client.client_id, None, "")
        return c.idp.token(client, **data)

    return send


def replayed_code(c: Catalogue) -> requests.Response:
    request, code = c.fresh_code()
    first = c.remember(c.idp.exchange(request, code))
    replay = c.idp.exchange(request, code)
    assert c.idp.userinfo(first["access_token"]).status_code == 401, "a replayed code revokes what it gave"
    return replay


def code_of_another_client(c: Catalogue) -> requests.Response:
    request, code = c.fresh_code("site-a")
    return c.idp.token(
        c.clients["site-b"],
        grant_type="authorization_code",
        code=code,
        redirect_uri=request.client.redirect_uri,
        code_verifier=request.verifier,
    )


def expired_code(c: Catalogue) -> requests.Response:
    request, code = c.fresh_code()
    age_code(c.stack, code)
    return c.idp.exchange(request, code)


def code_outliving_its_session(c: Catalogue) -> requests.Response:
    browser = c.signed_in_browser()
    request = AuthRequest(c.clients["site-a"])
    code = query(c.authorize(browser, request).headers["Location"])["code"]
    c.known.add(code)
    confirm = browser.get(c.idp.metadata["end_session_endpoint"], params={"client_id": "site-a"}, timeout=TIMEOUT)
    signed_out = browser.post(
        confirm.url,
        data={"csrfmiddlewaretoken": csrf_token(confirm.text), "client_id": "site-a", "allow": "Logout"},
        headers={"Referer": confirm.url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert signed_out.status_code == 302
    return c.idp.exchange(request, code)


def wrong_client_secret(c: Catalogue) -> requests.Response:
    request, code = c.fresh_code()
    impostor = Client("site-a", "not-the-secret", request.client.redirect_uri)
    refused = c.idp.exchange(AuthRequest(impostor, verifier=request.verifier), code)
    assert c.remember(c.idp.exchange(request, code))["access_token"], "the real client can still use its code"
    return refused


def password_grant(c: Catalogue) -> requests.Response:
    right = c.idp.token(c.clients["site-a"], grant_type="password", username="alice", password=c.alice[1])
    wrong = c.idp.token(c.clients["site-a"], grant_type="password", username="alice", password="wrong")
    assert right.json() == wrong.json(), "the password grant is no password oracle"
    return right


def refresh_token_of_another_client(c: Catalogue) -> requests.Response:
    return c.refresh("site-b", c.tokens("site-a")["refresh_token"])


def replayed_refresh_token(c: Catalogue) -> requests.Response:
    """A refresh token replayed once its successor was used (a rotated-out token presented again
    while its successor is unused is a lost answer, within REFRESH_TOKEN_GRACE_SECONDS: then the
    unused successor is revoked instead, tests/idp/test_refresh_grace.py)."""
    first = c.tokens("site-a")
    rotated = c.remember(c.refresh("site-a", first["refresh_token"]))
    latest = c.remember(c.refresh("site-a", rotated["refresh_token"]))
    replay = c.refresh("site-a", first["refresh_token"])
    assert c.refresh("site-a", latest["refresh_token"]).status_code == 400, "a replay revokes the whole family"
    return replay


def introspect_another_clients_token(c: Catalogue) -> requests.Response:
    response = c.idp.introspect(c.clients["site-b"], c.tokens("site-a")["access_token"])
    assert response.json() == {"active": False}
    return response


def revoke_another_clients_token(c: Catalogue) -> requests.Response:
    token = c.tokens("site-a")["access_token"]
    response = c.idp.revoke(c.clients["site-b"], token, "access_token")
    assert c.idp.userinfo(token).status_code == 200, "another client cannot revoke it"
    return response


def userinfo_with(kind: str) -> Send:
    def send(c: Catalogue) -> requests.Response:
        return c.idp.userinfo(c.tokens("site-a")[kind])

    return send


def hint(kind: str) -> Callable[[Catalogue], str]:
    """An id_token_hint that is not site A's genuine ID token."""

    def make(c: Catalogue) -> str:
        genuine = c.tokens("site-a")["id_token"]
        claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
        return {
            "garbage": lambda: "not-a-token",
            "alg none": lambda: unsigned(claims),
            "HS256 with the public key": lambda: hs256_with_public_key(c.public_jwk, claims),
            "another key": lambda: signed(RSAKey.generate_key(2048, parameters={"kid": c.key.kid}), claims),
            "another client's": lambda: c.tokens("site-b")["id_token"],
        }[kind]()

    return make


def authorize_with_hint(kind: str) -> Send:
    def send(c: Catalogue) -> requests.Response:
        return c.authorize(c.idp_browser, AuthRequest(c.clients["site-a"]), id_token_hint=hint(kind)(c))

    return send


def end_session(*, hint_kind: str | None = None, genuine_hint: bool = False, **params) -> Send:
    """GET the end-session endpoint in a browser of the row's own, signed in at the IdP."""

    def send(c: Catalogue) -> requests.Response:
        browser = c.signed_in_browser()
        query_params = {name: c.fill(value) for name, value in params.items()}
        if hint_kind:
            query_params["id_token_hint"] = hint(hint_kind)(c)
        if genuine_hint:
            request = AuthRequest(c.clients["site-a"])
            code = query(c.authorize(browser, request).headers["Location"])["code"]
            query_params["id_token_hint"] = c.remember(c.idp.exchange(request, code))["id_token"]
        response = browser.get(
            c.idp.metadata["end_session_endpoint"], params=query_params, allow_redirects=False, timeout=TIMEOUT
        )
        response.browser = browser  # for the row's check
        return response

    return send


def still_signed_in_at_idp(c: Catalogue, response: requests.Response) -> None:
    assert c.still_signed_in(response.browser), "a refused sign-out signs nobody out"


def signed_out_not_redirected(c: Catalogue, response: requests.Response) -> None:
    assert "You are signed out" in response.text
    assert not c.still_signed_in(response.browser)


# --- the site's callback ---
def started_sign_in(c: Catalogue, site: str | None = None) -> dict[str, str]:
    """Begin a sign-in at site A in the person's browser; the authorization request's parameters."""
    first = c.person.browser.get(f"{site or c.site_a}/sso/login/", allow_redirects=False, timeout=TIMEOUT)
    assert first.status_code == 302
    return query(first.headers["Location"])


def code_at_idp(c: Catalogue, params: dict[str, str]) -> dict[str, str]:
    """Take an authorization request to the IdP in the person's browser; the answer's query."""
    response = c.person.browser.get(c.idp.authorize_url(params), allow_redirects=False, timeout=TIMEOUT)
    answer = query(response.headers["Location"])
    if "code" in answer:
        c.known.add(answer["code"])
    return answer


def real_state_forged_code(c: Catalogue) -> dict:
    return {"code": "forged-code", "state": started_sign_in(c)["state"]}


def another_issuer(c: Catalogue) -> dict:
    return {**code_at_idp(c, started_sign_in(c)), "iss": "https://evil.example/o"}


def site_b_code_at_site_a(c: Catalogue) -> dict:
    _, code = c.fresh_code("site-b")
    return {"code": code, "state": started_sign_in(c)["state"], "iss": c.idp.issuer}


def swapped(name: str) -> Callable[[Catalogue], dict]:
    """The site's own authorization request with one parameter changed on the way to the IdP."""

    def make(c: Catalogue) -> dict:
        request = started_sign_in(c)
        request[name] = AuthRequest(c.clients["site-a"]).params()[name]
        return code_at_idp(c, request)

    return make


def another_browsers_callback(c: Catalogue) -> dict:
    """Login CSRF: the state and code of a sign-in an attacker began in their own browser."""
    attacker = requests.Session()
    started = attacker.get(f"{c.site_a}/sso/login/", allow_redirects=False, timeout=TIMEOUT)
    answer = query(c.idp_browser.get(started.headers["Location"], allow_redirects=False).headers["Location"])
    c.known.add(answer["code"])
    return answer


# --- logout tokens ---
def forged(**changes) -> Callable[[Catalogue], str]:
    """A logout token for the person's real IdP session, signed by the IdP's key, with changes."""

    def make(c: Catalogue) -> str:
        claims = logout_claims(c.idp.issuer, sid=c.person_sid)
        claims.update({name: c.fill(value) for name, value in changes.items()})
        return signed(c.key, {name: value for name, value in claims.items() if value is not None})

    return make


def forged_by(how: str) -> Callable[[Catalogue], str]:
    def make(c: Catalogue) -> str:
        claims = logout_claims(c.idp.issuer, sid=c.person_sid)
        return {
            "alg none": lambda: unsigned(claims),
            "HS256 with the public key": lambda: hs256_with_public_key(c.public_jwk, claims),
            "another key": lambda: signed(RSAKey.generate_key(2048, parameters={"kid": c.key.kid}), claims),
            "unknown kid": lambda: signed(RSAKey.generate_key(2048, parameters={"kid": "not-a-kid"}), claims),
        }[how]()

    return make


def replayed_logout_token(c: Catalogue) -> str:
    token = signed(c.key, logout_claims(c.idp.issuer))  # a sid nobody has: it ends nothing
    first = requests.post(f"{c.site_a}/sso/backchannel-logout/", data={"logout_token": token}, timeout=TIMEOUT)
    assert first.status_code == 200
    return token


def the_persons_id_token(c: Catalogue) -> str:
    """A genuine ID token of alice's for site A (the site's session keeps none: it is asked for)."""
    return c.tokens("site-a")["id_token"]  # remembered as known


# --- cross-site request forgery ---
def form_post_without_csrf(page: str, action: str | None = None, *, data: dict | None = None, own: bool = True) -> Send:
    """Open `page` (the IdP's) in a signed-in browser, then post its form without the CSRF token."""

    def send(c: Catalogue) -> requests.Response:
        browser = c.signed_in_browser() if own else c.idp_browser
        opened = browser.get(c.idp.url + c.fill(page), timeout=TIMEOUT)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', opened.text))
        fields.pop("csrfmiddlewaretoken", None)
        response = browser.post(
            c.idp.url + c.fill(action) if action else opened.url,
            data={**fields, **(data or {})},
            headers={"Referer": opened.url},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        response.browser = browser
        return response

    return send


def login_without_csrf(c: Catalogue) -> requests.Response:
    browser = requests.Session()
    page = browser.get(f"{c.idp.url}/accounts/login/", timeout=TIMEOUT)
    username, password = c.alice
    response = browser.post(page.url, data={"username": username, "password": password}, timeout=TIMEOUT)
    assert "idp_sessionid" not in browser.cookies
    return response


def login_with_another_browsers_token(c: Catalogue) -> requests.Response:
    attacker, victim = requests.Session(), requests.Session()
    token = csrf_token(attacker.get(f"{c.idp.url}/accounts/login/", timeout=TIMEOUT).text)
    page = victim.get(f"{c.idp.url}/accounts/login/", timeout=TIMEOUT)
    data = {"csrfmiddlewaretoken": token, "username": c.alice[0], "password": c.alice[1]}
    response = victim.post(page.url, data=data, headers={"Referer": page.url}, allow_redirects=False, timeout=TIMEOUT)
    assert "idp_sessionid" not in victim.cookies
    return response


def site_logout_without_csrf(site: str) -> Send:
    def send(c: Catalogue) -> requests.Response:
        base = {"site_a": c.site_a, "site_b": c.site_b}[site]
        c.person.browser.get(f"{base}/sso/logout/", timeout=TIMEOUT)  # the confirmation page, its CSRF cookie
        return c.person.browser.post(
            f"{base}/sso/logout/", headers={"Referer": f"{base}/sso/logout/"}, allow_redirects=False, timeout=TIMEOUT
        )

    return send


# --- session fixation ---
def fixation_at_idp(planted_by: str) -> Send:
    """An IdP session key chosen by an attacker, set in the victim's browser before sign-in."""

    def send(c: Catalogue) -> requests.Response:
        attacker = requests.Session()
        if planted_by == "a real anonymous session":  # max_age makes the IdP store a session
            c.authorize(attacker, AuthRequest(c.clients["site-a"]), max_age="5")
            planted = attacker.cookies.get("idp_sessionid")
            assert planted
        else:
            planted = secrets.token_hex(16)
        victim = requests.Session()
        victim.cookies.set("idp_sessionid", planted, domain=urlsplit(c.idp.url).hostname, path="/")
        page = victim.get(f"{c.idp.url}/accounts/login/", timeout=TIMEOUT)
        response = submit_login(victim, page, *c.alice)
        assert response.status_code == 302
        assert victim.cookies.get("idp_sessionid") not in (None, planted), "signing in gives a new session key"
        attacker.cookies.set("idp_sessionid", planted, domain=urlsplit(c.idp.url).hostname, path="/")
        assert not c.still_signed_in(attacker), "the attacker's key signs nobody in"
        return response

    return send


def fixation_at_site(site: str) -> Send:
    def send(c: Catalogue) -> requests.Response:
        base = {"site_a": c.site_a, "site_b": c.site_b}[site]
        attacker = Visitor()
        attacker.visit(f"{base}/")  # a real session of the site's, with the attacker's sign-in in it
        planted = attacker.cookie(f"{site}_sessionid")
        assert planted
        victim = Visitor()
        victim.browser.cookies.set(f"{site}_sessionid", planted, domain=urlsplit(base).hostname, path="/")
        visit = victim.sign_in(f"{base}/", *c.alice)
        assert signed_in_page_shows_alice(visit.page)
        assert victim.cookie(f"{site}_sessionid") not in (None, planted), "signing in gives a new session key"
        assert not signed_in_page_shows_alice(attacker.visit(f"{base}/").page), "the attacker's key is not signed in"
        return visit.page

    return send


# --- anonymous requests ---
def anonymous_script_at_site(c: Catalogue) -> requests.Response:
    response = requests.get(f"{c.site_a}/", allow_redirects=False, timeout=TIMEOUT)
    key = response.cookies["site_a_sessionid"]
    stored = c.redis.keys(f"site_a:*:django.contrib.sessions.cache{key}")
    assert stored and 0 < c.redis.ttl(stored[0]) <= SIGN_IN_STATE_SECONDS, "an anonymous session is short-lived"
    return response


def anonymous_visit_to_idp(c: Catalogue) -> requests.Response:
    browser = requests.Session()
    response = c.authorize(browser, AuthRequest(c.clients["site-a"]))
    page = browser.get(urljoin(response.url, response.headers["Location"]), timeout=TIMEOUT)
    assert 'name="password"' in page.text
    assert "idp_sessionid" not in browser.cookies, "an anonymous visit stores no IdP session"
    return response


def next_off_the_idp(next_url: str) -> Send:
    """Sign in on the IdP's own login page with a `next` that leaves it: the IdP stays home."""

    def send(c: Catalogue) -> requests.Response:
        browser = requests.Session()
        page = browser.get(f"{c.idp.url}/accounts/login/?{urlencode({'next': next_url})}", timeout=TIMEOUT)
        return submit_login(browser, page, *c.alice)

    return send


def huge(size: int) -> str:
    return "s" * size


#: The consent page of the untrusted client the catalogue registers (RFC 7636's example challenge).
CONSENT_PAGE = "/o/authorize/?" + urlencode(
    {
        "client_id": "{consent}",
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": "http://127.0.0.1:9/consent-callback/",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    },
    safe="{}",
)


# --- the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    name: str
    send: Send
    expected: int | tuple[int, ...]
    check: Check | None = None
    #: The client a redirect from the IdP may go to, when the request does not name it (a hint does).
    client: str | None = None

    @property
    def statuses(self) -> tuple[int, ...]:
        return self.expected if isinstance(self.expected, tuple) else (self.expected,)


REFUSED_PAGE = shows("refused")
ROWS = [
    # Redirect URIs: only the exact registered URI of the client named, else a 400 page and no redirect.
    Row("redirect_uri/another-host", authorize(redirect_uri="http://evil.example/sso/callback/"), 400, REFUSED_PAGE),
    Row("redirect_uri/another-port", authorize(redirect_uri="http://127.0.0.1:9/sso/callback/"), 400),
    Row("redirect_uri/suffix", authorize(redirect_uri="{site_a}/sso/callback/evil"), 400),
    Row("redirect_uri/prefix", authorize(redirect_uri="{site_a}/sso/"), 400),
    Row("redirect_uri/query-added", authorize(redirect_uri="{site_a}/sso/callback/?next=//evil.example"), 400),
    Row("redirect_uri/userinfo", authorize(redirect_uri="http://evil@{site_a_netloc}/sso/callback/"), 400),
    Row("redirect_uri/site-as-userinfo", authorize(redirect_uri="{site_a}@evil.example/sso/callback/"), 400),
    Row("redirect_uri/encoded-slashes", authorize(redirect_uri="{site_a}/sso%2Fcallback%2F"), 400),
    Row("redirect_uri/fragment", authorize(redirect_uri="{site_a}/sso/callback/#@evil.example"), 400),
    Row("redirect_uri/path-case", authorize(redirect_uri="{site_a}/SSO/CALLBACK/"), 400),
    Row("redirect_uri/scheme-case", authorize(redirect_uri="HTTP://{site_a_netloc}/sso/callback/"), 400),
    Row("redirect_uri/host-trailing-dot", authorize(redirect_uri="http://127.0.0.1.:{site_a_port}/sso/callback/"), 400),
    Row("redirect_uri/localhost", authorize(redirect_uri="http://localhost:{site_a_port}/sso/callback/"), 400),
    Row("redirect_uri/traversal-out", authorize(redirect_uri="{site_a}/sso/callback/../../evil/"), 400),
    Row("redirect_uri/traversal-back-in", authorize(redirect_uri="{site_a}/evil/../sso/callback/"), 400),
    Row("redirect_uri/javascript", authorize(redirect_uri="javascript:alert(document.cookie)//"), 400),
    Row("redirect_uri/data", authorize(redirect_uri="data:text/html,<script>alert(1)</script>"), 400),
    Row("redirect_uri/backslash-path", authorize(redirect_uri="{site_a}/sso/callback/\\evil.example"), 400),
    Row(
        "redirect_uri/backslash-host",
        authorize(redirect_uri="http://{site_a_netloc}\\@evil.example/sso/callback/"),
        400,
    ),
    Row("redirect_uri/nul", authorize(redirect_uri="{site_a}/sso/callback/\x00"), 400),
    Row("redirect_uri/another-clients", authorize(redirect_uri="{site_b}/sso/callback/"), 400),
    Row("redirect_uri/twice", authorize(also=[("redirect_uri", "http://evil.example/")]), 400),
    Row("redirect_uri/missing-means-the-registered-one", authorize(redirect_uri=None), 302, redirect_code),
    Row("client_id/unknown", authorize(client_id="no-such-client"), 400, REFUSED_PAGE),
    Row("client_id/twice", authorize(also=[("client_id", "site-b")]), (302, 400)),
    Row("client_id/invalid-utf8", http("GET", "idp", "/o/authorize/?client_id=%ff&response_type=code"), 400),
    # PKCE: S256 only, and the verifier must be the one, of the right shape (RFC 7636 4.1).
    Row(
        "pkce/no-challenge",
        authorize(code_challenge=None, code_challenge_method=None),
        302,
        redirect_error("invalid_request"),
    ),
    Row("pkce/plain", authorize(code_challenge_method="plain"), 302, redirect_error("invalid_request")),
    Row("pkce/unknown-method", authorize(code_challenge_method="S512"), 302, redirect_error("invalid_request")),
    Row("pkce/no-verifier", exchange_with(code_verifier=None), 400, json_error("invalid_request", "invalid_grant")),
    Row("pkce/wrong-verifier", exchange_with(code_verifier="w" * 50), 400, json_error("invalid_grant")),
    Row("pkce/verifier-shorter-than-43", verifier_of_length(20), 400, json_error("invalid_request", "invalid_grant")),
    Row("pkce/verifier-longer-than-128", verifier_of_length(129), 400, json_error("invalid_request", "invalid_grant")),
    # Codes: single-use, for their client and redirect URI, and their session, only.
    Row("code/replayed", replayed_code, 400, json_error("invalid_grant")),
    Row("code/of-another-client", code_of_another_client, 400, json_error("invalid_grant", "invalid_request")),
    Row("code/other-redirect-uri", exchange_with(redirect_uri="{site_b}/sso/callback/"), 400),
    Row("code/made-up", token_endpoint(grant_type="authorization_code", code="made-up"), 400),
    Row("code/expired", expired_code, 400, json_error("invalid_grant")),
    Row("code/issued-before-sign-out", code_outliving_its_session, 400, json_error("invalid_grant")),
    Row("code/wrong-client-secret", wrong_client_secret, 401, json_error("invalid_client")),
    Row("code/no-client-authentication", exchange_with(authenticated=False), (400, 401)),
    # The token endpoint.
    Row("token/password-grant", password_grant, 400, json_error("unsupported_grant_type")),
    Row(
        "token/client-credentials",
        token_endpoint(grant_type="client_credentials"),
        400,
        json_error("unsupported_grant_type"),
    ),
    Row(
        "token/no-auth-password-grant",
        token_endpoint(client=None, grant_type="password", username="alice", password="x"),
        400,
    ),
    Row(
        "token/grant-type-twice",
        http(
            "POST",
            "idp",
            "/o/token/",
            data="grant_type=authorization_code&grant_type=password",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        400,
        json_error("invalid_request"),
    ),
    Row(
        "token/json-body", http("POST", "idp", "/o/token/", json={"grant_type": "authorization_code", "code": "x"}), 400
    ),
    Row("token/get", http("GET", "idp", "/o/token/?grant_type=authorization_code&code=x"), 405),
    Row("token/unknown-method", http("BREW", "idp", "/o/token/"), 405),
    Row("token/options", http("OPTIONS", "idp", "/o/token/"), (200, 204, 405)),
    Row(
        "token/10kB-fields", token_endpoint(grant_type="authorization_code", code=huge(10_000), state=huge(10_000)), 400
    ),
    Row(
        "token/nul-and-invalid-utf8",
        http(
            "POST",
            "idp",
            "/o/token/",
            data=b"grant_type=authorization_code&code=%ff%00",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        (400, 401),
    ),
    Row(
        "token/garbage-basic-auth",
        http(
            "POST",
            "idp",
            "/o/token/",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            headers={"Authorization": "Basic %%%\x7f"},
        ),
        (400, 401),
    ),
    Row("token/refresh-of-another-client", refresh_token_of_another_client, 400, json_error("invalid_grant")),
    Row("token/refresh-replayed-after-rotation", replayed_refresh_token, 400, json_error("invalid_grant")),
    # Introspection, revocation, userinfo: a client sees and touches its own tokens only.
    Row("introspect/another-clients-token", introspect_another_clients_token, 200),
    Row("introspect/no-client-authentication", http("POST", "idp", "/o/introspect/", data={"token": "x"}), (401, 403)),
    Row(
        "introspect/5kB-token",
        http("POST", "idp", "/o/introspect/", data={"token": huge(5000)}, auth=("site-b", "")),
        (200, 401, 403),
    ),
    Row("revoke/another-clients-token", revoke_another_clients_token, (200, 400)),
    Row("userinfo/id-token-as-bearer", userinfo_with("id_token"), 401),
    Row("userinfo/refresh-token-as-bearer", userinfo_with("refresh_token"), 401),
    # Silent and forced sign-in (issue 8).
    Row("prompt/none-signed-out", authorize(browser="anonymous", prompt="none"), 302, redirect_error("login_required")),
    Row("prompt/none-signed-in", authorize(prompt="none"), 302, redirect_code),
    Row("prompt/login-signed-in", authorize(prompt="login"), 302, to_sign_in_page),
    Row("prompt/unknown", authorize(prompt="bogus"), 302, redirect_error("invalid_request")),
    Row("max_age/zero-signed-in", authorize(max_age="0"), 302, to_sign_in_page),
    Row("max_age/not-a-number", authorize(max_age="soon"), 302, redirect_error("invalid_request")),
    Row("max_age/huge", authorize(max_age="9" * 40), 302, redirect_error("invalid_request")),
    Row("id_token_hint/garbage", authorize_with_hint("garbage"), 302, redirect_error("invalid_request")),
    Row("id_token_hint/alg-none", authorize_with_hint("alg none"), 302, redirect_error("invalid_request")),
    Row(
        "id_token_hint/hs256-public-key",
        authorize_with_hint("HS256 with the public key"),
        302,
        redirect_error("invalid_request"),
    ),
    Row("id_token_hint/another-key", authorize_with_hint("another key"), 302, redirect_error("invalid_request")),
    Row(
        "id_token_hint/another-clients", authorize_with_hint("another client's"), 302, redirect_error("invalid_request")
    ),
    Row(
        "prompt/twice",
        authorize(also=[("prompt", "login"), ("prompt", "none")]),
        302,
        redirect_error("invalid_request"),
    ),
    Row("nonce/twice", authorize(also=[("nonce", "another")]), 302, redirect_error("invalid_request")),
    Row("authorize/10kB-state", authorize(state=huge(10_000)), 414),
    Row("authorize/nul-in-state", authorize(state="a\x00b"), 302),
    Row(
        "authorize/invalid-utf8-in-nonce",
        http("GET", "idp", "/o/authorize/?client_id=site-a&response_type=code&nonce=%ff%fe"),
        (302, 400),
    ),
    Row("authorize/unknown-method", http("FOO", "idp", "/o/authorize/", browser="idp"), (403, 405)),
    Row(
        "authorize/head", http("HEAD", "idp", "/o/authorize/?client_id=site-a&response_type=code"), (200, 302, 400, 405)
    ),
    Row("authorize/options", http("OPTIONS", "idp", "/o/authorize/"), (200, 204, 302, 405)),
    Row(
        "authorize/x-forwarded-host",
        http(
            "GET",
            "idp",
            "/o/authorize/?client_id=site-a&response_type=code",
            headers={"X-Forwarded-Host": "evil.example"},
        ),
        (302, 400),
    ),
    # The end-session endpoint.
    Row(
        "end-session/unknown-client_id",
        end_session(client_id="no-such-client", post_logout_redirect_uri="https://evil.example/"),
        400,
        checks(REFUSED_PAGE, still_signed_in_at_idp),
    ),
    Row("end-session/garbage-hint", end_session(hint_kind="garbage"), 400, still_signed_in_at_idp),
    Row("end-session/alg-none-hint", end_session(hint_kind="alg none"), 400, still_signed_in_at_idp),
    Row(
        "end-session/hs256-public-key-hint",
        end_session(hint_kind="HS256 with the public key"),
        400,
        still_signed_in_at_idp,
    ),
    Row(
        "end-session/unregistered-post-logout-uri",
        end_session(genuine_hint=True, post_logout_redirect_uri="https://evil.example/"),
        400,
        signed_out_not_redirected,
        client="site-a",
    ),
    Row(
        "end-session/another-clients-post-logout-uri",
        end_session(genuine_hint=True, post_logout_redirect_uri="{site_b}/sso/signed-out/"),
        400,
        signed_out_not_redirected,
        client="site-a",
    ),
    Row(
        "end-session/javascript-post-logout-uri",
        end_session(genuine_hint=True, post_logout_redirect_uri="javascript:alert(1)"),
        400,
        signed_out_not_redirected,
        client="site-a",
    ),
    # Site A's callback, in the browser of a person signed in there: refused, and their session lives on.
    Row(
        "callback/state-never-issued",
        at_callback(lambda c: {"code": "some-code", "state": "not-a-state-we-sent"}),
        400,
        refused_callback,
    ),
    Row("callback/code-never-issued", at_callback(real_state_forged_code), 400, refused_callback),
    Row("callback/another-issuer", at_callback(another_issuer), 400, refused_callback),
    Row("callback/another-browsers-state-and-code", at_callback(another_browsers_callback), 400, refused_callback),
    Row("callback/site-b-code", at_callback(site_b_code_at_site_a), 400, refused_callback),
    Row("callback/nonce-swapped", at_callback(swapped("nonce")), 400, refused_callback),
    Row("callback/challenge-swapped", at_callback(swapped("code_challenge")), 400, refused_callback),
    Row(
        "callback/replayed",
        lambda c: c.person.browser.get(c.person_callback, allow_redirects=False),
        400,
        refused_callback,
    ),
    Row("callback/error-access-denied", at_callback(lambda c: {"error": "access_denied"}), 400, refused_callback),
    Row(
        "callback/error-with-markup",
        at_callback(lambda c: {"error": "<script>alert(1)</script>", "error_description": "<script>alert(1)</script>"}),
        400,
        checks(refused_callback, not_reflected),
    ),
    Row("callback/no-parameters", at_callback(lambda c: {}), 400, refused_callback),
    Row("callback/3kB-state", at_callback(lambda c: {"code": "x", "state": huge(3000)}), 400, refused_callback),
    Row("callback/10kB-state", at_callback(lambda c: {"code": "x", "state": huge(10_000)}), 414),
    Row("callback/nul-bytes", at_callback(lambda c: "code=%00&state=%00"), 400, refused_callback),
    Row("callback/invalid-utf8", at_callback(lambda c: "code=%ff&state=%fe%ff"), 400, refused_callback),
    Row(
        "callback/state-twice",
        at_callback(lambda c: {"code": "x", "state": ["a", started_sign_in(c)["state"]]}),
        400,
        refused_callback,
    ),
    Row(
        "callback/post",
        http("POST", "site_a", "/sso/callback/?code=x&state=y", browser="person"),
        (403, 405),
        person_intact,
    ),
    # Site A's back-channel logout endpoint: forged and malformed logout tokens end nothing.
    Row("logout-token/alg-none", backchannel(forged_by("alg none")), 400, refused_logout_token),
    Row(
        "logout-token/hs256-public-key", backchannel(forged_by("HS256 with the public key")), 400, refused_logout_token
    ),
    Row("logout-token/another-key", backchannel(forged_by("another key")), 400, refused_logout_token),
    Row("logout-token/unknown-kid", backchannel(forged_by("unknown kid")), 400, refused_logout_token),
    Row("logout-token/expired", backchannel(forged(iat=1_000_000_000, exp=1_000_000_120)), 400, refused_logout_token),
    Row("logout-token/wrong-audience", backchannel(forged(aud="site-b")), 400, refused_logout_token),
    Row("logout-token/wrong-issuer", backchannel(forged(iss="https://evil.example/o")), 400, refused_logout_token),
    Row("logout-token/no-events", backchannel(forged(events=None)), 400, refused_logout_token),
    Row("logout-token/with-nonce", backchannel(forged(nonce="n-0S6_WzA2Mj")), 400, refused_logout_token),
    Row("logout-token/no-sid-nor-sub", backchannel(forged(sid=None)), 400, refused_logout_token),
    Row("logout-token/exp-not-a-number", backchannel(forged(exp="later")), 400, refused_logout_token),
    Row("logout-token/replayed-jti", backchannel(replayed_logout_token), 400, refused_logout_token),
    Row("logout-token/an-id-token", backchannel(the_persons_id_token), 400, refused_logout_token),
    Row("logout-token/not-a-jwt", backchannel(lambda c: "not.a.jwt"), 400, refused_logout_token),
    Row("logout-token/empty", backchannel(lambda c: ""), 400, refused_logout_token),
    Row("logout-token/100kB", backchannel(lambda c: huge(100_000)), 400, refused_logout_token),
    Row(
        "logout-token/twice",
        http("POST", "site_a", "/sso/backchannel-logout/", data=[("logout_token", "a"), ("logout_token", "b")]),
        400,
    ),
    Row("logout-token/json-body", http("POST", "site_a", "/sso/backchannel-logout/", json={"logout_token": "x"}), 400),
    Row(
        "logout-token/bad-multipart",
        http(
            "POST",
            "site_a",
            "/sso/backchannel-logout/",
            data=b"\xff\xfe",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        400,
    ),
    Row("logout-token/get", http("GET", "site_a", "/sso/backchannel-logout/?logout_token=x"), 405),
    # Oversized and malformed requests.
    Row("host/another-site", http("GET", "idp", "/accounts/login/", headers={"Host": "evil.example"}), 400),
    Row("host/5kB", http("GET", "site_a", "/", headers={"Host": huge(5000)}), 400),
    Row("host/9kB", http("GET", "idp", "/", headers={"Host": huge(9000)}), (400, 431)),
    Row(
        "cookie/7kB-idp-session",
        http("GET", "idp", "/accounts/login/", headers={"Cookie": "idp_sessionid=" + huge(7000)}),
        200,
    ),
    Row(
        "cookie/control-characters",
        http("GET", "site_a", "/", headers={"Cookie": "site_a_sessionid=\x7f\x01;;=;"}),
        (302, 400),
    ),
    Row("path/static-traversal", http("GET", "idp", "/static/%2e%2e/%2e%2e/idp_server/settings.py"), 404),
    Row("path/invalid-utf8", http("GET", "site_a", "/%ff%fe"), (302, 404)),  # protected: off to sign in
    Row("path/4kB", http("GET", "site_b", "/" + huge(4000)), (302, 404, 414)),
    Row("path/invalid-utf8-at-idp", http("GET", "idp", "/o/%ff%fe/"), 404),
    Row("site/head", http("HEAD", "site_a", "/"), 302),
    Row("site/unknown-method", http("PROPFIND", "site_a", "/", browser="person"), (401, 403, 405)),
    Row(
        "site/x-forwarded-host",
        http("GET", "site_a", "/", headers={"X-Forwarded-Host": "evil.example", "Accept": "text/html"}),
        302,
    ),
    Row(
        "site/accept-language-garbage",
        http("GET", "site_a", "/about/", headers={"Accept-Language": "zz-ZZZZ;q=x,\u00e9;q=2," * 200}),
        (200, 400),
    ),
    # The IdP's login form.
    Row("login/sql-in-username", login_post("' OR 1=1 --"), 400, shows("do not match")),
    Row("login/markup-in-username", login_post("<script>alert(1)</script>"), 400, not_reflected),
    Row("login/rtl-override-in-username", login_post("\u202enimda"), 400),
    Row("login/5000-character-username", login_post("u" * 5000), 400),
    Row("login/nul-in-username", login_post("nobody\x00admin"), 400),
    Row("login/username-twice", login_post("nobody-twice", extra={"username": ["nobody-1", "nobody-2"]}), 400),
    Row("login/json-body", http("POST", "idp", "/accounts/login/", json={"username": "alice", "password": "x"}), 403),
    Row("login/next-off-the-idp", next_off_the_idp("https://evil.example/"), 302),
    Row("login/next-scheme-relative", next_off_the_idp("//evil.example/"), 302),
    Row("login/next-backslash", next_off_the_idp("/\\evil.example"), 302),
    # Every form post without its CSRF token.
    Row("csrf/idp-login", login_without_csrf, 403, shows("expired")),
    Row("csrf/idp-login-another-browsers-token", login_with_another_browsers_token, 403),
    Row(
        "csrf/consent",
        form_post_without_csrf(CONSENT_PAGE, data={"allow": "Authorize"}, own=False),
        403,
    ),
    Row(
        "csrf/end-session-confirm",
        form_post_without_csrf("/o/logout/", data={"allow": "Logout"}),
        403,
        still_signed_in_at_idp,
    ),
    Row("csrf/idp-sign-out", form_post_without_csrf("/", "/accounts/logout/"), 403, still_signed_in_at_idp),
    Row(
        "csrf/reauthenticate",
        form_post_without_csrf(
            "/accounts/reauthenticate/", data={"username": "nobody-reauth", "password": "x"}, own=False
        ),
        403,
    ),
    Row(
        "csrf/admin-login",
        http("POST", "idp", "/admin/login/", data={"username": "nobody-admin", "password": "x"}),
        403,
    ),
    Row("csrf/site-a-sign-out", site_logout_without_csrf("site_a"), 403, person_intact),
    Row("csrf/site-b-sign-out", site_logout_without_csrf("site_b"), 403, person_intact),
    # Session fixation: a session key chosen by an attacker is never the one signed in.
    Row("fixation/idp-real-anonymous-session", fixation_at_idp("a real anonymous session"), 302),
    Row("fixation/idp-made-up-key", fixation_at_idp("a made-up key"), 302),
    Row("fixation/site-a", fixation_at_site("site_a"), 200),
    Row("fixation/site-b", fixation_at_site("site_b"), 200),
    # Anonymous requests cost little (issue 8).
    Row("anonymous/site-session-short-lived", anonymous_script_at_site, 302),
    Row("anonymous/idp-stores-no-session", anonymous_visit_to_idp, 302),
]


# --- the assertions, for every row ---------------------------------------------------------------------
def test_the_catalogue_is_one_table_of_named_rows():
    names = [row.name for row in ROWS]
    assert len(names) == len(set(names)), "row names are unique"
    assert len(ROWS) >= 60


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_hostile_request(catalogue, row):
    response = row.send(catalogue)
    assert_no_server_error(response)
    assert response.status_code in row.statuses, (
        f"{row.name}: {response.status_code} (expected {row.statuses}): {response.text[:300]}"
    )
    problem = redirect_problem(
        response,
        idp_url=catalogue.idp.url,
        registered=catalogue.registered,
        client_ids={row.client} if row.client else None,
    )
    assert problem is None, f"{row.name}: {problem}"
    assert_nothing_leaked(response, catalogue.never_shown())
    if row.check:
        row.check(catalogue, response)


def test_after_the_catalogue_nothing_stored_is_lost(catalogue, alice):
    assert catalogue.person_intact(), "the person signed in before the catalogue still is, at both sites"
    person = Visitor()
    assert signed_in_page_shows_alice(person.sign_in(f"{catalogue.site_a}/", *alice).page)
    assert signed_in_page_shows_alice(person.visit(f"{catalogue.site_b}/").page)
    for client in ("site-a", "site-b"):
        tokens = catalogue.tokens(client)
        assert catalogue.idp.userinfo(tokens["access_token"]).status_code == 200, client
