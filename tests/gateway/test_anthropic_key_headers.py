"""Which header carries a key on Anthropic's endpoints (gateway.auth.anthropic_secret)."""

from __future__ import annotations

import pytest

from gateway.auth import anthropic_secret
from gateway.errors import GatewayError


def test_the_key_comes_from_x_api_key_or_a_bearer_token() -> None:
    assert anthropic_secret("sk-one", None) == "sk-one"
    assert anthropic_secret(None, "Bearer sk-one") == "sk-one"
    assert anthropic_secret("sk-one", "Bearer sk-one") == "sk-one"


@pytest.mark.parametrize(
    ("x_api_key", "authorization"),
    [
        (None, None),
        ("", None),
        ("  ", ""),
        (None, "Basic abc"),
        ("sk-one", "Bearer sk-two"),
        ("sk-one", "Token sk-one"),
    ],
)
def test_no_key_a_malformed_header_or_two_different_keys_are_refused(
    x_api_key: str | None, authorization: str | None
) -> None:
    with pytest.raises(GatewayError) as caught:
        anthropic_secret(x_api_key, authorization)
    assert caught.value.status == 401
