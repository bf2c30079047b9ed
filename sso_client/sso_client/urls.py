"""Include under one prefix, e.g. `path("sso/", include("sso_client.urls"))`; all of it is public."""

from django.urls import path

from sso_client import views

app_name = "sso_client"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("callback/", views.callback, name="callback"),
    path("logout/", views.logout_view, name="logout"),
    path("signed-out/", views.signed_out, name="signed-out"),
    path("backchannel-logout/", views.backchannel_logout, name="backchannel-logout"),
]
