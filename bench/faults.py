"""The service under faults: what clients see, how long until it is whole again, and what is lost.

    .venv/bin/python bench/faults.py [--streams 4] [--chats 4] [--chunks 40] [--pace-ms 25]

Everything runs on 127.0.0.1 and stops by itself (each phase gives up after `--whole-within` seconds):
- a PostgreSQL of its own (pgserver's binaries, a temporary data directory) and a Redis of its own;
- two workers (uvicorn, as tests/scaleout starts them) sharing both, behind one address: a TCP proxy here
  that spreads connections over the workers it can connect to, as a load balancer does;
- a fake OpenAI-compatible upstream on loopback writing `--chunks` words `--pace-ms` apart, which can be
  told to hang;
- steady bounded load through the proxy: `--streams` clients each asking for one streamed /v1 chat
  completion after another, and `--chats` browser-like chat sockets each sending one message after the
  reply to the last one ended (reconnecting, as the page does, when the socket drops).

Then, one at a time with a quiet spell between: kill -9 a worker mid-stream (a process manager starts a
new one 5 s later), restart Redis, restart PostgreSQL (fast shutdown), make the upstream hang for 12 s
(the provider's read timeout is 5 s). For each it prints what the clients saw, the time from the fault
until the last failure a client saw ended, and what was lost: /v1 requests a worker answered without a
ledger row, chat messages sent without a stored row, and characters of replies a client saw that the
stored reply lacks. It prints; it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
import websockets  # noqa: E402
from websockets.typing import Origin  # noqa: E402

from bench.chat_sockets import sessions  # noqa: E402
from bench.side_by_side import MODEL, seed  # noqa: E402
from tests.fake_upstream import read_request  # noqa: E402
from tests.live_server import LiveServer, database_url, free_port, start_server  # noqa: E402
from tests.scaleout.redis_server import start_redis  # noqa: E402

DATABASE = "chatsite_faults"


# ------------------------------------------------------------------------------------------------
# The parts: PostgreSQL, Redis, the upstream, the workers, the proxy


class Postgres:
    """A PostgreSQL of the bench's own, so restarting it disturbs nothing else."""

    def __init__(self) -> None:
        import pgserver

        self.pgdata = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="delete")
        self.uri = self.server.get_uri()

    def restart(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.pgdata, user=self.server.system_user)

    def settings_dict(self) -> dict[str, Any]:
        from urllib.parse import parse_qs, urlparse

        parsed = urlparse(self.uri)
        return {"USER": parsed.username, "HOST": parse_qs(parsed.query)["host"][0], "PORT": "", "NAME": DATABASE}


class Redis:
    """Redis on a fixed port, so a restart comes back where the workers look for it."""

    def __init__(self) -> None:
        self.server = start_redis()
        self.url = self.server.url
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def stop(self) -> None:
        if self.server.process.poll() is None:
            self.server.process.terminate()
            self.server.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.server = start_redis(self.port)


