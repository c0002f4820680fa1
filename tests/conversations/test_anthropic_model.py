"""The browser chat with a model whose provider speaks Anthropic's Messages API (the fake Anthropic upstream)."""

from __future__ import annotations

from asgiref.sync import sync_to_async

from accounts.models import User
from catalogue.models import LanguageModel, Provider
from conversations.models import Conversation, Message
from tests.conversations.conftest import Connect, finished, merge, until
from tests.fake_anthropic import AnthropicReply, FakeAnthropic, Text, Thinking


def _claude(base_url: str, owner: User) -> Conversation:
    provider = Provider.objects.create(name="anthropic", kind=Provider.Kind.ANTHROPIC, base_url=base_url)
    provider.set_api_key("sk-ant-upstream-0123456789")
    provider.save()
    model = LanguageModel.objects.create(
        public_id="anthropic/claude", provider=provider, upstream_model="claude-sonnet-4-5", max_output_tokens=2048
    )
    return Conversation.objects.create(owner=owner, model=model)


async def test_a_reply_from_an_anthropic_model_streams_into_the_chat_and_is_saved(
    alice: User, fake_anthropic: FakeAnthropic, connect: Connect, transactional_db: None
) -> None:
    conversation = await sync_to_async(_claude)(fake_anthropic.base_url, alice)
    fake_anthropic.api_key = "sk-ant-upstream-0123456789"
    fake_anthropic.queue(AnthropicReply(content=[Thinking("A greeting."), Text("Hello from Claude")]))
    socket = await connect(alice, conversation.pk)
    await until(socket, lambda f: f["type"] == "messages")
    await socket.send_json_to({"type": "send", "content": "Hi"})
    done, frames = await until(socket, finished)
    text = ""
    for frame in (f for f in frames if f["type"] == "delta"):
        text = merge(text, frame)
    assert text == "Hello from Claude"
    assert done["message"]["status"] == "complete"
    assert done["message"]["content"] == "Hello from Claude"
    stored = await sync_to_async(lambda: list(Message.objects.filter(conversation=conversation).order_by("pk")))()
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "complete")]
    assert stored[1].content == "Hello from Claude" and stored[1].completion_tokens
    sent = fake_anthropic.last
    assert sent.path == "/v1/messages" and sent.api_key == "sk-ant-upstream-0123456789"
    assert sent.body is not None and sent.body["model"] == "claude-sonnet-4-5" and sent.body["stream"] is True
    assert sent.body["messages"][-1]["role"] == "user"
