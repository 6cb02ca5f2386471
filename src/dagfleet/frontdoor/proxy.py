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

import httpx
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


class HttpForwarder:
    """One pooled client to the webserver; `forward` streams the answer back."""

    def __init__(self, upstream: str, own_cookies: Iterable[str]) -> None:
        self.upstream = upstream.rstrip("/")
        self.own_cookies = tuple(own_cookies)
        self.client = httpx.AsyncClient(
            base_url=self.upstream,
            timeout=httpx.Timeout(None, connect=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
            follow_redirects=False,
        )

    async def forward(self, scope: Scope, body: bytes | None, receive: Receive, send: Send) -> None:
        headers = upstream_headers(scope, HOP_BY_HOP, self.own_cookies)
        path = scope.get("raw_path") or scope["path"].encode()
        url = path.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        content: Any = body if body is not None else _stream_body(receive)
        request = self.client.build_request(scope["method"], url, headers=headers, content=content)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("front door: the Dagster webserver did not answer: %s", exc)
            await _plain(send, 502, "the Dagster webserver is not answering yet: try again shortly")
            return
        try:
            out = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.multi_items()
                if k.lower() not in HOP_BY_HOP
            ]
            if "content-length" in response.headers:
                out.append((b"content-length", response.headers["content-length"].encode()))
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self.client.aclose()


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