class Upstream:
    """A fake OpenAI-compatible upstream writing numbered words; `hang` makes it answer nothing."""

    def __init__(self, chunks: int, pace: float) -> None:
        self.chunks, self.pace = chunks, pace
        self.hang = threading.Event()
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        _headers, _raw, request = await read_request(scope, receive)
        request = request if isinstance(request, dict) else {}
        if scope["path"].endswith("/models"):  # the gateway's probe of a cooling deployment
            listing = json.dumps({"object": "list", "data": [{"id": "fast-model", "object": "model"}]}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": listing})
            return
        while self.hang.is_set():  # a threading.Event: the bench's loop sets it  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload = {"id": "chatcmpl-faults", "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": request.get("model", ""), "choices": [{"index": 0, "delta": delta,
                       "finish_reason": finish}]}  # fmt: skip
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        await send(
            {"type": "http.response.body", "body": chunk({"role": "assistant", "content": ""}), "more_body": True}
        )
        for index in range(self.chunks):
            await asyncio.sleep(self.pace)
            await send({"type": "http.response.body", "body": chunk({"content": f"w{index} "}), "more_body": True})
        usage = {"prompt_tokens": 9, "completion_tokens": self.chunks, "total_tokens": 9 + self.chunks}
        tail = chunk({}, "stop") + b"data: " + json.dumps({"id": "chatcmpl-faults", "object": "chat.completion.chunk",
                                                          "created": 0, "model": request.get("model", ""),
                                                          "choices": [], "usage": usage}).encode()  # fmt: skip
        await send({"type": "http.response.body", "body": tail + b"\n\ndata: [DONE]\n\n"})

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Proxy:
    """One address in front of the workers: each connection goes to the next worker that accepts it."""

    def __init__(self) -> None:
        self.backends: list[int] = []
        self.port = free_port()
        self._turn = itertools.count()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backends = list(self.backends)
        first = next(self._turn)
        for offset in range(len(backends)):
            port = backends[(first + offset) % len(backends)]
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


# ------------------------------------------------------------------------------------------------
# The clients


@dataclass
class Outcome:
    kind: str  # "v1" or "chat"
    started: float
    ended: float = 0.0
    result: str = ""  # ok | http-NNN | error-event | cut | refused | interrupted | error | unreachable
    text: str = ""  # what the client saw of the reply
    answered: bool = False  # a worker answered (a /v1 status line, a chat message stored)
    key: str = ""  # /v1: the API key's name (one per phase)
    sent: str = ""  # chat: the message sent
    conversation: int = 0

    @property
    def ok(self) -> bool:
        return self.result == "ok"


@dataclass
class Load:
    proxy_port: int
    key: tuple[str, str]  # (name, secret) of the phase's API key
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def v1_client(load: Load) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as client:
        while not load.stop.is_set():
            name, secret = load.key
            outcome = Outcome("v1", time.monotonic(), key=name)
            load.outcomes.append(outcome)
            body = {"model": MODEL, "messages": [{"role": "user", "content": "count"}], "stream": True}
            try:
                async with client.stream("POST", f"http://127.0.0.1:{load.proxy_port}/v1/chat/completions", json=body,
                                         headers={"Authorization": f"Bearer {secret}"}) as answer:  # fmt: skip
                    outcome.answered = True
                    if answer.status_code != 200:
                        outcome.result = f"http-{answer.status_code}"
                    else:
                        outcome.result = "cut"
                        async for line in answer.aiter_lines():
                            if line == "data: [DONE]":
                                outcome.result = "ok" if outcome.result == "cut" else outcome.result
                            elif line.startswith("data: {"):
                                event = json.loads(line[6:])
                                if "error" in event:
                                    outcome.result = "error-event"
                                for choice in event.get("choices") or []:
                                    outcome.text += choice.get("delta", {}).get("content") or ""
            except httpx.ConnectError:
                outcome.result = "unreachable"
            except httpx.HTTPError:
                outcome.result = outcome.result or "unreachable"
                if outcome.answered and outcome.result != "ok":
                    outcome.result = "cut"
            outcome.ended = time.monotonic()
            if not outcome.ok:
                await asyncio.sleep(0.2)


async def chat_client(load: Load, cookie: str, conversation: int, counter: itertools.count[int]) -> None:
    from django.conf import settings

    url = f"ws://127.0.0.1:{load.proxy_port}/ws/conversations/{conversation}/"
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    while not load.stop.is_set():
        try:
            async with websockets.connect(url, origin=Origin(f"http://127.0.0.1:{load.proxy_port}"),
                                          additional_headers=headers, open_timeout=10) as socket:  # fmt: skip
                first = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if first.get("type") != "messages":
                    raise ConnectionError(first)
                while not load.stop.is_set():
                    await one_reply(load, socket, conversation, f"q{next(counter)}")
        except (OSError, websockets.WebSocketException, TimeoutError, ConnectionError):
            await asyncio.sleep(0.5)  # the page reconnects


