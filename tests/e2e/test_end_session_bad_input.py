"""The end-session endpoint with bad input: a readable 400 page, never a server error, and a
hint that is not this IdP's own genuine ID token for that client never signs anyone out."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.e2e.oidc import AuthRequest


def signed_in(idp, client, alice) -> tuple[requests.Session, str]:
    browser, request = requests.Session(), AuthRequest(client)
    code = idp.sign_in(browser, request, *alice)["code"]
    return browser, idp.exchange(request, code).json()["id_token"]


def test_unknown_client_id_is_a_readable_400(idp, site_a_client, alice):
    browser, _ = signed_in(idp, site_a_client, alice)
    for client_id in ("no-such-client", "x" * 500, "' OR 1=1 --", "ä\u202e"):
        response = idp.end_session(browser, client_id=client_id, post_logout_redirect_uri="https://attacker.example/")
        assert response.status_code == 400, client_id
        assert "Location" not in response.headers
        assert "refused" in response.text
    assert idp.still_signed_in(browser, site_a_client)


def _segment(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def hints(idp, genuine: str) -> dict[str, str]:
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    kid = idp.jwks().keys[0].kid
    other_key = RSAKey.generate_key(2048, parameters={"kid": kid})
    return {
        "malformed": "not.a.token",
        "not three parts": "garbage",
        "payload not json": f"{header}.{_segment('x')[:-2]}.{signature}",
        "payload a list": f"{header}.{_segment([1, 2])}.{signature}",
        "alg none": f"{_segment({'alg': 'none'})}.{payload}.",
        "signed by another key": jwt.encode({"alg": "RS256", "kid": kid}, claims, other_key),
        "another issuer": jwt.encode(
            {"alg": "RS256", "kid": kid}, {**claims, "iss": "https://evil.example"}, other_key
        ),
        "aud a dict": jwt.encode({"alg": "RS256", "kid": kid}, {**claims, "aud": {"x": 1}}, other_key),
        "tampered sub": f"{header}.{_segment({**claims, 'sub': 'not-a-uuid'})}.{signature}",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "malformed",
        "not three parts",
        "payload not json",
        "payload a list",
        "alg none",
        "signed by another key",
        "another issuer",
        "aud a dict",
        "tampered sub",
    ],
)
def test_a_bad_hint_is_a_readable_400_and_signs_nobody_out(idp, site_a_client, alice, kind):
    browser, id_token = signed_in(idp, site_a_client, alice)
    response = idp.end_session(browser, id_token_hint=hints(idp, id_token)[kind])
    assert response.status_code == 400, response.text[:300]
    assert "Location" not in response.headers
    assert "refused" in response.text
    assert idp.still_signed_in(browser, site_a_client)


def test_a_hint_of_another_client_with_this_client_id_is_refused(idp, site_a_client, site_b_client, alice):
    browser, _ = signed_in(idp, site_a_client, alice)
    _, for_site_b = signed_in(idp, site_b_client, alice)
    response = idp.end_session(
        browser,
        id_token_hint=for_site_b,
        client_id="site-a",
        post_logout_redirect_uri=f"{site_a_client.redirect_uri.removesuffix('/sso/callback/')}/sso/signed-out/",
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert idp.still_signed_in(browser, site_a_client)


def test_an_expired_hint_still_signs_its_person_out(idp, site_a_client, alice):
    """Section 2: the hint may have expired; a client's sign-out must work for its whole session."""
    browser, id_token = signed_in(idp, site_a_client, alice)
    expires = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))["exp"]
    while time.time() < expires + 1:  # ACCESS_TOKEN_SECONDS is short in the tests
        time.sleep(0.2)
    site = site_a_client.redirect_uri.removesuffix("/sso/callback/")
    response = idp.end_session(
        browser, id_token_hint=id_token, client_id="site-a", post_logout_redirect_uri=f"{site}/sso/signed-out/"
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"{site}/sso/signed-out/")
    assert not idp.still_signed_in(browser, site_a_client)


def test_a_genuine_hint_signs_out_without_asking(idp, site_a_client, alice):
    browser, id_token = signed_in(idp, site_a_client, alice)
    site = site_a_client.redirect_uri.removesuffix("/sso/callback/")
    response = idp.end_session(browser, id_token_hint=id_token, post_logout_redirect_uri=f"{site}/sso/signed-out/")
    assert response.status_code == 302
    assert not idp.still_signed_in(browser, site_a_client)
