"""Single logout: sign out once, signed out everywhere (RP-initiated and back-channel logout)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from devstack.stack import SITE_B
from tests.e2e.conftest import REFRESH_DUE_SECONDS, idp_sql, session_stored
from tests.e2e.oidc import AuthRequest
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor
from tests.e2e.waiting import wait_for

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def signed_in_everywhere(site_a, site_b, alice) -> Visitor:
    person = Visitor()
    assert signed_in_page_shows_alice(person.sign_in(f"{site_a}/", *alice).page)
    assert signed_in_page_shows_alice(person.visit(f"{site_b}/").page)
    return person


def idp_sid(stack, person: Visitor) -> str:
    session_key = person.cookie("idp_sessionid")
    rows = idp_sql(stack, "SELECT sid FROM provider_loginsession WHERE session_key = %s", (session_key,))
    assert rows, "the IdP keeps a login session for this browser"
    return rows[0][0]


def test_discovery_advertises_back_channel_logout(idp):
    assert idp.metadata["backchannel_logout_supported"] is True
    assert idp.metadata["backchannel_logout_session_supported"] is True
    assert idp.metadata["end_session_endpoint"] == f"{idp.issuer}/logout/"


def test_id_tokens_carry_the_idp_session_id(idp, site_a_client, alice):
    browser = requests.Session()
    first, second = AuthRequest(site_a_client), AuthRequest(site_a_client)
    claims = [
        idp.verify_id_token(
            idp.exchange(request, idp.sign_in(browser, request, *alice)["code"]).json()["id_token"], request
        )
        for request in (first, second)
    ]
    assert claims[0]["sid"] and claims[0]["sid"] == claims[1]["sid"], "one browser session, one sid"
    other = AuthRequest(site_a_client)
    elsewhere = idp.exchange(other, idp.sign_in(requests.Session(), other, *alice)["code"]).json()
    assert idp.verify_id_token(elsewhere["id_token"], other)["sid"] != claims[0]["sid"]


def test_signing_out_at_site_a_signs_out_of_site_b_and_the_idp(site_a, site_b, idp, alice, redis_client):
    person = signed_in_everywhere(site_a, site_b, alice)
    b_session, idp_session = person.cookie("site_b_sessionid"), person.cookie("idp_sessionid")

    signed_out = person.sign_out_at_site(site_a)
    assert urlsplit(signed_out.urls[2]).path == "/o/logout/", "the sign-out goes through the IdP"
    assert signed_out.page.url.split("?")[0] == f"{site_a}/sso/signed-out/"
    assert "You are signed out" in signed_out.page.text

    assert not session_stored(redis_client, "site_b", b_session), "site B's session was deleted by back-channel"
    assert not session_stored(redis_client, "idp", idp_session)
    at_b = person.visit(f"{site_b}/")
    assert at_b.shows_login_form() and not signed_in_page_shows_alice(at_b.page)
    assert person.visit(f"{idp.url}/").shows_login_form(), "the IdP session is gone too"


def test_signing_out_at_the_idp_signs_out_of_both_sites(site_a, site_b, idp, alice, redis_client):
    person = signed_in_everywhere(site_a, site_b, alice)
    sessions = {prefix: person.cookie(f"{prefix}_sessionid") for prefix in ("site_a", "site_b")}

    signed_out = person.post_form(f"{idp.url}/", f"{idp.url}/accounts/logout/")
    assert "You are signed out" in signed_out.page.text

    for prefix, key in sessions.items():
        assert not session_stored(redis_client, prefix, key), prefix
    assert person.visit(f"{site_a}/").shows_login_form()
    assert person.visit(f"{site_b}/").shows_login_form()


def sign_out_at_idp_promptly(person: Visitor, idp) -> None:
    """Sign out with the IdP's button; the page must come back within the wait bound."""
    started = time.monotonic()
    signed_out = person.post_form(f"{idp.url}/", f"{idp.url}/accounts/logout/")
    took = time.monotonic() - started
    assert "You are signed out" in signed_out.page.text
    # Bounded by BACKCHANNEL_LOGOUT_WAIT_SECONDS (2 s), whatever the sites do.
    assert took < 6, f"the sign-out page waited {took:.1f}s"


