"""RP-initiated logout without an ID token: `client_id` and `logout_hint` (the sid), over real HTTP.

The client sites keep no ID token in their sessions; they send the `sid` of the one they were
given as `logout_hint`. The sid of this browser's own login session signs it out with no
question asked; any other hint is no hint at all: the person is asked (or a 4xx), never a 500,
and nobody is signed out by it.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests

from tests.e2e.oidc import AuthRequest


def signed_in(idp, client, alice) -> tuple[requests.Session, str]:
    """A browser signed in at the IdP, and the sid of the ID token `client` got in that session."""
    browser, request = requests.Session(), AuthRequest(client)
    code = idp.sign_in(browser, request, *alice)["code"]
    id_token = idp.exchange(request, code).json()["id_token"]
    return browser, json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))["sid"]


def signed_out_uri(client) -> str:
    return f"{client.redirect_uri.removesuffix('/sso/callback/')}/sso/signed-out/"


def test_the_sessions_own_sid_signs_out_without_asking_and_goes_back(idp, site_a_client, alice):
    browser, sid = signed_in(idp, site_a_client, alice)
    response = idp.end_session(
        browser,
        client_id=site_a_client.client_id,
        logout_hint=sid,
        post_logout_redirect_uri=signed_out_uri(site_a_client),
        state="back-to-a",
    )
    assert response.status_code == 302, response.text[:300]
    assert response.headers["Location"] == f"{signed_out_uri(site_a_client)}?state=back-to-a"
    assert not idp.still_signed_in(browser, site_a_client)


def test_the_sid_of_another_browser_asks_and_signs_nobody_out(idp, site_a_client, alice):
    browser, _ = signed_in(idp, site_a_client, alice)
    other_browser, other_sid = signed_in(idp, site_a_client, alice)
    response = idp.end_session(
        browser,
        client_id=site_a_client.client_id,
        logout_hint=other_sid,
        post_logout_redirect_uri=signed_out_uri(site_a_client),
    )
    assert response.status_code == 200, "the confirmation page"
    assert "Location" not in response.headers
    assert idp.still_signed_in(browser, site_a_client)
    assert idp.still_signed_in(other_browser, site_a_client)


@pytest.mark.parametrize(
    "hint",
    [
        "garbage",
        "x" * 4000,
        "nul\x00character",
        "\x00",
        "ä\u202e' OR 1=1 --",
        "%00%ff",
        "",
    ],
)
def test_a_garbage_hint_asks_or_refuses_never_a_server_error(idp, site_a_client, alice, hint):
    browser, _ = signed_in(idp, site_a_client, alice)
    response = idp.end_session(
        browser,
        client_id=site_a_client.client_id,
        logout_hint=hint,
        post_logout_redirect_uri=signed_out_uri(site_a_client),
    )
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.status_code
    assert "Location" not in response.headers
    assert idp.still_signed_in(browser, site_a_client)


def test_the_right_sid_with_another_clients_id_asks(idp, site_a_client, site_b_client, alice):
    browser, sid = signed_in(idp, site_a_client, alice)  # site-b got no tokens in this session
    response = idp.end_session(
        browser,
        client_id=site_b_client.client_id,
        logout_hint=sid,
        post_logout_redirect_uri=signed_out_uri(site_b_client),
    )
    assert response.status_code == 200
    assert idp.still_signed_in(browser, site_a_client)
