"""How a client asks for a sign-in: silently (prompt=none), again (prompt=login, max_age), for
someone in particular (id_token_hint). OIDC Core 3.1.2.1, against the running IdP."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urljoin

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from devstack.stack import IDP
from tests.e2e.oidc import AuthRequest, query, submit_login

BOB_PASSWORD = "bob-" + "s3cret-for-hint-tests"


@pytest.fixture(scope="module")
def bob(stack) -> tuple[str, str]:
    """A second person of these tests' own (so that no lock-out counter is shared with others)."""
    stack.manage(
        IDP,
        "shell",
        "-c",
        "from provider.services import user_ensure;"
        f"user_ensure(username='bob-hints', password='{BOB_PASSWORD}', email='bob@example.com', full_name='Bob Hint')",
    )
    return "bob-hints", BOB_PASSWORD


def authorize(idp, browser: requests.Session, request: AuthRequest, **overrides) -> requests.Response:
    return browser.get(idp.authorize_url(request.params(**overrides)), allow_redirects=False, timeout=30)


def signed_in(idp, client, person) -> tuple[requests.Session, dict]:
    """A browser signed in at the IdP, and the ID token claims of that sign-in."""
    browser, request = requests.Session(), AuthRequest(client)
    code = idp.sign_in(browser, request, *person)["code"]
    tokens = idp.exchange(request, code).json()
    return browser, {"raw": tokens["id_token"], **idp.verify_id_token(tokens["id_token"], request)}


def back_at_client(response: requests.Response, client) -> dict[str, str]:
    assert response.status_code == 302, response.text[:300]
    assert response.headers["Location"].startswith(client.redirect_uri), response.headers["Location"]
    return query(response.headers["Location"])


def shows_password_form(idp, browser, response: requests.Response) -> requests.Response:
    """Follow the redirect to a page; assert it asks for a password; return that page."""
    assert response.status_code == 302, response.text[:300]
    page = browser.get(urljoin(response.url, response.headers["Location"]), allow_redirects=False, timeout=30)
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    assert 'name="password"' in page.text
    return page


def reauthenticate(idp, browser, response, request, person) -> dict[str, str]:
    """Sign in on the page the IdP shows, follow back to the client; return the callback query."""
    page = shows_password_form(idp, browser, response)
    posted = submit_login(browser, page, *person)
    assert posted.status_code == 302, posted.text[:300]
    hops = idp.follow(browser, urljoin(page.url, posted.headers["Location"]), stop_at=request.client.redirect_uri)
    return back_at_client(hops[-1], request.client)


def test_discovery_says_which_prompts_and_acr_values_are_served(idp):
    assert set(idp.metadata["prompt_values_supported"]) == {"none", "login", "consent", "select_account"}
    assert idp.metadata["acr_values_supported"] == ["1", "2"]
    assert {"auth_time", "amr", "acr", "sid"} <= set(idp.metadata["claims_supported"])
    assert idp.metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]


# --- prompt=none ---------------------------------------------------------------------------------
def test_prompt_none_signed_out_goes_back_with_login_required(idp, site_a_client):
    request = AuthRequest(site_a_client)
    answer = back_at_client(authorize(idp, requests.Session(), request, prompt="none"), site_a_client)
    assert answer["error"] == "login_required"
    assert answer["state"] == request.state
    assert answer["iss"] == idp.issuer
    assert "code" not in answer


def test_prompt_none_signed_in_returns_a_code_without_a_page(idp, site_a_client, alice):
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = back_at_client(authorize(idp, browser, request, prompt="none"), site_a_client)
    assert answer["state"] == request.state
    assert answer["iss"] == idp.issuer
    assert idp.exchange(request, answer["code"]).status_code == 200


def test_prompt_none_cannot_be_combined(idp, site_a_client, alice):
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = back_at_client(authorize(idp, browser, request, prompt="none login"), site_a_client)
    assert answer["error"] == "invalid_request"
    assert "code" not in answer


# --- prompt=login and max_age: the password again ----------------------------------------------------
def test_prompt_login_asks_for_the_password_again_and_says_when(idp, site_a_client, alice):
    browser, first = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    while time.time() < first["auth_time"] + 1.05:  # auth_time counts whole seconds: be a second later
        time.sleep(0.1)
    answer = reauthenticate(idp, browser, authorize(idp, browser, request, prompt="login"), request, alice)
    assert answer["state"] == request.state
    claims = idp.verify_id_token(idp.exchange(request, answer["code"]).json()["id_token"], request)
    assert claims["auth_time"] > first["auth_time"]
    assert claims["sid"] == first["sid"], "a re-authentication keeps the IdP session"
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "1"


