"""django-oauth-toolkit's request backend, handing the IdP's session id to the validator.

Named in OAUTH2_PROVIDER["OAUTH2_BACKEND_CLASS"]. oauthlib turns these credentials into
attributes of the request the validator sees, so an authorization code knows the login
session it was issued in (`request.sid`), and the code exchange can put it in the ID token.
"""

from __future__ import annotations

from oauth2_provider.oauth2_backends import OAuthLibCore as ToolkitOAuthLibCore
from oauthlib.oauth2.rfc6749 import errors

from provider.login_sessions import SID_SESSION_KEY

NUL = "\x00"


class OAuthLibCore(ToolkitOAuthLibCore):
    def create_token_response(self, request):
        """invalid_request for a NUL character in any parameter: no code, token, client id or
        verifier holds one, and PostgreSQL could not even look it up (a 500, not an answer)."""
        if any(NUL in key or any(NUL in value for value in values) for key, values in request.POST.lists()):
            error = errors.InvalidRequestError(description="A parameter holds a NUL character.")
            headers = {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
            return None, headers, error.json, error.status_code
        return super().create_token_response(request)

    def create_authorization_response(self, request, scopes, credentials, allow):
        credentials["sid"] = request.session.get(SID_SESSION_KEY)
        # What provider.authorize already read for this very request, handed over rather than
        # read again: the login session, and the client oauthlib loaded when it validated the
        # request (`credentials["request"]`: oauthlib's request of that validation).
        login_session = getattr(request, "idp_login_session", None)
        if login_session is not None and login_session.sid == credentials["sid"]:
            credentials["login_session"] = login_session
        validated = credentials.get("request")
        client = getattr(validated, "client", None)
        if client is not None and client.client_id == credentials.get("client_id"):
            credentials["client"] = client
        return super().create_authorization_response(request, scopes, credentials, allow)
