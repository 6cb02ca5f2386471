"""/playground: the files of an environment's playground location, over HTTP.

The rules and the directory operations are the service's (`dagfleet.service.playground`);
a write here also wakes the playground loop so the new files are served within seconds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool

from dagfleet.api.actor import acting
from dagfleet.api.auth import Read, needs
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.frontdoor.roles import Action
from dagfleet.service.models import ErrorBody
from dagfleet.service.playground import (
    PlaygroundDelete,
    PlaygroundFiles,
    PlaygroundListing,
    PlaygroundWrite,
)

Ctx = Annotated[ApiContext, Depends(get_ctx)]
EnvName = Annotated[str, PathParam(description="Environment", examples=["A"])]
# `:path` so that names with slashes reach the validator and get its message (not a bare 404).
FileName = Annotated[str, PathParam(description="File name", examples=["my_assets.py"])]
router = APIRouter(prefix="/playground", tags=["playground"])
_PYTHON = {"content": {"text/x-python": {"schema": {"type": "string"}}}, "description": "Source"}


PlaygroundEdit = needs(Action.EDIT, playground="env")  # files of playground-<env>


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, *codes)}


def _files(ctx: ApiContext, env: str) -> PlaygroundFiles:
    return ctx.service.playground(env)


@router.get("/{env}", dependencies=[Read], responses=_errors())
def list_files(ctx: Ctx, env: EnvName) -> PlaygroundListing:
    """The user files in the environment's playground (the generated loader is not listed)."""
    return _files(ctx, env).list()


@router.get(
    "/{env}/{file:path}",
    dependencies=[Read],
    response_class=Response,
    responses={**_errors(), 200: _PYTHON},
)
def get_file(ctx: Ctx, env: EnvName, file: FileName) -> Response:
    return Response(_files(ctx, env).read(file), media_type="text/x-python; charset=utf-8")


@router.put(
    "/{env}/{file:path}",
    dependencies=[PlaygroundEdit],
    responses={**_errors(413), 201: {"model": PlaygroundWrite, "description": "Created"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/x-python": {"schema": {"type": "string"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def put_file(
    request: Request, ctx: Ctx, env: EnvName, file: FileName, response: Response
) -> PlaygroundWrite:
    """Create or replace a file (raw body); the playground location serves it within seconds."""
    service = acting(request)
    files = await run_in_threadpool(service.playground, env)
    files.path(file)  # refuse a bad name before reading the body
    data = await request.body()
    written = await run_in_threadpool(files.write, file, data)
    service.playground_changed(env)
    response.status_code = 201 if written.created else 200
    return written


@router.delete("/{env}/{file:path}", dependencies=[PlaygroundEdit], responses=_errors())
def delete_file(request: Request, env: EnvName, file: FileName) -> PlaygroundDelete:
    service = acting(request)
    deleted = service.playground(env).delete(file)
    service.playground_changed(env)
    return deleted
