"""The token and introspection endpoints: the toolkit's views, closed where they said too much.

Token endpoint: only the grants this IdP serves (authorization_code, refresh_token, as its
discovery document says) get past the first line. Anything else is `unsupported_grant_type`
(RFC 6749 section 5.2) before a client, a code or a password is looked at, so the answer is the
same whatever else was sent: the password grant cannot be used to test passwords.

Introspection (RFC 7662): a client learns about its own tokens only. A token issued to another
client is `{"active": false}` (section 4: "the authorization server MAY respond with an
inactive token"), unless the caller is a resource server named in
INTROSPECTION_RESOURCE_SERVERS, which may introspect every token.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.models import get_access_token_model
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import IntrospectTokenView as ToolkitIntrospectTokenView
from oauth2_provider.views import TokenView as ToolkitTokenView
from oauthlib.common import Request as OauthlibRequest

from ops.metrics import token_grant_counted
from provider.oauth2_validators import ACCESS_TOKEN_BY_CHECKSUM

PKCE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
#: The grant types this IdP serves; discovery's `grant_types_supported` lists the same.
GRANT_TYPES = ("authorization_code", "refresh_token")


def oauth_error(error: str, description: str, *, status: int = 400) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    return response


class TokenView(ToolkitTokenView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = self.answer(request, *args, **kwargs)
        token_grant_counted(request.POST.getlist("grant_type"), response)
        return response

    def answer(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        grant_types = request.POST.getlist("grant_type")
        if not grant_types:
            return oauth_error("invalid_request", "grant_type is missing.")
        if len(grant_types) > 1:
            return oauth_error("invalid_request", "grant_type must not be repeated.")
        if grant_types[0] not in GRANT_TYPES:
            return oauth_error("unsupported_grant_type", "Only authorization_code and refresh_token are served.")
        verifier = request.POST.get("code_verifier")
        if verifier is not None and not PKCE_VERIFIER.fullmatch(verifier):
            # RFC 7636 4.1: 43 to 128 unreserved characters; anything else is no verifier at all.
            return oauth_error("invalid_request", "code_verifier must be 43 to 128 unreserved characters.")
        return super().post(request, *args, **kwargs)

    @method_decorator(sensitive_post_parameters("password", "client_secret"))
    def authorization_flow_token_response(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        """The toolkit's, without reading the new access token back from the database when no
        one listens to its `app_authorized` signal (nothing here does): one query less a grant."""
        _url, headers, body, status = self.create_token_response(request)
        if status == 200 and app_authorized.has_listeners():
            access_token = json.loads(body).get("access_token")
            if access_token is not None:
                checksum = hashlib.sha256(access_token.encode("utf-8")).hexdigest()
                token = get_access_token_model().objects.get(token_checksum=checksum)
                app_authorized.send(sender=self, request=request, token=token)
        response = HttpResponse(content=body, status=status)
        for key, value in headers.items():
            response[key] = value
        return response


class IntrospectTokenView(ToolkitIntrospectTokenView):
    caller = None  # the authenticated client asking

    def authenticate_client(self, request: HttpRequest) -> bool:
        core = self.get_oauthlib_core()
        uri, http_method, body, headers = core._extract_params(request)
        oauth_request = OauthlibRequest(uri, http_method, body, headers)
        if core.server.request_validator.authenticate_client(oauth_request):
            self.caller = oauth_request.client
            return True
        return False

    def verify_request(self, request: HttpRequest):
        # The other way in: a bearer token with the `introspection` scope, on behalf of its client.
        valid, oauth_request = super().verify_request(request)
        if valid and getattr(oauth_request, "access_token", None) is not None:
            self.caller = oauth_request.access_token.application
        return valid, oauth_request

    def get_token_response(self, token_value=None) -> HttpResponse:
        """The toolkit's answer (oauth2_provider 3.4, kept in step with it), on the validator's
        compiled token lookup, and `{"active": false}` for a token the caller may not see."""
        if token_value is None:
            return oauth_error("invalid_request", "Token parameter is missing.")
        token = ACCESS_TOKEN_BY_CHECKSUM.first(hashlib.sha256(token_value.encode("utf-8")).hexdigest())
        if token is None or not token.is_valid():
            return JsonResponse({"active": False})
        client_id = token.application.client_id if token.application else None
        if not self._may_see(client_id):
            return JsonResponse({"active": False})
        answer = {"active": True, "scope": token.scope, "exp": int(calendar.timegm(token.expires.timetuple()))}
        if client_id:
            answer["client_id"] = client_id
        if token.user:
            answer["username"] = token.user.get_username()
        if token.resource:  # RFC 8707: the audiences the token is bound to
            answer["aud"] = token.resource
        return JsonResponse(answer)

    def _may_see(self, client_id: str | None) -> bool:
        if self.caller is None:
            return False
        return client_id == self.caller.client_id or self.caller.client_id in settings.INTROSPECTION_RESOURCE_SERVERS
