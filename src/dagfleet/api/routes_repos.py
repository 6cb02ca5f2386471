"""/repos: the registry over HTTP (CRUD with ETags), sync now, and code-server logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from dagfleet.api.auth import Admin, Read
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.api.logs import follow, tail_many
from dagfleet.api.models import DeleteResult, ErrorBody, RepoResource, SyncOutcomeOut, SyncResult
from dagfleet.registry import NotFound, RepoEntry
from dagfleet.spec import RepoSpec

Ctx = Annotated[ApiContext, Depends(get_ctx)]
RepoName = Annotated[
    str,
    Path(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        max_length=40,
        description="Repo name",
        examples=["medallion"],
    ),
]
IfMatch = Annotated[
    str | None, Header(description="The ETag you read; the write fails with 412 if it changed.")
]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 403, 413, 422, *codes)}


_ETAG_HEADER = {"ETag": {"description": "Hash of the repo file", "schema": {"type": "string"}}}
router = APIRouter(prefix="/repos", tags=["repos"])


def _resource(ctx: ApiContext, entry: RepoEntry) -> RepoResource:
    return RepoResource(
        name=entry.spec.name,
        etag=entry.etag,
        suspended=entry.spec.suspend,
        locations=ctx.registry.locations(entry.spec),
        spec=entry.spec,
    )


def _written(ctx: ApiContext, entry: RepoEntry, response: Response) -> RepoResource:
    ctx.changed()
    response.headers["ETag"] = entry.etag
    return _resource(ctx, entry)


@router.get("", dependencies=[Read], responses=_errors())
def list_repos(ctx: Ctx) -> list[RepoResource]:
    """Every registered repo, suspended ones included."""
    fleet = ctx.registry.fleet_spec()
    return [
        RepoResource(
            name=e.spec.name,
            etag=e.etag,
            suspended=e.spec.suspend,
            locations=ctx.registry.locations(e.spec, fleet),
            spec=e.spec,
        )
        for e in ctx.registry.list()
    ]


@router.post(
    "",
    status_code=201,
    dependencies=[Admin],
    responses={**_errors(409), 201: {"headers": _ETAG_HEADER}},
)
def create_repo(ctx: Ctx, body: RepoSpec, response: Response) -> RepoResource:
    """Register a repo; its locations start syncing at once."""
    entry = ctx.registry.create(body.model_dump(mode="json", exclude_unset=True))
    response.headers["Location"] = f"/api/v1/repos/{entry.spec.name}"
    return _written(ctx, entry, response)


@router.get(
    "/{name}", dependencies=[Read], responses={**_errors(404), 200: {"headers": _ETAG_HEADER}}
)
def get_repo(ctx: Ctx, name: RepoName, response: Response) -> RepoResource:
    entry = ctx.registry.get(name)
    response.headers["ETag"] = entry.etag
    return _resource(ctx, entry)


@router.put(
    "/{name}", dependencies=[Admin], responses={**_errors(404, 412), 200: {"headers": _ETAG_HEADER}}
)
def replace_repo(
    ctx: Ctx, name: RepoName, body: RepoSpec, response: Response, if_match: IfMatch = None
) -> RepoResource:
    """Replace the repo file; send If-Match with the ETag you read to never lose an update."""
    entry = ctx.registry.replace(name, body.model_dump(mode="json", exclude_unset=True), if_match)
    return _written(ctx, entry, response)


@router.patch(
    "/{name}", dependencies=[Admin], responses={**_errors(404, 412), 200: {"headers": _ETAG_HEADER}}
)
def patch_repo(
    ctx: Ctx,
    name: RepoName,
    response: Response,
    body: Annotated[dict[str, Any], Body(description="JSON merge patch (RFC 7396)")],
    if_match: IfMatch = None,
) -> RepoResource:
    """Merge-patch the repo file, e.g. `{"suspend": true}` or `{"branch": "main"}`."""
    entry = ctx.registry.patch(name, body, if_match)
    return _written(ctx, entry, response)


@router.delete("/{name}", dependencies=[Admin], responses=_errors(404, 412))
def delete_repo(
    ctx: Ctx,
    name: RepoName,
    purge_data: Annotated[bool, Query(description="Also delete the repo's data")] = False,
    if_match: IfMatch = None,
) -> DeleteResult:
    """Unregister a repo: its code servers stop; its data stays unless purge_data=true."""
    spec = ctx.registry.delete(name, if_match)
    ctx.changed()
    removed, notes = ctx.registry.purge_data(spec) if purge_data else ([], [])
    return DeleteResult(name=spec.name, purged=purge_data, purged_paths=removed, notes=notes)


@router.post("/{name}/sync", dependencies=[Admin], responses=_errors(404, 503))
def sync_repo(
    ctx: Ctx,
    name: RepoName,
    env: Annotated[str | None, Query(description="Only this environment")] = None,
    wait: Annotated[bool, Query(description="Return once each sync has finished")] = True,
) -> SyncResult:
    """Sync the repo's locations now (fetch, install, load check, publish)."""
    ctx.registry.get(name)
    ctx.registry.check_env(env)
    outcomes = ctx.controller.sync(name, env, wait)
    ctx.statuses.invalidate()
    return SyncResult(repo=name, outcomes=[SyncOutcomeOut.of(o) for o in outcomes])


@router.get(
    "/{name}/logs",
    dependencies=[Read],
    response_class=StreamingResponse,
    responses={
        **_errors(404),
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Log"},
    },
)
async def repo_logs(
    request: Request,
    ctx: Ctx,
    name: RepoName,
    env: Annotated[str | None, Query(description="One environment (default: all)")] = None,
    tail: Annotated[int, Query(ge=0, le=100_000, description="Lines from the end")] = 100,
    follow_: Annotated[bool, Query(alias="follow", description="Stream new lines")] = False,
) -> Response:
    """Code-server output of the repo's locations; each line names its location when several."""
    entry = await run_in_threadpool(ctx.registry.get, name)
    await run_in_threadpool(ctx.registry.check_env, env)
    locations = ctx.registry.locations_in(entry.spec, env)
    if not locations:
        raise NotFound(f"repo {name!r} has no location in environment {env!r}")
    paths = {loc: ctx.layout.log(loc) for loc in locations}
    if not follow_:
        data, _ = await run_in_threadpool(tail_many, paths, tail)
        return Response(data, media_type="text/plain; charset=utf-8")

    settings = ctx.settings

    def done() -> bool:
        return ctx.stopping.is_set()

    async def stream() -> Any:
        async for chunk in follow(
            paths, tail, settings.follow_poll_seconds, done, settings.follow_max_seconds
        ):
            if await request.is_disconnected():
                return
            yield chunk

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")
