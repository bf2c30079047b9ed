"""sso_client.csp: the policy of a plain response is built once; anything else as django-csp builds it."""

from __future__ import annotations

import pytest
from csp.constants import NONCE, SELF
from csp.decorators import csp_update
from csp.middleware import CSPMiddleware as ToolkitCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from sso_client.csp import CSPMiddleware

POLICY = {"DIRECTIVES": {"default-src": [SELF], "script-src": [SELF, NONCE], "frame-ancestors": ["'none'"]}}


@pytest.fixture(autouse=True)
def policy(settings):
    settings.CONTENT_SECURITY_POLICY = POLICY  # a settings change also forgets the kept headers


def serve(view, middleware_class=CSPMiddleware):
    request = RequestFactory().get("/page/")
    return middleware_class(view)(request)


def plain_view(request):
    return HttpResponse("<p>hello</p>")


def test_a_plain_response_carries_the_policy_django_csp_builds():
    expected = serve(plain_view, ToolkitCSPMiddleware)["Content-Security-Policy"]
    assert serve(plain_view)["Content-Security-Policy"] == expected
    assert serve(plain_view)["Content-Security-Policy"] == expected  # the kept copy, the same
    assert "nonce-" not in expected


def test_a_response_that_used_a_nonce_carries_that_nonce():
    nonces = []

    def view(request):
        nonces.append(str(request.csp_nonce))
        return HttpResponse(f'<script nonce="{nonces[-1]}"></script>')

    first, second = serve(view)["Content-Security-Policy"], serve(view)["Content-Security-Policy"]
    assert f"'nonce-{nonces[0]}'" in first and f"'nonce-{nonces[1]}'" in second and nonces[0] != nonces[1]
    assert "nonce-" not in serve(plain_view)["Content-Security-Policy"], "a plain response after them has none"


def test_a_view_with_its_own_policy_gets_it_and_the_others_keep_theirs():
    @csp_update({"img-src": ["https://images.example"]})
    def view(request):
        return HttpResponse("<img>")

    assert "img-src https://images.example" in serve(view)["Content-Security-Policy"]
    assert "images.example" not in serve(plain_view)["Content-Security-Policy"]


def test_a_changed_policy_shows_at_once(settings):
    assert "frame-ancestors 'none'" in serve(plain_view)["Content-Security-Policy"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": [SELF], "frame-ancestors": [SELF]}}
    assert "frame-ancestors 'self'" in serve(plain_view)["Content-Security-Policy"]


def test_a_nonce_asked_for_after_the_header_is_written_is_an_error():
    from csp.exceptions import CSPNonceError

    request = RequestFactory().get("/page/")
    CSPMiddleware(plain_view)(request)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
