"""The authorization code flow, end to end: a person signs in, a client site gets verified tokens."""

from __future__ import annotations

import requests

from tests.e2e.oidc import AuthRequest


def test_discovery_describes_the_provider(idp):
    metadata = idp.metadata
    assert metadata["issuer"] == idp.issuer
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ):
        assert metadata[endpoint].startswith(idp.issuer + "/"), endpoint
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert metadata["response_types_supported"] == ["code"]
    assert {"openid", "profile", "email"} <= set(metadata["scopes_supported"])
    assert {"sub", "preferred_username", "name", "email", "email_verified"} <= set(metadata["claims_supported"])


def test_jwks_publishes_only_public_rsa_keys(idp):
    keys = requests.get(idp.metadata["jwks_uri"], timeout=5).json()["keys"]
    assert keys
    assert all(key["kty"] == "RSA" and "d" not in key for key in keys)


def test_sign_in_then_tokens_userinfo_refresh_introspection_and_revocation(idp, site_a_client, alice):
    browser = requests.Session()
    request = AuthRequest(site_a_client)

    # A visitor is sent to the IdP's login page: Django's form, with CSRF protection.
    first = idp.follow(browser, idp.authorize_url(request.params()), stop_at=site_a_client.redirect_uri)[-1]
    assert first.status_code == 200
    assert 'name="username"' in first.text and 'name="password"' in first.text
    assert "csrfmiddlewaretoken" in first.text
    assert "idp_csrftoken" in browser.cookies

    # Signing in sends the browser back to the client with a code, its state and the issuer.
    callback = idp.sign_in(browser, request, *alice)
    assert "idp_sessionid" in browser.cookies
    assert callback["state"] == request.state
    assert callback["iss"] == idp.issuer, "RFC 9207: the authorization response names its issuer"

    exchanged = idp.exchange(request, callback["code"])
    assert exchanged.status_code == 200, exchanged.text
    assert "no-store" in exchanged.headers["Cache-Control"]
    tokens = exchanged.json()
    assert tokens["token_type"] == "Bearer"
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= set(tokens)

    # The ID token verifies against the JWKS: signature, iss, aud, nonce, exp.
    claims = idp.verify_id_token(tokens["id_token"], request)
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.com"

    userinfo = idp.userinfo(tokens["access_token"])
    assert userinfo.status_code == 200
    info = userinfo.json()
    assert info["sub"] == claims["sub"]
    assert info["preferred_username"] == "alice"
    assert info["name"] == "Alice Liddell"
    assert info["email_verified"] is True

    # Refreshing rotates the refresh token; the used one is refused afterwards.
    refreshed = idp.token(site_a_client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    fresh = refreshed.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["access_token"] != tokens["access_token"]
    assert idp.userinfo(fresh["access_token"]).status_code == 200
    assert idp.verify_id_token(fresh["id_token"], request, refreshed=True)["sub"] == claims["sub"]

    introspected = idp.introspect(site_a_client, fresh["access_token"])
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    assert introspected.json()["client_id"] == "site-a"

    # Revocation ends the access token at once.
    assert idp.revoke(site_a_client, fresh["access_token"], "access_token").status_code == 200
    assert idp.introspect(site_a_client, fresh["access_token"]).json()["active"] is False
    assert idp.userinfo(fresh["access_token"]).status_code == 401


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(idp, site_a_client, alice):
    request = AuthRequest(site_a_client)
    callback = idp.sign_in(requests.Session(), request, *alice)
    tokens = idp.exchange(request, callback["code"]).json()
    fresh = idp.token(site_a_client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
    # The client uses its new pair: from now on the old refresh token can only be a replay (before
    # that, within REFRESH_TOKEN_GRACE_SECONDS, it would be a lost answer: the next test).
    fresh = idp.token(site_a_client, grant_type="refresh_token", refresh_token=fresh["refresh_token"]).json()

    replay = idp.token(site_a_client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # RFC 9700 4.14.2: a replayed refresh token is a sign of theft, so its successor dies too.
    successor = idp.token(site_a_client, grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert successor.json()["error"] == "invalid_grant"


def test_a_refresh_answer_lost_on_its_way_is_replaced_not_held_against_the_client(idp, site_a_client, alice):
    """The client timed out (or crashed) while the IdP rotated: it presents the old refresh token
    again, soon after. It gets a new pair; the pair it never received is revoked."""
    request = AuthRequest(site_a_client)
    tokens = idp.exchange(request, idp.sign_in(requests.Session(), request, *alice)["code"]).json()
    lost = idp.token(site_a_client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()

    again = idp.token(site_a_client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.status_code == 200, again.text
    assert idp.userinfo(again.json()["access_token"]).status_code == 200
    assert idp.userinfo(lost["access_token"]).status_code == 401
    onwards = idp.token(site_a_client, grant_type="refresh_token", refresh_token=again.json()["refresh_token"])
    assert onwards.status_code == 200


def test_a_second_sign_in_with_an_idp_session_shows_no_login_page(idp, site_a_client, alice):
    browser = requests.Session()
    idp.sign_in(browser, AuthRequest(site_a_client), *alice)

    again = AuthRequest(site_a_client)
    hops = idp.follow(browser, idp.authorize_url(again.params()), stop_at=site_a_client.redirect_uri)
    assert len(hops) == 1, "a trusted client gets its code straight away"
    assert hops[0].status_code == 302
    assert idp.exchange(again, hops[0].headers["Location"].split("code=")[1].split("&")[0]).status_code == 200
