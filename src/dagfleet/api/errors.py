"""Error responses: every failure becomes an `ErrorBody` naming the field, and big bodies 413."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dagfleet.control import ControlError
from dagfleet.registry import RegistryError
from dagfleet.service.models import ErrorBody, Problem
from dagfleet.spec import SpecError


def error_response(
    status: int,
    detail: str,
    problems: list[Problem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(detail=detail, problems=problems or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=dict(headers or {}) or None)


def _field(loc: tuple[Any, ...]) -> tuple[str, str]:
    """('body', 'environment', 0, 'name') -> ('request body', 'environment[0].name')."""
    where = {"body": "request body", "query": "query", "path": "path", "header": "header"}
    file = where.get(str(loc[0]), "request") if loc else "request"
    rest = loc[1:] if loc and str(loc[0]) in where else loc
    out = ""
    for item in rest:
        if isinstance(item, int):
            out += f"[{item}]"
        elif not str(item).startswith("function-"):
            out += ("." if out else "") + str(item)
    return file, out


def validation_problems(exc: RequestValidationError) -> list[Problem]:
    problems = []
    for e in exc.errors():
        file, field = _field(tuple(e.get("loc", ())))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling"
        elif e.get("type") == "missing":
            msg = "required: add it"
        problems.append(Problem(file=file, field=field, message=msg))
    return problems


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc)
        detail = "; ".join(f"{p.field or p.file}: {p.message}" for p in problems)
        return error_response(422, detail or "invalid request", problems)

    @app.exception_handler(SpecError)
    async def _spec(_: Request, exc: SpecError) -> JSONResponse:
        problems = [Problem(file=p.file, field=p.field, message=p.message) for p in exc.problems]
        return error_response(422, str(exc), problems)

    @app.exception_handler(RegistryError)
    async def _registry(_: Request, exc: RegistryError) -> JSONResponse:
        return error_response(exc.status_code, str(exc))

    @app.exception_handler(ControlError)
    async def _control(_: Request, exc: ControlError) -> JSONResponse:
        return error_response(exc.status_code, str(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._refuse(scope, receive, send)
                    return
        # Bodies without a length (chunked) are read here, at most limit+1 bytes.
        chunks: list[Message] = []
        size = 0
        more = scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS")
        while more:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            more = bool(message.get("more_body", False))

        async def replay() -> Message:
            if chunks:
                return chunks.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"request body larger than {self.limit} bytes", headers={"Connection": "close"}
        )
        await response(scope, receive, send)