def test_prompt_login_signed_out_shows_the_login_page_once(idp, site_a_client, alice):
    browser, request = requests.Session(), AuthRequest(site_a_client)
    answer = reauthenticate(idp, browser, authorize(idp, browser, request, prompt="login"), request, alice)
    assert idp.exchange(request, answer["code"]).status_code == 200


def test_max_age_older_than_the_sign_in_asks_for_the_password(idp, site_a_client, alice):
    browser, first = signed_in(idp, site_a_client, alice)
    while time.time() < first["auth_time"] + 2:  # until the sign-in is older than max_age
        time.sleep(0.1)
    request = AuthRequest(site_a_client)
    answer = reauthenticate(idp, browser, authorize(idp, browser, request, max_age="1"), request, alice)
    claims = idp.verify_id_token(idp.exchange(request, answer["code"]).json()["id_token"], request)
    assert claims["auth_time"] > first["auth_time"]


def test_max_age_zero_still_ends_with_a_code(idp, site_a_client, alice):
    """max_age=0 is always older than the sign-in: once re-authenticated, the request goes on."""
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = reauthenticate(idp, browser, authorize(idp, browser, request, max_age="0"), request, alice)
    claims = idp.verify_id_token(idp.exchange(request, answer["code"]).json()["id_token"], request)
    assert "auth_time" in claims


def test_max_age_within_the_sign_in_needs_no_page_and_the_token_says_auth_time(idp, site_a_client, alice):
    browser, first = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = back_at_client(authorize(idp, browser, request, max_age="3600"), site_a_client)
    claims = idp.verify_id_token(idp.exchange(request, answer["code"]).json()["id_token"], request)
    assert claims["auth_time"] == first["auth_time"]


def test_max_age_with_prompt_none_is_login_required_when_too_old(idp, site_a_client, alice):
    browser, first = signed_in(idp, site_a_client, alice)
    while time.time() < first["auth_time"] + 2:
        time.sleep(0.1)
    answer = back_at_client(
        authorize(idp, browser, AuthRequest(site_a_client), max_age="1", prompt="none"), site_a_client
    )
    assert answer["error"] == "login_required"


@pytest.mark.parametrize("max_age", ["-1", "soon", "1.5", "9" * 30, "\uff11"])  # the last: a full-width digit one
def test_max_age_that_is_not_a_number_is_an_invalid_request(idp, site_a_client, alice, max_age):
    browser, _ = signed_in(idp, site_a_client, alice)
    answer = back_at_client(authorize(idp, browser, AuthRequest(site_a_client), max_age=max_age), site_a_client)
    assert answer["error"] == "invalid_request"


# --- id_token_hint ---------------------------------------------------------------------------------
def test_hint_for_the_signed_in_person_gives_a_silent_code(idp, site_a_client, alice):
    browser, first = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = back_at_client(authorize(idp, browser, request, prompt="none", id_token_hint=first["raw"]), site_a_client)
    assert "code" in answer


def test_hint_for_another_person_is_login_required_silently(idp, site_a_client, alice, bob):
    _, bobs = signed_in(idp, site_a_client, bob)
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = back_at_client(authorize(idp, browser, request, prompt="none", id_token_hint=bobs["raw"]), site_a_client)
    assert answer["error"] == "login_required"
    assert answer["state"] == request.state


def test_hint_for_another_person_asks_that_person_to_sign_in(idp, site_a_client, alice, bob):
    _, bobs = signed_in(idp, site_a_client, bob)
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = reauthenticate(idp, browser, authorize(idp, browser, request, id_token_hint=bobs["raw"]), request, bob)
    claims = idp.verify_id_token(idp.exchange(request, answer["code"]).json()["id_token"], request)
    assert claims["sub"] == bobs["sub"]


def test_hint_answered_by_signing_in_as_a_third_person_is_login_required(idp, site_a_client, alice, bob):
    _, bobs = signed_in(idp, site_a_client, bob)
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    answer = reauthenticate(idp, browser, authorize(idp, browser, request, id_token_hint=bobs["raw"]), request, alice)
    assert answer["error"] == "login_required"


