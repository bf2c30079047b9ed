"""The IdP's URLs plus two bench-only views, served under /-/bench/ by the bench's IdP only."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from idp_server.urls import handler500  # noqa: F401 (handler500)
from idp_server.urls import urlpatterns as product_urlpatterns


def bare(request: HttpRequest) -> HttpResponse:
    """The smallest Django view: the cost of the IdP's middleware stack and nothing else."""
    return HttpResponse(b"ok", content_type="text/plain")


def session(request: HttpRequest) -> HttpResponse:
    """Reads the Redis session of the request (a signed-in person's): 200 when signed in, else 403."""
    signed_in = bool(request.session.get("_auth_user_id"))
    return HttpResponse(
        b"ok" if signed_in else b"no session", content_type="text/plain", status=200 if signed_in else 403
    )


urlpatterns = [
    path("-/bench/bare/", bare),
    path("-/bench/session/", session),
    *product_urlpatterns,
]
