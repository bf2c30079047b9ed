from collections.abc import Callable

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

#: What the form below was posted by: a view with a side effect, for the tests.
POSTED_BY: list[str] = []
#: Called by the page below after the session was read and before it is written: a test holds it there.
WHILE_WRITING: list[Callable[[], None]] = []


@csrf_exempt
def post_something(request):
    POSTED_BY.append(request.user.get_username())
    return HttpResponse("posted")


def remember(request):
    """A page that writes the session (a preference, a form's draft…), as any site has."""
    request.session["remembered"] = request.GET.get("note", "")
    for hold in WHILE_WRITING:
        hold()
    return HttpResponse("remembered")


urlpatterns = [
    path("post/", post_something),
    path("remember/", remember),
    path("", lambda request: HttpResponse(f"hello {request.user.get_username()}")),
    path("no-user/", lambda request: HttpResponse("a page that does not use request.user")),
    path("public/", lambda request: HttpResponse("public")),
    path("sso/", include("sso_client.urls")),
]

handler500 = "sso_client.pages.server_error"
