"""What an attacker holding a client's credentials, a stolen code or a token gets: nothing more.

The token endpoint's password grant, a replayed code, a code that outlived its session, and
introspection of another client's token, against the running IdP.
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e.oidc import AuthRequest, Client, csrf_token


def fresh_code(idp, client, person) -> tuple[requests.Session, AuthRequest, str]:
    browser, request = requests.Session(), AuthRequest(client)
    return browser, request, idp.sign_in(browser, request, *person)["code"]


# --- the token endpoint is no password oracle ------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "password", "username": "alice", "password": "{right}"},
        {"grant_type": "password", "username": "alice", "password": "wrong"},
        {"grant_type": "password", "username": "nobody", "password": "wrong"},
        {"grant_type": "password"},
        {"grant_type": "client_credentials"},
        {"grant_type": "implicit"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        {"grant_type": "made-up"},
    ],
)
@pytest.mark.parametrize("authenticated", [True, False])
def test_grants_not_served_get_one_answer_whatever_else_is_sent(idp, site_a_client, alice, data, authenticated):
    data = {key: value.format(right=alice[1]) for key, value in data.items()}
    client = site_a_client if authenticated else Client("site-a", "not-the-secret", site_a_client.redirect_uri)
    response = idp.token(client, **data)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_a_missing_or_repeated_grant_type_is_an_invalid_request(idp, site_a_client):
    assert idp.token(site_a_client).json()["error"] == "invalid_request"
    repeated = requests.post(
        idp.metadata["token_endpoint"],
        data=[("grant_type", "authorization_code"), ("grant_type", "password")],
        auth=(site_a_client.client_id, site_a_client.client_secret),
        timeout=10,
    )
    assert repeated.status_code == 400
    assert repeated.json()["error"] == "invalid_request"


# --- a code is single-use: a replay revokes what the first use gave ------------------------------------
def test_replaying_a_code_revokes_the_tokens_it_issued(idp, site_a_client, alice):
    _, request, code = fresh_code(idp, site_a_client, alice)
    tokens = idp.exchange(request, code).json()
    assert idp.userinfo(tokens["access_token"]).status_code == 200

    replay = idp.exchange(request, code)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert idp.userinfo(tokens["access_token"]).status_code == 401
    refresh = idp.token(site_a_client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.json()["error"] == "invalid_grant"


def test_replaying_a_code_also_revokes_tokens_refreshed_since(idp, site_a_client, alice):
    _, request, code = fresh_code(idp, site_a_client, alice)
    tokens = idp.exchange(request, code).json()
    fresh = idp.token(site_a_client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
    assert idp.exchange(request, code).status_code == 400
    assert idp.userinfo(fresh["access_token"]).status_code == 401
    refresh = idp.token(site_a_client, grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert refresh.json()["error"] == "invalid_grant"


def test_a_code_replayed_by_another_client_revokes_nothing_of_the_first(idp, site_a_client, site_b_client, alice):
    """Another client cannot use, nor spoil, a code that is not its own."""
    _, request, code = fresh_code(idp, site_a_client, alice)
    tokens = idp.exchange(request, code).json()
    stranger = idp.token(
        site_b_client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=site_a_client.redirect_uri,
        code_verifier=request.verifier,
    )
    assert stranger.status_code == 400
    assert idp.userinfo(tokens["access_token"]).status_code == 200


# --- a code dies with the session it was issued in ---------------------------------------------------
def test_a_code_issued_before_sign_out_is_worthless_after_it(idp, site_a_client, alice):
    browser, request, code = fresh_code(idp, site_a_client, alice)
    signed_out = browser.get(
        idp.metadata["end_session_endpoint"], params={"client_id": "site-a"}, allow_redirects=False, timeout=30
    )
    assert signed_out.status_code in (200, 302)
    if signed_out.status_code == 200:  # asked to confirm: confirm, as the person would
        confirmed = browser.post(
            signed_out.url,
            data={"csrfmiddlewaretoken": csrf_token(signed_out.text), "client_id": "site-a", "allow": "Logout"},
            headers={"Referer": signed_out.url},
            allow_redirects=False,
            timeout=30,
        )
        assert confirmed.status_code == 302
    response = idp.exchange(request, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# --- introspection: a client sees its own tokens only -------------------------------------------------
def test_a_client_cannot_introspect_another_clients_token(idp, site_a_client, site_b_client, alice):
    _, request, code = fresh_code(idp, site_a_client, alice)
    tokens = idp.exchange(request, code).json()
    for token in (tokens["access_token"], tokens["refresh_token"]):
        seen_by_b = idp.introspect(site_b_client, token)
        assert seen_by_b.status_code == 200
        assert seen_by_b.json() == {"active": False}
    own = idp.introspect(site_a_client, tokens["access_token"]).json()
    assert own["active"] is True and own["client_id"] == "site-a"


def test_introspection_without_client_credentials_is_refused(idp, site_a_client, alice):
    _, request, code = fresh_code(idp, site_a_client, alice)
    token = idp.exchange(request, code).json()["access_token"]
    anonymous = requests.post(idp.metadata["introspection_endpoint"], data={"token": token}, timeout=10)
    assert anonymous.status_code in (401, 403)
    assert "active" not in anonymous.text
    wrong = idp.introspect(Client("site-a", "not-the-secret", site_a_client.redirect_uri), token)
    assert wrong.status_code in (401, 403)
    # A client's access token is not a key to introspection either (no `introspection` scope).
    bearer = requests.post(
        idp.metadata["introspection_endpoint"],
        data={"token": token},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert bearer.status_code in (401, 403)


def test_revoking_another_clients_token_does_not_revoke_it(idp, site_a_client, site_b_client, alice):
    _, request, code = fresh_code(idp, site_a_client, alice)
    tokens = idp.exchange(request, code).json()
    idp.revoke(site_b_client, tokens["access_token"], "access_token")
    assert idp.userinfo(tokens["access_token"]).status_code == 200
