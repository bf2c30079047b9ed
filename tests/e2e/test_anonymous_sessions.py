"""Anonymous visits cost minutes of Redis, not hours (issue 8, defect B).

Every visit that is sent to sign in stores a session (the sign-in's state, nonce and PKCE
verifier). A script that never keeps cookies makes a new one per request, so those sessions
must expire with the sign-in state, and one browser keeps only a few pending sign-ins.
"""

from __future__ import annotations

import time
from urllib.parse import urljoin

import requests

from tests.e2e.oidc import submit_login
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor

SIGN_IN_STATE_SECONDS = 600  # sso_client's default SSO_CLIENT["SIGN_IN_STATE_SECONDS"]
SITE_SESSION_SECONDS = 36000  # SITE_SESSION_SECONDS' default
PENDING_SIGN_INS_KEPT = 5


def session_ttl(redis_client, prefix: str, session_key: str) -> int:
    """Seconds left of the session in Redis; -2 when it is not there, -1 when it never expires."""
    keys = redis_client.keys(f"{prefix}:*:django.contrib.sessions.cache{session_key}")
    return redis_client.ttl(keys[0]) if keys else -2


def test_a_flood_of_anonymous_requests_leaves_only_short_lived_sessions(site_a, redis_client):
    session_keys = set()
    for _ in range(50):
        response = requests.get(f"{site_a}/", allow_redirects=False, timeout=30)  # a script: no cookie jar
        assert response.status_code == 302
        session_keys.add(response.cookies["site_a_sessionid"])
    assert len(session_keys) == 50
    ttls = {key: session_ttl(redis_client, "site_a", key) for key in session_keys}
    assert all(0 < ttl <= SIGN_IN_STATE_SECONDS for ttl in ttls.values()), sorted(ttls.values())


def test_anonymous_visits_to_the_idp_store_no_session(site_a, redis_client):
    before = set(redis_client.keys("idp:*:django.contrib.sessions.cache*"))
    for _ in range(10):
        browser = requests.Session()
        page = browser.get(f"{site_a}/", timeout=30)  # site A → the IdP's authorize → its login page
        assert 'name="password"' in page.text
        assert browser.cookies.get("idp_sessionid") is None
    assert set(redis_client.keys("idp:*:django.contrib.sessions.cache*")) == before


def test_signing_in_after_an_anonymous_visit_gives_the_full_session_lifetime(site_a, alice, redis_client):
    person = Visitor()
    person.visit(f"{site_a}/")
    anonymous = person.cookie("site_a_sessionid")
    assert 0 < session_ttl(redis_client, "site_a", anonymous) <= SIGN_IN_STATE_SECONDS

    assert signed_in_page_shows_alice(person.sign_in(f"{site_a}/", *alice).page)
    signed_in = person.cookie("site_a_sessionid")
    assert signed_in != anonymous
    assert session_ttl(redis_client, "site_a", signed_in) > SITE_SESSION_SECONDS - 60
    cookie = next(c for c in person.browser.cookies if c.name == "site_a_sessionid")
    assert cookie.expires is not None and cookie.expires - time.time() > SITE_SESSION_SECONDS - 60


def test_one_browser_keeps_only_its_newest_pending_sign_ins(site_a, alice):
    person = Visitor()
    authorize_urls, sessions = [], set()
    for n in range(PENDING_SIGN_INS_KEPT + 3):
        started = person.browser.get(f"{site_a}/?n={n}", allow_redirects=False, timeout=30)
        authorize_urls.append(started.headers["Location"])
        sessions.add(person.cookie("site_a_sessionid"))
    assert len(sessions) == 1, "one browser, one session, however many sign-ins it starts"

    # Sign in at the IdP through the oldest sign-in: the site has forgotten its state by now.
    login_page = person.visit(authorize_urls[0]).page
    posted = submit_login(person.browser, login_page, *alice)
    oldest = person.visit(urljoin(login_page.url, posted.headers["Location"])).page
    assert oldest.status_code == 400 and "not valid here" in oldest.text

    # The newest one still completes, and goes to the page it was started from.
    newest = person.visit(authorize_urls[-1])
    assert signed_in_page_shows_alice(newest.page)
    assert newest.page.url == f"{site_a}/?n={PENDING_SIGN_INS_KEPT + 2}"
