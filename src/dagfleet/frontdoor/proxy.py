"""Forwarding to the Dagster webserver: HTTP requests streamed both ways, and
websockets pumped frame by frame (with a hook that sees each client message).

Hop-by-hop headers are dropped; the front door's own credentials (its session
cookie, a bearer token) never reach the webserver; X-Forwarded-* say who asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any

import httpcore
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
WS_SKIP = HOP_BY_HOP | {
    "host",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
}


def strip_cookie(value: str, names: Iterable[str]) -> str:
    """The Cookie header without the front door's own cookies."""
    drop = set(names)
    parts = [p.strip() for p in value.split(";")]
    kept = [p for p in parts if p and p.split("=", 1)[0].strip() not in drop]
    return "; ".join(kept)


def upstream_headers(
    scope: Scope, skip: frozenset[str], own_cookies: Iterable[str]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    forwarded_for = ""
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in skip or name == "authorization" or name.startswith("x-forwarded-"):
            continue
        if name == "cookie":
            value = strip_cookie(value, own_cookies)
            if not value:
                continue
        out.append((name, value))
    client = scope.get("client")
    if client:
        forwarded_for = str(client[0])
    if forwarded_for:
        out.append(("x-forwarded-for", forwarded_for))
    out.append(
        ("x-forwarded-proto", "https" if scope.get("scheme") in ("https", "wss") else "http")
    )
    return out


class Connections:
    """Keep-alive connections to the webserver, most recently used first.

    httpcore's own pool looks at every connection (a select() each) for every
    request; with 50 clients that cost more than the rest of the front door. This
    one takes the last idle connection, checks just that one, and opens a new
    connection when none is idle: the webserver answers each on its own.
    """

    def __init__(self, upstream: str, keep: int = 64) -> None:
        self.origin = httpcore.URL(upstream).origin
        self.keep = keep
        self._idle: list[httpcore.AsyncHTTPConnection] = []

    def take(self) -> httpcore.AsyncHTTPConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.is_idle() and not conn.has_expired():
                return conn
            self._closing(conn)
        return httpcore.AsyncHTTPConnection(self.origin, keepalive_expiry=30.0)

    def give_back(self, conn: httpcore.AsyncHTTPConnection) -> None:
        if conn.is_idle() and len(self._idle) < self.keep:
            self._idle.append(conn)
        else:
            self._closing(conn)

    def _closing(self, conn: httpcore.AsyncHTTPConnection) -> None:
        if not conn.is_closed():
            asyncio.get_running_loop().create_task(conn.aclose())

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()


class HttpForwarder:
    """Forwards one request to the webserver and streams the answer back.

    httpcore, not an httpx client: no cookie jar (a shared jar would carry one
    user's upstream cookies to the next) and less work per request.
    """

    def __init__(self, upstream: str, own_cookies: Iterable[str]) -> None:
        self.upstream = upstream.rstrip("/")
        self.own_cookies = tuple(own_cookies)
        self.connections = Connections(self.upstream)

    async def forward(self, scope: Scope, body: bytes | None, receive: Receive, send: Send) -> None:
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream_headers(scope, HOP_BY_HOP, self.own_cookies)
        ]
        path = scope.get("raw_path") or scope["path"].encode()
        url = self.upstream + path.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        content: Any = body if body is not None else _stream_body(receive)
        if body is not None:
            headers.append((b"content-length", str(len(body)).encode()))
        else:
            length = header(scope, "content-length")
            headers.append(
                (b"content-length", length.encode())
                if length
                else (b"transfer-encoding", b"chunked")
            )
        request = httpcore.Request(
            scope["method"].encode(),
            url,
            headers=headers,
            content=content,
            extensions={"timeout": {"connect": 10.0}},
        )
        conn = self.connections.take()
        started = False
        try:
            response = await conn.handle_async_request(request)
            try:
                out = [
                    (k, v)
                    for k, v in response.headers
                    if k.lower().decode("latin-1") not in HOP_BY_HOP
                ]
                out += [(k, v) for k, v in response.headers if k.lower() == b"content-length"]
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": out}
                )
                started = True
                async for chunk in response.aiter_stream():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                await response.aclose()
        except (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError) as exc:
            log.warning("front door: the Dagster webserver did not answer: %r", exc)
            if started:
                raise  # mid-answer: nothing more can be said; the connection is closed
            await _plain(send, 502, "the Dagster webserver is not answering yet: try again shortly")
        finally:
            self.connections.give_back(conn)

    async def close(self) -> None:
        await self.connections.aclose()


async def _stream_body(receive: Receive) -> Any:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body"):
            return


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is larger than `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# A client message hook: return None to forward, or a reply (text) to send back instead.
MessageHook = Callable[[str], Awaitable[str | None]]


async def pump_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    upstream_ws: str,
    on_client_message: MessageHook,
    own_cookies: Iterable[str],
) -> None:
    """Accept the client's websocket once the webserver's is open, then pump both ways."""
    requested = [
        p.strip() for p in _header(scope, "sec-websocket-protocol").split(",") if p.strip()
    ]
    headers = upstream_headers(scope, WS_SKIP, own_cookies)
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    try:
        upstream: ClientConnection = await websockets.connect(
            upstream_ws,
            subprotocols=requested or None,  # type: ignore[arg-type]
            additional_headers=headers,
            max_size=None,
            open_timeout=10,
            compression=None,
        )
    except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
        log.warning("front door: websocket to the Dagster webserver failed: %s", exc)
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})

    async def client_to_upstream() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            text = msg.get("text")
            if text is None and msg.get("bytes") is not None:
                text = msg["bytes"].decode("utf-8", errors="replace")
            if text is None:
                continue
            reply = await on_client_message(text)
            if reply is None:
                await upstream.send(text)
            else:
                await send({"type": "websocket.send", "text": reply})

    async def upstream_to_client() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in upstream:
                if isinstance(data, bytes):
                    await send({"type": "websocket.send", "bytes": data})
                else:
                    await send({"type": "websocket.send", "text": data})

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await upstream.close()
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1000})


def _header(scope: Scope, name: str) -> str:
    want = name.encode()
    for k, v in scope["headers"]:
        if k.lower() == want:
            return str(v.decode("latin-1"))
    return ""


def cookies(scope: Scope) -> dict[str, str]:
    jar = SimpleCookie()
    with contextlib.suppress(Exception):
        jar.load(_header(scope, "cookie"))
    return {k: m.value for k, m in jar.items()}


def header(scope: Scope, name: str) -> str:
    return _header(scope, name)
