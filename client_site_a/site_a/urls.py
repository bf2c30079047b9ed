"""URLs of client site A: its own pages, and the sign-in app under /sso/."""

from django.urls import include, path

from site_a import views

urlpatterns = [
    path("", views.home, name="home"),
    path("about/", views.about, name="about"),
    path("note/", views.note, name="note"),
    path("sso/", include("sso_client.urls")),
    path("-/health/", include("sso_client.health")),
    path("-/metrics", include("sso_client.metrics")),  # loopback, METRICS_ALLOWED_IPS, METRICS_TOKEN
]

# Redis unreachable or failing over: a readable 503 page with Retry-After, never a 500.
handler500 = "sso_client.pages.server_error"
