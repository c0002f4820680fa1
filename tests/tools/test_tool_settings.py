"""The admin's tool settings (search engine, step, time and rate limits) over the environment's, and the
admin's list of tool calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from core.clock import ManualClock
from tools import limits, services, site
from tools.loop import Delta, ModelAnswer, run_loop
from tools.mcp_client import forget_listings
from tools.models import McpServer, ToolCall, ToolSettings
from tools.registry import Toolbox, ToolChoice
from usage.tokens import Usage

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_empty_fields_keep_the_environments_values(settings: Any) -> None:
    settings.TOOLS_MAX_STEPS = 5
    settings.TOOLS_SEARCH_ENGINE = "tavily"
    settings.TOOLS_CALLS_PER_HOUR = 7
    ToolSettings.objects.create()
    effective = site.refresh_sync()
    assert (effective.search_engine, effective.max_steps, effective.calls_per_hour) == ("tavily", 5, 7)


def test_the_admin_sets_the_engine_and_the_limits(admin: User, settings: Any) -> None:
    settings.TOOLS_CALLS_PER_HOUR = 7
    client = signed_in(admin)
    listed = client.get("/admin/tools/toolsettings/")
    assert listed.status_code == 302
    page = client.get(listed["Location"])
    assert page.status_code == 200
    assert "TOOLS_MAX_STEPS" in page.content.decode()
    saved = client.post(
        listed["Location"],
        {"search_engine": "brave", "max_steps": "2", "max_seconds": "30", "calls_per_hour": "0"},
    )
    assert saved.status_code == 302
    effective = site.refresh_sync()
    assert (effective.search_engine, effective.max_steps, effective.max_seconds, effective.calls_per_hour) == (
        "brave",
        2,
        30.0,
        0,  # 0 says "no limit", over the environment's 7
    )
    assert ToolSettings.objects.count() == 1


def test_a_bad_value_is_a_form_error_and_nothing_changes(admin: User) -> None:
    client = signed_in(admin)
    client.get("/admin/tools/toolsettings/")
    answer = client.post("/admin/tools/toolsettings/1/change/", {"search_engine": "", "max_steps": "0"})
    assert answer.status_code == 200
    assert "greater than or equal to 1" in answer.content.decode()
    assert ToolSettings.objects.get().max_steps is None


def test_users_cannot_reach_the_settings(alice: User) -> None:
    answer = signed_in(alice).post("/admin/tools/toolsettings/1/change/", {"max_steps": "100"})
    assert answer.status_code == 302
    assert not ToolSettings.objects.filter(max_steps=100).exists()


def test_other_processes_see_a_change_within_the_ttl(clock: ManualClock, settings: Any) -> None:
    settings.TOOLS_MAX_STEPS = 8
    ToolSettings.objects.create()
    assert site.refresh_sync().max_steps == 8
    ToolSettings.objects.filter(pk=1).update(max_steps=3)  # as another process saves it: no signal here
    assert site.refresh_sync().max_steps == 8
    clock.advance(site.TTL)
    assert site.refresh_sync().max_steps == 3


@pytest.mark.django_db(transaction=True)
async def test_the_per_user_limit_follows_the_admins_setting(alice: User, settings: Any) -> None:
    settings.TOOLS_CALLS_PER_HOUR = 0
    await ToolSettings.objects.acreate(calls_per_hour=1)
    assert await limits.refusal(alice) is None
    await ToolCall.objects.acreate(user=alice, tool="add", kind="mcp", status=ToolCall.Status.OK)
    assert "1 tool calls an hour" in (await limits.refusal(alice) or "")


@pytest.mark.django_db(transaction=True)
async def test_the_loop_stops_at_the_admins_step_limit(alice: User, local: McpServer, settings: Any) -> None:
    settings.TOOLS_MAX_STEPS = 8
    forget_listings()
    await ToolSettings.objects.acreate(max_steps=2)
    toolbox = await Toolbox.open(alice, ToolChoice(mcp_servers=("local",)))
    offered: list[list[str]] = []

    async def model(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> AsyncIterator[Any]:
        offered.append([tool["function"]["name"] for tool in tools])
        if tools:
            call = {
                "id": f"c{len(offered)}",
                "type": "function",
                "function": {"name": "local__add", "arguments": '{"a": 1, "b": 2}'},
            }
            yield ModelAnswer({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", Usage(1, 1))
        else:
            yield Delta("done")
            yield ModelAnswer({"role": "assistant", "content": "done"}, "stop", Usage(1, 1))

    events = [event async for event in run_loop(model, [{"role": "user", "content": "Go"}], toolbox)]
    assert len(offered) == 2
    assert offered[-1] == []  # the last step offers no tool of ours
    assert events[-1].steps == 2
    forget_listings()


def test_the_admin_lists_tool_calls_filtered_by_server(admin: User, alice: User) -> None:
    server = services.add_own_server(alice, "docs", "https://93.184.216.34/mcp")
    ToolCall.objects.create(user=alice, tool="lookup", kind="mcp", server=server, status=ToolCall.Status.OK)
    ToolCall.objects.create(user=alice, tool="web_search", kind="web_search", status=ToolCall.Status.FAILED)
    client = signed_in(admin)

    def rows(query: str) -> list[str]:
        page = client.get(f"/admin/tools/toolcall/{query}").content.decode()
        return [name for name in ("lookup", "web_search") if f'class="field-tool">{name}<' in page]

    assert rows("") == ["lookup", "web_search"]
    assert rows(f"?server__id__exact={server.pk}") == ["lookup"]
    assert rows("?status__exact=failed") == ["web_search"]
