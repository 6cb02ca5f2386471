"""/audit: the audit log, newest first, filtered by actor, action, location and time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from dagfleet.api.auth import Read
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.audit.models import MAX_LIMIT, Action, AuditEntry
from dagfleet.service.models import ErrorBody

Ctx = Annotated[ApiContext, Depends(get_ctx)]
router = APIRouter(tags=["audit"])


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 403, 422, *codes)}


@router.get("/audit", dependencies=[Read], responses=_errors(400))
def audit_log(
    ctx: Ctx,
    actor: Annotated[str | None, Query(description="Only this actor (user or token name)")] = None,
    action: Annotated[Action | None, Query(description="Only this action")] = None,
    location: Annotated[str | None, Query(description="Only this location")] = None,
    since: Annotated[
        str | None,
        Query(description="From this time on: an age (30m, 2h, 7d, 1w), a date or an ISO time"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many")] = 100,
    before: Annotated[
        int | None,
        # Ids are 64-bit in every database the log lives in; a larger one overflowed SQLite.
        Query(ge=1, le=2**63 - 1, description="Only entries older than this id (the next page)"),
    ] = None,
) -> list[AuditEntry]:
    """Who launched, terminated, promoted, rolled back or changed a repository: newest first."""
    return ctx.service.audit(
        actor, action.value if action else None, location, since, limit, before
    )
