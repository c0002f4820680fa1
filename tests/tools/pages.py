"""A page server on loopback: HTML, text, JSON, redirects (anywhere), a huge body and one that never ends."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

ARTICLE = """<!doctype html><html><head><title>Otters</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article><h1>Sea otters hold hands</h1>
<p>Sea otters hold hands while they sleep so that they do not drift apart from each other on the water.</p>
<p>A group of resting otters is called a raft, and rafts can number more than a hundred animals.</p>
</article><footer>Copyright nobody</footer><script>var secret = "do not read me";</script></body></html>"""


async def article(request: Request) -> Response:
    return Response(ARTICLE, media_type="text/html; charset=utf-8")


async def host_echo(request: Request) -> Response:
    return PlainTextResponse(f"host={request.headers.get('host')}")


async def data(request: Request) -> Response:
    return JSONResponse({"answer": 42})


async def binary(request: Request) -> Response:
    return Response(b"\x00\x01PK", media_type="application/zip")


async def redirect(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def loop(request: Request) -> Response:
    return RedirectResponse("/loop", status_code=302)


async def huge(request: Request) -> Response:
    async def body():  # type: ignore[no-untyped-def]
        chunk = b"<p>" + b"x" * 65_536 + b"</p>"
        for _ in range(200):  # about 13 MB, far above any cap the tests set
            yield chunk

    return StreamingResponse(body(), media_type="text/html")


async def slow(request: Request) -> Response:
    async def body():  # type: ignore[no-untyped-def]
        yield b"<html><body><p>first words</p>"
        await asyncio.Event().wait()  # never more

    return StreamingResponse(body(), media_type="text/html")


app = Starlette(
    routes=[
        Route("/article", article),
        Route("/host", host_echo),
        Route("/data", data),
        Route("/binary", binary),
        Route("/redirect", redirect),
        Route("/loop", loop),
        Route("/huge", huge),
        Route("/slow", slow),
    ]
)
