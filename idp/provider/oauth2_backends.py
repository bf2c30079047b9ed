"""django-oauth-toolkit's request backend, handing the IdP's session id to the validator.

Named in OAUTH2_PROVIDER["OAUTH2_BACKEND_CLASS"]. oauthlib turns these credentials into
attributes of the request the validator sees, so an authorization code knows the login
session it was issued in (`request.sid`), and the code exchange can put it in the ID token.
"""

from __future__ import annotations

from oauth2_provider.oauth2_backends import OAuthLibCore as ToolkitOAuthLibCore

from provider.login_sessions import SID_SESSION_KEY


class OAuthLibCore(ToolkitOAuthLibCore):
    def create_authorization_response(self, request, scopes, credentials, allow):
        credentials["sid"] = request.session.get(SID_SESSION_KEY)
        return super().create_authorization_response(request, scopes, credentials, allow)
