"""Fleet-wide endpoints: identity, locations, environments, promotion, webhooks, health, metrics."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from dagfleet.api import metrics, webhook
from dagfleet.api.actor import acting, webhook_actor
from dagfleet.api.auth import Read, authenticated, check, repo_targets
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.api.errors import error_response
from dagfleet.api.models import Health, HookResult, WhoAmI
from dagfleet.control import ControlError, PromoteOutcome
from dagfleet.frontdoor.roles import Action
from dagfleet.registry import etag_of, matches
from dagfleet.service.models import EnvironmentOut, ErrorBody, FleetIdentity, PromoteRequest
from dagfleet.status import LocationStatus

Ctx = Annotated[ApiContext, Depends(get_ctx)]
router = APIRouter()


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 403, *codes)}


async def _statuses(ctx: ApiContext) -> tuple[list[LocationStatus], bytes]:
    if not ctx.statuses.fresh():
        await run_in_threadpool(ctx.statuses.refresh)
    return ctx.statuses.get()


@functools.lru_cache(maxsize=4)
def locations_etag(body: bytes) -> str:
    """The ETag of a /locations body; the cache hands back the same bytes while unchanged."""
    return etag_of(body)


@router.get(
    "/locations",
    tags=["locations"],
    dependencies=[Read],
    response_model=list[LocationStatus],
    responses={**_errors(), 304: {"description": "Unchanged since the ETag sent"}},
)
async def list_locations(
    ctx: Ctx,
    if_none_match: Annotated[
        str | None, Header(description="The ETag you read: 304 with no body if unchanged.")
    ] = None,
) -> Response:
    """Every location: environment, commit, last good commit, port, Dagster version, conditions."""
    _, body = await _statuses(ctx)
    etag = locations_etag(body)
    if if_none_match is not None and matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    # Pre-rendered JSON (validated when cached) so polling clients cost no re-serialisation.
    return Response(body, media_type="application/json", headers={"ETag": etag})


@router.get("/locations/{name}", tags=["locations"], dependencies=[Read], responses=_errors(404))
async def get_location(ctx: Ctx, name: str) -> LocationStatus:
    statuses, _ = await _statuses(ctx)
    for status in statuses:
        if status.location == name:
            return status
    raise ControlError(f"unknown location {name!r}: GET /api/v1/locations lists them", 404)


@router.get("/whoami", tags=["health"], dependencies=[Read], responses=_errors())
async def whoami(request: Request, ctx: Ctx) -> WhoAmI:
    """The caller: name, strongest role and grants (`admin` for everyone when no identity
    is configured and the API listens on loopback only)."""
    principal = authenticated(request)
    return WhoAmI(
        name=principal.name,
        role=principal.strongest() or "none",
        grants=[g.describe() for g in principal.grants],
        tokens=not ctx.keeper.open_door(),
    )


@router.get("/environments", tags=["environments"], dependencies=[Read], responses=_errors())
def list_environments(ctx: Ctx) -> list[EnvironmentOut]:
    return ctx.service.environments()


@router.get("/fleet", tags=["health"], dependencies=[Read], responses=_errors())
def fleet_identity(ctx: Ctx) -> FleetIdentity:
    """Which fleet this is: the CLI checks it before changing anything."""
    return ctx.service.identity()


@router.post("/promote", tags=["repos"], responses=_errors(401, 403, 404, 409, 413, 422, 503))
def promote(request: Request, ctx: Ctx, body: PromoteRequest) -> PromoteOutcome:
    """Move target's branch to the commit live and Ready in source, and push it.
    An editor's action on the repo's locations in the target environment."""
    check(request, Action.EDIT, repo_targets(request, body.repo, body.target))
    return acting(request).promote(body)


@router.post(
    "/hooks/git",
    tags=["hooks"],
    status_code=200,
    response_model=HookResult,
    responses={
        202: {
            "model": HookResult,
            "description": "Ignored (not a push of a known repo/branch), or queued for "
            "release by the in-cluster dagfleet (`accepted`, `locations`)",
        },
        401: {"model": ErrorBody},
        413: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def git_hook(request: Request, ctx: Ctx) -> Any:
    """A push from GitHub, GitLab or Gitea: matching locations sync at once (dagfleet in
    the cluster with a deploy repository queues their release instead: 202).

    Every signature sent must verify; a delivery already received (same delivery id,
    or the same signed body, within the replay window) is a 200 that syncs nothing.
    """
    body = await request.body()
    try:
        provider = webhook.verify(request.headers, body, ctx.settings.webhook_secret)
    except webhook.BadSignature as exc:
        return error_response(401, str(exc))
    push = webhook.parse_push(provider, request.headers, body)
    keys = webhook.delivery_keys(provider, request.headers, body)
    replay = ctx.deliveries.replayed(provider, keys)
    if replay is not None:
        return _hook_result(push, replay.reason(), [], replay=True)
    try:
        return await _sync_push(request, ctx, push)
    except BaseException:
        ctx.deliveries.forget(provider, keys)  # not handled: the sender's retry must work
        raise


def _hook_result(
    push: webhook.Push,
    reason: str,
    repos: list[str],
    locations: list[str] | None = None,
    replay: bool = False,
) -> HookResult:
    return HookResult(
        accepted=bool(locations),
        provider=push.provider,
        event=push.event,
        repo=repos[0] if len(repos) == 1 else None,
        repos=repos,
        branch=push.branch,
        locations=locations or [],
        replay=replay,
        reason=reason,
    )


def _ignored(push: webhook.Push, reason: str, repos: list[str] | None = None) -> JSONResponse:
    return JSONResponse(_hook_result(push, reason, repos or []).model_dump(), status_code=202)


async def _sync_push(request: Request, ctx: ApiContext, push: webhook.Push) -> Any:
    """Sync the locations a verified, first-seen push concerns; name their repos once each."""
    if not webhook.is_push(push):
        return _ignored(push, f"event {push.event!r} is not a push")
    if push.branch is None:
        return _ignored(push, "not a branch push")
    entries = await run_in_threadpool(ctx.service.registry.list)
    repos = webhook.matching_repos(push, [e.spec for e in entries])
    if not repos:
        return _ignored(push, "no registered repo has this URL")
    hit: list[str] = []
    pusher = ctx.service.acting(webhook_actor(push.provider, request))
    # The runtime syncs every location of every repo with the URL: ask once per URL.
    for url in webhook.distinct_urls(repos):
        hit += await run_in_threadpool(pusher.push_received, url, push.branch)
    hit = webhook.unique(hit)
    if not hit:
        names = [r.name for r in repos]
        return _ignored(push, f"no location follows branch {push.branch!r}", names)
    envs = [env.name for env in ctx.service.registry.fleet_spec().environments]
    owners = [r.name for r in repos if {n for e in envs for n in r.location_names(e)} & set(hit)]
    if getattr(ctx.service.controller, "queues_pushes", False):  # in the cluster: releases
        queued = _hook_result(push, "queued for release (one at a time)", owners, locations=hit)
        return JSONResponse(queued.model_dump(), status_code=202)
    return _hook_result(push, "syncing", owners, locations=hit)


@router.get("/healthz", tags=["health"])
async def healthz(ctx: Ctx) -> Health:
    """Alive: the API answers, and says which fleet it serves (name and id, no secrets)."""
    identity = ctx.identity
    return Health(status="ok", fleet=identity.name, fleet_id=identity.id)


@router.get("/readyz", tags=["health"], response_model=Health, responses={503: {"model": Health}})
async def readyz(ctx: Ctx) -> Any:
    """Ready: the API answers and the Dagster instance is up."""
    if ctx.ready is not None and not ctx.ready():
        return JSONResponse(
            Health(status="starting", detail="the Dagster webserver is not ready yet").model_dump(),
            status_code=503,
        )
    return Health(status="ready")


@router.get(
    "/metrics",
    tags=["health"],
    dependencies=[Read],
    response_class=Response,
    responses={
        **_errors(),
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"},
    },
)
async def prometheus(ctx: Ctx) -> Response:
    """Prometheus text format: per-location ready, sync duration, last success, failures."""
    statuses, _ = await _statuses(ctx)
    body = metrics.render(lambda: statuses, ctx.service.alerts)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