async def one_reply(load: Load, socket: Any, conversation: int, content: str) -> None:
    outcome = Outcome("chat", time.monotonic(), sent=content, conversation=conversation)
    load.outcomes.append(outcome)
    reply_id = user_id = None
    try:
        await socket.send(json.dumps({"type": "send", "content": content}))
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if frame["type"] == "error":
                outcome.result = f"refused ({frame.get('code')})"
                await asyncio.sleep(0.5)
                return
            if frame["type"] == "delta" and frame["id"] == reply_id:
                outcome.text = outcome.text[: frame["offset"]] + frame["text"]
            elif frame["type"] == "snapshot" and frame["id"] == reply_id:
                outcome.text = frame["content"]
            # A worker sends the whole conversation again (as on connect) after Redis lost its data.
            listed = frame.get("messages") if frame["type"] == "messages" else [frame.get("message")]
            for message in listed if frame["type"] in ("message", "messages") else ():
                if message["role"] == "user" and message["content"] == content:
                    outcome.answered = True
                    user_id = message["id"]
                elif message["role"] == "assistant" and (reply_id == message["id"] or (
                        reply_id is None and user_id is not None and message["parent"] == user_id)):  # fmt: skip
                    reply_id = message["id"]
                    if message["status"] != "streaming":
                        outcome.result = "ok" if message["status"] == "complete" else message["status"]
                        outcome.text = message["content"]
                        return
    except BaseException:
        outcome.result = outcome.result or "cut"
        raise
    finally:
        outcome.ended = time.monotonic()


# ------------------------------------------------------------------------------------------------
# The run


@dataclass
class Phase:
    name: str
    fault: Callable[[], Awaitable[str]]
    key: tuple[str, str] = ("", "")
    at: float = 0.0
    note: str = ""


