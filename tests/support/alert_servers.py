"""Real local servers that alert channels deliver to, recording what they receive.

- `AlertHttp`: one HTTP server answering like Slack's incoming webhooks (`POST
  /services/...` -> 200 `ok`), Slack's Web API `chat.postMessage` (`POST
  /api/chat.postMessage` -> `{"ok": true, ...}`, or `{"ok": false, "error":
  "invalid_auth"}` for a wrong token), and a generic receiver (`POST /hook`) that
  checks dagfleet's HMAC-SHA256 signature and answers 401 when it is wrong.
  `stop()` and `start()` again keep the port, to play a channel going down and back.
- `SmtpSink`: aiosmtpd's SMTP server, keeping every message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.fleetproc import free_port

SLACK_TOKEN = "xoxb-test-token"
HOOK_SECRET = "hook-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None = None  # /hook only: did the signature check out?
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """Slack's `text`, or the webhook document's titles."""
        doc = self.json
        if "text" in doc:
            return str(doc["text"])
        return "\n".join(a["title"] for a in doc.get("alerts", []))


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    stamp = headers.get("x-dagfleet-timestamp", "")
    given = headers.get("x-dagfleet-signature", "")
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return bool(stamp) and hmac.compare_digest(given, f"sha256={mac}")


@dataclass
class AlertHttp:
    token: str = SLACK_TOKEN
    secret: str = HOOK_SECRET
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def slack_webhook_url(self) -> str:
        return f"{self.url}/services/T000/B000/XXXX"

    def start(self) -> AlertHttp:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner._handle(self, self.path, headers, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _handle(self, h: Any, path: str, headers: dict[str, str], body: bytes) -> None:
        entry = Received(path, headers, body)
        if path.startswith("/services/"):
            ok = body.startswith(b"{") and "text" in json.loads(body)
            self._record(entry)
            h._answer(200 if ok else 400, b"ok" if ok else b"invalid_payload", "text/plain")
        elif path == "/api/chat.postMessage":
            self._record(entry)
            if headers.get("authorization") != f"Bearer {self.token}":
                answer: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
            elif not json.loads(body).get("channel"):
                answer = {"ok": False, "error": "channel_not_found"}
            else:
                doc = json.loads(body)
                answer = {"ok": True, "channel": doc["channel"], "ts": f"{time.time():.6f}"}
            h._answer(200, json.dumps(answer).encode(), "application/json")
        elif path == "/hook":
            entry.verified = signature_ok(self.secret, headers, body)
            self._record(entry)
            h._answer(204 if entry.verified else 401, b"", "text/plain")
        else:
            h._answer(404, b"not found", "text/plain")

    def _record(self, entry: Received) -> None:
        with self._lock:
            self.received.append(entry)

    def at(self, prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.startswith(prefix)]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Keep:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        with self.sink.lock:
            self.sink.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class SmtpSink:
    """An SMTP server on a free port (no TLS: channels use `starttls: false`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(m["Subject"]) for m in self.messages]
