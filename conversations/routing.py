from django.urls import URLPattern, URLResolver, path

from conversations.consumers import ChatConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/conversations/<int:conversation_id>/", ChatConsumer.as_asgi()),
]
