"""Pages of client site A. Signing in is the sso_client middleware's job, not theirs."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods


def site_context(request: HttpRequest) -> dict:
    return {"site_title": settings.SITE_TITLE, "other_site": settings.OTHER_SITE}


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def about(request: HttpRequest) -> HttpResponse:
    return render(request, "about.html")


@require_http_methods(["GET", "POST"])
def note(request: HttpRequest) -> HttpResponse:
    """A note kept in the person's session on this site: a form whose post writes the session."""
    if request.method == "POST":
        request.session["note"] = request.POST.get("note", "")[:500]
        return redirect("note")
    return render(request, "note.html", {"note": request.session.get("note", "")})
