"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatsite.heap import settle as settle_heap  # noqa: E402
from chatsite.origins import SameOriginValidator  # noqa: E402
from conversations import generation, sweeper  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402
from gateway.asgi import with_api_handler  # noqa: E402
from usage.ledger import flush_usage  # noqa: E402


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Servers that speak ASGI lifespan (uvicorn) start the chat's sweep with the server, and let replies
    being written end cleanly at shutdown.

    After the requests in flight have finished (uvicorn waits for them): chat replies still being
    written are kept as interrupted, then the usage ledger's last rows are written. Daphne, without
    lifespan, gets the same from exit hooks (conversations.generation, usage.ledger), and the sweep
    with its first chat socket.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await sweeper.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await sweeper.stop()
            await generation.interrupt_all()
            await flush_usage()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        # /v1 (the API's hot path) skips Django's thread-hopping middleware; see gateway.asgi.
        "http": with_api_handler(django_asgi_app),
        # Only our own pages may open sockets (scheme, host and port; see chatsite.origins).
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "lifespan": lifespan,
    }
)

settle_heap()
