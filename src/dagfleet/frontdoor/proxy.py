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
from urllib.parse import urlsplit

import httptools
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


class UpstreamGone(Exception):
    """The webserver closed the connection before answering."""


class _Response:
    """httptools callbacks for one response: status, headers, body pieces, done."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        # Only meaningful now: once the message is complete the parser has reset.
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One keep-alive HTTP/1.1 connection to the webserver (asyncio streams; the
    response parsed by httptools, the C parser uvicorn uses)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    def close(self) -> None:
        self.reusable = False
        self.writer.close()


class HttpForwarder:
    """Forwards one request to the webserver and streams the answer back.

    A small HTTP/1.1 client of its own: no cookie jar (a shared jar would carry one
    user's upstream cookies to the next), and a fraction of a general client's work
    per request (the front door's budget is a few milliseconds at 50 clients). Idle
    connections are kept, most recently used first; a request on one the webserver
    had closed meanwhile is sent again on a new connection.
    """

    def __init__(self, upstream: str, own_cookies: Iterable[str], keep: int = 64) -> None:
        self.upstream = upstream.rstrip("/")
        parts = urlsplit(self.upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.netloc = parts.netloc.encode()
        self.own_cookies = tuple(own_cookies)
        self.keep = keep
        self._idle: list[Connection] = []

    async def _connection(self, fresh: bool) -> Connection:
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 20), 10
        )
        return Connection(reader, writer)

    def _give_back(self, conn: Connection) -> None:
        if conn.reusable and len(self._idle) < self.keep:
            self._idle.append(conn)
        else:
            conn.close()

    def _head(self, scope: Scope, streamed: bool, length: int | None) -> bytes:
        target = (scope.get("raw_path") or scope["path"].encode()) + (
            b"?" + scope["query_string"] if scope.get("query_string") else b""
        )
        lines = [scope["method"].encode() + b" " + target + b" HTTP/1.1", b"host: " + self.netloc]
        for name, value in upstream_headers(scope, HOP_BY_HOP | {"host"}, self.own_cookies):
            lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
        if streamed:
            lines.append(b"transfer-encoding: chunked")
        else:
            lines.append(b"content-length: " + str(length or 0).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def forward(self, scope: Scope, body: bytes | None, receive: Receive, send: Send) -> None:
        if (
            body is None
            and not header(scope, "content-length")
            and scope["method"]
            in (
                "GET",
                "HEAD",
            )
        ):
            body = b""  # nothing to stream: the request can be sent again if need be
        started = False
        for attempt in (1, 2):
            conn: Connection | None = None
            try:
                conn = await self._connection(fresh=attempt == 2)
                if body is not None:
                    conn.writer.write(self._head(scope, False, len(body)) + body)
                else:
                    conn.writer.write(self._head(scope, True, None))
                    async for chunk in _stream_body(receive):
                        if chunk:
                            conn.writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    conn.writer.write(b"0\r\n\r\n")
                await conn.writer.drain()
                started = await self._relay(conn, scope["method"] == "HEAD", send)
                self._give_back(conn)
                return
            except UpstreamGone as exc:
                if conn is not None:
                    conn.close()
                if attempt == 1 and body is not None:
                    continue  # a kept connection the webserver had closed: once more, fresh
                await self._unavailable(send, exc)
                return
            except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                if conn is not None:
                    conn.close()
                if started:
                    raise  # mid-answer: nothing more can be said; the connection is closed
                await self._unavailable(send, exc)
                return

    async def _unavailable(self, send: Send, exc: BaseException) -> None:
        log.warning("front door: the Dagster webserver did not answer: %r", exc)
        await _plain(send, 502, "the Dagster webserver is not answering yet: try again shortly")

    async def _relay(self, conn: Connection, head: bool, send: Send) -> bool:
        """Read the answer and stream it to the client; True once the client has had
        the status line. Raises UpstreamGone when the webserver said nothing at all."""
        got = _Response()
        parser = httptools.HttpResponseParser(got)
        got.parser = parser
        started = False
        while True:
            data = await conn.reader.read(1 << 16)
            if not data:
                if not got.headers_done:
                    if not started and not got.headers:
                        raise UpstreamGone("connection closed before the answer")
                    raise OSError("the webserver closed the connection mid-answer")
                conn.reusable = False  # a body that ends with the connection (or cut short)
            else:
                parser.feed_data(data)
            if got.headers_done and not started:
                out = [(k.lower(), v) for k, v in got.headers]
                out = [
                    (k, v)
                    for k, v in out
                    if k.decode("latin-1") not in HOP_BY_HOP or k == b"content-length"
                ]
                await send(
                    {
                        "type": "http.response.start",
                        "status": parser.get_status_code(),
                        "headers": out,
                    }
                )
                started = True
                if head:
                    conn.reusable = False  # the parser would wait for a body that never comes
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return True
            if got.body:
                pieces, got.body = got.body, []
                await send(
                    {"type": "http.response.body", "body": b"".join(pieces), "more_body": True}
                )
            if got.done or not data:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                conn.reusable = conn.reusable and got.done and got.keep_alive
                return True

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


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
