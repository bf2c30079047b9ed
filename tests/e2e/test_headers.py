"""Security headers and cookie flags on every kind of page of the three running sites, and a
real browser's sign-in journey with no Content-Security-Policy violation on the way."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urljoin

import pytest
import requests
from playwright.sync_api import expect

from devstack.stack import IDP
from tests.e2e.oidc import AuthRequest, Client, submit_login
from tests.e2e.test_browser import fill_login_form
from tests.e2e.visitor import Visitor

SESSION_AND_CSRF_COOKIES = {
    f"{site}_{kind}" for site in ("idp", "site_a", "site_b") for kind in ("sessionid", "csrftoken")
}


def csp(response: requests.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy header, as {directive: [sources]}."""
    header = response.headers["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in header.split(";") if part.strip())}


def assert_hardened(response: requests.Response) -> None:
    policy = csp(response)
    assert policy["default-src"] == ["'self'"]
    for directive in ("default-src", "script-src", "style-src"):  # script and style fall back to default-src
        assert not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(policy.get(directive, [])), policy
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"][0] == "'self'"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/accounts/login/", 200),
        ("/admin/login/", 200),
        ("/o/.well-known/openid-configuration", 200),
        ("/o/authorize/?client_id=no-such-client&response_type=code", 400),  # the refused-request page
        ("/no-such-page/", 404),
    ],
)
def test_idp_pages_carry_the_security_headers(idp, site_a, site_b, path, status):
    response = requests.get(f"{idp.url}{path}", timeout=10, allow_redirects=False)
    assert response.status_code == status
    assert_hardened(response)
    if response.headers["Content-Type"].startswith("text/html"):
        # The sign-in and consent forms end in a redirect to a client: its origin must be allowed.
        assert {"'self'", site_a, site_b} <= set(csp(response)["form-action"])


def test_idp_csrf_failure_page_carries_the_security_headers(idp):
    response = requests.post(f"{idp.url}/accounts/login/", data={"username": "x"}, timeout=10)
    assert response.status_code == 403
    assert_hardened(response)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/about/", 200),
        ("/about/no-such-page/", 404),
        ("/sso/callback/?state=forged&code=forged", 400),  # sso_client's problem page
        ("/sso/signed-out/", 200),
    ],
)
@pytest.mark.parametrize("site", ["site_a", "site_b"])
def test_site_pages_carry_the_security_headers(request, idp, site, path, status):
    url = request.getfixturevalue(site)
    response = requests.get(f"{url}{path}", timeout=10, allow_redirects=False, headers={"Accept": "text/html"})
    assert response.status_code == status
    assert_hardened(response)
    # Signing out posts to the site, which redirects to the IdP's end-session endpoint.
    assert csp(response)["form-action"] == ["'self'", idp.url]


def test_signed_in_pages_and_every_cookie_set_on_the_way(site_a, site_b, idp, alice):
    person = Visitor()
    journey = person.sign_in(f"{site_a}/", *alice).hops + person.visit(f"{site_b}/").hops
    assert journey[-1].status_code == 200 and 'id="username">alice<' in journey[-1].text
    assert_hardened(journey[-1])
    assert_hardened(person.visit(f"{site_a}/").page)
    assert_hardened(person.visit(f"{idp.url}/").page)  # the IdP's account page

    seen = set()
    for hop in journey:
        for cookie in hop.raw.headers.getlist("Set-Cookie"):
            name, value = cookie.split(";")[0].split("=", 1)
            if not value or value == '""':
                continue  # a deletion
            attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
            assert "httponly" in attributes, cookie
            assert "samesite=lax" in attributes, cookie
            seen.add(name)
    assert seen >= SESSION_AND_CSRF_COOKIES, seen


