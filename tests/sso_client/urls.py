from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

#: What the form below was posted by: a view with a side effect, for the tests.
POSTED_BY: list[str] = []


@csrf_exempt
def post_something(request):
    POSTED_BY.append(request.user.get_username())
    return HttpResponse("posted")


urlpatterns = [
    path("post/", post_something),
    path("", lambda request: HttpResponse(f"hello {request.user.get_username()}")),
    path("no-user/", lambda request: HttpResponse("a page that does not use request.user")),
    path("public/", lambda request: HttpResponse("public")),
    path("sso/", include("sso_client.urls")),
]

handler500 = "sso_client.pages.server_error"
