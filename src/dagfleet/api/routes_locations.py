"""/locations/{name}: publish history, rollback and unpin; /logs: the fleet's own logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from dagfleet.api.actor import acting
from dagfleet.api.auth import Read, needs
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.frontdoor.roles import Action
from dagfleet.history.models import PublishAttempt
from dagfleet.service.history import MAX_LIMIT
from dagfleet.service.logs import follow, tail_many
from dagfleet.service.models import ErrorBody
from dagfleet.service.rollback import PinResult, RollbackRequest

Ctx = Annotated[ApiContext, Depends(get_ctx)]
router = APIRouter()


LocationEdit = needs(Action.EDIT, location="name")  # rollback, unpin: an editor's, scoped


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 403, *codes)}


@router.get(
    "/locations/{name}/history", tags=["locations"], dependencies=[Read], responses=_errors(404)
)
def location_history(
    ctx: Ctx,
    name: str,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many")] = 20,
) -> list[PublishAttempt]:
    """The location's sync attempts, newest first: commit, author, step times, outcome."""
    return ctx.service.history(name, limit)


@router.post(
    "/locations/{name}/rollback",
    tags=["locations"],
    dependencies=[LocationEdit],
    responses=_errors(400, 404, 409, 413, 422),
)
def rollback(request: Request, name: str, body: RollbackRequest) -> PinResult:
    """Pin the location's repo and environment to an earlier commit and serve it now.

    `to` null: the commit live before the current one. A commit that never went live
    here must pass the load check first (409 if it fails; nothing is pinned).
    """
    return acting(request).rollback(name, body.to)


@router.post(
    "/locations/{name}/unpin",
    tags=["locations"],
    dependencies=[LocationEdit],
    responses=_errors(404),
)
def unpin(request: Request, name: str) -> PinResult:
    """Remove the pin of the location's repo and environment: follow the branch, synced now."""
    return acting(request).unpin(name)


@router.get(
    "/logs",
    tags=["health"],
    dependencies=[Read],
    response_class=StreamingResponse,
    responses={
        **_errors(404, 422),
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Log"},
    },
)
async def fleet_logs(
    request: Request,
    ctx: Ctx,
    source: Annotated[
        str | None,
        Query(description="dagfleet, webserver, daemon or a location (default: all)"),
    ] = None,
    tail: Annotated[int, Query(ge=0, le=100_000, description="Lines from the end")] = 100,
    follow_: Annotated[bool, Query(alias="follow", description="Stream new lines")] = False,
) -> Response:
    """The fleet's own logs; with several sources, each line names its source."""
    paths = await run_in_threadpool(ctx.service.fleet_log_paths, source)
    if not follow_:
        data, _ = await run_in_threadpool(tail_many, paths, tail)
        return Response(data, media_type="text/plain; charset=utf-8")
    settings = ctx.settings

    async def stream() -> Any:
        async for chunk in follow(
            paths,
            tail,
            settings.follow_poll_seconds,
            ctx.stopping.is_set,
            settings.follow_max_seconds,
        ):
            if await request.is_disconnected():
                return
            yield chunk

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")
