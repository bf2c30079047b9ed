"""Two client sites, one sign-in: the promise of single sign-on, over real HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from devstack.stack import IDP
from tests.e2e.conftest import REFRESH_DUE_SECONDS, idp_sql, session_stored
from tests.e2e.visitor import Visitor


def signed_in_page_shows_alice(page: requests.Response) -> bool:
    return page.status_code == 200 and 'id="username">alice<' in page.text


def rotated_refresh_tokens(stack, client_id: str) -> int:
    """How many of the client's refresh tokens the IdP has revoked, by rotation or otherwise."""
    [(count,)] = idp_sql(
        stack,
        "SELECT count(*) FROM oauth2_provider_refreshtoken r JOIN oauth2_provider_application a "
        "ON r.application_id = a.id WHERE a.client_id = %s AND r.revoked IS NOT NULL",
        (client_id,),
    )
    return count


def test_sign_in_at_site_a_then_site_b_needs_no_password(site_a, site_b, idp, alice):
    person = Visitor()
    at_a = person.sign_in(f"{site_a}/", *alice)
    assert at_a.page.url == f"{site_a}/"
    assert signed_in_page_shows_alice(at_a.page)
    assert "Alice Liddell" in at_a.page.text and "alice@example.com" in at_a.page.text
    assert f'href="{site_b}/"' in at_a.page.text, "the home page links to the other site"

    at_b = person.visit(f"{site_b}/")
    assert signed_in_page_shows_alice(at_b.page)
    assert not at_b.shows_login_form()
    # B → IdP authorize → B's callback → B's home: three redirects and no page in between.
    assert at_b.redirects == 3
    assert urlsplit(at_b.urls[1]).path == "/o/authorize/"
    assert urlsplit(at_b.urls[2]).path == "/sso/callback/"


def test_each_site_keeps_its_own_cookies_and_redis_keys(site_a, site_b, alice, redis_client):
    person = Visitor()
    person.sign_in(f"{site_a}/", *alice)
    person.visit(f"{site_b}/")
    sessions = {name: person.cookie(f"{name}_sessionid") for name in ("idp", "site_a", "site_b")}
    assert all(sessions.values()), sessions
    assert len(set(sessions.values())) == 3
    assert person.cookie("site_a_csrftoken") is None or person.cookie("site_a_csrftoken") != person.cookie(
        "idp_csrftoken"
    )
    for prefix, key in sessions.items():
        assert session_stored(redis_client, prefix, key), f"{prefix}'s session is in Redis under its own prefix"
        for other in {"idp", "site_a", "site_b"} - {prefix}:
            assert not session_stored(redis_client, other, key)


def test_visiting_a_page_first_brings_the_person_back_to_it(site_a, alice):
    person = Visitor()
    visit = person.sign_in(f"{site_a}/?tab=profile", *alice)
    assert visit.page.url == f"{site_a}/?tab=profile"
    assert signed_in_page_shows_alice(visit.page)


def test_public_pages_need_no_sign_in(site_a):
    visit = Visitor().visit(f"{site_a}/about/")
    assert visit.redirects == 0 and visit.page.status_code == 200
    assert Visitor().visit(f"{site_a}/-/health/ready/").page.json() == {"status": "ok"}


def test_an_expiring_access_token_is_refreshed_without_the_person_noticing(site_a, alice, stack):
    person = Visitor()
    person.sign_in(f"{site_a}/", *alice)
    before = rotated_refresh_tokens(stack, "site-a")
    time.sleep(REFRESH_DUE_SECONDS)

    visit = person.visit(f"{site_a}/")
    assert visit.redirects == 0, "no trip to the IdP: the refresh happens behind the page"
    assert signed_in_page_shows_alice(visit.page)
    assert rotated_refresh_tokens(stack, "site-a") == before + 1


def test_concurrent_requests_refresh_only_once(site_a, alice, stack):
    person = Visitor()
    person.sign_in(f"{site_a}/", *alice)
    cookies = person.browser.cookies.copy()
    before = rotated_refresh_tokens(stack, "site-a")
    time.sleep(REFRESH_DUE_SECONDS)

    def one_request(_):
        return requests.get(f"{site_a}/", cookies=cookies, allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(one_request, range(6)))
    assert all(signed_in_page_shows_alice(response) for response in responses), [r.status_code for r in responses]
    assert rotated_refresh_tokens(stack, "site-a") == before + 1, "the refresh token was spent once"
    # The new refresh token is alive: the IdP saw no replay, so it revoked nothing else.
    time.sleep(REFRESH_DUE_SECONDS)
    assert signed_in_page_shows_alice(requests.get(f"{site_a}/", cookies=cookies, allow_redirects=False, timeout=30))


def test_a_revoked_grant_sends_the_person_to_sign_in_again(site_a, alice, stack, redis_client):
    person = Visitor()
    person.sign_in(f"{site_a}/", *alice)
    old_session = person.cookie("site_a_sessionid")
    stack.manage(IDP, "revoke_tokens", "alice", "--client", "site-a")
    time.sleep(REFRESH_DUE_SECONDS)

    visit = person.visit(f"{site_a}/")
    assert urlsplit(visit.urls[1]).path == "/o/authorize/", "sent to the IdP to sign in again"
    assert not session_stored(redis_client, "site_a", old_session), "the local session ended"
    # The IdP session is still there, so signing in again needs no password.
    assert signed_in_page_shows_alice(visit.page)
    assert person.cookie("site_a_sessionid") != old_session