def _segment(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_hints(idp, genuine: dict, for_site_b: dict) -> dict[str, str]:
    claims = {key: value for key, value in genuine.items() if key != "raw"}
    header, payload, _signature = genuine["raw"].split(".")
    public_key = idp.jwks().keys[0]
    other_key = RSAKey.generate_key(2048, parameters={"kid": public_key.kid})
    return {
        "garbage": "not-a-token",
        "three dots of garbage": "a.b.c",
        "payload not json": f"{header}.{base64.urlsafe_b64encode(b'[1,').decode().rstrip('=')}.{_signature}",
        "alg none": f"{_segment({'alg': 'none'})}.{payload}.",
        "HS256 with the public key": jwt.encode(
            {"alg": "HS256"}, claims, OctKey.import_key(json.dumps(public_key.as_dict()).encode())
        ),
        "another key": jwt.encode({"alg": "RS256", "kid": public_key.kid}, claims, other_key),
        "tampered payload": f"{header}.{_segment({**claims, 'sub': 'someone-else'})}.{_signature}",
        "another client's": for_site_b["raw"],
        "oversized": "a" * 1400 + "." + "b" * 1400 + "." + "c" * 1000,
    }


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "three dots of garbage",
        "payload not json",
        "alg none",
        "HS256 with the public key",
        "another key",
        "tampered payload",
        "another client's",
        "oversized",
    ],
)
def test_a_forged_or_malformed_hint_is_an_invalid_request(idp, site_a_client, site_b_client, alice, kind):
    browser, first = signed_in(idp, site_a_client, alice)
    _, for_site_b = signed_in(idp, site_b_client, alice)
    request = AuthRequest(site_a_client)
    hint = forged_hints(idp, first, for_site_b)[kind]
    response = authorize(idp, browser, request, id_token_hint=hint)
    if kind == "oversized":  # longer than a request line may be: the server refuses it
        assert response.status_code == 414
        return
    answer = back_at_client(response, site_a_client)
    assert answer["error"] == "invalid_request"
    assert "code" not in answer


def test_an_expired_hint_still_names_the_person(idp, site_a_client, alice, stack):
    """Clients keep the ID token for the whole session: an expired hint is still a hint."""
    browser, first = signed_in(idp, site_a_client, alice)
    while time.time() < first["exp"] + 1:  # ACCESS_TOKEN_SECONDS is short in the tests
        time.sleep(0.2)
    request = AuthRequest(site_a_client)
    answer = back_at_client(authorize(idp, browser, request, prompt="none", id_token_hint=first["raw"]), site_a_client)
    assert "code" in answer


# --- other parameters that must never reach a server error -------------------------------------------
@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"prompt": "bogus"}, "invalid_request"),
        ({"prompt": "create"}, "invalid_request"),
        ({"login_hint": "alice"}, None),
        ({"login_hint": "<script>alert(1)</script>" + "é" * 100}, None),
        ({"prompt": "consent"}, None),  # a trusted first-party client: no consent page, a code
        ({"prompt": "select_account"}, "sign-in page"),
        ({"ui_locales": "zh-Hans en"}, None),
        ({"display": "popup"}, None),
        ({"claims": "{not json"}, "error page"),
    ],
)
def test_other_parameters_are_answered_never_a_server_error(idp, site_a_client, alice, extra, error):
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    response = authorize(idp, browser, request, **extra)
    assert response.status_code in (302, 400), response.text[:300]
    if error == "error page":  # judged fatal: no redirect, a readable page
        assert response.status_code == 400 and ("invalid_request" in response.text or "Bad request" in response.text)
        return
    if error == "sign-in page":
        shows_password_form(idp, browser, response)
        return
    answer = back_at_client(response, site_a_client)
    if error is None:
        assert "code" in answer, answer
    else:
        assert answer["error"] == error


@pytest.mark.parametrize("name", ["prompt", "max_age", "id_token_hint", "nonce", "state", "client_id"])
def test_a_repeated_parameter_is_refused(idp, site_a_client, alice, name):
    browser, _ = signed_in(idp, site_a_client, alice)
    request = AuthRequest(site_a_client)
    value = {"prompt": "login", "max_age": "5"}.get(name, "again")
    params = [*request.params().items(), (name, value), (name, value)]
    url = idp.metadata["authorization_endpoint"] + "?" + requests.models.RequestEncodingMixin._encode_params(params)
    response = browser.get(url, allow_redirects=False, timeout=30)
    assert response.status_code in (302, 400), response.text[:300]
    if response.status_code == 302:
        assert back_at_client(response, site_a_client)["error"] == "invalid_request"
