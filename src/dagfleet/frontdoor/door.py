"""The front door as one ASGI app: who are you, may you, then forward.

    /auth/...        its own pages: sign in and out, single sign-on, whoami, healthz
    /graphql         HTTP and websocket: every operation through the GraphQL gate
    POST /report_*   Dagster's asset-report endpoints: launcher, fleet-wide
    anything else    GET/HEAD for anyone who may view; other methods refused

Requests authenticate with a bearer token or the session cookie. With no identity
configured at all (no users, no single sign-on, no tokens) and a loopback bind,
everyone is the local admin — the embedded default stays one command.
Cookie-authenticated changes (and websocket upgrades) must come from a page of
this origin: the CSRF check.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode

from dagfleet.frontdoor import pages
from dagfleet.frontdoor.identity import Identities, Keeper
from dagfleet.frontdoor.oidc import OidcClient, OidcError, PendingLogin
from dagfleet.frontdoor.passwords import dummy_hash, verify_password
from dagfleet.frontdoor.proxy import (
    HttpForwarder,
    Receive,
    Scope,
    Send,
    cookies,
    header,
    pump_websocket,
    read_body,
)
from dagfleet.frontdoor.roles import Action, Principal, denial
from dagfleet.frontdoor.sessions import (
    COOKIE,
    LoginLimiter,
    Session,
    SessionCodec,
    client_key,
    same_origin,
)

log = logging.getLogger(__name__)
LOGIN_COOKIE = "dagfleet_login"
OIDC_COOKIE = "dagfleet_oidc"
OWN_COOKIES = (COOKIE, LOGIN_COOKIE, OIDC_COOKIE)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_GRAPHQL_BYTES = 2 * 1024 * 1024
MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one request: allowed, or the status and message."""

    allowed: bool
    status: int = 200
    message: str = ""
    # For the audit log: (action, mutation field, locations) of allowed mutations.
    mutations: tuple[tuple[Action, str, tuple[str, ...]], ...] = ()


class Gate(Protocol):
    async def http(
        self,
        principal: Principal,
        method: str,
        query: bytes,
        content_type: str | None,
        body: bytes,
    ) -> Verdict: ...

    async def websocket(self, principal: Principal, payload: Mapping[str, Any]) -> Verdict: ...


# (principal, action, mutation field, locations, outcome, detail, client address)
AuditSink = Callable[[Principal, str, str, tuple[str, ...], str, str, str | None], None]


