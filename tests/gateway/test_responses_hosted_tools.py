"""POST /v1/responses with the hosted `web_search` and `mcp` tools run by us, through the openai SDK in process.

The scripted fake upstream (chat completions only) plays the model calling the tools; the tools are real: the
fake SearXNG and the MCP server of tests/tools on loopback. Every Response and streamed event is validated
against OpenAI's schema.
"""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest

from accounts.models import User
from catalogue.models import Provider
from responses.models import StoredResponse
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, Gateway, wait_for_usage
from tests.gateway.test_responses import dumped
from tests.gateway.test_tool_loop import offered, tool_messages
from tests.openai_schema import validate, validate_event
from tests.tools import mcp_server
from tools import services
from tools.models import McpServer
from tools.models import ToolCall as Record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("search_engine")]

WEB_SEARCH: Any = {"type": "web_search"}
WEATHER: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
NEVER = "never"


def mcp(label: str = "local", **fields: Any) -> Any:
    return {"type": "mcp", "server_label": label, "require_approval": NEVER, **fields}


def events_of(gateway: Gateway, **fields: Any) -> list[dict[str, Any]]:
    events = [dumped(event) for event in gateway.client().responses.create(model=MODEL, stream=True, **fields)]
    for event in events:
        validate_event(event)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events


def test_web_search_runs_on_our_engine_and_becomes_a_web_search_call_item(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}', id="call_s")]),
        Reply(content="Otters hold hands [1]."),
    )
    answer = gateway.client().responses.create(
        model=MODEL, input="What about otters?", tools=[WEB_SEARCH], include=["web_search_call.action.sources"]
    )
    response = dumped(answer)
    validate(response, "Response")
    searched, said = response["output"]
    assert (searched["type"], searched["status"], searched["action"]["query"]) == (
        "web_search_call",
        "completed",
        "otters",
    )
    assert [s["url"] for s in searched["action"]["sources"]] == [f"https://example.org/otters/{n}" for n in (1, 2, 3)]
    assert said["type"] == "message" and answer.output_text == "Otters hold hands [1]."
    assert response["tools"] == [WEB_SEARCH] and answer.status == "completed"
    first, second = fake_upstream.chat_requests()[-2:]
    assert offered(first.body) == ["web_search"]
    (result,) = tool_messages(second.body)
    assert result["tool_call_id"] == "call_s" and "https://example.org/otters/1" in result["content"]
    rows = wait_for_usage(2)
    assert [(r.status, r.api_key_id) for r in rows] == [(200, gateway.key.pk)] * 2
    assert answer.usage is not None and answer.usage.input_tokens == sum(r.prompt_tokens for r in rows)
    assert StoredResponse.objects.get(id=answer.id).user_id == gateway.user.pk
    (record,) = Record.objects.all()
    assert (record.tool, record.status, record.api_key_id) == ("web_search", "ok", gateway.key.pk)


def test_web_search_preview_streams_the_search_events(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("web_search", '{"query": "otters"}')]),
        Reply(content="Found them."),
    )
    events = events_of(gateway, input="otters?", tools=[{"type": "web_search_preview"}])
    kinds = [e["type"] for e in events]
    searching = [k for k in kinds if k.startswith("response.web_search_call")]
    assert searching == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["web_search_call", "message"]
    assert "sources" not in final["output"][0]["action"]  # not asked for with `include`
    assert final["output"][1]["content"][0]["text"] == "Found them."
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["type"] == "web_search_call" and done[0]["status"] == "completed"


def test_an_mcp_server_s_tools_are_listed_called_and_streamed(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("local__add", '{"a": 2, "b": 40}', id="call_m")]),
        Reply(content="It is 42."),
    )
    events = events_of(gateway, input="2+40?", tools=[mcp("local", allowed_tools=["add", "fail"])])
    kinds = [e["type"] for e in events if "mcp" in e["type"]]
    assert kinds == [
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
    ]
    listed, called, said = events[-1]["response"]["output"]
    assert listed["type"] == "mcp_list_tools" and sorted(t["name"] for t in listed["tools"]) == ["add", "fail"]
    assert (called["type"], called["server_label"], called["name"], called["status"]) == (
        "mcp_call",
        "local",
        "add",
        "completed",
    )
    assert called["output"] == "42" and called["error"] is None and said["content"][0]["text"] == "It is 42."
    first, _second = fake_upstream.chat_requests()[-2:]
    assert sorted(offered(first.body)) == ["local__add", "local__fail"]


