"""Never a server error: a property-based pass (hypothesis) over the endpoints that take input.

The authorization, token, end-session and introspection endpoints of the IdP and the
back-channel logout endpoint of site A get generated requests: a GET or a POST, parameters drawn
from the names each endpoint knows (and a few it does not) with values that are meaningful
(client ids, registered URIs, genuine tokens, used codes), random unicode text, empty, huge
(within the server's request-line limit) or invalid UTF-8, with or without client
authentication. The property: never a 5xx and no traceback; from the authorization endpoint
(and any other), never a redirect to a URI that is not registered for the client the request
names.

Bounded for `make test`: a fixed number of examples per endpoint, derandomized (the same
examples every run) and no example database (nothing is written to the repository).
"""

from __future__ import annotations

import string
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.hostile import (
    BACKCHANNEL_LOGOUT_EVENT,
    assert_no_server_error,
    assert_nothing_leaked,
    idp_signing_key,
    logout_claims,
    redirect_problem,
    registered_uris,
    signed,
    stack_secrets,
    unsigned,
)
from tests.e2e.oidc import AuthRequest, Client

TIMEOUT = 30

PARAMETERS = {
    "authorize": [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "max_age",
        "id_token_hint",
        "login_hint",
        "ui_locales",
        "claims",
        "display",
        "response_mode",
        "request",
        "request_uri",
        "acr_values",
        "allow",
    ],
    "token": [
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "client_id",
        "client_secret",
        "scope",
        "username",
        "password",
        "assertion",
        "client_assertion",
        "client_assertion_type",
        "resource",
    ],
    "end_session": [
        "id_token_hint",
        "client_id",
        "post_logout_redirect_uri",
        "state",
        "logout_hint",
        "ui_locales",
        "allow",
    ],
    "introspect": ["token", "token_type_hint", "client_id", "client_secret"],
    "backchannel": ["logout_token"],
}


def examples(count: int):
    """Hypothesis settings of this module: `count` examples, the same ones every run."""
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


