"""URLs of the identity provider. The OIDC endpoints live under /o/, the issuer's path."""

from django.contrib import admin
from django.urls import include, path
from oauth2_provider import urls as toolkit_urls

from accounts import views as accounts_views
from ops import views as ops_views
from provider import views
from provider.authorize import AuthorizationView, ReauthenticateView
from provider.discovery import DiscoveryView, JwksView
from provider.end_session import EndSessionView
from provider.token_endpoints import IntrospectTokenView, TokenView

# Only the protocol endpoints of django-oauth-toolkit: its self-service application pages would
# let any signed-in person register clients, which is the administrator's job here.
oauth2_endpoints = (
    toolkit_urls.base_urlpatterns + toolkit_urls.oidc_urlpatterns,
    toolkit_urls.app_name,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    # Before the admin's own login: that one signs staff in with the password alone.
    path("admin/login/", accounts_views.admin_login),
    path("admin/", admin.site.urls),
    path("o/.well-known/openid-configuration", DiscoveryView.as_view(), name="oidc-discovery"),
    path("o/.well-known/jwks.json", JwksView.as_view(), name="jwks"),  # before the toolkit's, same path
    path("accounts/reauthenticate/", ReauthenticateView.as_view(), name="reauthenticate"),
    path("accounts/", include("accounts.urls")),  # two-factor sign-in: the code step, enrolment
    # The toolkit's endpoints, as this IdP extends them; the names they have in the toolkit's
    # namespace (discovery uses those) resolve to the same paths.
    path("o/authorize/", AuthorizationView.as_view(), name="authorize"),
    path("o/token/", TokenView.as_view(), name="token"),
    path("o/introspect/", IntrospectTokenView.as_view(), name="introspect"),
    path("o/logout/", EndSessionView.as_view(), name="end-session"),
    path("o/", include(oauth2_endpoints, namespace="oauth2_provider")),
    path("-/health/live/", views.health_live, name="health-live"),
    path("-/health/ready/", views.health_ready, name="health-ready"),
    path("-/metrics", ops_views.metrics, name="metrics"),  # loopback, METRICS_ALLOWED_IPS, METRICS_TOKEN
]

handler500 = "provider.views.server_error"
