"""Send visitors who are not signed in to the IdP, and keep signed-in sessions' tokens fresh."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from sso_client.client import IdentityProviderUnavailable
from sso_client.conf import sso_settings
from sso_client.flow import start_sign_in
from sso_client.pages import idp_unavailable_page, problem_page
from sso_client.tokens import Freshness, keep_token_fresh

logger = logging.getLogger(__name__)


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
            if request.user.is_authenticated and keep_token_fresh(request) is Freshness.FRESH:
                return self.get_response(request)
            return self.sign_in_required(request)
        except IdentityProviderUnavailable as error:
            logger.warning("Identity provider unavailable: %s", error)
            return idp_unavailable_page(request)

    @staticmethod
    def is_public(path: str) -> bool:
        own_urls = reverse("sso_client:login").removesuffix("login/")  # e.g. "/sso/"
        public = [own_urls, *sso_settings.PUBLIC_PATHS]
        if settings.STATIC_URL:
            public.append("/" + settings.STATIC_URL.lstrip("/"))
        return any(path.startswith(prefix) for prefix in public)

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