def test_a_site_that_is_down_is_signed_out_once_it_is_back(stack, site_a, site_b, idp, alice, redis_client):
    person = signed_in_everywhere(site_a, site_b, alice)
    a_session, b_session = person.cookie("site_a_sessionid"), person.cookie("site_b_sessionid")
    stack.processes["site_b"].stop()
    try:
        sign_out_at_idp_promptly(person, idp)
        assert not session_stored(redis_client, "site_a", a_session), "site A was told at once"
        assert session_stored(redis_client, "site_b", b_session), "site B could not be told yet"
    finally:
        stack.start(SITE_B)
    wait_for(
        lambda: not session_stored(redis_client, "site_b", b_session),
        timeout=45,
        what="the worker's retry ending site B's session",
    )
    assert person.visit(f"{site_b}/").shows_login_form()


def test_a_site_that_hangs_does_not_hold_up_the_sign_out(stack, site_a, site_b, idp, alice, redis_client):
    person = signed_in_everywhere(site_a, site_b, alice)
    b_session = person.cookie("site_b_sessionid")
    stack.processes["site_b"].pause()  # accepts connections, never answers
    try:
        sign_out_at_idp_promptly(person, idp)
    finally:
        stack.processes["site_b"].resume()
    wait_for(
        lambda: not session_stored(redis_client, "site_b", b_session),
        timeout=45,
        what="site B's session ending once it answers again",
    )


def test_a_second_browser_is_not_signed_out_by_the_first(site_a, site_b, alice):
    first = signed_in_everywhere(site_a, site_b, alice)
    second = signed_in_everywhere(site_a, site_b, alice)
    first.sign_out_at_site(site_a)

    assert first.visit(f"{site_b}/").shows_login_form()
    for site in (site_a, site_b):
        visit = second.visit(f"{site}/")
        assert visit.redirects == 0 and signed_in_page_shows_alice(visit.page)
    # Its tokens were not revoked either: the next refresh still works.
    time.sleep(REFRESH_DUE_SECONDS)
    visit = second.visit(f"{site_a}/")
    assert visit.redirects == 0 and signed_in_page_shows_alice(visit.page)


def test_an_administrator_signs_a_person_out_everywhere(site_a, site_b, idp, alice, admin, stack, redis_client):
    browsers = [signed_in_everywhere(site_a, site_b, alice) for _ in range(2)]
    operator = Visitor()
    operator.sign_in(f"{idp.url}/admin/", *admin)
    [(alice_id,)] = idp_sql(stack, "SELECT id FROM auth_user WHERE username = 'alice'")
    done = operator.post_form(
        f"{idp.url}/admin/auth/user/",
        f"{idp.url}/admin/auth/user/",
        {"action": "sign_out_everywhere", "_selected_action": str(alice_id), "index": "0"},
    )
    assert "Signed out 1 person" in done.page.text
    # Signed out of the IdP at once; the sites are told by the worker (the admin does not wait).
    for person in browsers:
        assert person.visit(f"{idp.url}/").shows_login_form()
        for prefix in ("site_a", "site_b"):
            session = person.cookie(f"{prefix}_sessionid")
            wait_for(
                lambda prefix=prefix, session=session: not session_stored(redis_client, prefix, session),
                timeout=30,
                what=f"{prefix} told",
            )
        for site in (site_a, site_b):
            assert person.visit(f"{site}/").shows_login_form(), site


def test_an_unregistered_post_logout_redirect_uri_signs_out_but_is_not_followed(idp, site_a_client, alice):
    browser = requests.Session()
    request = AuthRequest(site_a_client)
    id_token = idp.exchange(request, idp.sign_in(browser, request, *alice)["code"]).json()["id_token"]
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example/after"})
    response = browser.get(f"{idp.metadata['end_session_endpoint']}?{query}", allow_redirects=False, timeout=30)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "You are signed out" in response.text and "has not registered" in response.text
    # Signed out at the IdP: a new sign-in asks for the password again.
    again = idp.follow(
        browser, idp.authorize_url(AuthRequest(site_a_client).params()), stop_at=site_a_client.redirect_uri
    )
    assert 'name="password"' in again[-1].text


