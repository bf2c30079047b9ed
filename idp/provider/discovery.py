"""The OpenID Provider metadata document, as the toolkit builds it, corrected to what we do."""

from __future__ import annotations

import json

from oauth2_provider.views import ConnectDiscoveryInfoView


class DiscoveryView(ConnectDiscoveryInfoView):
    #: Overrides of the toolkit's document. ID tokens are only ever signed with the RSA key.
    overrides: dict[str, object] = {"id_token_signing_alg_values_supported": ["RS256"]}

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if response.status_code == 200:
            document = json.loads(response.content)
            document.update(self.overrides)
            response.content = json.dumps(document)
        return response
