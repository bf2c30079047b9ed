"""The OpenID Provider metadata document, as the toolkit builds it, completed and corrected."""

from __future__ import annotations

import json

from django.http import HttpRequest
from oauth2_provider.views import ConnectDiscoveryInfoView

from provider.authorize import SUPPORTED_PROMPTS
from provider.login_sessions import ACR_PASSWORD, ACR_TWO_FACTOR
from provider.token_endpoints import GRANT_TYPES


class DiscoveryView(ConnectDiscoveryInfoView):
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if response.status_code == 200:
            document = json.loads(response.content)
            document.update(self.additions(request))
            response.content = json.dumps(document)
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
