"""The chat's refusals, apart so every module of the app can raise them without importing its services."""

from __future__ import annotations


class ChatError(Exception):
    """A request the chat refuses, with a message fit to show the person (and the field it is about)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ConversationGone(ChatError):
    """The conversation does not exist, or is someone else's (which must look the same)."""

    def __init__(self) -> None:
        super().__init__("This conversation no longer exists.")
