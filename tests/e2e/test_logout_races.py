"""A logout racing page views: once the sign-out is done, nothing is left half signed in.

The browser keeps loading pages of both sites (one cookie jar, as tabs of one browser share it)
while the person signs out at site A. Page views that were running when the back-channel logout
deleted the session must not save it back, and none may leave a session that still knows the
person: afterwards every site asks the person to sign in again.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from tests.e2e.test_single_logout import signed_in_everywhere
from tests.e2e.test_sites import signed_in_page_shows_alice

#: What a page view racing the sign-out may answer: the page (signed in, or just signed out: the
#: way to the sign-in), or Django's 400 for a session deleted while its request ran.
RACING_ANSWERS = {200, 302, 400}


def keep_loading(browser, urls: list[str], stop: threading.Event, seen: Counter) -> None:
    while not stop.is_set():
        for url in urls:
            answer = browser.get(url, allow_redirects=False, timeout=30)
            seen[answer.status_code] += 1
            assert answer.status_code in RACING_ANSWERS, f"{url}: {answer.status_code} {answer.text[:200]}"
            assert "Traceback" not in answer.text


@pytest.mark.parametrize("round_", range(3))
def test_a_logout_racing_page_views_leaves_no_half_signed_in_session(site_a, site_b, alice, round_):
    person = signed_in_everywhere(site_a, site_b, alice)
    stop, seen, failures = threading.Event(), Counter(), []

    def tab(urls):
        try:
            keep_loading(person.browser, urls, stop, seen)
        except BaseException as error:  # reported below, in the test's own thread
            failures.append(error)

    tabs = [
        threading.Thread(target=tab, args=(urls,)) for urls in ([f"{site_a}/"], [f"{site_b}/"], [f"{site_b}/about/"])
    ]
    for thread in tabs:
        thread.start()
    try:
        signed_out = person.sign_out_at_site(site_a)
    finally:
        stop.set()
        for thread in tabs:
            thread.join(timeout=60)
    assert not failures, failures[0]
    assert "You are signed out" in signed_out.page.text
    assert seen[200] > 0, "the tabs were loading signed-in pages while the person signed out"

    # Whatever the racing page views wrote, the person is signed out everywhere.
    for site in (site_a, site_b):
        visit = person.visit(f"{site}/")
        assert visit.shows_login_form() and not signed_in_page_shows_alice(visit.page), site
