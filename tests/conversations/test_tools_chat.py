"""Tools in the browser chat: the choice kept per conversation (a project's default), tool calls shown as they
happen over the socket, stored with the reply (a reload shows them), and sent back upstream as chat
completions requires; another user's MCP server is refused."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from accounts.models import User
from conversations import actions, branches, generation, services, tool_calls
from conversations.models import Conversation, Message, Project, Share
from tests.conversations.conftest import Connect, finished, until
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.tools import mcp_server
from tools import services as tool_services
from tools.mcp_client import forget_listings
from tools.models import McpServer
from tools.results import Source

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

SEARCH_CALL: dict[str, Any] = {
    "id": "call_1",
    "step": 1,
    "name": "web_search",
    "tool": "web_search",
    "server": "",
    "arguments": {"query": "otters"},
    "state": "done",
    "result": "[1] Otters\nhttps://otters.example/\nThey hold hands.",
    "sources": [{"title": "Otters", "url": "https://otters.example/", "snippet": "They hold hands."}],
    "duration_ms": 40,
}


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def patch(client: Client, conversation: Conversation, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.patch(f"/api/conversations/{conversation.pk}/", json.dumps(body), content_type="application/json")


def test_the_tools_chosen_are_kept_on_the_conversation(alice: User, conversation: Conversation) -> None:
    tool_services.add_own_server(alice, "docs", "https://93.184.216.34/mcp")
    response = patch(signed_in(alice), conversation, {"tools": {"web_search": True, "mcp_servers": ["docs"]}})
    assert response.status_code == 200
    assert response.json()["tools"] == {"web_search": True, "mcp_servers": ["docs"]}
    conversation.refresh_from_db()
    assert conversation.tools == {"web_search": True, "mcp_servers": ["docs"]}
    response = patch(signed_in(alice), conversation, {"tools": {"fetch": True}})
    assert response.json()["tools"] == {"fetch": True}


def test_another_users_mcp_server_cannot_be_chosen(alice: User, bob: User, conversation: Conversation) -> None:
    tool_services.add_own_server(bob, "bobs", "https://93.184.216.34/mcp")
    response = patch(signed_in(alice), conversation, {"tools": {"mcp_servers": ["bobs"]}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "tools"
    assert "no MCP server named 'bobs'" in error["message"]
    conversation.refresh_from_db()
    assert conversation.tools == {}


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ({"shell": True}, "Unknown tool 'shell'"),
        ({"web_search": "yes"}, "tools.web_search must be true or false"),
        ({"mcp_servers": "docs"}, "must be a list"),
        (["web_search"], "The tools are an object"),
    ],
)
def test_a_bad_tool_choice_is_a_400_naming_it(
    alice: User, conversation: Conversation, tools: Any, message: str
) -> None:
    response = patch(signed_in(alice), conversation, {"tools": tools})
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_another_users_conversation_tools_cannot_be_changed(alice: User, bob: User, conversation: Conversation) -> None:
    assert patch(signed_in(bob), conversation, {"tools": {"fetch": True}}).status_code == 404
    conversation.refresh_from_db()
    assert conversation.tools == {}


def test_a_new_conversation_starts_with_its_projects_tools_unless_it_names_its_own(
    alice: User, chat_model: Any
) -> None:
    tool_services.add_own_server(alice, "docs", "https://93.184.216.34/mcp")
    client = signed_in(alice)
    made = client.post(
        "/api/projects/",
        json.dumps({"name": "Research", "tools": {"web_search": True, "mcp_servers": ["docs"]}}),
        content_type="application/json",
    )
    assert made.status_code == 201
    project = made.json()
    assert project["tools"] == {"web_search": True, "mcp_servers": ["docs"]}
    started = client.post("/api/conversations/", {"project": project["id"]}, content_type="application/json")
    assert started.json()["tools"] == {"web_search": True, "mcp_servers": ["docs"]}
    own = client.post(
        "/api/conversations/",
        {"project": project["id"], "tools": {"fetch": True}},
        content_type="application/json",
    )
    assert own.json()["tools"] == {"fetch": True}
    # A server removed since is left out of what new conversations start with.
    tool_services.remove_own_server(alice, tool_services.servers_for(alice).get(name="docs").pk)
    later = client.post("/api/conversations/", {"project": project["id"]}, content_type="application/json")
    assert later.json()["tools"] == {"web_search": True}


def test_a_project_refuses_another_users_server(alice: User, bob: User) -> None:
    tool_services.add_own_server(bob, "bobs", "https://93.184.216.34/mcp")
    response = signed_in(alice).post(
        "/api/projects/", {"name": "P", "tools": {"mcp_servers": ["bobs"]}}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools"
    assert not Project.objects.exists()


def test_the_chat_page_offers_the_built_in_tools_and_the_users_servers_only(
    alice: User, bob: User, conversation: Conversation
) -> None:
    tool_services.add_own_server(alice, "alices", "https://93.184.216.34/mcp")
    tool_services.add_own_server(bob, "bobs", "https://93.184.216.35/mcp")
    page = signed_in(alice).get(f"/c/{conversation.pk}/")
    initial = json.loads(page.content.decode().split('id="chat-initial" type="application/json">')[1].split("<")[0])
    labels = [option["label"] for option in initial["tools"]]
    assert labels == ["Web search", "Read web pages", "alices"]
    assert 'id="tools-button"' in page.content.decode()


def answered_with_a_search(conversation: Conversation) -> None:
    question = branches.append(conversation, role="user", content="Tell me about otters")
    branches.append(
        conversation, role="assistant", content="Otters hold hands [1].", tool_calls=[SEARCH_CALL], parent=question
    )


def test_a_replys_tool_calls_go_back_upstream_as_chat_completions_requires(
    alice: User, conversation: Conversation
) -> None:
    answered_with_a_search(conversation)
    reply = actions.do_send(alice, conversation.pk, "And beavers?")
    turn = services.generation_input(reply.pk)
    assert turn is not None
    assert turn.messages == [
        {"role": "user", "content": "Tell me about otters"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "web_search", "arguments": '{"query": "otters"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": SEARCH_CALL["result"]},
        {"role": "assistant", "content": "Otters hold hands [1]."},
        {"role": "user", "content": "And beavers?"},
    ]


def test_the_owners_export_keeps_the_tool_calls_and_a_share_leaves_them_out(
    alice: User, conversation: Conversation
) -> None:
    answered_with_a_search(conversation)
    client = signed_in(alice)
    exported = client.get(f"/api/conversations/{conversation.pk}/export/").json()
    assert exported["messages"][1]["tool_calls"] == [SEARCH_CALL]
    markdown = client.get(f"/api/conversations/{conversation.pk}/export/?format=md").content.decode()
    assert "Tools: web_search (done)" in markdown
    share = client.post(f"/api/conversations/{conversation.pk}/share/")
    assert share.status_code == 201
    snapshot = Share.objects.get().snapshot
    assert "They hold hands" not in json.dumps(snapshot)
    assert all("tool_calls" not in message for message in snapshot["messages"])


@sync_to_async
def stored(message_id: int) -> Message:
    return Message.objects.get(pk=message_id)


async def test_tool_calls_show_as_they_happen_are_stored_and_a_stop_cancels_the_running_one(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    upstream = Reply(content="Looking it up and more words here", chunks=6, hold_after_chunks=2)
    fake_upstream.queue(upstream)
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Search otters"})
    await until(socket, lambda f: f["type"] == "delta")
    reply_id = next(iter(generation._generations))
    writer = generation._generations[reply_id]

    await writer.tool_started("call_1", "web_search", {"query": "otters"})
    frame, _ = await until(socket, lambda f: f["type"] == "tool")
    assert frame["id"] == reply_id
    assert frame["call"]["state"] == "running"
    assert frame["call"]["arguments"] == {"query": "otters"}
    assert (await stored(reply_id)).tool_calls[0]["state"] == "running"  # a reload shows it

    sources = [Source("Otters", "https://otters.example/", "They hold hands."), Source("bad", "javascript:x")]
    await writer.tool_finished("call_1", result="[1] Otters", failed=False, duration_ms=40, sources=sources)
    frame, _ = await until(socket, lambda f: f["type"] == "tool")
    assert frame["call"]["state"] == "done"
    assert frame["call"]["duration_ms"] == 40
    assert frame["call"]["sources"] == [
        {"title": "Otters", "url": "https://otters.example/", "snippet": "They hold hands."}
    ]
    await writer.tool_started("call_2", "docs__add", {"a": 1}, step=2, tool="add", server="docs")

    # A socket opened now (a reload, a tab opened again) gets them with the reply.
    again = await connect(alice, conversation.pk)
    first, _ = await until(again, lambda f: f["type"] == "messages")
    shown = next(m for m in first["messages"] if m["id"] == reply_id)
    assert [c["id"] for c in shown["tool_calls"]] == ["call_1", "call_2"]
    snapshot, _ = await until(again, lambda f: f["type"] == "snapshot")
    assert [c["state"] for c in snapshot["tool_calls"]] == ["done", "running"]

    await socket.send_json_to({"type": "stop"})
    done, _ = await until(socket, finished)
    assert done["message"]["status"] == "interrupted"
    assert [c["state"] for c in done["message"]["tool_calls"]] == ["done", "cancelled"]
    assert [c["state"] for c in (await stored(reply_id)).tool_calls] == ["done", "cancelled"]


def test_a_call_id_used_again_at_a_later_step_is_a_call_of_its_own() -> None:
    calls = [tool_calls.started("call_1", "web_search", {"query": "a"}, step=1)]
    tool_calls.finished(tool_calls.find(calls, "call_1") or {}, result="A", failed=False, duration_ms=1)
    calls.append(tool_calls.started("call_1", "web_search", {"query": "b"}, step=2))
    tool_calls.finished(tool_calls.find(calls, "call_1") or {}, result="B", failed=True, duration_ms=2)
    assert [(c["step"], c["result"], c["state"]) for c in calls] == [(1, "A", "done"), (2, "B", "failed")]
    assert [m["role"] for m in tool_calls.upstream_messages("", calls)] == ["assistant", "tool", "assistant", "tool"]


async def test_another_users_socket_hears_no_tool_call(
    alice: User, bob: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect
) -> None:
    fake_upstream.queue(Reply(content="one two three four", chunks=4, hold_after_chunks=1))
    await connect(bob, conversation.pk, expect=False)
    bobs_own = await sync_to_async(Conversation.objects.create)(owner=bob, model=conversation.model)
    bobs = await connect(bob, bobs_own.pk)
    await until(bobs, lambda f: f["type"] == "messages")
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Search"})
    await until(socket, lambda f: f["type"] == "delta")
    writer = next(iter(generation._generations.values()))
    await writer.tool_started("call_1", "web_search", {"query": "secret plans"})
    await until(socket, lambda f: f["type"] == "tool")
    assert await bobs.receive_nothing(timeout=0.3)
    await socket.send_json_to({"type": "stop"})
    await until(socket, finished)


# --- with the tool loop: the scripted upstream calls real tools ----------------------------------


@sync_to_async
def choose(conversation: Conversation, tools: dict[str, Any]) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(tools=tools)


async def test_a_reply_runs_web_search_shows_it_and_sends_the_results_upstream(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect, search_engine: None
) -> None:
    await choose(conversation, {"web_search": True})
    fake_upstream.queue(Reply(content="", tool_calls=[ToolCall("web_search", '{"query": "otters"}', "call_s")]))
    fake_upstream.queue(Reply(content="Otters hold hands [1]."))
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Tell me about otters"})
    done, frames = await until(socket, finished, seconds=30)

    states = [f["call"]["state"] for f in frames if f["type"] == "tool"]
    assert states == ["running", "done"]
    message = done["message"]
    assert message["status"] == "complete"
    assert message["content"] == "Otters hold hands [1]."
    [call] = message["tool_calls"]
    assert (call["id"], call["name"], call["arguments"]) == ("call_s", "web_search", {"query": "otters"})
    assert call["sources"] and all(s["url"].startswith("https://") for s in call["sources"])
    assert "otters" in call["result"].lower()
    answered = fake_upstream.requests[-1].body
    assert answered is not None
    assert [m["role"] for m in answered["messages"]] == ["user", "assistant", "tool"]

    # The next question carries the calls and their results in the history.
    fake_upstream.queue(Reply(content="Beavers build dams."))
    await socket.send_json_to({"type": "send", "content": "And beavers?"})
    await until(socket, finished, seconds=30)
    history = fake_upstream.requests[-1].body
    assert history is not None
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "tool", "assistant", "user"]
    assert history["messages"][1]["tool_calls"][0]["id"] == "call_s"
    assert history["messages"][2]["tool_call_id"] == "call_s"


async def test_a_model_that_takes_no_tools_answers_without_them(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect, search_engine: None
) -> None:
    await choose(conversation, {"web_search": True})
    await sync_to_async(type(conversation.model).objects.filter(pk=conversation.model_id).update)(tools=False)
    fake_upstream.queue(Reply(content="Plain answer."))
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Search otters"})
    done, _ = await until(socket, finished, seconds=30)
    assert (done["message"]["status"], done["message"]["content"]) == ("complete", "Plain answer.")
    sent = fake_upstream.last.body
    assert sent is not None and "tools" not in sent


async def test_a_server_removed_since_it_was_chosen_is_left_out_of_the_reply(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect, search_engine: None
) -> None:
    server = await sync_to_async(tool_services.add_own_server)(alice, "gone", "https://93.184.216.34/mcp")
    await choose(conversation, {"web_search": True, "mcp_servers": ["gone"]})
    await sync_to_async(tool_services.remove_own_server)(alice, server.pk)
    fake_upstream.queue(Reply(content="Still here."))
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Hello"})
    done, _ = await until(socket, finished, seconds=30)
    assert (done["message"]["status"], done["message"]["content"]) == ("complete", "Still here.")
    sent = fake_upstream.last.body
    assert sent is not None
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["web_search"]


async def test_stop_cancels_the_loop_and_the_tool_call_in_flight(
    alice: User, conversation: Conversation, fake_upstream: FakeUpstream, connect: Connect, local: McpServer
) -> None:
    await choose(conversation, {"mcp_servers": ["local"]})
    forget_listings()
    mcp_server.hang_started.clear()
    mcp_server.hang_cancelled.clear()
    fake_upstream.queue(Reply(content="", tool_calls=[ToolCall("local__hang", "{}", "call_h")]))
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Wait for it"})
    running, _ = await until(socket, lambda f: f["type"] == "tool", seconds=30)
    assert (running["call"]["tool"], running["call"]["server"], running["call"]["state"]) == (
        "hang",
        "local",
        "running",
    )
    assert await asyncio.to_thread(mcp_server.hang_started.wait, 30)
    await socket.send_json_to({"type": "stop"})
    done, _ = await until(socket, finished, seconds=30)
    assert done["message"]["status"] == "interrupted"
    assert [c["state"] for c in done["message"]["tool_calls"]] == ["cancelled"]
    assert await asyncio.to_thread(mcp_server.hang_cancelled.wait, 30)
