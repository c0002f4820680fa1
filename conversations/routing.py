from django.urls import URLPattern, URLResolver, path

from conversations.consumers import ChatConsumer

SOCKET_PREFIX = "ws/conversations/"

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path(f"{SOCKET_PREFIX}<int:conversation_id>/", ChatConsumer.as_asgi()),
]


def socket_path(conversation_id: int | str) -> str:
    """The chat socket's path for a conversation (the page gets it with "{id}" in place of the id)."""
    return f"/{SOCKET_PREFIX}{conversation_id}/"