def test_consent_page_allows_its_form_to_end_at_the_client(stack, idp, alice):
    """An application that is not trusted gets the consent page; its origin is in form-action."""
    client = Client(f"headers-{secrets.token_hex(4)}", None, "http://127.0.0.2:9/callback/")
    stack.manage(IDP, "register_app", "Headers test", "--public", "--client-id", client.client_id,
                 "--redirect-uri", client.redirect_uri)  # fmt: skip
    browser = requests.Session()
    login_page = browser.get(idp.authorize_url(AuthRequest(client).params()), timeout=10)
    assert 'name="password"' in login_page.text
    posted = submit_login(browser, login_page, *alice)
    consent = browser.get(urljoin(login_page.url, posted.headers["Location"]), timeout=10)
    assert consent.status_code == 200 and "Allow" in consent.text
    assert_hardened(consent)
    assert "http://127.0.0.2:9" in csp(consent)["form-action"]


# --- in a real browser ----------------------------------------------------------------------------
def watch_for_csp_violations(page) -> list[str]:
    """Collect the console's Content-Security-Policy reports of `page`, across its navigations."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return violations


def test_a_browser_signs_in_and_out_across_both_sites_with_no_csp_violation(page, site_a, site_b, idp, alice):
    violations = watch_for_csp_violations(page)

    about = page.goto(f"{site_a}/about/")
    assert "default-src 'self'" in about.headers["content-security-policy"]  # the policy is in force
    page.goto(f"{site_a}/")
    expect(page).to_have_url(re.compile(f"^{re.escape(idp.url)}/accounts/login/"))
    fill_login_form(page, alice[0], "a wrong password")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    fill_login_form(page, *alice)  # a form post whose redirects end at site A
    expect(page).to_have_url(f"{site_a}/")
    expect(page.locator("#username")).to_have_text("alice")

    page.click("text=Site B")
    expect(page).to_have_url(f"{site_b}/")
    expect(page.locator("#username")).to_have_text("alice")
    page.goto(f"{idp.url}/")
    expect(page.locator("h1")).to_contain_text("Signed in as alice")

    page.goto(f"{site_b}/")
    page.click("header button[type=submit]")  # a form post whose redirects pass through the IdP
    expect(page).to_have_url(re.compile(f"^{re.escape(site_b)}/sso/signed-out/"))
    page.goto(f"{site_a}/sso/callback/?state=forged&code=forged")  # an error page
    expect(page.locator("h1")).to_be_visible()
    page.goto(f"{idp.url}/no-such-page/")
    expect(page.locator("h1")).to_have_text("Page not found")

    assert violations == []


def test_a_consent_form_post_reaches_the_client_with_no_csp_violation(page, stack, site_a, idp, alice):
    """Consent for an untrusted app: the form posts to the IdP and its redirect ends at site A."""
    client = Client(f"headers-{secrets.token_hex(4)}", None, f"{site_a}/sso/callback/")
    stack.manage(IDP, "register_app", "Consent in a browser", "--public", "--client-id", client.client_id,
                 "--redirect-uri", client.redirect_uri)  # fmt: skip
    violations = watch_for_csp_violations(page)

    login = page.goto(idp.authorize_url(AuthRequest(client).params()))
    assert "default-src 'self'" in login.headers["content-security-policy"]  # the policy is in force
    fill_login_form(page, *alice)
    expect(page.locator("h1")).to_contain_text("Allow Consent in a browser")
    page.click("button[name=allow]")
    # Site A did not start this request, so it refuses the callback: but the browser got there.
    expect(page).to_have_url(re.compile(f"^{re.escape(site_a)}/sso/callback/\\?code="))

    assert violations == []


def test_the_admin_works_with_no_csp_violation(page, idp, admin):
    violations = watch_for_csp_violations(page)

    login = page.goto(f"{idp.url}/admin/")
    assert "default-src 'self'" in login.headers["content-security-policy"]  # the policy is in force
    fill_login_form(page, *admin)
    expect(page.locator("body")).to_contain_text("Site administration")
    page.goto(f"{idp.url}/admin/oauth2_provider/application/")
    page.click("#result_list tbody a >> nth=0")  # an application's change form
    expect(page.locator("#id_redirect_uris")).to_contain_text("/sso/callback/")
    page.goto(f"{idp.url}/admin/oauth2_provider/application/add/")
    expect(page.locator("#id_client_secret")).not_to_be_empty()
    page.goto(f"{idp.url}/admin/auth/user/")
    page.click("a:text-is('alice')")
    expect(page.locator("#id_username")).to_have_value("alice")

    assert violations == []
