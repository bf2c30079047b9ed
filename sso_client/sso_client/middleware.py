"""Send visitors who are not signed in to the IdP, and keep signed-in sessions' tokens fresh.

A signed-in page view costs the session read that SessionMiddleware does anyway, and nothing
more: whether someone is signed in is decided from the session (Django's user key and this
app's token), not from `request.user`, which stays lazy. A page that uses `request.user` looks
the user up itself; a page that does not use it makes no database query at all. A request that
may change something (a POST…) has its user looked up first: it never runs for a user that is gone.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import get_urlconf, reverse

from sso_client.client import IdentityProviderUnavailable
from sso_client.conf import sso_settings
from sso_client.flow import start_sign_in
from sso_client.pages import idp_unavailable_page, problem_page
from sso_client.tokens import SESSION_TOKEN_KEY, Freshness, keep_token_fresh

logger = logging.getLogger(__name__)

#: Methods that change nothing (RFC 9110 9.2.1): a page view; the others may change something.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@lru_cache(maxsize=8)
def public_prefixes(urlconf: str | None) -> tuple[str, ...]:
    """The path prefixes anyone may see, for one URLconf: computed once, not per request."""
    own_urls = reverse("sso_client:login", urlconf=urlconf).removesuffix("login/")  # e.g. "/sso/"
    public = [own_urls, *sso_settings.PUBLIC_PATHS]
    if settings.STATIC_URL:
        public.append("/" + settings.STATIC_URL.lstrip("/"))
    return tuple(public)


@receiver(setting_changed)
def _forget_public_prefixes(*, setting: str, **kwargs) -> None:
    if setting in ("SSO_CLIENT", "ROOT_URLCONF", "STATIC_URL"):
        public_prefixes.cache_clear()


def signed_in_by_session(request: HttpRequest) -> bool:
    """Whether the session says someone signed in here: Django's user key and this app's token."""
    session = request.session
    return SESSION_KEY in session and bool(session.get(SESSION_TOKEN_KEY))


class SsoMiddleware:
    """Protects every page that is not public.

    Must come after SessionMiddleware and AuthenticationMiddleware in MIDDLEWARE (a system
    check says so). Public: SSO_CLIENT["PUBLIC_PATHS"], STATIC_URL and this app's own URLs.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.is_public(request.path_info):
            return self.get_response(request)
        try:
            if signed_in_by_session(request) and keep_token_fresh(request) is Freshness.FRESH:
                if request.method not in SAFE_METHODS and not request.user.is_authenticated:
                    # A form post or a script's change runs only for a user who exists here, so
                    # the user is looked up first (one query, on these requests only).
                    logout(request)
                    return self.sign_in_required(request)
                response = self.get_response(request)
                if self.user_is_gone(request):
                    # The session names a user that no longer exists here (deleted), or whose
                    # session hash no longer matches: end the session, and sign in afresh.
                    logout(request)
                    return self.sign_in_required(request)
                return response
            return self.sign_in_required(request)
        except IdentityProviderUnavailable as error:
            logger.warning("Identity provider unavailable: %s", error)
            return idp_unavailable_page(request)

    @staticmethod
    def is_public(path: str) -> bool:
        return path.startswith(public_prefixes(get_urlconf()))

    @staticmethod
    def user_is_gone(request: HttpRequest) -> bool:
        """Whether the page looked the session's user up (request.user) and found nobody.

        Only a lookup the page made anyway is looked at: this never queries the database.
        """
        user = getattr(request, "_cached_user", None)  # django.contrib.auth's, once request.user was used
        return user is not None and not user.is_authenticated

    @staticmethod
    def is_page_navigation(request: HttpRequest) -> bool:
        """Whether the browser is opening a page (which can follow a sign-in), not fetching a part.

        Browsers say so in Sec-Fetch-Mode; a favicon or script fetch would otherwise start a
        sign-in behind the visitor's back and replace the one their page started. Clients that
        send no Sec-Fetch headers are judged by what they accept.
        """
        if mode := request.headers.get("Sec-Fetch-Mode"):
            return mode == "navigate"
        accept = request.headers.get("Accept", "")
        return "text/html" in accept or "*/*" in accept

    @classmethod
    def sign_in_required(cls, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD") and cls.is_page_navigation(request):
            return start_sign_in(request, request.get_full_path())
        # A form post or a script's request cannot follow a sign-in: say so instead.
        return problem_page(request, status=401, title="Please sign in", message="You need to sign in to do this.")
