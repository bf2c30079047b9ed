from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("", lambda request: HttpResponse(f"hello {request.user.get_username()}")),
    path("no-user/", lambda request: HttpResponse("a page that does not use request.user")),
    path("public/", lambda request: HttpResponse("public")),
    path("sso/", include("sso_client.urls")),
]
