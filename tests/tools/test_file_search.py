"""The file_search tool: offered for the user's own vector stores, its calls answered with numbered passages
and the files they come from as sources; another user's store is refused."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from knowledge import services
from knowledge.models import VectorStore
from tests.knowledge.conftest import ingested
from tools.file_search import FileSearch
from tools.models import ToolCall as Record
from tools.registry import Toolbox, ToolChoice
from tools.results import ToolCall

pytestmark = pytest.mark.usefixtures("transactional_db")


def _store(user: User, name: str, files: dict[str, str]) -> VectorStore:
    store = services.create_store(user, name)
    for filename, text in files.items():
        ingested(store, filename, text)
    return store


async def test_file_search_answers_with_passages_and_their_files_as_sources(alice: User) -> None:
    manuals = await sync_to_async(_store)(
        alice, "manuals", {"oven.md": "Error E42 means the oven's fan is blocked.", "radio.md": "Two speakers."}
    )
    toolbox = await Toolbox.open(alice, ToolChoice(file_search=FileSearch((manuals.public_id,))))
    assert [spec.name for spec in toolbox.specs] == ["file_search"]
    result = await toolbox.run(ToolCall("file_search", {"query": "what is error E42"}, "call-1"))
    assert not result.is_error and result.text.startswith("[1] oven.md\nError E42")
    oven = await sync_to_async(
        lambda: services.owned_file(alice, manuals.files.get(file__filename="oven.md").file.public_id)
    )()
    assert (result.sources[0].title, result.sources[0].file_id) == ("oven.md", oven.public_id)
    assert [source.number for source in result.sources] == list(range(1, len(result.sources) + 1))
    assert await Record.objects.filter(user=alice, kind="file_search", status="ok").acount() == 1


async def test_an_empty_query_is_a_tool_error_the_model_reads(alice: User) -> None:
    store = await sync_to_async(_store)(alice, "s", {"a.md": "text"})
    toolbox = await Toolbox.open(alice, ToolChoice(file_search=FileSearch((store.public_id,))))
    result = await toolbox.run(ToolCall("file_search", {"query": " "}, "call-1"))
    assert result.is_error and "query" in result.text


async def test_it_refuses_another_users_vector_store(alice: User, bob: User) -> None:
    bobs = await sync_to_async(_store)(bob, "bob's", {"secret.md": "Bob's secret plan."})
    with pytest.raises(VectorStore.DoesNotExist):
        await Toolbox.open(alice, ToolChoice(file_search=FileSearch((bobs.public_id,))))


async def test_passages_are_numbered_on_across_the_calls_of_one_request(alice: User) -> None:
    store = await sync_to_async(_store)(
        alice, "s", {"a.md": "Error E42: fan blocked.", "b.md": "Error E17: door open."}
    )
    toolbox = await Toolbox.open(alice, ToolChoice(file_search=FileSearch((store.public_id,), max_results=1)))
    first = await toolbox.run(ToolCall("file_search", {"query": "E42"}, "call-1"))
    second = await toolbox.run(ToolCall("file_search", {"query": "E17"}, "call-2"))
    assert [s.number for s in first.sources + second.sources] == [1, 2]
    assert second.text.startswith("[2] b.md\nError E17")


async def test_the_filters_narrow_the_files_searched(alice: User) -> None:
    def build() -> VectorStore:
        store = services.create_store(alice, "s")
        ingested(store, "en.md", "The oven manual.", lang="en")
        ingested(store, "fr.md", "The oven manual, en francais.", lang="fr")
        return store

    store = await sync_to_async(build)()
    choice = FileSearch((store.public_id,), filters={"type": "eq", "key": "lang", "value": "fr"})
    toolbox = await Toolbox.open(alice, ToolChoice(file_search=choice))
    result = await toolbox.run(ToolCall("file_search", {"query": "oven manual"}, "call-1"))
    assert [(s.title, s.attributes) for s in result.sources] == [("fr.md", {"lang": "fr"})]


async def test_a_calls_passages_stay_within_its_token_bound_but_the_best_is_always_given(alice: User) -> None:
    long = "Error E42: the fan is blocked. " + "More about the fan. " * 200
    store = await sync_to_async(_store)(alice, "s", {"a.md": long, "b.md": "Error E42 again: fan."})
    toolbox = await Toolbox.open(alice, ToolChoice(file_search=FileSearch((store.public_id,), max_tokens=10)))
    result = await toolbox.run(ToolCall("file_search", {"query": "error E42 fan"}, "call-1"))
    assert len(result.sources) == 1
