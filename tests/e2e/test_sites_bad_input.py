"""Bad callbacks, off-site `next`, the IdP down: a clear page, and nothing already stored lost."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest

from devstack.processes import ManagedProcess, free_port
from devstack.stack import BIN, REPO_ROOT, SITE_A
from tests.e2e.conftest import age_code
from tests.e2e.oidc import query
from tests.e2e.test_sites import signed_in_page_shows_alice
from tests.e2e.visitor import Visitor


@pytest.fixture
def signed_in(site_a, alice) -> Visitor:
    person = Visitor()
    person.sign_in(f"{site_a}/", *alice)
    return person


def started_sign_in(person: Visitor, site: str) -> dict[str, str]:
    """Begin a sign-in at `site` and stop at the IdP: the authorization request's parameters."""
    first = person.browser.get(f"{site}/sso/login/", allow_redirects=False, timeout=10)
    assert first.status_code == 302
    return query(first.headers["Location"])


def callback(person: Visitor, site: str, **params: str):
    return person.browser.get(f"{site}/sso/callback/?{urlencode(params)}", allow_redirects=False, timeout=30)


def assert_refused_page(response) -> None:
    assert 400 <= response.status_code < 500, response.status_code
    assert "Sign-in did not complete" in response.text
    assert "/sso/login/" in response.text, "the page offers to sign in again"
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"code": "some-code"},  # no state
        {"code": "some-code", "state": "not-a-state-we-sent"},
        {"state": "not-a-state-we-sent"},  # no code either
        {"error": "access_denied", "error_description": "The person said no"},
        {"error": "server_error"},
    ],
    ids=["missing-state", "wrong-state", "no-code", "access-denied", "server-error"],
)
def test_a_bad_callback_is_refused_and_the_existing_session_survives(signed_in, site_a, params):
    session_before = signed_in.cookie("site_a_sessionid")
    assert_refused_page(callback(signed_in, site_a, **params))
    assert signed_in.cookie("site_a_sessionid") == session_before
    assert signed_in_page_shows_alice(signed_in.visit(f"{site_a}/").page)


def test_a_forged_code_with_a_real_state_is_refused(signed_in, site_a):
    request = started_sign_in(signed_in, site_a)
    response = callback(signed_in, site_a, code="forged-code", state=request["state"])
    assert_refused_page(response)
    assert "invalid_grant" in response.text
    assert signed_in_page_shows_alice(signed_in.visit(f"{site_a}/").page)


def test_a_replayed_callback_is_refused(site_a, alice):
    person = Visitor()
    visit = person.sign_in(f"{site_a}/", *alice)
    callback_url = next(hop.url for hop in visit.hops if urlsplit(hop.url).path == "/sso/callback/")
    again = person.browser.get(callback_url, allow_redirects=False, timeout=30)
    assert_refused_page(again)
    assert signed_in_page_shows_alice(person.visit(f"{site_a}/").page)


def test_an_expired_code_is_refused(site_a, idp, alice, stack):
    person = Visitor()
    person.sign_in(f"{site_a}/", *alice)
    request = started_sign_in(person, site_a)
    at_idp = person.browser.get(idp.authorize_url(request), allow_redirects=False, timeout=10)
    returned = query(at_idp.headers["Location"])
    age_code(stack, returned["code"])
    response = callback(person, site_a, code=returned["code"], state=returned["state"])
    assert_refused_page(response)
    assert "invalid_grant" in response.text


def test_a_callback_from_another_issuer_is_refused(site_a, idp, alice):
    person = Visitor()
    person.sign_in(f"{site_a}/", *alice)
    request = started_sign_in(person, site_a)
    at_idp = person.browser.get(idp.authorize_url(request), allow_redirects=False, timeout=10)
    returned = query(at_idp.headers["Location"])
    response = callback(person, site_a, code=returned["code"], state=returned["state"], iss="https://evil.example/o")
    assert_refused_page(response)


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/path", "/\\evil.example", "https:evil.example", "javascript:alert(1)"],
)
def test_a_next_that_leaves_the_site_is_ignored(site_a, alice, next_url):
    person = Visitor()
    visit = person.sign_in(f"{site_a}/sso/login/?{urlencode({'next': next_url})}", *alice)
    assert visit.page.url == f"{site_a}/"
    assert all("evil.example" not in urlsplit(url).netloc for url in visit.urls)
    assert signed_in_page_shows_alice(visit.page)


def test_the_idp_down_gives_a_clear_503_page(stack, tmp_path):
    port = free_port()
    dead_idp = f"http://127.0.0.1:{free_port()}"
    site = ManagedProcess(
        "site_a-without-idp",
        [str(BIN / "gunicorn"), "-c", str(REPO_ROOT / "gunicorn.conf.py"), SITE_A.wsgi],
        env={
            **stack.env,
            "IDP_URL": dead_idp,
            "BIND": f"127.0.0.1:{port}",
            "STATIC_ROOT": str(stack.state_dir / "static" / "site_a"),
        },
        cwd=SITE_A.directory,
        log_path=tmp_path / "site.log",
    )
    try:
        site.wait_for_http(f"http://127.0.0.1:{port}/-/health/live/")
        response = Visitor().browser.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=30)
        assert response.status_code == 503
        assert "Sign-in is unavailable" in response.text and "cannot be reached" in response.text
        assert response.headers["Retry-After"]
        # A public page still works while the IdP is away.
        assert Visitor().browser.get(f"http://127.0.0.1:{port}/about/", timeout=10).status_code == 200
    finally:
        site.stop()


def test_a_script_that_is_not_signed_in_gets_a_401_not_a_redirect(site_a):
    response = Visitor().browser.get(f"{site_a}/", headers={"Accept": "application/json"}, allow_redirects=False)
    assert response.status_code == 401
    post = Visitor().browser.post(f"{site_a}/", allow_redirects=False)
    assert post.status_code in (401, 403)
