"""Bearer-token auth: `read` may look, `admin` may also change; compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dagfleet.api.context import ApiContext
from dagfleet.api.settings import Role

bearer = HTTPBearer(auto_error=False, description="A token from DAGFLEET_API_TOKENS")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def role_of(ctx: ApiContext, token: str) -> Role | None:
    """The token's role; every known token is compared so timing reveals nothing."""
    found: Role | None = None
    given = token.encode()
    for known, role in ctx.settings.tokens.items():
        if hmac.compare_digest(given, known.encode()):
            found = role
    return found


def _check(request: Request, creds: HTTPAuthorizationCredentials | None, need: Role) -> None:
    ctx: ApiContext = request.app.state.ctx
    if not ctx.settings.tokens:
        return  # no tokens: the server only listens on loopback (see settings.check_bind)
    if creds is None:
        raise HTTPException(
            401, "missing bearer token: send 'Authorization: Bearer <token>'", headers=_CHALLENGE
        )
    role = role_of(ctx, creds.credentials)
    if role is None:
        raise HTTPException(401, "unknown bearer token", headers=_CHALLENGE)
    if need == "admin" and role != "admin":
        raise HTTPException(403, "this token may only read: changes need an admin token")


# Async so FastAPI runs them on the event loop instead of handing them to a thread.
async def require_read(request: Request, creds: Credentials) -> None:
    _check(request, creds, "read")


async def require_admin(request: Request, creds: Credentials) -> None:
    _check(request, creds, "admin")


Read = Depends(require_read)
Admin = Depends(require_admin)
