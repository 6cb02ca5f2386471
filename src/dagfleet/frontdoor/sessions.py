"""Signed session cookies, CSRF checks and the sign-in rate limit.

A session is a cookie holding who signed in (name, how, groups), when it expires
and a CSRF token, signed with HMAC-SHA256 under the fleet's session key. Roles
are not stored: they are worked out from fleet.yaml at each request, so a
changed grant applies at once. The key comes from `DAGFLEET_SESSION_KEY` or the
file `DAGFLEET_SESSION_KEY_FILE` names (every replica of a front door needs the
same one), else `.dagfleet/session.key`, made on first use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dagfleet.fsutil import atomic_write

COOKIE = "dagfleet_session"
MIN_KEY_CHARS = 32


class SessionKeyError(Exception):
    pass


def load_key(environ: Mapping[str, str], state_dir: Path) -> bytes:
    if environ.get("DAGFLEET_SESSION_KEY"):
        key = environ["DAGFLEET_SESSION_KEY"]
        source = "DAGFLEET_SESSION_KEY"
    elif environ.get("DAGFLEET_SESSION_KEY_FILE"):
        path = Path(environ["DAGFLEET_SESSION_KEY_FILE"])
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SessionKeyError(f"DAGFLEET_SESSION_KEY_FILE: cannot read {path}: {exc}") from None
        source = str(path)
    else:
        path = state_dir / "session.key"
        if not path.exists():
            state_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, secrets.token_urlsafe(48) + "\n", mode=0o600)
        key = path.read_text(encoding="utf-8").strip()
        source = str(path)
    if len(key) < MIN_KEY_CHARS:
        raise SessionKeyError(
            f"{source}: the session key is too short ({len(key)} characters, at least "
            f"{MIN_KEY_CHARS}): make one with `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`"
        )
    return key.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    name: str
    via: str  # password | oidc
    groups: tuple[str, ...]
    expires: float
    csrf: str
    sid: str


class SessionCodec:
    """Issues and reads signed session values; knows revoked session ids (logout)."""

    def __init__(self, key: bytes, lifetime_seconds: float) -> None:
        self._key = hashlib.sha256(b"dagfleet-session\0" + key).digest()
        self.lifetime = lifetime_seconds
        self._revoked: dict[str, float] = {}
        self._verified: dict[str, Session] = {}  # cookie value -> its checked session
        self._lock = threading.Lock()

    def sign(self, purpose: str, payload: Mapping[str, object]) -> str:
        body = _b64(json.dumps({"p": purpose, **payload}, separators=(",", ":")).encode())
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def unsign(self, purpose: str, value: str) -> dict[str, object] | None:
        body, _, mac = value.partition(".")
        try:
            given = _unb64(mac)
            want = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(given, want):
                return None
            data = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or data.get("p") != purpose:
            return None
        return data

    def issue(self, name: str, via: str, groups: tuple[str, ...] = ()) -> tuple[str, Session]:
        session = Session(
            name=name,
            via=via,
            groups=groups,
            expires=time.time() + self.lifetime,
            csrf=secrets.token_urlsafe(24),
            sid=secrets.token_urlsafe(12),
        )
        value = self.sign(
            "session",
            {
                "n": name,
                "v": via,
                "g": list(groups),
                "e": session.expires,
                "c": session.csrf,
                "s": session.sid,
            },
        )
        return value, session

    def read(self, value: str | None) -> Session | None:
        if not value:
            return None
        session = self._verified.get(value)
        if session is None:
            session = self._decode(value)
            if session is None:
                return None
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[value] = session
        if session.expires < time.time():
            return None
        with self._lock:
            if session.sid in self._revoked:
                return None
        return session

    def _decode(self, value: str) -> Session | None:
        """Check the signature and read the fields (once per cookie value: cached)."""
        data = self.unsign("session", value)
        if data is None:
            return None
        try:
            session = Session(
                name=str(data["n"]),
                via=str(data["v"]),
                groups=tuple(str(g) for g in data["g"]),  # type: ignore[attr-defined]
                expires=float(data["e"]),  # type: ignore[arg-type]
                csrf=str(data["c"]),
                sid=str(data["s"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return session

    def revoke(self, session: Session) -> None:
        now = time.time()
        with self._lock:
            self._revoked = {s: e for s, e in self._revoked.items() if e > now}
            self._revoked[session.sid] = session.expires


def same_origin(headers: Mapping[str, str], host: str) -> bool:
    """CSRF check for a cookie-authenticated unsafe request (or a websocket upgrade).

    The browser's Origin (else Referer) must name this host; `Sec-Fetch-Site`, when
    sent, must not be cross-site. Requests without either header are not from a
    browser page (browsers send Origin on every POST and websocket), and carry no
    ambient credential risk only if they authenticate otherwise, so they are refused
    here too.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin") or headers.get("referer")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


@dataclass
class LoginLimiter:
    """At most `failures` failed sign-ins per `window` seconds per client address and
    per user name; further tries are refused until the window has passed."""

    failures: int = 5
    window: float = 60.0
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, *keys: str) -> float:
        """Seconds until these keys may try again; 0 when they may now."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                seen = self._seen.get(key)
                if not seen:
                    continue
                while seen and seen[0] <= now - self.window:
                    seen.popleft()
                if len(seen) >= self.failures:
                    wait = max(wait, seen[0] + self.window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 100_000:  # a flood of names: forget the oldest half
                for key in list(self._seen)[: len(self._seen) // 2]:
                    del self._seen[key]
            for key in keys:
                self._seen.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


def client_key(address: str | None) -> str:
    return f"ip:{address or 'unknown'}"
