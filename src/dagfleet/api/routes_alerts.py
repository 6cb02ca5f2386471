"""/alerts: the alert channels' delivery health and the open alert episodes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from dagfleet.alerts.model import AlertsReport
from dagfleet.api.auth import Read
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.service.models import ErrorBody

Ctx = Annotated[ApiContext, Depends(get_ctx)]
router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


@router.get("/alerts", tags=["alerts"], dependencies=[Read], responses=_ERRORS)
async def alerts(ctx: Ctx) -> AlertsReport:
    """Each channel (up, queued, sent, failures, last success and error) and every open
    episode (policy, event, location, since when). See docs/alerts.md."""
    return await run_in_threadpool(ctx.service.alerts)