# --- bad logout tokens ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def idp_key(stack, idp) -> RSAKey:
    key = RSAKey.import_key(Path(stack.env["OIDC_RSA_PRIVATE_KEY_FILE"]).read_text())
    kid = requests.get(idp.metadata["jwks_uri"], timeout=5).json()["keys"][0]["kid"]
    return RSAKey.import_key(key.as_dict(private=True), parameters={"kid": kid})


def logout_token(key: RSAKey, idp, *, sid: str, **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": idp.issuer,
        "aud": "site-a",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "sid": sid,
        "events": {EVENT: {}},
        **changes,
    }
    return jwt.encode(
        {"alg": "RS256", "kid": key.kid, "typ": "logout+jwt"},
        {name: value for name, value in claims.items() if value is not None},
        key,
    )


def post_logout_token(site_a, token: str) -> requests.Response:
    return requests.post(f"{site_a}/sso/backchannel-logout/", data={"logout_token": token}, timeout=10)


@pytest.mark.parametrize(
    "bad",
    ["signature", "iss", "aud", "expired", "events", "nonce", "no-sid-or-sub", "not-a-jwt", "empty", "alg-none"],
)
def test_a_bad_logout_token_is_refused_and_deletes_nothing(
    site_a, site_b, idp, alice, stack, idp_key, redis_client, bad
):
    person = signed_in_everywhere(site_a, site_b, alice)
    sid, session = idp_sid(stack, person), person.cookie("site_a_sessionid")
    forger = RSAKey.generate_key(2048, parameters={"kid": idp_key.kid})
    old = int(time.time()) - 3600
    token = {
        "signature": lambda: logout_token(forger, idp, sid=sid),
        "iss": lambda: logout_token(idp_key, idp, sid=sid, iss="https://evil.example/o"),
        "aud": lambda: logout_token(idp_key, idp, sid=sid, aud="site-b"),
        "expired": lambda: logout_token(idp_key, idp, sid=sid, iat=old, exp=old + 120),
        "events": lambda: logout_token(idp_key, idp, sid=sid, events=None),
        "nonce": lambda: logout_token(idp_key, idp, sid=sid, nonce="n-0S6_WzA2Mj"),
        "no-sid-or-sub": lambda: logout_token(idp_key, idp, sid=None),
        "not-a-jwt": lambda: "this is not a JWT",
        "empty": lambda: "",
        "alg-none": lambda: "eyJhbGciOiJub25lIn0." + logout_token(idp_key, idp, sid=sid).split(".")[1] + ".",
    }[bad]()
    response = post_logout_token(site_a, token)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"]
    assert session_stored(redis_client, "site_a", session)
    assert signed_in_page_shows_alice(person.visit(f"{site_a}/").page)


def test_a_replayed_logout_token_is_refused(site_a, site_b, alice, stack, idp, idp_key, redis_client):
    person = signed_in_everywhere(site_a, site_b, alice)
    sid = idp_sid(stack, person)
    token = logout_token(idp_key, idp, sid=sid)
    assert post_logout_token(site_a, token).status_code == 200
    assert not session_stored(redis_client, "site_a", person.cookie("site_a_sessionid"))

    # Signed in again at A (the IdP session, and so the sid, are the same); the replay ends nothing.
    assert signed_in_page_shows_alice(person.visit(f"{site_a}/").page)
    replay = post_logout_token(site_a, token)
    assert replay.status_code == 400
    assert "used already" in replay.json()["error_description"]
    assert session_stored(redis_client, "site_a", person.cookie("site_a_sessionid"))


def test_a_logout_token_with_only_sub_ends_every_session_of_that_person(
    site_a, site_b, alice, stack, idp, idp_key, redis_client
):
    people = [signed_in_everywhere(site_a, site_b, alice) for _ in range(2)]
    [(sub,)] = idp_sql(
        stack, "SELECT sub FROM provider_account a JOIN auth_user u ON a.user_id = u.id WHERE u.username = 'alice'"
    )
    sub = str(uuid.UUID(str(sub)))  # SQLite keeps 32 hex digits, PostgreSQL a uuid
    assert post_logout_token(site_a, logout_token(idp_key, idp, sid=None, sub=sub)).status_code == 200
    for person in people:
        assert not session_stored(redis_client, "site_a", person.cookie("site_a_sessionid"))
        assert session_stored(redis_client, "site_b", person.cookie("site_b_sessionid")), "only site A was told"
