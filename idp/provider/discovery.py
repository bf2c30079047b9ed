"""The OpenID Provider metadata and the JWKS documents, built once per process.

Both depend on settings only (the issuer is OIDC_ISS_ENDPOINT, not the request's host), so each
process builds them on first request and serves the same bytes after that; a settings change
(tests) empties the cache. The discovery document is the toolkit's, completed and corrected.
"""

from __future__ import annotations

import json

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import ConnectDiscoveryInfoView, JwksInfoView

from provider.authorize import SUPPORTED_PROMPTS
from provider.login_sessions import ACR_PASSWORD, ACR_TWO_FACTOR
from provider.signing import jwks_body
from provider.token_endpoints import GRANT_TYPES

#: The discovery document's bytes, by issuer.
_documents: dict[str, bytes] = {}


@receiver(setting_changed, dispatch_uid="provider.discovery.forget")
def _forget(**kwargs) -> None:
    _documents.clear()


class DiscoveryView(ConnectDiscoveryInfoView):
    def get(self, request, *args, **kwargs):
        issuer = oauth2_settings.OIDC_ISS_ENDPOINT
        body = _documents.get(issuer) if issuer else None
        if body is None:
            response = super().get(request, *args, **kwargs)
            if response.status_code != 200:
                return response
            document = json.loads(response.content)
            document.update(self.additions(request))
            body = json.dumps(document).encode()
            if issuer:  # without a fixed issuer the document would follow the request's host
                _documents[issuer] = body
        response = HttpResponse(body, content_type="application/json")
        response["Access-Control-Allow-Origin"] = "*"
        return response

    def additions(self, request: HttpRequest) -> dict[str, object]:
        return {
            # ID tokens are only ever signed with the RSA key; the toolkit also lists HS256.
            "id_token_signing_alg_values_supported": ["RS256"],
            # RFC 8414 section 2: where relying parties find these two endpoints.
            "revocation_endpoint": self._get_endpoint_url(request, "revoke-token", required=True),
            "introspection_endpoint": self._get_endpoint_url(request, "introspect", required=True),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "grant_types_supported": list(GRANT_TYPES),
            # OIDC Core 3.1.2.1, as provider.authorize honours them; acr: see provider.login_sessions.
            "prompt_values_supported": sorted(SUPPORTED_PROMPTS),
            "acr_values_supported": [ACR_PASSWORD, ACR_TWO_FACTOR],
            # OIDC Back-Channel Logout 1.0, section 2.1: logout tokens carry `sid`.
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }


class JwksView(JwksInfoView):
    """The toolkit's JWKS document, its keys parsed and serialised once per process (provider.signing)."""

    def get(self, request, *args, **kwargs):
        response = HttpResponse(jwks_body(), content_type="application/json")
        response["Access-Control-Allow-Origin"] = "*"
        seconds = oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS
        response["Cache-Control"] = (
            f"public, max-age={seconds}, stale-while-revalidate={seconds}, stale-if-error={seconds}"
        )
        return response