def safe_next(value: str | None) -> str:
    """Only paths on this origin: no scheme, no `//host`, no backslashes."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@dataclass
class FrontDoor:
    keeper: Keeper
    forwarder: HttpForwarder
    gate: Gate
    upstream_ws: str
    fleet_name: str
    audit: AuditSink | None = None
    oidc: OidcClient | None = None  # when fleet.yaml has auth.oidc
    secure_cookies: bool = False
    public_url: str | None = None  # how users reach it (single sign-on's redirect URL)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)

    # ---- ASGI ---------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    @property
    def identities(self) -> Identities:
        return self.keeper.identities

    @property
    def codec(self) -> SessionCodec:
        return self.keeper.codec

    def who(self, scope: Scope) -> tuple[Principal | None, Session | None]:
        return self.keeper.who(header(scope, "authorization"), cookies(scope).get(COOKIE))

    # ---- HTTP ---------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/auth/"):
            await self._auth_route(scope, receive, send)
            return
        method: str = scope["method"]
        principal, session = self.who(scope)
        if principal is None:
            await self._sign_in_first(scope, send)
            return
        if (
            session is not None
            and method not in SAFE_METHODS
            and not same_origin(_lower_headers(scope), header(scope, "host"))
        ):
            await _json(
                send,
                403,
                {"error": "cross-site request refused: send it from this site's own pages"},
            )
            return
        if path == "/graphql" and method in ("GET", "POST"):
            body = await read_body(receive, MAX_GRAPHQL_BYTES) if method == "POST" else b""
            if body is None:
                await _graphql_error(
                    send, 413, f"the request is larger than {MAX_GRAPHQL_BYTES} bytes"
                )
                return
            # The raw query string: the gate reads repeated parameters as the webserver does.
            query: bytes = scope["query_string"]
            verdict = await self.gate.http(
                principal, method, query, header(scope, "content-type") or None, body
            )
            self._audit(principal, verdict, scope)
            if not verdict.allowed:
                await _graphql_error(send, verdict.status, verdict.message)
                return
            if body.lstrip()[:1] == b"[":
                # Judged whole (one refused operation refuses the batch), but the Dagster
                # webserver runs one operation per request and fails on a list.
                message = (
                    "the Dagster webserver runs one operation per request: send them one by one"
                )
                await _graphql_error(send, 400, message)
                return
            await self.forwarder.forward(scope, body, receive, send)
            return
        if method in ("GET", "HEAD"):
            if not principal.may_anywhere(Action.VIEW):
                await self._refuse(scope, send, denial(principal, Action.VIEW, None))
                return
            await self.forwarder.forward(scope, None, receive, send)
            return
        if method == "POST" and path.startswith(
            ("/report_asset_materialization/", "/report_asset_check/", "/report_asset_observation/")
        ):
            if not principal.may(Action.LAUNCH):
                await _json(send, 403, {"error": denial(principal, Action.LAUNCH, None)})
                return
            await self.forwarder.forward(scope, None, receive, send)
            return
        await _json(send, 405, {"error": f"{method} {path} is not served through the front door"})

    async def _sign_in_first(self, scope: Scope, send: Send) -> None:
        if scope["method"] == "GET" and "text/html" in header(scope, "accept"):
            target = scope["path"] + (
                "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""
            )
            await _redirect(send, "/auth/login?" + urlencode({"next": safe_next(target)}))
            return
        await _json(
            send,
            401,
            {"error": "sign in first: open /auth/login, or send 'Authorization: Bearer TOKEN'"},
            [(b"www-authenticate", b"Bearer")],
        )

    async def _refuse(self, scope: Scope, send: Send, message: str) -> None:
        if "text/html" in header(scope, "accept"):
            await _html(send, 403, pages.refused_page(message))
        else:
            await _json(send, 403, {"error": message})

    def _audit(self, principal: Principal, verdict: Verdict, scope: Scope) -> None:
        if self.audit is None:
            return
        client = scope.get("client")
        address = str(client[0]) if client else None
        if not verdict.allowed and verdict.status == 403:
            self.audit(principal, "denied", "", (), "denied", verdict.message, address)
        for action, field_name, locations in verdict.mutations:
            self.audit(principal, action.value, field_name, locations, "allowed", "", address)

    # ---- websockets ---------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/graphql":
            await send({"type": "websocket.close", "code": 1008})
            return
        principal, session = self.who(scope)
        cross_site = session is not None and not same_origin(
            _lower_headers(scope), header(scope, "host")
        )
        if principal is None or cross_site or not principal.may_anywhere(Action.VIEW):
            await send({"type": "websocket.close", "code": 1008})  # a 403 to the handshake
            return

        async def check(text: str) -> str | None:
            try:
                message = json.loads(text)
            except ValueError:
                return None  # not ours to judge: the webserver answers it
            if not isinstance(message, dict) or message.get("type") not in ("start", "subscribe"):
                return None
            payload = message.get("payload")
            verdict = await self.gate.websocket(
                principal, payload if isinstance(payload, dict) else {}
            )
            self._audit(principal, verdict, scope)
            if verdict.allowed:
                return None
            error: Any = {"message": verdict.message}
            if message["type"] == "subscribe":  # graphql-transport-ws wants a list
                error = [error]
            return json.dumps({"type": "error", "id": message.get("id"), "payload": error})

        await pump_websocket(scope, receive, send, self.upstream_ws, check, OWN_COOKIES)

    # ---- /auth/ ---------------------------------------------------------------------------
    async def _auth_route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        routes: dict[tuple[str, str], Callable[[Scope, Receive, Send], Awaitable[None]]] = {
            ("/auth/healthz", "GET"): self._healthz,
            ("/auth/login", "GET"): self._login_form,
            ("/auth/login", "POST"): self._login,
            ("/auth/logout", "GET"): self._logout_form,
            ("/auth/logout", "POST"): self._logout,
            ("/auth/whoami", "GET"): self._whoami,
            ("/auth/oidc/login", "GET"): self._oidc_login,
            ("/auth/oidc/callback", "GET"): self._oidc_callback,
        }
        handler = routes.get((path, method))
        if handler is None:
            known = any(p == path for p, _ in routes)
            await _json(send, 405 if known else 404, {"error": f"{method} {path}: no such page"})
            return
        await handler(scope, receive, send)

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, 200, {"status": "ok"})

    async def _login_form(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        error: str | None = None,
        status: int = 200,
    ) -> None:
        query = parse_qs(scope["query_string"].decode("latin-1"))
        next_path = safe_next((query.get("next") or ["/"])[0])
        await self._show_login(send, next_path, error, status)

    async def _show_login(
        self,
        send: Send,
        next_path: str,
        error: str | None,
        status: int,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        token = self.codec.sign("login", {"n": next_path})
        csrf = token.rsplit(".", 1)[1]
        html = pages.login_page(
            self.fleet_name,
            csrf,
            next_path,
            passwords=bool(self.identities.user_hashes()),
            sso=self.oidc is not None,
            error=error,
        )
        cookie = self._cookie(LOGIN_COOKIE, token, 600, path="/auth/")
        await _html(send, status, html, [cookie, *(headers or [])])

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive, MAX_FORM_BYTES)
        form = {k: v[0] for k, v in parse_qs((body or b"").decode("utf-8", "replace")).items()}
        next_path = safe_next(form.get("next"))
        if not same_origin(_lower_headers(scope), header(scope, "host")):
            await self._show_login(
                send, next_path, "Refused: the form must be sent from this site.", 403
            )
            return
        login_cookie = cookies(scope).get(LOGIN_COOKIE, "")
        if (
            self.codec.unsign("login", login_cookie) is None
            or form.get("csrf") != login_cookie.rsplit(".", 1)[-1]
        ):
            await self._show_login(send, next_path, "The sign-in form expired: try again.", 400)
            return
        name = form.get("username", "").strip()
        password = form.get("password", "")
        client = scope.get("client")
        keys = (client_key(str(client[0]) if client else None), f"user:{name}")
        wait = self.limiter.retry_after(*keys)
        if wait > 0:
            await self._show_login(
                send,
                next_path,
                f"Too many failed sign-ins: try again in {int(wait) + 1} s.",
                429,
                [(b"retry-after", str(int(wait) + 1).encode())],
            )
            return
        known = self.identities.user_hashes().get(name)
        ok = await asyncio.to_thread(verify_password, password, known or dummy_hash())
        if not (ok and known):
            self.limiter.failed(*keys)
            await self._show_login(send, next_path, "Unknown user or wrong password.", 401)
            return
        self.limiter.succeeded(f"user:{name}")
        await self._start_session(send, name, "password", (), next_path)

    async def _start_session(
        self,
        send: Send,
        name: str,
        via: str,
        groups: tuple[str, ...],
        next_path: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        value, session = self.codec.issue(name, via, groups)
        principal = self.identities.from_session(session)
        if principal is None or not principal.grants:
            await _html(
                send,
                403,
                pages.refused_page(
                    f"{name} signed in but holds no role in this fleet: ask an admin to grant "
                    "one in fleet.yaml auth.roles"
                ),
            )
            return
        cookie = self._cookie(COOKIE, value, int(self.codec.lifetime))
        clear = self._cookie(LOGIN_COOKIE, "", 0, path="/auth/")
        await _redirect(send, next_path, [cookie, clear, *(extra or [])])

    async def _logout_form(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = self.codec.read(cookies(scope).get(COOKIE))
        if session is None:
            await _redirect(send, "/auth/login")
            return
        await _html(send, 200, pages.logout_page(session.csrf, session.name))

    async def _logout(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive, MAX_FORM_BYTES)
        form = {k: v[0] for k, v in parse_qs((body or b"").decode("utf-8", "replace")).items()}
        session = self.codec.read(cookies(scope).get(COOKIE))
        if session is not None:
            if form.get("csrf") != session.csrf or not same_origin(
                _lower_headers(scope), header(scope, "host")
            ):
                await _json(
                    send, 403, {"error": "sign out from the /auth/logout page of this site"}
                )
                return
            self.codec.revoke(session)
        await _redirect(send, "/auth/login", [self._cookie(COOKIE, "", 0)])

    async def _whoami(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal, _ = self.who(scope)
        if principal is None:
            await _json(send, 401, {"error": "not signed in"})
            return
        await _json(
            send,
            200,
            {
                "name": principal.name,
                "via": principal.via,
                "groups": sorted(principal.groups),
                "grants": [g.describe() for g in principal.grants],
            },
        )

    def _redirect_uri(self, scope: Scope) -> str:
        """Where the provider sends users back: auth.oidc.redirect_url, else this host."""
        assert self.oidc is not None
        if self.oidc.spec.redirect_url:
            return self.oidc.spec.redirect_url
        if self.public_url:
            return self.public_url.rstrip("/") + "/auth/oidc/callback"
        scheme = "https" if self.secure_cookies else "http"
        return f"{scheme}://{header(scope, 'host')}/auth/oidc/callback"

    async def _oidc_login(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.oidc is None:
            await _json(
                send, 404, {"error": "single sign-on is not configured: see fleet.yaml auth.oidc"}
            )
            return
        query = parse_qs(scope["query_string"].decode("latin-1"))
        next_path = safe_next((query.get("next") or ["/"])[0])
        try:
            url, pending = await self.oidc.authorize(self._redirect_uri(scope), next_path)
        except OidcError as exc:
            await self._show_login(send, next_path, f"Single sign-on is unavailable: {exc}", 502)
            return
        value = self.codec.sign("oidc", {"j": pending.to_json()})
        await _redirect(send, url, [self._cookie(OIDC_COOKIE, value, 600, path="/auth/oidc/")])

    async def _oidc_callback(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.oidc is None:
            await _json(
                send, 404, {"error": "single sign-on is not configured: see fleet.yaml auth.oidc"}
            )
            return
        params = {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
        data = self.codec.unsign("oidc", cookies(scope).get(OIDC_COOKIE, ""))
        clear = self._cookie(OIDC_COOKIE, "", 0, path="/auth/oidc/")
        if data is None or not isinstance(data.get("j"), str):
            await self._show_login(
                send, "/", "This sign-in cannot be resumed: start again.", 400, [clear]
            )
            return
        try:
            pending = PendingLogin.from_json(str(data["j"]))
            identity = await self.oidc.finish(pending, params)
        except OidcError as exc:
            await self._show_login(send, "/", f"Single sign-on failed: {exc}", 400, [clear])
            return
        groups = tuple(sorted(identity.groups))
        await self._start_session(
            send, identity.username, "oidc", groups, safe_next(pending.next_path), [clear]
        )

    def _cookie(self, name: str, value: str, max_age: int, path: str = "/") -> tuple[bytes, bytes]:
        parts = [
            f"{name}={value}",
            f"Path={path}",
            f"Max-Age={max_age}",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if self.secure_cookies:
            parts.append("Secure")
        return (b"set-cookie", "; ".join(parts).encode())


def _lower_headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    out = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": out + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Send, status: int, data: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(send, status, json.dumps(data).encode(), b"application/json", headers)


async def _graphql_error(send: Send, status: int, message: str) -> None:
    await _json(
        send,
        status,
        {
            "errors": [
                {
                    "message": message,
                    "extensions": {
                        "code": "DAGFLEET_FORBIDDEN" if status == 403 else "DAGFLEET_BAD_REQUEST"
                    },
                }
            ]
        },
    )


async def _html(
    send: Send, status: int, html: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    security = [
        (b"x-frame-options", b"DENY"),
        (
            b"content-security-policy",
            b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    ]
    await _respond(
        send, status, html.encode(), b"text/html; charset=utf-8", security + (headers or [])
    )


async def _redirect(
    send: Send, location: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(
        send, 303, b"", b"text/plain", [(b"location", location.encode()), *(headers or [])]
    )
