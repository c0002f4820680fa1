"""GET /metrics: Prometheus's text format, for a scraper with METRICS_TOKEN or from METRICS_ALLOWED_ADDRESSES.

Without either setting there is nothing here (404), so the endpoint does not even show it exists.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed

from operations.observe import scrape_sources


def _from_allowed_address(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def _has_token(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED:
        raise Http404
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    if not (_has_token(request) or _from_allowed_address(request)):
        response = HttpResponse("A bearer token is needed (METRICS_TOKEN).\n", status=401, content_type="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from operations.metrics import exposition

    body, content_type = exposition(scrape_sources)
    return HttpResponse(body, content_type=content_type)
