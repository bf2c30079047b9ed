from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("", lambda request: HttpResponse(f"hello {request.user.get_username()}")),
    path("public/", lambda request: HttpResponse("public")),
    path("sso/", include("sso_client.urls")),
]
