"""Two-factor sign-in against the running IdP: enrol an authenticator app, then sign in through a client.

A person of each test's own enrols on the IdP's pages as they would (password, QR page, first
code); the codes come from a small RFC 6238 implementation here, not from the product. Wrong,
replayed and recovery codes are tried over real HTTP, and the ID token's `amr` and `acr` say
how the person signed in. MFA_REQUIRED is tested in tests/idp/test_two_factor.py: it needs no
stack of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
import requests
from playwright.sync_api import expect

from devstack.stack import IDP
from tests.e2e.oidc import AuthRequest, csrf_token, query, submit_login

RUN = secrets.token_hex(3)  # new names each run, also against a long-lived REDIS_URL
PASSWORD = "two-factor-" + secrets.token_urlsafe(12)
NAMES = ["client", "wrong", "replay", "recovery", "browser"]
STEP = 30


@dataclass
class Authenticator:
    """An authenticator app: TOTP (RFC 6238) with SHA-1, six digits, 30-second steps."""

    secret: str
    last_step: int = -1

    def code_at(self, step: int) -> str:
        key = base64.b32decode(self.secret.replace(" ", ""))
        digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()  # RFC 4226 5.3
        offset = digest[-1] & 0x0F
        number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
        return f"{number % 1_000_000:06d}"

    def code(self) -> str:
        """A code the IdP has not seen: the previous step's first (it accepts one step either
        side), then the current step's; waits for the next step when both are used."""
        step = max(int(time.time()) // STEP - 1, self.last_step + 1)
        while int(time.time()) // STEP < step:
            time.sleep(0.5)
        self.last_step = step
        return self.code_at(step)


@dataclass
class Person:
    username: str
    password: str
    app: Authenticator
    recovery_codes: list[str]


@pytest.fixture(scope="module")
def usernames(stack) -> dict[str, str]:
    names = {name: f"tf-{name}-{RUN}" for name in NAMES}
    stack.manage(
        IDP,
        "shell",
        "-c",
        "from provider.services import user_ensure\n"
        f"for name in {list(names.values())!r}:\n"
        f"    user_ensure(username=name, password={PASSWORD!r}, email=name + '@example.com', full_name='Two Factor')",
    )
    yield names
    stack.manage(IDP, "axes_reset_username", *names.values())


def enrol(idp, username: str) -> Person:
    """Sign in with the password, open the enrolment page, confirm with a first code."""
    browser = requests.Session()
    login_page = browser.get(f"{idp.url}/accounts/login/?next=/accounts/two-factor/enrol/", timeout=10)
    posted = submit_login(browser, login_page, username, PASSWORD)
    assert posted.status_code == 302 and posted.headers["Location"] == "/accounts/two-factor/enrol/"
    page = browser.get(f"{idp.url}/accounts/two-factor/enrol/", timeout=10)
    assert page.status_code == 200, page.text[:300]
    assert "<svg" in page.text and "<script" not in page.text  # the QR code, drawn by the IdP
    app = Authenticator(re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page.text).group(1))
    done = browser.post(page.url, data={"csrfmiddlewaretoken": csrf_token(page.text), "code": app.code()}, timeout=10)
    assert done.status_code == 200, done.text[:300]
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", done.text)
    assert len(codes) == 10
    return Person(username, PASSWORD, app, codes)


@pytest.fixture
def person(request, idp, usernames) -> Person:
    """A person of the test's own, enrolled; which one, the test says (`indirect` parametrize)."""
    return enrol(idp, usernames[request.param])


def password_step(idp, browser: requests.Session, request: AuthRequest, person: Person) -> requests.Response:
    """Authorize at the IdP as `request`'s client, land on the login page, post the password."""
    hops = idp.follow(browser, idp.authorize_url(request.params()), stop_at=request.client.redirect_uri)
    login_page = hops[-1]
    assert login_page.status_code == 200 and 'name="password"' in login_page.text
    posted = submit_login(browser, login_page, person.username, person.password)
    assert posted.status_code == 302, posted.text[:300]
    return posted


def code_step(idp, browser: requests.Session, posted: requests.Response, code: str) -> requests.Response:
    """After the password: the code page, then the code posted; the answer is not followed."""
    assert posted.headers["Location"] == "/accounts/login/two-factor/", "the password alone does not sign in"
    page = browser.get(urljoin(idp.url, posted.headers["Location"]), timeout=10)
    assert page.status_code == 200 and 'name="code"' in page.text
    return browser.post(
        page.url,
        data={"csrfmiddlewaretoken": csrf_token(page.text), "code": code},
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=10,
    )


