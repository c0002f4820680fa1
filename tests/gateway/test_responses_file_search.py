"""POST /v1/responses with the hosted `file_search` tool run by us over the caller's own vector stores, through
the openai SDK in process.

The scripted fake upstream (chat completions) plays the model calling the tool; the stores are real (built through
knowledge.services, searched in PostgreSQL). Every Response and streamed event is validated against OpenAI's schema.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from accounts.models import User
from knowledge import services
from knowledge.models import StoredFile, VectorStore
from tests.conftest import make_user
from tests.fake_upstream import FakeUpstream, Reply, ToolCall
from tests.gateway.conftest import MODEL, Gateway
from tests.gateway.test_responses import dumped
from tests.gateway.test_responses_hosted_tools import events_of
from tests.gateway.test_tool_loop import offered, tool_messages
from tests.knowledge.conftest import ingested
from tests.openai_schema import validate
from tools.models import ToolCall as Record

pytestmark = pytest.mark.django_db(transaction=True)

OVEN = "# Oven\n\n## Errors\n\nError E42 means the oven's fan is blocked: clean the vent.\n"
RADIO = "# Radio\n\nThe radio has two speakers and a volume knob.\n"
SEARCH_E42 = ToolCall("file_search", '{"query": "error E42"}', id="call_f")


def store(user: User, name: str = "manuals", **files: str) -> VectorStore:
    built = services.create_store(user, name)
    for filename, text in (files or {"oven.md": OVEN, "radio.md": RADIO}).items():
        ingested(built, filename, text, lang="en")
    return built


def file_search(*stores: VectorStore, **fields: Any) -> Any:
    return {"type": "file_search", "vector_store_ids": [s.public_id for s in stores], **fields}


def file_id(user: User, filename: str) -> str:
    return str(StoredFile.objects.get(owner=user, filename=filename).public_id)


def test_file_search_answers_with_a_file_search_call_and_citations_of_the_files(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    manuals = store(gateway.user)
    fake_upstream.queue(Reply(tool_calls=[SEARCH_E42]), Reply(content="The fan is blocked [1]."))
    answer = gateway.client().responses.create(
        model=MODEL, input="What is E42?", tools=[file_search(manuals)], include=["file_search_call.results"]
    )
    response = dumped(answer)
    validate(response, "Response")
    searched, said = response["output"]
    assert (searched["type"], searched["status"], searched["queries"]) == (
        "file_search_call",
        "completed",
        ["error E42"],
    )
    oven = file_id(gateway.user, "oven.md")
    first = searched["results"][0]
    assert (first["file_id"], first["filename"], first["attributes"]) == (oven, "oven.md", {"lang": "en"})
    assert "fan is blocked" in first["text"] and 0 < first["score"] <= 1
    text = said["content"][0]
    assert text["text"] == "The fan is blocked [1]."
    index = text["text"].index("[1]")
    assert text["annotations"] == [{"type": "file_citation", "file_id": oven, "index": index, "filename": "oven.md"}]
    asked, answered = fake_upstream.chat_requests()[-2:]
    assert offered(asked.body) == ["file_search"]
    (result,) = tool_messages(answered.body)
    assert result["tool_call_id"] == "call_f" and result["content"].startswith("[1] oven.md\n## Errors\n\nError E42")
    (record,) = Record.objects.all()
    assert (record.kind, record.status, record.api_key_id) == ("file_search", "ok", gateway.key.pk)


def test_file_search_streams_its_events_and_the_citation(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    manuals = store(gateway.user)
    fake_upstream.queue(Reply(tool_calls=[SEARCH_E42]), Reply(content="Blocked fan [1], see [9]."))
    events = events_of(gateway, input="E42?", tools=[file_search(manuals, max_num_results=2)])
    kinds = [e["type"] for e in events]
    assert [k for k in kinds if k.startswith("response.file_search_call")] == [
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
    ]
    (added,) = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    oven = file_id(gateway.user, "oven.md")
    assert added["annotation"] == {"type": "file_citation", "file_id": oven, "index": 12, "filename": "oven.md"}
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")
    searched, said = events[-1]["response"]["output"]
    assert searched["results"] is None  # not asked for with `include`
    assert said["content"][0]["annotations"] == [added["annotation"]]  # [9] names no passage: no citation


def test_passages_are_numbered_on_across_calls_and_cited_by_their_number(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    manuals = store(gateway.user)
    fake_upstream.queue(
        Reply(tool_calls=[SEARCH_E42]),
        Reply(tool_calls=[ToolCall("file_search", '{"query": "radio speakers"}', id="call_g")]),
        Reply(content="Fan [1]; speakers [2]."),
    )
    answer = gateway.client().responses.create(model=MODEL, input="?", tools=[file_search(manuals, max_num_results=1)])
    annotations = dumped(answer)["output"][-1]["content"][0]["annotations"]
    assert [(a["filename"], a["index"]) for a in annotations] == [("oven.md", 4), ("radio.md", 18)]


def test_the_filters_narrow_the_files_searched(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    manuals = store(gateway.user)
    ingested(manuals, "oven-fr.md", "Erreur E42: error, le ventilateur est bloque.", lang="fr")
    fake_upstream.queue(Reply(tool_calls=[SEARCH_E42]), Reply(content="Bloque."))
    tool = file_search(manuals, filters={"type": "eq", "key": "lang", "value": "fr"})
    answer = gateway.client().responses.create(
        model=MODEL, input="?", tools=[tool], include=["file_search_call.results"]
    )
    (searched, _) = dumped(answer)["output"]
    assert [r["filename"] for r in searched["results"]] == ["oven-fr.md"]


def test_it_refuses_another_users_vector_store(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    bob = make_user("bob")
    bobs = store(bob, "bob's", **{"secret.md": "Bob's secret plan."})
    mine = store(gateway.user)
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().responses.create(model=MODEL, input="?", tools=[file_search(mine, bobs)])
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "tools[0].vector_store_ids"
    assert bobs.public_id in error["message"] and "secret" not in str(error)
    assert fake_upstream.chat_requests() == [] and not Record.objects.exists()


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"filters": {"type": "eq", "key": "lang"}}, "tools[0].filters"),
        ({"max_num_results": 0}, "tools[0].max_num_results"),
        ({"vector_store_ids": []}, "tools[0].vector_store_ids"),
        ({"ranking_options": {"score_threshold": 2}}, "tools[0].ranking_options.score_threshold"),
        ({"ranking_options": {"hybrid_search": {"embedding_weight": 1, "text_weight": 1}}}, None),
    ],
)
def test_a_bad_file_search_tool_is_a_400_naming_its_field(
    gateway: Gateway, fake_upstream: FakeUpstream, tool: dict[str, Any], param: str | None
) -> None:
    manuals = store(gateway.user)
    bad: Any = {**file_search(manuals), **tool}
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().responses.create(model=MODEL, input="?", tools=[bad])
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == (param or "tools[0].ranking_options.hybrid_search")
    assert fake_upstream.chat_requests() == []


def test_file_search_twice_in_one_request_is_a_400(gateway: Gateway, fake_upstream: FakeUpstream) -> None:
    manuals = store(gateway.user)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().responses.create(model=MODEL, input="?", tools=[file_search(manuals), file_search(manuals)])
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "tools[1].type"


def test_an_upstream_speaking_responses_still_gets_file_search_run_by_us(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    gateway.provider.responses_api = True
    gateway.provider.save()
    manuals = store(gateway.user)
    fake_upstream.queue(Reply(tool_calls=[SEARCH_E42]), Reply(content="Blocked [1]."))
    answer = gateway.client().responses.create(model=MODEL, input="?", tools=[file_search(manuals)])
    assert [item.type for item in answer.output] == ["file_search_call", "message"]
    assert fake_upstream.requests_to("/responses") == [] and len(fake_upstream.chat_requests()) == 2


def test_a_later_turn_keeps_the_search_out_of_the_models_messages(
    gateway: Gateway, fake_upstream: FakeUpstream
) -> None:
    manuals = store(gateway.user)
    fake_upstream.queue(Reply(tool_calls=[SEARCH_E42]), Reply(content="Blocked [1]."), Reply(content="You're welcome."))
    client = gateway.client()
    first = client.responses.create(model=MODEL, input="E42?", tools=[file_search(manuals)])
    later = client.responses.create(model=MODEL, input="Thanks", previous_response_id=first.id)
    assert later.output_text == "You're welcome."
    body = fake_upstream.chat_requests()[-1].body
    assert body is not None
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