def test_a_failing_mcp_tool_is_a_failed_mcp_call_the_model_reads(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("local__fail", '{"reason": "no luck"}')]), Reply(content="It failed.")
    )
    response = dumped(gateway.client().responses.create(model=MODEL, input="try", tools=[mcp()]))
    validate(response, "Response")
    called = response["output"][1]
    assert called["type"] == "mcp_call" and called["status"] == "failed" and called["output"] is None
    error = called["error"]["content"][0]["text"]
    assert error.startswith("Error executing tool fail")
    assert tool_messages(fake_upstream.last.body)[0]["content"] == f"Error: {error}"


def test_a_request_s_own_mcp_server_on_an_internal_address_is_refused_and_its_token_never_logged(
    gateway: Gateway, fake_upstream: FakeUpstream, mcp_base: str, caplog: Any
) -> None:
    before = len(fake_upstream.requests)
    urls = (f"{mcp_base}/secure/mcp", "http://169.254.169.254/mcp", "http://2130706433/mcp", "http://[::ffff:7f00:1]/m")
    for url in urls:
        tool = mcp("secure", server_url=url, authorization=mcp_server.TOKEN, headers={"X-Key": "header-secret"})
        with caplog.at_level(logging.DEBUG), pytest.raises(openai.BadRequestError) as refused:
            gateway.client().responses.create(model=MODEL, input="hi", tools=[WEB_SEARCH, tool])
        body: Any = refused.value.body
        assert body["param"] == "tools[1].server_url"
        assert mcp_server.TOKEN not in body["message"] and "header-secret" not in body["message"]
    assert mcp_server.TOKEN not in caplog.text and "header-secret" not in caplog.text
    assert len(fake_upstream.requests) == before and not McpServer.objects.exists()


