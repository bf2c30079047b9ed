"""Pages of client site A. Signing in is the sso_client middleware's job, not theirs."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def site_context(request: HttpRequest) -> dict:
    return {"site_title": settings.SITE_TITLE, "other_site": settings.OTHER_SITE}


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def about(request: HttpRequest) -> HttpResponse:
    return render(request, "about.html")
