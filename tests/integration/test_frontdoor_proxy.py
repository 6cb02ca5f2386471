"""The front door's HTTP forwarding against a real uvicorn upstream: keep-alive reuse,
streamed and chunked bodies both ways, HEAD, a kept connection the upstream closed,
an upstream that is down, and credentials that must not travel upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from dagfleet.frontdoor.proxy import HttpForwarder
from dagfleet.uvthread import ThreadedServer
from tests.support.fleetproc import free_port

Scope = dict[str, Any]


async def upstream_app(scope: Scope, receive: Any, send: Any) -> None:
    """Echoes what it got: the peer port (which connection), method, headers, body."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/chunks":  # no content-length: uvicorn sends it chunked
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send(
                {"type": "http.response.body", "body": f"part{i};".encode(), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    answer = json.dumps(
        {
            "port": scope["client"][1],
            "method": scope["method"],
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "body": body.decode(),
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(answer)).encode()),
    ]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": answer if scope["method"] != "HEAD" else b""})


@pytest.fixture
def upstream() -> Iterator[ThreadedServer]:
    server = ThreadedServer(
        upstream_app, "127.0.0.1", free_port(), "test upstream", timeout_keep_alive=1
    )
    server.start()
    yield server
    server.stop()


def scope_for(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"a=1",
        "headers": headers or [],
        "client": ("10.1.2.3", 5555),
        "scheme": "http",
    }


async def exchange(
    forwarder: HttpForwarder, scope: Scope, body: bytes | None, pieces: list[bytes] | None = None
) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": p, "more_body": True} for p in pieces or []]
    incoming.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await forwarder.forward(scope, body, receive, send)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_forwarding(upstream: ThreadedServer) -> None:
    async def scenario() -> None:
        forwarder = HttpForwarder(upstream.url, own_cookies=("dagfleet_session",))
        secret = [
            (b"cookie", b"dagfleet_session=abc; theme=dark"),
            (b"authorization", b"Bearer sekret"),
            (b"x-forwarded-for", b"6.6.6.6"),
        ]
        ports = set()
        for _ in range(5):
            status, _, body = await exchange(
                forwarder, scope_for("POST", "/echo", secret), b"hello"
            )
            seen = json.loads(body)
            assert status == 201 and seen["body"] == "hello" and seen["method"] == "POST"
            ports.add(seen["port"])
        assert len(ports) == 1, ports  # one kept-alive connection served all five
        headers = seen["headers"]
        assert headers["cookie"] == "theme=dark"  # the front door's own cookie stays here
        assert "authorization" not in headers
        assert headers["x-forwarded-for"] == "10.1.2.3"  # the real client, not a claimed one

        # A body of unknown length goes up chunked; a chunked answer comes back whole.
        status, _, body = await exchange(
            forwarder, scope_for("POST", "/echo"), None, [b"ab", b"cd"]
        )
        assert status == 201 and json.loads(body)["body"] == "abcd"
        status, _, body = await exchange(forwarder, scope_for("GET", "/chunks"), b"")
        assert status == 200 and body == b"part0;part1;part2;"
        status, headers, body = await exchange(forwarder, scope_for("HEAD", "/echo"), b"")
        assert status == 201 and body == b"" and int(headers["content-length"]) > 0

        # The upstream drops idle connections after 1 s: the next request still works.
        await asyncio.sleep(1.5)
        status, _, body = await exchange(forwarder, scope_for("POST", "/echo"), b"again")
        assert status == 201 and json.loads(body)["body"] == "again"
        await forwarder.close()

    asyncio.run(scenario())


def test_an_upstream_that_is_down_is_a_502() -> None:
    async def scenario() -> None:
        forwarder = HttpForwarder(f"http://127.0.0.1:{free_port()}", ())
        status, _, body = await exchange(forwarder, scope_for("GET", "/"), b"")
        assert status == 502 and b"not answering" in body

    asyncio.run(scenario())