def test_another_users_mcp_server_is_refused(
    gateway: Gateway, fake_upstream: FakeUpstream, bob: User, mcp_base: str
) -> None:
    services.add_own_server(bob, "bobs", f"{mcp_base}/mcp")
    before = len(fake_upstream.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client().responses.create(model=MODEL, input="hi", tools=[WEB_SEARCH, mcp("bobs")])
    body: Any = refused.value.body
    assert body["param"] == "tools[1].server_label" and "bobs" in body["message"]
    assert len(fake_upstream.requests) == before


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        (mcp(require_approval={"never": {"read_only": True}}), "tools[0].require_approval.never.read_only"),
        (mcp(require_approval="sometimes"), "tools[0].require_approval"),
        (mcp(connector_id="connector_gmail"), "tools[0].connector_id"),
        (mcp(headers={"Authorization": "Bearer x"}), "tools[0].headers"),
        (mcp(allowed_tools={"read_only": True}), "tools[0].allowed_tools.read_only"),
        (mcp(server_url="ftp://example.com/mcp"), "tools[0].server_url"),
        ({"type": "mcp", "require_approval": NEVER}, "tools[0].server_label"),
    ],
)
def test_what_we_do_not_serve_of_an_mcp_tool_is_a_400_naming_it(
    gateway: Gateway, local: McpServer, tool: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client().responses.create(model=MODEL, input="hi", tools=[tool])
    body: Any = refused.value.body
    assert body["param"] == param and body["type"] == "invalid_request_error"


def test_the_client_s_own_function_call_ends_the_turn_after_our_search(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(
        Reply(
            tool_calls=[
                ToolCall("web_search", '{"query": "paris"}', id="call_s"),
                ToolCall("get_weather", '{"city": "Paris"}', id="call_w"),
            ]
        )
    )
    response = dumped(gateway.client().responses.create(model=MODEL, input="Paris?", tools=[WEB_SEARCH, WEATHER]))
    validate(response, "Response")
    assert [item["type"] for item in response["output"]] == ["web_search_call", "function_call"]
    assert (response["output"][1]["call_id"], response["output"][1]["name"]) == ("call_w", "get_weather")
    assert len(fake_upstream.chat_requests()) == 1


def test_without_a_search_engine_web_search_is_not_offered(
    gateway: Gateway, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.SEARXNG_URL = ""
    fake_upstream.queue(Reply(content="No search today."))
    answer = gateway.client().responses.create(model=MODEL, input="hi", tools=[WEB_SEARCH])
    assert answer.output_text == "No search today." and "tools" not in (fake_upstream.last.body or {})


def test_a_request_without_hosted_tools_takes_the_plain_path(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(content="plain"))
    gateway.client().responses.create(model=MODEL, input="hi", stream=False)
    sent = fake_upstream.last.body
    assert sent is not None and "stream" not in sent  # a tool loop's steps always stream


def approval_turn(gateway: Gateway, fake_upstream: FakeUpstream, tool: Any) -> dict[str, Any]:
    fake_upstream.queue(Reply(tool_calls=[ToolCall("local__add", '{"a": 2, "b": 40}', id="call_m")]))
    first = dumped(gateway.client().responses.create(model=MODEL, input="2+40?", tools=[tool]))
    validate(first, "Response")
    return first


def test_a_call_needing_approval_ends_the_turn_with_an_approval_request_and_runs_once_approved(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    first = approval_turn(gateway, fake_upstream, {"type": "mcp", "server_label": "local"})  # "always" by default
    listed, asked = first["output"]
    assert listed["type"] == "mcp_list_tools" and first["status"] == "completed"
    assert (asked["type"], asked["server_label"], asked["name"], asked["arguments"]) == (
        "mcp_approval_request",
        "local",
        "add",
        '{"a": 2, "b": 40}',
    )
    assert not Record.objects.exists()  # nothing ran
    fake_upstream.queue(Reply(content="It is 42."))
    answer = {"type": "mcp_approval_response", "approval_request_id": asked["id"], "approve": True}
    events = events_of(
        gateway, input=[answer], previous_response_id=first["id"], tools=[{"type": "mcp", "server_label": "local"}]
    )
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    called = final["output"][1]
    assert (called["approval_request_id"], called["output"], called["status"]) == (asked["id"], "42", "completed")
    sent = fake_upstream.last.body
    assert sent is not None
    [call] = next(m for m in sent["messages"] if m.get("tool_calls"))["tool_calls"]
    assert (call["id"], call["function"]["name"]) == (asked["id"], "local__add")
    assert tool_messages(sent) == [{"role": "tool", "tool_call_id": asked["id"], "content": "42"}]
    assert Record.objects.get().status == "ok"


def test_a_declined_call_is_not_run_and_the_model_is_told(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    tool = mcp(require_approval="always")
    first = approval_turn(gateway, fake_upstream, tool)
    asked = first["output"][1]
    fake_upstream.queue(Reply(content="As you wish."))
    # stateless: the request item sent back with the answer, no previous_response_id
    answer: Any = {"type": "mcp_approval_response", "approval_request_id": asked["id"], "approve": False}
    second = dumped(
        gateway.client().responses.create(
            model=MODEL, input=[{"role": "user", "content": "2+40?"}, asked, answer], tools=[tool], store=False
        )
    )
    validate(second, "Response")
    assert [item["type"] for item in second["output"]] == ["mcp_list_tools", "message"]
    assert "declined" in tool_messages(fake_upstream.last.body)[0]["content"]
    assert not Record.objects.exists()


def test_tools_named_never_run_at_once_the_others_wait(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    tool = mcp(require_approval={"never": {"tool_names": ["add"]}})
    fake_upstream.queue(
        Reply(tool_calls=[ToolCall("local__add", '{"a": 1, "b": 2}', id="c1")]),
        Reply(tool_calls=[ToolCall("local__fail", '{"reason": "x"}', id="c2")]),
    )
    response = dumped(gateway.client().responses.create(model=MODEL, input="go", tools=[tool]))
    validate(response, "Response")
    assert [item["type"] for item in response["output"]] == ["mcp_list_tools", "mcp_call", "mcp_approval_request"]
    assert response["output"][2]["name"] == "fail"


def test_an_answer_to_an_unknown_approval_request_is_a_400(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    answer: Any = {"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": True}
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client().responses.create(model=MODEL, input=[answer], tools=[mcp()])
    body: Any = refused.value.body
    assert body["param"] == "input[0].approval_request_id"


def test_a_model_whose_upstreams_speak_responses_gets_the_hosted_tools_as_they_are(
    gateway: Gateway, fake_upstream: FakeUpstream, local: McpServer
) -> None:
    fake_upstream.speaks_responses = True
    Provider.objects.filter(pk=gateway.provider.pk).update(responses_api=True)
    tools = [WEB_SEARCH, mcp("docs", server_url="https://mcp.example.com/mcp")]
    answer = gateway.client().responses.create(model=MODEL, input="hi", tools=tools)
    assert answer.status == "completed"
    sent = fake_upstream.last
    assert sent.path == "/v1/responses" and sent.body is not None and sent.body["tools"] == tools
    assert not Record.objects.exists()
