"""django-csp's middleware, with the policy of a plain response built once per process.

django-csp builds the Content-Security-Policy header anew for every response: on a small JSON
answer (the token endpoints, userinfo) that was about a tenth of the whole request's CPU. Most
responses carry the very same policy: no nonce was used, no view decorator changed it, nothing
of the request went into it. Those get the header built the first time and kept; a response with
a nonce or a per-view policy is built by django-csp as before. A settings change (the tests'
override_settings) forgets the kept headers.

MIDDLEWARE: "sso_client.csp.CSPMiddleware", where django-csp's own would be.
"""

from __future__ import annotations

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as ToolkitCSPMiddleware
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

#: Attributes by which a view's decorators (csp_update, csp_replace, csp_exempt…) change its policy.
PER_VIEW = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)

#: {key: (header, report-only header)}, for the responses whose policy is the same every time.
_kept: dict[str, tuple[str | None, str | None]] = {}


@receiver(setting_changed, dispatch_uid="sso_client.csp.forget")
def forget(**kwargs) -> None:
    _kept.clear()


class CSPMiddleware(ToolkitCSPMiddleware):
    def plain_policy_key(self, request: HttpRequest, response: HttpResponseBase) -> str | None:
        """A key for the policy of a response that takes the same policy every time, else None.

        A subclass whose policy depends on the response says so here (provider.csp: pages).
        """
        if settings.DEBUG:  # django-csp leaves debug pages alone: let it decide
            return None
        if getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, name) for name in PER_VIEW):
            return None
        for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
            excluded = (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if request.path_info.startswith(tuple(excluded)):
                return None
        return "plain"

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        key = self.plain_policy_key(request, response)
        if key is None or HEADER in response or HEADER_REPORT_ONLY in response:
            return super().process_response(request, response)
        if key not in _kept:
            # Built on a stand-in that is no page, as the response is none of the subclass's pages.
            built = super().process_response(request, HttpResponseBase(content_type="application/octet-stream"))
            _kept[key] = (built.get(HEADER), built.get(HEADER_REPORT_ONLY))
        header, report_only = _kept[key]
        if header:
            response[HEADER] = header
        if report_only:
            response[HEADER_REPORT_ONLY] = report_only
        # As django-csp does once the header is written: a nonce asked for after it is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