class Endpoints:
    """The running stack, the values worth sending it, and how to send a generated request."""

    def __init__(self, stack, idp, alice) -> None:
        self.idp = idp
        self.site_a, self.site_b = stack.env["SITE_A_URL"], stack.env["SITE_B_URL"]
        self.clients = {
            "site-a": Client("site-a", stack.env["SITE_A_CLIENT_SECRET"], f"{self.site_a}/sso/callback/"),
            "site-b": Client("site-b", stack.env["SITE_B_CLIENT_SECRET"], f"{self.site_b}/sso/callback/"),
        }
        self.registered = registered_uris(stack)
        self.secrets = set(stack_secrets(stack).values())
        self.key = idp_signing_key(stack, idp)
        self.browsers = {"authorize": requests.Session(), "end_session": requests.Session()}
        genuine: list[str] = []
        #: Well-formed requests, which the generated ones change: so they get past the first check.
        self.baselines: dict[str, list[dict]] = {name: [{}] for name in PARAMETERS}
        for browser in self.browsers.values():
            for client in self.clients.values():
                request = AuthRequest(client)
                code = idp.sign_in(browser, request, *alice)["code"]
                tokens = idp.exchange(request, code).json()
                genuine += [
                    code,
                    request.verifier,
                    request.challenge,
                    *(tokens[k] for k in ("access_token", "refresh_token", "id_token")),
                ]
                self.baselines["authorize"].append(AuthRequest(client).params())
                self.baselines["token"] += [
                    {
                        "grant_type": "authorization_code",
                        "code": code,  # used already
                        "redirect_uri": client.redirect_uri,
                        "code_verifier": request.verifier,
                    },
                    {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                ]
                self.baselines["end_session"].append(
                    {
                        "id_token_hint": tokens["id_token"],
                        "client_id": client.client_id,
                        "post_logout_redirect_uri": client.redirect_uri.replace("/callback/", "/signed-out/"),
                    }
                )
                self.baselines["introspect"] += [{"token": tokens["access_token"]}, {"token": tokens["refresh_token"]}]
        self.baselines["backchannel"].append({"logout_token": signed(self.key, logout_claims(idp.issuer))})
        self.genuine = genuine
        self.urls = {
            "authorize": idp.metadata["authorization_endpoint"],
            "token": idp.metadata["token_endpoint"],
            "end_session": idp.metadata["end_session_endpoint"],
            "introspect": idp.metadata["introspection_endpoint"],
            "backchannel": f"{self.site_a}/sso/backchannel-logout/",
        }

    def meaningful(self) -> list[str]:
        return [
            *self.clients,
            *(uri for uris in self.registered.values() for uri in uris),
            f"{self.site_a}/sso/callback/evil",
            "http://127.0.0.1:9/sso/callback/",
            "https://evil.example/",
            "javascript:alert(1)",
            "code",
            "token",
            "id_token",
            "S256",
            "plain",
            "none",
            "login",
            "consent",
            "select_account",
            "openid",
            "openid profile email",
            "authorization_code",
            "refresh_token",
            "password",
            "client_credentials",
            "access_token",
            "0",
            "-1",
            "1e9",
            "Authorize",
            "Logout",
            "null",
            "{}",
            *self.genuine,
        ]

    def send(self, endpoint: str, method: str, params: dict, auth: str, signed_in: bool) -> requests.Response:
        params = dict(params)
        basic = None
        if auth in ("basic site-a", "basic site-b"):
            client = self.clients[auth.split()[1]]
            basic = (client.client_id, client.client_secret)
        elif auth == "basic wrong secret":
            basic = ("site-a", "not-the-secret")
        elif auth == "in the body":
            params.update(client_id="site-a", client_secret=self.clients["site-a"].client_secret)
        browser = self.browsers.get(endpoint) if signed_in else None
        browser = browser or requests.Session()
        options = {"params": params} if method == "GET" else {"data": params}
        return browser.request(
            method, self.urls[endpoint], auth=basic, allow_redirects=False, timeout=TIMEOUT, **options
        )

    def check(self, response: requests.Response) -> None:
        assert_no_server_error(response)
        problem = redirect_problem(response, idp_url=self.idp.url, registered=self.registered)
        assert problem is None, problem
        assert_nothing_leaked(response, self.secrets)


@pytest.fixture(scope="module")
def endpoints(stack, idp, alice) -> Endpoints:
    return Endpoints(stack, idp, alice)


# --- strategies ---------------------------------------------------------------------------------------
HUGE = st.text(alphabet=string.ascii_letters + string.digits + "-._~%/+=", min_size=1000, max_size=2500)
TEXT = st.text(max_size=40)  # any unicode but surrogates: control characters, NUL, RTL marks…
INVALID_UTF8 = st.binary(min_size=1, max_size=12)


def values(endpoints: Endpoints):
    return st.one_of(
        st.sampled_from(endpoints.meaningful()),
        TEXT,
        st.just(""),
        INVALID_UTF8,
        HUGE,
    )


def parameters(endpoint: str, endpoints: Endpoints):
    names = st.one_of(st.sampled_from(PARAMETERS[endpoint]), st.text(min_size=1, max_size=12))
    return st.dictionaries(names, values(endpoints), max_size=6)


#: The endpoint's own method first: hypothesis draws the first more often (and shrinks to it).
METHODS = {
    "authorize": st.sampled_from(["GET", "POST"]),
    "end_session": st.sampled_from(["GET", "POST"]),
    "token": st.sampled_from(["POST", "GET"]),
    "introspect": st.sampled_from(["POST", "GET"]),
    "backchannel": st.sampled_from(["POST", "GET"]),
}
AUTH = st.sampled_from(["basic site-a", "none", "basic site-b", "basic wrong secret", "in the body"])


def generated_request(endpoint: str, endpoints: Endpoints, data) -> requests.Response:
    """A well-formed request (or none) with parameters dropped, replaced and added at random."""
    baseline = data.draw(st.sampled_from(endpoints.baselines[endpoint]), label="baseline")
    dropped = data.draw(st.sets(st.sampled_from(PARAMETERS[endpoint]), max_size=3), label="dropped")
    changed = data.draw(parameters(endpoint, endpoints), label="changed")
    params = {**{name: value for name, value in baseline.items() if name not in dropped}, **changed}
    return endpoints.send(
        endpoint,
        data.draw(METHODS[endpoint], label="method"),
        params,
        data.draw(AUTH, label="client authentication"),
        data.draw(st.booleans(), label="signed in"),
    )


# --- the properties -----------------------------------------------------------------------------------------
@examples(300)
@given(data=st.data())
def test_authorize_never_errs_nor_redirects_off_a_registered_uri(endpoints, data):
    endpoints.check(generated_request("authorize", endpoints, data))


@examples(250)
@given(data=st.data())
def test_token_endpoint_never_errs(endpoints, data):
    endpoints.check(generated_request("token", endpoints, data))


@examples(200)
@given(data=st.data())
def test_end_session_never_errs(endpoints, data):
    endpoints.check(generated_request("end_session", endpoints, data))


@examples(120)
@given(data=st.data())
def test_introspection_never_errs(endpoints, data):
    endpoints.check(generated_request("introspect", endpoints, data))


@examples(120)
@given(data=st.data())
def test_backchannel_logout_never_errs(endpoints, data):
    endpoints.check(generated_request("backchannel", endpoints, data))


def logout_tokens(endpoints: Endpoints):
    """Logout tokens signed by the IdP's own key (or by nobody), with up to two claims changed.

    Only the IdP can sign, but a site must still answer 400, not 500, to whatever claims it sees.
    """
    now = int(time.time())
    claim_values = st.one_of(
        st.sampled_from(
            [
                endpoints.idp.issuer,
                "site-a",
                ["site-a", "site-b"],
                now,
                now + 60,
                now - 3600,
                float(now),
                str(now),
                {BACKCHANNEL_LOGOUT_EVENT: {}},
                {BACKCHANNEL_LOGOUT_EVENT: "yes"},
            ]
        ),
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        TEXT,
        st.lists(TEXT, max_size=3),
        st.dictionaries(TEXT, TEXT, max_size=2),
    )
    names = st.sampled_from(["iss", "aud", "iat", "exp", "jti", "sid", "sub", "events", "nonce"])

    def token(change: dict, sign: bool) -> str:
        claims = {**logout_claims(endpoints.idp.issuer), **change}
        return signed(endpoints.key, claims) if sign else unsigned(claims)

    return st.builds(
        token, st.dictionaries(names, claim_values, max_size=2), st.sampled_from([True, True, True, False])
    )


@examples(200)
@given(data=st.data())
def test_backchannel_logout_never_errs_on_odd_claims(endpoints, data):
    token = data.draw(logout_tokens(endpoints), label="logout_token")
    response = requests.post(endpoints.urls["backchannel"], data={"logout_token": token}, timeout=TIMEOUT)
    endpoints.check(response)
