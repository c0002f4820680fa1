"""The catalogue and key commands of INTERFACE.md: idempotent, one-line errors, non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.keys import find_key
from accounts.models import ApiKey, User
from catalogue.models import LanguageModel, Provider
from tests.live_server import ROOT


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_providers_add_creates_then_updates_the_same_provider() -> None:
    assert "created provider openai" in run("providers", "add", "openai", "--base-url", "https://api.openai.com/v1")
    out = run("providers", "add", "openai", "--base-url", "https://example.com/v1/", "--api-key-env", "OPENAI_API_KEY")
    assert "updated provider openai" in out
    provider = Provider.objects.get()
    assert (provider.base_url, provider.api_key_env) == ("https://example.com/v1", "OPENAI_API_KEY")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "--base-url", "https://x.test/v1"], "invalid provider name"),
        (["ok", "--base-url", "ftp://x.test/v1"], "invalid --base-url"),
        (["ok", "--base-url", "not a url"], "invalid --base-url"),
        (["ok", "--base-url", "https://x.test/v1", "--api-key-env", "NOT-A-VAR"], "invalid --api-key-env"),
        # The server's own secrets are never a provider's key, nor anything outside the allow-list.
        (["ok", "--base-url", "https://x.test/v1", "--api-key-env", "SECRET_KEY"], "server's own configuration"),
        (["ok", "--base-url", "https://x.test/v1", "--api-key-env", "ADMIN_PASSWORD"], "server's own configuration"),
        (["ok", "--base-url", "https://x.test/v1", "--api-key-env", "DATABASE_URL"], "server's own configuration"),
        (["ok", "--base-url", "https://x.test/v1", "--api-key-env", "HOME"], "PROVIDER_KEY_ENV_ALLOWED"),
    ],
)
def test_providers_add_refuses_bad_input(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("providers", "add", *args)
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_providers_add_takes_the_protocol_the_provider_speaks() -> None:
    out = run("providers", "add", "claude", "--base-url", "https://api.anthropic.com", "--kind", "anthropic")
    assert "created provider claude (https://api.anthropic.com, speaks anthropic)" in out
    run("providers", "add", "claude", "--base-url", "https://api.anthropic.com")  # the kind stays unless given
    assert Provider.objects.get().kind == Provider.Kind.ANTHROPIC
    assert "claude\thttps://api.anthropic.com\tno key\tenabled\tanthropic" in run("providers", "list")
    run("providers", "add", "google", "--base-url", "https://generativelanguage.googleapis.com", "--kind", "gemini")
    assert Provider.objects.get(name="google").kind == Provider.Kind.GEMINI
    with pytest.raises(CommandError, match="invalid choice"):
        run("providers", "add", "other", "--base-url", "https://x.test/v1", "--kind", "bedrock")


@pytest.mark.django_db
def test_providers_list_never_shows_a_stored_key() -> None:
    provider = Provider(name="vault", base_url="https://x.test/v1")
    provider.set_api_key("sk-very-secret-upstream-key")
    provider.save()
    Provider.objects.create(name="env", base_url="https://y.test/v1", api_key_env="Y_API_KEY")
    out = run("providers", "list")
    assert "vault\thttps://x.test/v1\tkey stored\tenabled" in out
    assert "key from $Y_API_KEY" in out
    assert "very-secret" not in out


@pytest.mark.django_db
def test_a_new_base_url_drops_the_stored_key() -> None:
    provider = Provider(name="vault", base_url="https://x.test/v1")
    provider.set_api_key("sk-very-secret-upstream-key")
    provider.save()
    out = run("providers", "add", "vault", "--base-url", "http://127.0.0.1:9/v1")
    assert "stored key of vault was removed" in out
    provider.refresh_from_db()
    assert provider.get_api_key() == "" and not provider.has_api_key


@pytest.mark.django_db
def test_models_add_creates_then_updates_and_lists() -> None:
    Provider.objects.create(name="local", base_url="http://127.0.0.1:9/v1")
    out = run("models", "add", "org/model-7b", "--provider", "local", "--context-length", "8192")
    assert "created model org/model-7b -> local/org/model-7b" in out
    run("models", "add", "org/model-7b", "--provider", "local", "--upstream-model", "m7b", "--max-output-tokens", "512")
    model = LanguageModel.objects.get()
    assert (model.upstream_model, model.context_length, model.max_output_tokens) == ("m7b", 8192, 512)
    assert "org/model-7b\tlocal/m7b\tcontext 8192\tmax output 512\tenabled" in run("models", "list")


@pytest.mark.django_db
def test_models_add_refuses_an_unknown_provider_and_impossible_limits() -> None:
    with pytest.raises(CommandError, match="no provider named 'nope'"):
        run("models", "add", "m", "--provider", "nope")
    Provider.objects.create(name="p", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(CommandError, match="exceeds the context length"):
        run("models", "add", "m", "--provider", "p", "--context-length", "100", "--max-output-tokens", "200")
    assert not LanguageModel.objects.exists()


@pytest.mark.django_db
def test_apikey_create_prints_a_working_key_alone_on_the_last_line(alice: User) -> None:
    out = run("apikey", "create", "alice", "--name", "laptop", "--expires-in-days", "30")
    secret = out.strip().splitlines()[-1]
    key = find_key(secret)
    assert key is not None and key.user == alice and key.name == "laptop"
    assert key.expires_at is not None and key.is_active
    assert key.key_hash not in out


@pytest.mark.django_db
def test_apikey_create_refuses_an_unknown_user() -> None:
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        run("apikey", "create", "ghost")
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_apikey_revoke_by_key_or_prefix_is_idempotent(alice: User) -> None:
    secret = run("apikey", "create", "alice").strip().splitlines()[-1]
    prefix = secret[:11]  # "sk-" and the visible prefix
    assert "revoked" in run("apikey", "revoke", prefix)
    assert "already revoked" in run("apikey", "revoke", secret)
    key = find_key(secret)
    assert key is not None and not key.is_active
    with pytest.raises(CommandError, match="no such key"):
        run("apikey", "revoke", "sk-nothing1")


def test_a_bad_command_exits_non_zero_with_one_line_on_stderr() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "models", "add", "m", "--provider", "p", "--context-length", "-3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "--context-length" in result.stderr and "positive whole number" in result.stderr


@pytest.mark.django_db
def test_models_add_gives_a_model_its_primary_deployment_and_keeps_it_in_step() -> None:
    run("providers", "add", "one", "--base-url", "http://127.0.0.1:9/v1")
    run("providers", "add", "two", "--base-url", "http://127.0.0.1:10/v1")
    run("models", "add", "acme/m", "--provider", "one", "--upstream-model", "m-1")
    model = LanguageModel.objects.get()
    assert [(d.provider.name, d.upstream_model, d.primary) for d in model.deployments.all()] == [("one", "m-1", True)]
    run("models", "add", "acme/m", "--provider", "two", "--upstream-model", "m-2")
    assert [(d.provider.name, d.upstream_model, d.primary) for d in model.deployments.all()] == [("two", "m-2", True)]


@pytest.mark.django_db(transaction=True)
def test_models_route_adds_or_updates_one_deployment_and_health_prints_each() -> None:
    run("providers", "add", "one", "--base-url", "http://127.0.0.1:9/v1")
    run("providers", "add", "two", "--base-url", "http://127.0.0.1:10/v1")
    run("models", "add", "acme/m", "--provider", "one")
    out = run("models", "route", "acme/m", "--provider", "two", "--upstream-model", "m-2", "--priority", "1",
              "--weight", "3", "--max-concurrent", "4")  # fmt: skip
    assert "added deployment acme/m -> two/m-2 (priority 1, weight 3, max concurrent 4, enabled)" in out
    out = run("models", "route", "acme/m", "--provider", "two", "--upstream-model", "m-2", "--disable")
    assert "updated deployment acme/m -> two/m-2 (priority 1, weight 3, max concurrent 4, disabled)" in out
    assert LanguageModel.objects.get().deployments.count() == 2
    health = run("models", "health", "acme/m").splitlines()
    assert len(health) == 2
    assert health[0].split("\t")[:4] == ["acme/m", "one/acme/m", "priority 0 weight 1", "healthy"]
    assert health[1].split("\t")[3] == "disabled"
    assert "last hour: 0 requests" in health[0]
    assert "acme/m\tone/acme/m (+1 more)" in run("models", "list")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "route", "nope", "--provider", "one"], "no model 'nope'"),
        (["models", "route", "acme/m", "--provider", "nope"], "no provider named 'nope'"),
        (["models", "health", "nope"], "no model 'nope'"),
    ],
)
def test_models_route_and_health_refuse_what_does_not_exist(args: list[str], message: str) -> None:
    run("providers", "add", "one", "--base-url", "http://127.0.0.1:9/v1")
    run("models", "add", "acme/m", "--provider", "one")
    with pytest.raises(CommandError, match=message):
        run(*args)
