"""Requests of one browser that overlap, against the running stack (issue 12, defects 1 and 2).

1. A form post that writes the session (site A's note page) while another request of the same
   person refreshes the access token: the post read the session before the refresh and writes it
   after. It must not bring the spent refresh token back: the next refresh would replay it, the
   IdP would revoke the whole family, and the person would be signed out. The post is held the
   way a slow network holds it: its headers (and so the session read) arrive, its body later.
2. Tabs of one browser (one cookie jar) that start a sign-in at the same moment: each one's
   state must survive the others', and every tab completes its sign-in.
"""

from __future__ import annotations

import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from tests.e2e.conftest import ACCESS_TOKEN_SECONDS, REFRESH_MARGIN_SECONDS
from tests.e2e.oidc import csrf_token, submit_login
from tests.e2e.scrape import metric
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor

ROUNDS = 4  # refreshes, each raced by held form posts
POSTS_PER_ROUND = 3  # fewer than a site's request threads (2 workers of 4), so that the refresh is served
TABS = 4  # with the visit before them, the 5 pending sign-ins one browser may keep
TAB_ROUNDS = 6
SIGN_IN_STATE_SECONDS = 600  # sso_client's default SSO_CLIENT["SIGN_IN_STATE_SECONDS"]
TIMEOUT = 30


def due_between(issued_after: float, issued_before: float) -> tuple[float, float]:
    """When an access token issued between these two moments falls due for refresh: not before, and by."""
    return tuple(moment + ACCESS_TOKEN_SECONDS - REFRESH_MARGIN_SECONDS for moment in (issued_after, issued_before))


def ttl_of(redis_client, pattern: str) -> int:
    keys = redis_client.keys(pattern)
    assert len(keys) == 1, (pattern, keys)
    return redis_client.ttl(keys[0])


def page_view(url: str, cookies) -> requests.Response:
    """A browser's page view, not followed: signed in, it is a 200 at once."""
    return requests.get(url, cookies=cookies, headers={"Accept": "text/html"}, allow_redirects=False, timeout=TIMEOUT)


