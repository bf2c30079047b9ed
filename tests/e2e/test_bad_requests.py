"""Every bad input the issue names: a clear 4xx, a readable page or the RFC's OAuth error."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import age_code
from tests.e2e.oidc import AuthRequest, Client, query, submit_login


def login_page(idp, browser, request: AuthRequest) -> requests.Response:
    page = idp.follow(browser, idp.authorize_url(request.params()), stop_at=request.client.redirect_uri)[-1]
    assert page.status_code == 200 and 'name="password"' in page.text
    return page


# --- the login page ----------------------------------------------------------------------------
def test_wrong_password_shows_the_login_page_again_with_a_message(idp, site_a_client):
    browser = requests.Session()
    page = login_page(idp, browser, AuthRequest(site_a_client))
    refused = submit_login(browser, page, "alice", "not-her-password")
    assert refused.status_code == 400
    assert "do not match" in refused.text
    assert 'name="password"' in refused.text
    assert "not-her-password" not in refused.text
    assert "idp_sessionid" not in browser.cookies


def test_unknown_user_is_told_exactly_what_a_wrong_password_is_told(idp, site_a_client):
    browser = requests.Session()
    page = login_page(idp, browser, AuthRequest(site_a_client))
    known = submit_login(browser, page, "alice", "wrong-password")
    unknown = submit_login(browser, page, "nobody-by-this-name", "wrong-password")
    assert unknown.status_code == known.status_code == 400

    def message(response):
        return response.text.split('role="alert">')[1].split("<")[0]

    assert message(unknown) == message(known)


def test_login_without_the_csrf_token_is_refused_with_a_readable_page(idp, site_a_client, alice):
    browser = requests.Session()
    page = login_page(idp, browser, AuthRequest(site_a_client))
    response = browser.post(page.url, data={"username": alice[0], "password": alice[1]}, allow_redirects=False)
    assert response.status_code == 403
    assert "expired" in response.text
    assert "idp_sessionid" not in browser.cookies


# --- the authorization endpoint ----------------------------------------------------------------
@pytest.fixture
def signed_in(idp, site_a_client, alice) -> requests.Session:
    """A browser with an IdP session, so authorization requests are judged at once."""
    browser = requests.Session()
    idp.sign_in(browser, AuthRequest(site_a_client), *alice)
    return browser


def authorize(idp, browser, params) -> requests.Response:
    return browser.get(idp.authorize_url(params), allow_redirects=False, timeout=10)


def test_unknown_client_gets_an_error_page_and_no_redirect(idp, signed_in, site_a_client):
    stranger = Client("no-such-client", None, site_a_client.redirect_uri)
    response = authorize(idp, signed_in, AuthRequest(stranger).params())
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "refused" in response.text and "Invalid client_id" in response.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://attacker.example/sso/callback/",
        "{site}/sso/callback/extra",
        "{site}/sso/callback",  # no trailing slash
        "{site}/sso/callback/?next=/elsewhere",
        "http://127.0.0.1:1/sso/callback/",  # the registered path on another loopback port
    ],
)
def test_unregistered_redirect_uri_is_never_redirected_to(idp, signed_in, site_a_client, redirect_uri):
    site = site_a_client.redirect_uri.removesuffix("/sso/callback/")
    params = AuthRequest(site_a_client).params(redirect_uri=redirect_uri.format(site=site))
    response = authorize(idp, signed_in, params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "invalid_request" in response.text or "mismatching_redirect_uri" in response.text


def test_missing_pkce_challenge_is_an_invalid_request(idp, signed_in, site_a_client):
    request = AuthRequest(site_a_client)
    response = authorize(idp, signed_in, request.params(code_challenge=None, code_challenge_method=None))
    assert response.status_code == 302
    error = query(response.headers["Location"])
    assert response.headers["Location"].startswith(site_a_client.redirect_uri)
    assert error["error"] == "invalid_request"
    assert error["state"] == request.state
    assert error["iss"] == idp.issuer, "RFC 9207: error answers name the issuer too"
    assert "code" not in error


@pytest.mark.parametrize("challenge", ["abc", "a" * 44, "a" * 42 + "=", "a" * 42 + "\x00"])
def test_a_challenge_that_is_no_s256_digest_is_an_invalid_request(idp, signed_in, site_a_client, challenge):
    request = AuthRequest(site_a_client)
    response = authorize(idp, signed_in, request.params(code_challenge=challenge))
    assert response.status_code == 302
    error = query(response.headers["Location"])
    assert error["error"] == "invalid_request" and "code" not in error


def test_a_head_request_issues_no_code(idp, signed_in, site_a_client):
    response = signed_in.head(idp.authorize_url(AuthRequest(site_a_client).params()), timeout=10)
    assert response.status_code == 405
    assert "Location" not in response.headers


@pytest.mark.parametrize("method", ["plain", None])  # no method means plain (RFC 7636 4.3)
def test_plain_pkce_is_refused(idp, signed_in, site_a_client, method):
    request = AuthRequest(site_a_client)
    response = authorize(idp, signed_in, request.params(code_challenge=request.verifier, code_challenge_method=method))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(site_a_client.redirect_uri)
    error = query(response.headers["Location"])
    assert error["error"] == "invalid_request"
    assert "S256" in error["error_description"]
    assert error["state"] == request.state
    assert error["iss"] == idp.issuer
    assert "code" not in error


# --- the token endpoint --------------------------------------------------------------------------
def code_for(idp, browser, request: AuthRequest) -> str:
    response = authorize(idp, browser, request.params())
    assert response.status_code == 302
    return query(response.headers["Location"])["code"]


def test_reused_code_is_an_invalid_grant(idp, signed_in, site_a_client):
    request = AuthRequest(site_a_client)
    code = code_for(idp, signed_in, request)
    assert idp.exchange(request, code).status_code == 200
    again = idp.exchange(request, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_expired_code_is_an_invalid_grant(idp, signed_in, site_a_client, stack):
    request = AuthRequest(site_a_client)
    code = code_for(idp, signed_in, request)
    age_code(stack, code)
    response = idp.exchange(request, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_wrong_pkce_verifier_is_an_invalid_grant(idp, signed_in, site_a_client):
    request = AuthRequest(site_a_client)
    code = code_for(idp, signed_in, request)
    response = idp.exchange(request, code, code_verifier="x" * 50)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_code_of_one_client_is_useless_to_another(idp, signed_in, site_a_client, site_b_client):
    request = AuthRequest(site_a_client)
    code = code_for(idp, signed_in, request)
    response = idp.token(
        site_b_client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=site_a_client.redirect_uri,
        code_verifier=request.verifier,
    )
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_wrong_client_secret_is_an_invalid_client(idp, signed_in, site_a_client):
    request = AuthRequest(site_a_client)
    code = code_for(idp, signed_in, request)
    impostor = Client(site_a_client.client_id, "not-the-secret", site_a_client.redirect_uri)
    response = idp.exchange(AuthRequest(impostor, verifier=request.verifier), code)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # The real client can still use its code: a failed attempt destroys nothing.
    assert idp.exchange(request, code).status_code == 200


def test_garbage_at_the_token_endpoint_is_a_400(idp, site_a_client):
    response = idp.token(site_a_client, grant_type="authorization_code", code="made-up")
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "invalid_grant")
    unsupported = idp.token(site_a_client, grant_type="password", username="alice", password="x")
    assert unsupported.status_code in (400, 401)
    assert unsupported.json()["error"] in ("unsupported_grant_type", "unauthorized_client", "invalid_grant")


def test_userinfo_without_a_valid_token_is_a_401(idp):
    assert idp.userinfo("not-a-token").status_code == 401
    assert requests.get(idp.metadata["userinfo_endpoint"], timeout=5).status_code == 401
