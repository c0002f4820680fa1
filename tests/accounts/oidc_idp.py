"""A real OpenID Connect identity provider on loopback, for single sign-on tests.

oidc-provider-mock serves discovery, authorization (a form: "sign in as <sub>"), token, userinfo and
JWKS endpoints, built on authlib, from a thread. Clients must be registered (as with Keycloak or
Entra): `register(redirect_uri)` returns the client id and secret, and the provider checks both, the
redirect URI, PKCE and the nonce. `authorize(url, sub)` is the person signing in at the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import oidc_provider_mock


@dataclass
class IdentityProvider:
    url: str

    def register(self, redirect_uri: str) -> tuple[str, str]:
        answer = httpx.post(
            f"{self.url}/oauth2/clients",
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_post"},
            timeout=30,
        )
        answer.raise_for_status()
        client = answer.json()
        return client["client_id"], client["client_secret"]

    def authorize(self, authorization_url: str, sub: str) -> str:
        """The person signs in at the provider as `sub`; returns where the provider sends the browser back."""
        assert authorization_url.startswith(self.url), authorization_url
        answer = httpx.post(authorization_url, data={"sub": sub})
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def set_user(self, sub: str, **claims: object) -> None:
        httpx.put(f"{self.url}/users/{sub}", json=claims).raise_for_status()


@contextmanager
def running_identity_provider() -> Iterator[IdentityProvider]:
    with oidc_provider_mock.run_server_in_thread(require_client_registration=True) as server:
        yield IdentityProvider(f"http://localhost:{server.server_port}")


def local_path(url: str) -> str:
    """The path and query of a URL back to our site (the test client speaks to `testserver`)."""
    parts = urlsplit(url)
    assert parts.netloc == "testserver", url
    return parts.path + (f"?{parts.query}" if parts.query else "")