def fresh(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The bench's own database work, once more on a new connection if PostgreSQL restarted under it."""
    from django.db import OperationalError, connections

    def run(*args: Any) -> Any:
        try:
            return fn(*args)
        except OperationalError:
            connections.close_all()
            return fn(*args)
        finally:
            connections.close_all()

    return run


@fresh
def new_key(name: str) -> tuple[str, str]:
    from accounts.keys import create_key
    from accounts.models import User

    _key, secret = create_key(User.objects.get(username="bench"), name)
    return name, secret


@fresh
def settled_rows(keys: list[str]) -> dict[str, list[Any]]:
    """Each phase key's ledger rows, once every in-flight row a dead worker left is marked interrupted."""
    from datetime import timedelta

    from django.db import connections
    from django.utils import timezone

    from usage.ledger import mark_interrupted
    from usage.models import UsageRecord

    mark_interrupted(now=timezone.now() + timedelta(hours=1))
    rows = {name: list(UsageRecord.objects.filter(api_key__name=name)) for name in keys}
    connections.close_all()
    return rows


@fresh
def stored_chat() -> dict[tuple[int, str], tuple[bool, str, str]]:
    """(conversation, message sent) -> (stored, the reply's status, the reply's stored text)."""
    from django.db import connections

    from conversations.models import Message

    out: dict[tuple[int, str], tuple[bool, str, str]] = {}
    pending: dict[int, str] = {}
    for message in Message.objects.order_by("conversation_id", "created_at", "id"):
        if message.role == "user":
            out[(message.conversation_id, message.content)] = (True, "", "")
            pending[message.conversation_id] = message.content
        elif message.conversation_id in pending:
            sent = pending.pop(message.conversation_id)
            out[(message.conversation_id, sent)] = (True, message.status, message.content)
    connections.close_all()
    return out


def report(phases: list[Phase], load: Load, until: list[float]) -> None:
    rows = settled_rows([p.key[0] for p in phases])
    chat = stored_chat()
    print("\n| fault | what clients saw | until whole again | lost |")
    print("| --- | --- | --- | --- |")
    for index, phase in enumerate(phases):
        end = until[index]
        window = [o for o in load.outcomes if o.ended and o.started < end and o.ended >= phase.at - 3]
        seen: dict[str, int] = {}
        for o in window:
            seen[f"{o.kind} {o.result}"] = seen.get(f"{o.kind} {o.result}", 0) + 1
        failures = [o for o in window if not o.ok and o.ended >= phase.at]
        whole = max((o.ended - phase.at for o in failures), default=0.0)
        first = min((o.started - phase.at for o in failures), default=0.0)
        # /v1: every request a worker answered has a row under the phase's key.
        answered = [o for o in load.outcomes if o.kind == "v1" and o.key == phase.key[0] and o.answered]
        ledger = rows.get(phase.key[0], [])
        lost_rows = max(0, len(answered) - len(ledger))
        unbilled = sum(1 for o in answered if o.text and o.result != "ok") - sum(
            1 for r in ledger if r.status != 200 and r.completion_tokens > 0
        )
        # Chat: every message acknowledged is stored, and every reply keeps at least what its client saw.
        chats = [o for o in window if o.kind == "chat" and o.answered]
        unstored = [o for o in chats if not chat.get((o.conversation, o.sent), (False, "", ""))[0]]
        short = 0
        for o in chats:
            stored_text = chat.get((o.conversation, o.sent), (False, "", ""))[2]
            short += max(0, len(o.text) - len(stored_text)) if not stored_text.startswith(o.text) else 0
        statuses = sorted({chat.get((o.conversation, o.sent), (False, "?", ""))[1] or "?" for o in chats if not o.ok})
        saw = ", ".join(f"{count} {name}" for name, count in sorted(seen.items()))
        lost = (f"{lost_rows} ledger rows of {len(answered)} answered /v1 calls ({max(0, unbilled)} cut calls without "
                f"tokens); {len(unstored)} chat messages unstored; {short} characters of replies seen but not stored"
                + (f" (interrupted replies stored as: {', '.join(statuses)})" if statuses else ""))  # fmt: skip
        span = f"{whole:.1f} s (failures from {first:+.1f} s)" if failures else "0 s"
        print(f"| {phase.name}{' (' + phase.note + ')' if phase.note else ''} | {saw} | {span} | {lost} |")


def prepare(upstream_url: str, chats: int) -> list[tuple[str, int]]:
    """The bench user, its model at the upstream (5 s read timeout), and one user and conversation per chat."""
    from django.db import connections

    from catalogue.models import Provider

    seed(upstream_url)
    Provider.objects.update(read_timeout=5.0, connect_timeout=2.0)
    out = sessions(chats)
    connections.close_all()
    return out


@dataclass
class Site:
    """The parts a fault acts on."""

    workers: list[LiveServer]
    proxy: Proxy
    upstream: Upstream
    pg: Postgres
    redis: Redis
    start_worker: Callable[[], LiveServer]

    async def kill_worker(self) -> str:
        victim = self.workers[0]
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        self.proxy.backends = [w.port for w in self.workers[1:]]

        async def replace() -> None:
            await asyncio.sleep(5)  # a process manager's restart delay
            self.workers[0] = await asyncio.to_thread(self.start_worker)
            self.proxy.backends = [w.port for w in self.workers]

        asyncio.get_running_loop().create_task(replace())
        return "a new worker started 5 s later"

    async def restart_redis(self) -> str:
        await asyncio.to_thread(self.redis.restart)
        return "its data lost: no persistence"

    async def restart_postgres(self) -> str:
        started = time.monotonic()
        await asyncio.to_thread(self.pg.restart)
        return f"pg_ctl restart took {time.monotonic() - started:.1f} s"

    async def hang_upstream(self) -> str:
        self.upstream.hang.set()
        await asyncio.sleep(12)
        self.upstream.hang.clear()
        return "for 12 s"


async def drive(args: argparse.Namespace, site: Site, chats: list[tuple[str, int]]) -> None:
    phases = [
        Phase("kill -9 a worker mid-stream", site.kill_worker),
        Phase("restart Redis", site.restart_redis),
        Phase("restart PostgreSQL", site.restart_postgres),
        Phase("upstream hangs", site.hang_upstream),
    ]
    load = Load(site.proxy.port, await asyncio.to_thread(new_key, "warm-up"))
    counter = itertools.count()
    tasks = [asyncio.create_task(v1_client(load)) for _ in range(args.streams)]
    tasks += [asyncio.create_task(chat_client(load, cookie, conv, counter)) for cookie, conv in chats]
    until: list[float] = []
    try:
        await asyncio.sleep(5)
        for phase in phases:
            phase.key = load.key = await asyncio.to_thread(new_key, f"phase-{phase.name}")
            await asyncio.sleep(3)  # streams of this phase's key are under way
            print(f"==> {phase.name}", flush=True)
            phase.at = time.monotonic()
            phase.note = await phase.fault()
            until.append(await whole_again(load, phase.at + args.whole_within))
            print(f"    after {until[-1] - phase.at:.1f} s every client's recent requests succeed", flush=True)
            await asyncio.sleep(3)
    finally:
        load.stop.set()
        await asyncio.wait(tasks, timeout=40)
        for task in tasks:
            task.cancel()
        await asyncio.sleep(3)  # the workers' last ledger batches
    for worker in site.workers:
        worker.stop()  # graceful: the ledger's last rows are written
    await asyncio.to_thread(report, phases, load, until)


async def whole_again(load: Load, deadline: float) -> float:
    """When every request of the last 4 s succeeded, chat and /v1 alike (or the deadline)."""
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        recent = [o for o in load.outcomes if o.ended and o.started > time.monotonic() - 4]
        if {"v1", "chat"} <= {o.kind for o in recent if o.ok} and all(o.ok for o in recent):
            break
    return time.monotonic()


async def run(args: argparse.Namespace, secret_key: str, pg: Postgres, redis: Redis) -> None:
    upstream = Upstream(args.chunks, args.pace_ms / 1000)
    env = {"REDIS_URL": redis.url, "LEDGER_PROGRESS_SECONDS": "1", "LOG_LEVEL": "ERROR"}

    def start_worker() -> LiveServer:
        return start_server(pg.settings_dict(), secret_key, server="uvicorn", env=env)

    site = Site([], Proxy(), upstream, pg, redis, start_worker)
    try:
        chats = await asyncio.to_thread(prepare, upstream.base_url, args.chats)
        for _ in range(2):
            site.workers.append(await asyncio.to_thread(start_worker))
        site.proxy.backends = [w.port for w in site.workers]
        await site.proxy.start()
        print(f"Two workers on ports {site.proxy.backends} behind 127.0.0.1:{site.proxy.port}; Redis {redis.port}; "
              f"{args.streams} /v1 stream clients, {args.chats} chat sockets", flush=True)  # fmt: skip
        await drive(args, site, chats)
    finally:
        for worker in site.workers:
            worker.stop()
        upstream.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--chats", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--pace-ms", type=float, default=25)
    parser.add_argument("--whole-within", type=float, default=45, help="seconds a phase waits for recovery")
    args = parser.parse_args()
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ["LOG_LEVEL"] = "ERROR"  # the bench's own Django (its sign-ins for the chat sockets)
    print("Starting PostgreSQL and Redis of the bench's own...", flush=True)
    pg = Postgres()
    redis = Redis()
    try:
        import psycopg

        with psycopg.connect(pg.uri, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        db_url = database_url(pg.settings_dict())
        os.environ["DATABASE_URL"] = db_url
        os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        asyncio.run(run(args, settings.SECRET_KEY, pg, redis))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