class HeldPost:
    """A form post whose body is slow to arrive: the site reads the session with the headers, and
    writes it once the body is complete."""

    def __init__(self, site: str, path: str, cookies: dict[str, str], fields: dict[str, str]) -> None:
        parts = urlsplit(site)
        self.body = urlencode(fields).encode()
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
        self.connection.putrequest("POST", path)
        self.connection.putheader("Cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()))
        self.connection.putheader("Accept", "text/html")
        self.connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        self.connection.putheader("Content-Length", str(len(self.body)))
        self.connection.endheaders()
        self.connection.send(self.body[:10])

    def finish(self) -> http.client.HTTPResponse:
        self.connection.send(self.body[10:])
        response = self.connection.getresponse()
        response.read()
        self.connection.close()
        return response


def test_form_posts_racing_token_refreshes_never_sign_the_person_out(site_a, idp, alice):
    person = Visitor()
    before = time.time()
    assert signed_in_page_shows_alice(person.sign_in(f"{site_a}/", *alice).page)
    signed_in = time.time()
    session = person.cookie("site_a_sessionid")
    note_page = person.browser.get(f"{site_a}/note/", timeout=TIMEOUT)
    assert note_page.status_code == 200
    fields = {"csrfmiddlewaretoken": csrf_token(note_page.text)}
    cookies = {cookie.name: cookie.value for cookie in person.browser.cookies}  # the CSRF cookie too
    counted = {
        outcome: metric(site_a, "sso_client_token_refreshes_total", outcome=outcome)
        for outcome in ("refreshed", "refused")
    }
    refused_at_idp = metric(idp.url, "idp_token_grants_total", grant_type="refresh_token", outcome="invalid_grant")

    due_not_before, due_by = due_between(before, signed_in)
    for round_ in range(ROUNDS):
        # Posts that read the session while the token is not due yet...
        time.sleep(max(0.0, due_not_before - 1.5 - time.time()))
        assert time.time() < due_not_before - 0.5, "too late to start the posts before the refresh"
        posts = [
            HeldPost(site_a, "/note/", cookies, {**fields, "note": f"round {round_}, post {n}"})
            for n in range(POSTS_PER_ROUND)
        ]
        # ...then the token falls due, and page views refresh it while the posts are still running...
        time.sleep(max(0.0, due_by + 0.3 - time.time()))
        before = time.time()
        with ThreadPoolExecutor(max_workers=3) as pool:
            pages = list(pool.map(lambda _: page_view(f"{site_a}/", cookies), range(3)))
        signed_in = time.time()
        assert all(signed_in_page_shows_alice(page) for page in pages), (round_, [page.status_code for page in pages])
        # ...and only then do the posts write the session.
        for post in posts:
            answer = post.finish()
            assert answer.status == 302 and answer.getheader("Location") == "/note/", answer.status
        due_not_before, due_by = due_between(before, signed_in)

    # The refresh after the last round uses the refresh token the IdP gave last.
    time.sleep(max(0.0, due_by + 0.3 - time.time()))
    last = page_view(f"{site_a}/", cookies)
    assert last.status_code == 200, f"signed out: {last.status_code} to {last.headers.get('Location', '')[:60]}"
    assert signed_in_page_shows_alice(last)
    assert person.cookie("site_a_sessionid") == session
    assert f"round {ROUNDS - 1}, post" in page_view(f"{site_a}/note/", cookies).text, "the notes were kept"
    assert metric(site_a, "sso_client_token_refreshes_total", outcome="refused") == counted["refused"]
    assert metric(site_a, "sso_client_token_refreshes_total", outcome="refreshed") == counted["refreshed"] + ROUNDS + 1
    assert (
        metric(idp.url, "idp_token_grants_total", grant_type="refresh_token", outcome="invalid_grant") == refused_at_idp
    ), "the IdP saw a spent refresh token again"


def test_a_sessions_tokens_have_a_key_of_their_own_that_lives_and_ends_with_it(site_a, alice, redis_client):
    person = Visitor()
    assert signed_in_page_shows_alice(person.sign_in(f"{site_a}/", *alice).page)
    session = person.cookie("site_a_sessionid")
    session_ttl = ttl_of(redis_client, f"site_a:*:django.contrib.sessions.cache{session}")
    assert abs(ttl_of(redis_client, f"site_a:*:sso_client:token:{session}") - session_ttl) <= 2
    assert "You are signed out" in person.sign_out_at_site(site_a).page.text
    assert not redis_client.keys(f"site_a:*:sso_client:token:{session}")


def complete_sign_in(person: Visitor, authorize_url: str, credentials: tuple[str, str]) -> requests.Response:
    """Go on from a started sign-in (the IdP's authorize URL) to the page it ends on."""
    visit = person.visit(authorize_url)
    if 'name="password"' in visit.page.text:
        posted = submit_login(person.browser, visit.page, *credentials)
        assert posted.status_code == 302, f"login refused ({posted.status_code})"
        visit = person.visit(urljoin(visit.page.url, posted.headers["Location"]))
    return visit.page


def test_tabs_that_start_signing_in_at_once_all_complete(site_a, alice, redis_client):
    for round_ in range(TAB_ROUNDS):
        person = Visitor()
        earlier = person.browser.get(f"{site_a}/?visit=earlier", allow_redirects=False, timeout=TIMEOUT)
        assert earlier.status_code == 302  # the browser has a session of the site now
        cookies = {cookie.name: cookie.value for cookie in person.browser.cookies}
        together = threading.Barrier(TABS)

        def open_tab(n: int, cookies=cookies, together=together) -> requests.Response:
            together.wait(timeout=10)
            return page_view(f"{site_a}/?tab={n}", cookies)

        with ThreadPoolExecutor(max_workers=TABS) as pool:
            started = list(pool.map(open_tab, range(TABS)))
        assert all(tab.status_code == 302 for tab in started), [tab.status_code for tab in started]
        assert {tab.cookies.get("site_a_sessionid", cookies["site_a_sessionid"]) for tab in started} == {
            cookies["site_a_sessionid"]
        }, "one browser, one session"

        for n in (2, 0, 3, 1):
            page = complete_sign_in(person, started[n].headers["Location"], alice)
            assert signed_in_page_shows_alice(page), f"round {round_}, tab {n}: {page.status_code} {page.url}"
            assert page.url == f"{site_a}/?tab={n}"

    # What a pending sign-in keeps in Redis lives minutes, not the session's hours.
    for key in redis_client.scan_iter(match="site_a:*:sso_client:signin*"):
        assert 0 < redis_client.ttl(key) <= SIGN_IN_STATE_SECONDS, key
