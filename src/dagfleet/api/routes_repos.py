"""/repos: the registry over HTTP (CRUD with ETags), sync now, and code-server logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from dagfleet.api.actor import acting
from dagfleet.api.auth import Admin, Read, needs
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.frontdoor.roles import Action
from dagfleet.service.logs import follow, tail_many
from dagfleet.service.models import DeleteResult, ErrorBody, RepoResource, SyncResult
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


def _tagged(repo: RepoResource, response: Response) -> RepoResource:
    response.headers["ETag"] = repo.etag
    return repo


# A repo's own admin (a grant scoped to it) may change or remove it; syncing is an
# editor's action on the repo's locations (in `env` only, when given).
RepoAdmin = needs(Action.ADMIN, repo="name")
RepoSync = needs(Action.EDIT, repo="name", env="env")


@router.get("", dependencies=[Read], responses=_errors())
def list_repos(ctx: Ctx) -> list[RepoResource]:
    """Every registered repo, suspended ones included."""
    return ctx.service.list_repos()


@router.post(
    "",
    status_code=201,
    dependencies=[Admin],
    responses={**_errors(409), 201: {"headers": _ETAG_HEADER}},
)
def create_repo(request: Request, body: RepoSpec, response: Response) -> RepoResource:
    """Register a repo; its locations start syncing at once."""
    repo = acting(request).create_repo(body.model_dump(mode="json", exclude_unset=True))
    response.headers["Location"] = f"/api/v1/repos/{repo.name}"
    return _tagged(repo, response)


@router.get(
    "/{name}", dependencies=[Read], responses={**_errors(404), 200: {"headers": _ETAG_HEADER}}
)
def get_repo(ctx: Ctx, name: RepoName, response: Response) -> RepoResource:
    return _tagged(ctx.service.get_repo(name), response)


@router.put(
    "/{name}",
    dependencies=[RepoAdmin],
    responses={**_errors(404, 412), 200: {"headers": _ETAG_HEADER}},
)
def replace_repo(
    request: Request, name: RepoName, body: RepoSpec, response: Response, if_match: IfMatch = None
) -> RepoResource:
    """Replace the repo file; send If-Match with the ETag you read to never lose an update."""
    doc = body.model_dump(mode="json", exclude_unset=True)
    return _tagged(acting(request).replace_repo(name, doc, if_match), response)


@router.patch(
    "/{name}",
    dependencies=[RepoAdmin],
    responses={**_errors(404, 412), 200: {"headers": _ETAG_HEADER}},
)
def patch_repo(
    request: Request,
    name: RepoName,
    response: Response,
    body: Annotated[dict[str, Any], Body(description="JSON merge patch (RFC 7396)")],
    if_match: IfMatch = None,
) -> RepoResource:
    """Merge-patch the repo file, e.g. `{"suspend": true}` or `{"branch": "main"}`."""
    return _tagged(acting(request).patch_repo(name, body, if_match), response)


@router.delete("/{name}", dependencies=[RepoAdmin], responses=_errors(404, 412))
def delete_repo(
    request: Request,
    name: RepoName,
    purge_data: Annotated[bool, Query(description="Also delete the repo's data")] = False,
    if_match: IfMatch = None,
) -> DeleteResult:
    """Unregister a repo: its code servers stop; its data stays unless purge_data=true."""
    return acting(request).delete_repo(name, purge_data, if_match)


@router.post("/{name}/sync", dependencies=[RepoSync], responses=_errors(404, 503))
def sync_repo(
    request: Request,
    name: RepoName,
    env: Annotated[str | None, Query(description="Only this environment")] = None,
    wait: Annotated[bool, Query(description="Return once each sync has finished")] = True,
) -> SyncResult:
    """Sync the repo's locations now (fetch, install, load check, publish)."""
    return acting(request).sync_repo(name, env, wait)


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
    paths = await run_in_threadpool(ctx.service.log_paths, name, env)
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
