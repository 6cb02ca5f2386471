"""/repos: the registry over HTTP (CRUD with ETags), sync now, and code-server logs.

Every GET here also answers HEAD (same auth, same errors, headers only), so the ETag
of a repo can be read with `curl -I`. Writes check `If-Match` with
`api.preconditions` first: an empty header is a 412 and a malformed one a 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from dagfleet.api.actor import acting
from dagfleet.api.auth import Admin, Read, needs
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.api.preconditions import check_if_match
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


def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description=(
                "The ETag you read (quoted, or *): 412 if the repo changed since, or if the "
                "header is empty; 400 if it is not a list of quoted entity-tags."
            ),
        ),
    ] = None,
) -> str | None:
    return check_if_match(if_match)


IfMatch = Annotated[str | None, Depends(_if_match)]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 403, 413, 422, *codes)}


_ETAG_HEADER = {"ETag": {"description": "Hash of the repo file", "schema": {"type": "string"}}}
# HEAD: the GET's status and headers, no body (errors are body-less too).
_HEAD_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "As for GET, without a body"} for code in (401, 403, 404, 422)
}
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


@router.head(
    "",
    dependencies=[Read],
    response_class=Response,
    responses={**_HEAD_ERRORS, 200: {"description": "As GET /repos, without a body"}},
)
def head_repos(ctx: Ctx) -> Response:
    ctx.service.list_repos()
    return Response(media_type="application/json")


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


@router.head(
    "/{name}",
    dependencies=[Read],
    response_class=Response,
    responses={
        **_HEAD_ERRORS,
        200: {"description": "The repo's ETag, without a body", "headers": _ETAG_HEADER},
    },
)
def head_repo(ctx: Ctx, name: RepoName) -> Response:
    """The repo's ETag (for If-Match) without its body."""
    repo = ctx.service.get_repo(name)
    return Response(media_type="application/json", headers={"ETag": repo.etag})


@router.put(
    "/{name}",
    dependencies=[RepoAdmin],
    responses={**_errors(400, 404, 412), 200: {"headers": _ETAG_HEADER}},
)
def replace_repo(
    request: Request, name: RepoName, body: RepoSpec, response: Response, if_match: IfMatch
) -> RepoResource:
    """Replace the repo file; send If-Match with the ETag you read to never lose an update."""
    doc = body.model_dump(mode="json", exclude_unset=True)
    return _tagged(acting(request).replace_repo(name, doc, if_match), response)


@router.patch(
    "/{name}",
    dependencies=[RepoAdmin],
    responses={**_errors(400, 404, 412), 200: {"headers": _ETAG_HEADER}},
)
def patch_repo(
    request: Request,
    name: RepoName,
    response: Response,
    body: Annotated[dict[str, Any], Body(description="JSON merge patch (RFC 7396)")],
    if_match: IfMatch,
) -> RepoResource:
    """Merge-patch the repo file, e.g. `{"suspend": true}` or `{"branch": "main"}`."""
    return _tagged(acting(request).patch_repo(name, body, if_match), response)


@router.delete("/{name}", dependencies=[RepoAdmin], responses=_errors(400, 404, 412))
def delete_repo(
    request: Request,
    name: RepoName,
    if_match: IfMatch,
    purge_data: Annotated[bool, Query(description="Also delete the repo's data")] = False,
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


@router.head(
    "/{name}/logs",
    dependencies=[Read],
    response_class=Response,
    responses={**_HEAD_ERRORS, 200: {"description": "As GET, without a body"}},
)
async def head_repo_logs(
    ctx: Ctx,
    name: RepoName,
    env: Annotated[str | None, Query(description="One environment (default: all)")] = None,
    tail: Annotated[int, Query(ge=0, le=100_000, description="Lines from the end")] = 100,
    follow_: Annotated[bool, Query(alias="follow", description="Stream new lines")] = False,
) -> Response:
    """Whether the repo's (or environment's) logs exist: GET's status and headers only."""
    await run_in_threadpool(ctx.service.log_paths, name, env)
    return Response(media_type="text/plain; charset=utf-8")
