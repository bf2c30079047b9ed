"""A person with a browser, as far as HTTP goes: one cookie jar, redirects followed one by one."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests

from tests.e2e.oidc import csrf_token, submit_login


@dataclass
class Visit:
    hops: list[requests.Response]

    @property
    def page(self) -> requests.Response:
        return self.hops[-1]

    @property
    def redirects(self) -> int:
        return len(self.hops) - 1

    @property
    def urls(self) -> list[str]:
        return [hop.url for hop in self.hops]

    def shows_login_form(self) -> bool:
        return any('name="password"' in hop.text for hop in self.hops)


@dataclass
class Visitor:
    browser: requests.Session = field(default_factory=requests.Session)

    def visit(self, url: str, *, limit: int = 12) -> Visit:
        hops = []
        for _ in range(limit):
            response = self.browser.get(url, allow_redirects=False, timeout=30, headers={"Accept": "text/html"})
            hops.append(response)
            if response.status_code not in (301, 302, 303, 307):
                return Visit(hops)
            url = urljoin(url, response.headers["Location"])
        raise AssertionError(f"more than {limit} redirects: {[hop.url for hop in hops]}")

    def sign_in(self, url: str, username: str, password: str) -> Visit:
        """Open `url`, sign in on the IdP's login page it leads to, and follow on to the end."""
        first = self.visit(url)
        login_page = first.page
        assert 'name="password"' in login_page.text, f"expected the IdP's login page, got {login_page.url}"
        posted = submit_login(self.browser, login_page, username, password)
        assert posted.status_code == 302, f"login refused ({posted.status_code})"
        rest = self.visit(urljoin(login_page.url, posted.headers["Location"]))
        return Visit([*first.hops, posted, *rest.hops])

    def post_form(self, page_url: str, action_url: str, data: dict | None = None) -> Visit:
        """Open `page_url`, post its form (with the page's CSRF token) to `action_url`, follow on."""
        page = self.browser.get(page_url, timeout=30)
        posted = self.browser.post(
            action_url,
            data={"csrfmiddlewaretoken": csrf_token(page.text), **(data or {})},
            headers={"Referer": page_url},
            allow_redirects=False,
            timeout=30,
        )
        if posted.status_code not in (301, 302, 303):
            return Visit([page, posted])
        rest = self.visit(urljoin(action_url, posted.headers["Location"]))
        return Visit([page, posted, *rest.hops])

    def sign_out_at_site(self, site: str) -> Visit:
        return self.post_form(f"{site}/sso/logout/", f"{site}/sso/logout/")

    def cookie(self, name: str) -> str | None:
        return self.browser.cookies.get(name)
