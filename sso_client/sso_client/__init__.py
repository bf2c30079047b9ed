"""sso_client: sign people in to a Django site through the identity provider (OpenID Connect).

Add "sso_client" to INSTALLED_APPS, "sso_client.middleware.SsoMiddleware" to MIDDLEWARE after
AuthenticationMiddleware, `path("sso/", include("sso_client.urls"))` to the URLs, and an
SSO_CLIENT dict to the settings (see sso_client.conf for its keys).
"""
