"""The OpenAPI schema at /api/schema/ and its docs page, served from our own files."""

from __future__ import annotations

import re

import yaml

from tests.inprocess import InProcessApp


def test_the_schema_describes_every_endpoint_its_auth_and_the_error_shape(app: InProcessApp) -> None:
    response = app.client().get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.text)
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    assert {
        "/api/conversations/",
        "/api/conversations/{id}/",
        "/api/conversations/{id}/messages/",
        "/api/keys/",
        "/api/keys/{id}/",
        "/api/keys/{id}/revoke/",
        "/api/usage/",
        "/api/usage/daily/",
    } <= paths
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert "cookieAuth" in schemes
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]["error"]["required"]) == {"message", "type", "param", "code"}
    listing = schema["paths"]["/api/conversations/"]["get"]
    assert {"200", "401", "429"} <= set(listing["responses"])
    assert "count" in str(schema["components"]["schemas"]["PaginatedConversationList"])


def test_the_docs_page_loads_swagger_ui_from_our_static_files_without_inline_script(app: InProcessApp) -> None:
    page = app.client().get("/api/docs/")
    assert page.status_code == 200
    sources = re.findall(r'<script[^>]*src="([^"]+)"', page.text)
    assert sources and all(src.startswith("/static/") for src in sources)
    assert len(re.findall(r"<script", page.text)) == len(sources), "no inline script"
    assert 'data-schema-url="/api/schema/"' in page.text
    for src in sources:
        assert app.client().get(src).status_code == 200, src
