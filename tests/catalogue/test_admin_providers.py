"""Admin over providers and models: write-only provider key, connection check and import against the
fake upstream, enabling and disabling models; every change lands in the audit log."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.test import Client

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.django_db

SECRET = "sk-upstream-very-secret-1234567890"


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


@pytest.fixture
def provider(fake_upstream: FakeUpstream) -> Provider:
    return Provider.objects.create(name="fake", base_url=fake_upstream.base_url)


def provider_form(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "acme",
        "kind": "openai",
        "base_url": "https://api.acme.test/v1",
        "output_cap_param": "max_tokens",
        "api_key": "",
        "api_key_env": "",
        "connect_timeout": "5",
        "read_timeout": "120",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def deployments_form(model: LanguageModel, *extra: dict[str, str]) -> dict[str, str]:
    """The deployments inline of a model's admin page, as the browser posts it, plus `extra` new rows
    (with the page's other inline, fallbacks, empty, the cache off and routing by priority)."""
    rows = list(model.deployments.all())
    data = {
        "fallbacks-TOTAL_FORMS": "0",
        "fallbacks-INITIAL_FORMS": "0",
        "fallbacks-MIN_NUM_FORMS": "0",
        "fallbacks-MAX_NUM_FORMS": "1000",
        "cache_ttl_seconds": "0",
        "routing": "priority",
        "deployments-TOTAL_FORMS": str(len(rows) + len(extra)),
        "deployments-INITIAL_FORMS": str(len(rows)),
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000",
    }
    fields = ("provider", "upstream_model", "priority", "weight", "max_concurrent")
    for i, row in enumerate(rows):
        data[f"deployments-{i}-id"] = str(row.pk)
        data[f"deployments-{i}-model"] = str(model.pk)
        for name in fields:
            value = getattr(row, f"{name}_id" if name == "provider" else name)
            data[f"deployments-{i}-{name}"] = "" if value is None else str(value)
        if row.enabled:
            data[f"deployments-{i}-enabled"] = "on"
    for j, new in enumerate(extra, start=len(rows)):
        data[f"deployments-{j}-model"] = str(model.pk)
        for name, value in new.items():
            data[f"deployments-{j}-{name}"] = value
    return data


def action(client: Client, name: str, *pks: int, **extra: object):  # type: ignore[no-untyped-def]
    return client.post(
        "/admin/catalogue/provider/",
        {"action": name, "_selected_action": [str(pk) for pk in pks], **extra},
        follow=True,
    )


def test_adding_a_provider_stores_the_key_encrypted_and_never_shows_it(admin_client: Client) -> None:
    response = admin_client.post("/admin/catalogue/provider/add/", provider_form(api_key=SECRET))
    assert response.status_code == 302, response.content.decode()[:2000]
    provider = Provider.objects.get(name="acme")
    assert provider.get_api_key() == SECRET
    assert SECRET not in provider.api_key_encrypted

    page = admin_client.get(f"/admin/catalogue/provider/{provider.pk}/change/").content.decode()
    assert SECRET not in page and provider.api_key_encrypted not in page
    assert "stored (encrypted)" in page
    listing = admin_client.get("/admin/catalogue/provider/").content.decode()
    assert SECRET not in listing and provider.api_key_encrypted not in listing
    entry = LogEntry.objects.get(object_id=str(provider.pk), action_flag=ADDITION)
    assert entry.user.username == "admin"


def test_saving_with_an_empty_key_field_keeps_the_stored_key(admin_client: Client) -> None:
    provider = Provider(name="acme", base_url="https://api.acme.test/v1")
    provider.set_api_key(SECRET)
    provider.save()
    response = admin_client.post(
        f"/admin/catalogue/provider/{provider.pk}/change/", provider_form(read_timeout="30", api_key="")
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.get_api_key() == SECRET and provider.read_timeout == 30


def test_the_key_can_be_replaced_and_removed(admin_client: Client) -> None:
    provider = Provider(name="acme", base_url="https://api.acme.test/v1")
    provider.set_api_key(SECRET)
    provider.save()
    admin_client.post(f"/admin/catalogue/provider/{provider.pk}/change/", provider_form(api_key="sk-new-one-abcdefgh"))
    provider.refresh_from_db()
    assert provider.get_api_key() == "sk-new-one-abcdefgh"
    entry = LogEntry.objects.filter(object_id=str(provider.pk), action_flag=CHANGE).latest("action_time")
    assert "sk-new-one" not in entry.change_message and "API key" in entry.get_change_message()

    admin_client.post(f"/admin/catalogue/provider/{provider.pk}/change/", provider_form(clear_api_key="on"))
    provider.refresh_from_db()
    assert provider.get_api_key() == "" and not provider.has_api_key


def test_check_connection_lists_the_upstreams_models(
    admin_client: Client, provider: Provider, fake_upstream: FakeUpstream
) -> None:
    response = action(admin_client, "check_connection", provider.pk)
    page = response.content.decode()
    assert "Provider fake: connected; 2 upstream model(s): fake-large, fake-small" in page
    assert any(r.path == "/v1/models" for r in fake_upstream.requests)


def test_check_connection_sends_the_provider_key(
    admin_client: Client, provider: Provider, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.api_key = SECRET
    provider.set_api_key(SECRET)
    provider.save()
    page = action(admin_client, "check_connection", provider.pk).content.decode()
    assert "connected; 2 upstream model(s)" in page


def test_check_connection_reports_a_refused_key_without_leaking_it(
    admin_client: Client, provider: Provider, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.api_key = "sk-the-right-one-1234567"
    provider.set_api_key(SECRET)
    provider.save()
    page = action(admin_client, "check_connection", provider.pk).content.decode()
    assert "Provider fake: connection failed (401)" in page
    assert SECRET not in page


def test_check_connection_reports_an_unreachable_upstream(admin_client: Client) -> None:
    dead = Provider.objects.create(name="dead", base_url="http://127.0.0.1:9/v1", connect_timeout=2)
    page = action(admin_client, "check_connection", dead.pk).content.decode()
    assert "Provider dead: connection failed (502)" in page


def test_import_shows_the_upstream_models_to_choose_from(
    admin_client: Client, provider: Provider, fake_upstream: FakeUpstream
) -> None:
    LanguageModel.objects.create(public_id="fake-small", provider=provider, upstream_model="fake-small")
    page = action(admin_client, "import_models", provider.pk).content.decode()
    assert f'value="{provider.pk}:fake-large"' in page
    assert f'value="{provider.pk}:fake-small"' not in page
    assert "already in the catalogue" in page
    assert LanguageModel.objects.count() == 1


def test_import_adds_the_chosen_models_to_the_catalogue(
    admin_client: Client, provider: Provider, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        fake_upstream,
        "models",
        [
            {"id": "fake-small", "object": "model", "created": 1, "owned_by": "fakeco"},
            {"id": "org/fake-long", "object": "model", "created": 2, "owned_by": "fakeco", "max_model_len": 32768},
            {"id": "fake-unwanted", "object": "model", "created": 3, "owned_by": "fakeco"},
        ],
    )
    response = action(
        admin_client,
        "import_models",
        provider.pk,
        post="yes",
        models=[f"{provider.pk}:fake-small", f"{provider.pk}:org/fake-long"],
    )
    assert response.status_code == 200
    assert "Provider fake: imported" in response.content.decode()
    imported = {m.public_id: m for m in LanguageModel.objects.all()}
    assert set(imported) == {"fake-small", "org/fake-long"}
    assert imported["org/fake-long"].context_length == 32768
    assert imported["org/fake-long"].provider == provider and imported["fake-small"].owned_by == "fakeco"
    assert all(m.enabled for m in imported.values())
    logged = set(LogEntry.objects.filter(action_flag=ADDITION).values_list("object_repr", flat=True))
    assert {"fake-small", "org/fake-long"} <= logged


def test_import_gives_a_clashing_id_the_provider_prefix(
    admin_client: Client, provider: Provider, fake_upstream: FakeUpstream
) -> None:
    other = Provider.objects.create(name="other", base_url="http://127.0.0.1:9/v1")
    LanguageModel.objects.create(public_id="fake-small", provider=other, upstream_model="fake-small")
    action(admin_client, "import_models", provider.pk, post="yes", models=[f"{provider.pk}:fake-small"])
    assert LanguageModel.objects.get(provider=provider).public_id == "fake/fake-small"


def test_import_with_nothing_ticked_imports_nothing(admin_client: Client, provider: Provider) -> None:
    page = action(admin_client, "import_models", provider.pk, post="yes").content.decode()
    assert "nothing imported" in page
    assert LanguageModel.objects.count() == 0


def test_models_can_be_disabled_and_enabled_with_an_audit_entry(admin_client: Client, provider: Provider) -> None:
    model = LanguageModel.objects.create(public_id="fake-small", provider=provider, upstream_model="fake-small")
    admin_client.post(
        "/admin/catalogue/languagemodel/", {"action": "disable", "_selected_action": [str(model.pk)]}, follow=True
    )
    model.refresh_from_db()
    assert not model.enabled
    entry = LogEntry.objects.get(object_id=str(model.pk), action_flag=CHANGE)
    assert entry.change_message == "Disabled." and entry.user.username == "admin"
    admin_client.post("/admin/catalogue/languagemodel/", {"action": "enable", "_selected_action": [str(model.pk)]})
    model.refresh_from_db()
    assert model.enabled


def test_a_models_limits_prices_and_description_are_editable(admin_client: Client, provider: Provider) -> None:
    model = LanguageModel.objects.create(public_id="fake-small", provider=provider, upstream_model="fake-small")
    response = admin_client.post(
        f"/admin/catalogue/languagemodel/{model.pk}/change/",
        {
            "public_id": "fake-small",
            "provider": str(provider.pk),
            "upstream_model": "fake-small",
            "enabled": "on",
            "kind": "chat",
            "vision": "on",
            "json_output": "on",
            "context_length": "8192",
            "max_output_tokens": "2048",
            "input_price_per_million": "0.15",
            "output_price_per_million": "0.60",
            "owned_by": "fakeco",
            "category": "small",
            "description": "A small, fast model.",
            **deployments_form(model),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    model.refresh_from_db()
    assert (model.context_length, model.max_output_tokens) == (8192, 2048)
    assert str(model.output_price_per_million) == "0.600000" and model.description == "A small, fast model."
    assert model.capabilities == {"vision": True, "tools": False, "reasoning": False, "json_output": True}


def test_non_staff_users_cannot_reach_the_provider_admin(client: Client, alice: User, provider: Provider) -> None:
    client.force_login(alice)
    response = client.post(
        "/admin/catalogue/provider/", {"action": "check_connection", "_selected_action": [provider.pk]}
    )
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_models_page_edits_its_deployments_and_shows_their_health(
    admin_client: Client, provider: Provider, fake_upstream: FakeUpstream
) -> None:
    model = LanguageModel.objects.create(public_id="fake-small", provider=provider, upstream_model="fake-small")
    backup = Provider.objects.create(name="backup", base_url="http://127.0.0.1:9/v1")
    page = admin_client.get(f"/admin/catalogue/languagemodel/{model.pk}/change/").content.decode()
    assert "Deployments" in page and "healthy; 0 requests" in page
    form = {
        "public_id": "fake-small",
        "provider": str(provider.pk),
        "upstream_model": "fake-small",
        "enabled": "on",
        "kind": "chat",
        "tools": "on",
        "json_output": "on",
        "context_length": "4096",
        "max_output_tokens": "1024",
        "input_price_per_million": "0",
        "output_price_per_million": "0",
        **deployments_form(
            model,
            {"provider": str(backup.pk), "upstream_model": "other-name", "priority": "1", "weight": "2",
             "enabled": "on"},
        ),
    }  # fmt: skip
    response = admin_client.post(f"/admin/catalogue/languagemodel/{model.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert [(d.provider.name, d.upstream_model, d.priority, d.weight) for d in model.deployments.all()] == [
        ("fake", "fake-small", 0, 1),
        ("backup", "other-name", 1, 2),
    ]
    page = admin_client.get(f"/admin/catalogue/languagemodel/{model.pk}/change/").content.decode()
    assert page.count("healthy; 0 requests") == 2


def test_a_models_page_edits_its_fallbacks_and_its_cache(admin_client: Client, provider: Provider) -> None:
    model = LanguageModel.objects.create(public_id="fake-small", provider=provider, upstream_model="fake-small")
    bigger = LanguageModel.objects.create(public_id="fake-large", provider=provider, upstream_model="fake-large")
    form = {
        "public_id": "fake-small", "provider": str(provider.pk), "upstream_model": "fake-small", "enabled": "on",
        "kind": "chat", "context_length": "4096", "max_output_tokens": "1024", "input_price_per_million": "0",
        "output_price_per_million": "0",
        **deployments_form(model),
        "cache_ttl_seconds": "600", "cache_shared": "on",
        "fallbacks-TOTAL_FORMS": "1", "fallbacks-0-model": str(model.pk), "fallbacks-0-reason": "context",
        "fallbacks-0-to": str(bigger.pk), "fallbacks-0-position": "0",
    }  # fmt: skip
    response = admin_client.post(f"/admin/catalogue/languagemodel/{model.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    model.refresh_from_db()
    assert (model.cache_ttl_seconds, model.cache_shared, model.cache_unsafe) == (600, True, False)
    assert [(f.reason, f.to.public_id) for f in model.fallbacks.all()] == [("context", "fake-large")]
    page = admin_client.get(f"/admin/catalogue/languagemodel/{model.pk}/change/").content.decode()
    assert "Fallbacks (other models tried in order" in page


@pytest.mark.parametrize(("chosen", "saved"), [("latency", "latency"), ("fastest", "priority"), ("", "priority")])
def test_a_models_page_sets_its_routing_and_refuses_an_unknown_one(
    admin_client: Client, provider: Provider, chosen: str, saved: str
) -> None:
    model = LanguageModel.objects.create(public_id="fake-small", provider=provider, upstream_model="fake-small")
    form = {
        "public_id": "fake-small", "provider": str(provider.pk), "upstream_model": "fake-small", "enabled": "on",
        "kind": "chat", "context_length": "4096", "max_output_tokens": "1024", "input_price_per_million": "0",
        "output_price_per_million": "0",
        **deployments_form(model),
        "routing": chosen,
    }  # fmt: skip
    response = admin_client.post(f"/admin/catalogue/languagemodel/{model.pk}/change/", form)
    if chosen == saved:
        assert response.status_code == 302, response.content.decode()[:3000]
    else:
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode() or "This field is required" in (
            response.content.decode()
        )
    model.refresh_from_db()
    assert model.routing == saved
