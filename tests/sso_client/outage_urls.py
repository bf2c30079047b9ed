"""The unit tests' site (tests.sso_client.urls) with its health endpoints, and a page whose
database query fails with whatever error FAILS_WITH holds (tests/sso_client/test_database_outage.py)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from tests.sso_client.urls import urlpatterns as site_urlpatterns

#: The error the page below raises, as a query raising it would.
FAILS_WITH: list[BaseException] = []


def database_page(request: HttpRequest) -> HttpResponse:
    raise FAILS_WITH[0]


urlpatterns = [
    path("-/health/", include("sso_client.health")),
    path("public/database/", database_page),
    *site_urlpatterns,
]

handler500 = "sso_client.pages.server_error"
