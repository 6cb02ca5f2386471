"""Who a request acts for in the audit log: the principal the auth dependency found.

The auth dependency sets `request.state.principal` (a
`dagfleet.frontdoor.roles.Principal`); without one (no identity configured, on
loopback) the request is `anonymous` via `loopback`. Routes that change things
call `acting(request)` after their auth check: the fleet's service, recording for
that principal and address.
"""

from __future__ import annotations

from fastapi import Request

from dagfleet.api.context import ApiContext
from dagfleet.audit.models import Actor, Via
from dagfleet.frontdoor.roles import Principal
from dagfleet.service import FleetService

ANONYMOUS = Principal("anonymous", "loopback")


def actor_of(request: Request) -> Actor:
    """The request's principal as the audit log names it, with the client's address."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        principal = ANONYMOUS
    client = request.client.host if request.client else None
    return Actor(principal.name, Via(principal.via), client)


def acting(request: Request) -> FleetService:
    """The fleet's service, recording changes for this request's principal."""
    ctx: ApiContext = request.app.state.ctx
    return ctx.service.acting(actor_of(request))


def webhook_actor(provider: str, request: Request) -> Actor:
    """A signed push webhook: the provider's name, via `webhook`."""
    client = request.client.host if request.client else None
    return Actor(f"{provider}-webhook", Via.WEBHOOK, client)