def back_at_client(idp, browser, answered: requests.Response, request: AuthRequest) -> dict[str, str]:
    assert answered.status_code == 302, answered.text[:300]
    hops = idp.follow(browser, urljoin(idp.url, answered.headers["Location"]), stop_at=request.client.redirect_uri)
    location = hops[-1].headers["Location"]
    assert location.startswith(request.client.redirect_uri), location
    return query(location)


def signed_in_at_idp(idp, browser: requests.Session, request: AuthRequest) -> bool:
    """Ask the IdP silently (prompt=none): a code means an IdP session exists in this browser."""
    answer = browser.get(idp.authorize_url(request.params(prompt="none")), allow_redirects=False, timeout=10)
    return "code" in query(answer.headers["Location"])


def claims_of(idp, request: AuthRequest, callback: dict[str, str]) -> dict:
    tokens = idp.exchange(request, callback["code"])
    assert tokens.status_code == 200, tokens.text
    return idp.verify_id_token(tokens.json()["id_token"], request)


@pytest.mark.parametrize("person", ["client"], indirect=True)
def test_a_sign_in_through_a_client_asks_for_the_code_and_the_id_token_says_so(idp, site_a_client, person):
    browser, request = requests.Session(), AuthRequest(site_a_client)
    posted = password_step(idp, browser, request, person)
    assert not signed_in_at_idp(idp, browser, AuthRequest(site_a_client)), "no IdP session between the steps"
    callback = back_at_client(idp, browser, code_step(idp, browser, posted, person.app.code()), request)
    claims = claims_of(idp, request, callback)
    assert claims["preferred_username"] == person.username
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["acr"] == "2"
    assert time.time() - claims["auth_time"] < 60


@pytest.mark.parametrize("person", ["wrong"], indirect=True)
def test_a_wrong_code_is_refused_readably_and_leaves_no_idp_session(idp, site_a_client, person):
    browser, request = requests.Session(), AuthRequest(site_a_client)
    right = person.app.code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    refused = code_step(idp, browser, password_step(idp, browser, request, person), wrong)
    assert refused.status_code == 400
    assert "That code is not right" in refused.text
    assert 'name="code"' in refused.text  # the form again, to try the newest code
    assert not signed_in_at_idp(idp, browser, AuthRequest(site_a_client))


@pytest.mark.parametrize("person", ["replay"], indirect=True)
def test_a_code_used_once_is_refused_the_second_time(idp, site_a_client, person):
    first, request = requests.Session(), AuthRequest(site_a_client)
    code = person.app.code()
    back_at_client(idp, first, code_step(idp, first, password_step(idp, first, request, person), code), request)

    second, request = requests.Session(), AuthRequest(site_a_client)
    replayed = code_step(idp, second, password_step(idp, second, request, person), code)
    assert replayed.status_code == 400
    assert not signed_in_at_idp(idp, second, AuthRequest(site_a_client))


@pytest.mark.parametrize("person", ["recovery"], indirect=True)
def test_a_recovery_code_signs_in_once(idp, site_a_client, person):
    recovery_code = person.recovery_codes[0]
    browser, request = requests.Session(), AuthRequest(site_a_client)
    posted = password_step(idp, browser, request, person)
    callback = back_at_client(idp, browser, code_step(idp, browser, posted, recovery_code.upper()), request)
    assert claims_of(idp, request, callback)["amr"] == ["pwd", "otp"]

    again, request = requests.Session(), AuthRequest(site_a_client)
    refused = code_step(idp, again, password_step(idp, again, request, person), recovery_code)
    assert refused.status_code == 400


def fill_login_form(page, username: str, password: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")


def test_in_a_browser_enrol_at_the_idp_then_sign_in_at_site_a_with_a_code(page, idp, site_a, usernames, tmp_path):
    username = usernames["browser"]
    problems = []  # a Content-Security-Policy violation shows in the console
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    page.goto(f"{idp.url}/")
    fill_login_form(page, username, PASSWORD)
    page.click("text=Two-factor sign-in")
    page.click("text=Set up two-factor sign-in")
    expect(page.locator(".qr svg")).to_be_visible()
    page.screenshot(path=tmp_path / "enrol.png")
    app = Authenticator(page.locator("#totp-secret").inner_text())
    page.fill("input[name=code]", app.code())
    page.click("main button[type=submit]")
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    page.click("text=continue")
    expect(page.locator("body")).to_contain_text("On: signing in asks for a code")
    page.click("header button")  # sign out at the IdP

    page.goto(f"{site_a}/")
    fill_login_form(page, username, PASSWORD)
    expect(page).to_have_url(f"{idp.url}/accounts/login/two-factor/")
    page.fill("input[name=code]", app.code())
    page.click("main button[type=submit]")
    expect(page).to_have_url(f"{site_a}/")
    expect(page.locator("#username")).to_have_text(username)
    assert not [text for text in problems if "Content Security Policy" in text], problems
