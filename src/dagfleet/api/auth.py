"""Who is calling, and may they: the front door's principals and roles on every route.

A caller is a bearer token (DAGFLEET_API_TOKENS, or `.dagfleet/api.token` for the
CLI on this machine), or the front door's session cookie (the status page in a
browser), or — with no identity configured and a loopback bind — the local
admin. Reads need the viewer role somewhere; each change names the action and,
where it has one, the location, repository or environment it acts on, so scoped
grants apply (see frontdoor/roles.py). The principal is left on
`request.state.principal` for the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dagfleet.api.context import ApiContext
from dagfleet.frontdoor.roles import Action, Principal, Target, denial
from dagfleet.frontdoor.sessions import COOKIE, same_origin

bearer = HTTPBearer(auto_error=False, description="A token from DAGFLEET_API_TOKENS")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def principal_of(request: Request) -> Principal | None:
    """The caller, or None when they are nobody here (no or a wrong credential)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    ctx: ApiContext = request.app.state.ctx
    principal, session = ctx.keeper.who(
        request.headers.get("authorization", ""), request.cookies.get(COOKIE)
    )
    if principal is None:
        return None
    if session is not None and request.method not in _SAFE:
        host = request.headers.get("host", "")
        if not same_origin({k.lower(): v for k, v in request.headers.items()}, host):
            raise HTTPException(403, "cross-site request refused: send it from this site's pages")
    request.state.principal = principal
    return principal


def authenticated(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None:
        sent = request.headers.get("authorization", "")[:7].lower() == "bearer "
        raise HTTPException(
            401,
            "unknown bearer token"
            if sent
            else "missing bearer token: send 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )
    return principal


def check(request: Request, action: Action, targets: Iterable[Target | None]) -> Principal:
    """Raise 401/403 unless the caller may do `action` on every target (None: fleet-wide)."""
    principal = authenticated(request)
    for target in targets:
        if not principal.may(action, target):
            raise HTTPException(403, denial(principal, action, target))
    return principal


def _repo_targets(ctx: ApiContext, repo: str, env: str | None) -> list[Target]:
    """A repository's locations (in `env` only, when given); none known: fleet-wide."""
    keeper = ctx.keeper.identities
    fleet = keeper.fleet()
    targets = [
        keeper.target(loc.name)
        for loc in fleet.locations()
        if loc.repo == repo and (env is None or loc.env == env)
    ]
    if targets:
        return targets
    envs = [env] if env else [e.name for e in fleet.spec.environments]
    return [Target(f"{repo}-{e}", repo, e) for e in envs]


def needs(
    action: Action,
    *,
    location: str | None = None,
    repo: str | None = None,
    env: str | None = None,
    playground: str | None = None,
) -> Any:
    """A route dependency: `action` on the location / repo / environment named by these
    path (or query) parameters; with none of them, anywhere for reads and fleet-wide
    for changes."""

    def targets(request: Request) -> list[Target | None]:
        params = {**request.query_params, **request.path_params}
        ctx: ApiContext = request.app.state.ctx
        if location is not None:
            return [ctx.keeper.identities.target(str(params[location]))]
        if playground is not None:
            e = str(params[playground])
            return [Target(f"playground-{e}", "playground", e)]
        if repo is not None:
            return list(_repo_targets(ctx, str(params[repo]), params.get(env) if env else None))
        if env is not None and params.get(env):
            e = str(params[env])
            fleet = ctx.keeper.identities.fleet()
            return [
                ctx.keeper.identities.target(loc.name) for loc in fleet.locations() if loc.env == e
            ]
        return [None]

    async def dependency(request: Request) -> None:
        if action is Action.VIEW and not (location or repo or env or playground):
            principal = authenticated(request)
            if not principal.may_anywhere(Action.VIEW):
                raise HTTPException(403, denial(principal, Action.VIEW, None))
            return
        check(request, action, targets(request))

    return Depends(dependency)


def repo_targets(request: Request, repo: str, env: str | None) -> list[Target]:
    """A repository's locations in `env` (every environment when None), for checks made
    inside a route whose targets are in the body."""
    return _repo_targets(request.app.state.ctx, repo, env)


Read = needs(Action.VIEW)
Admin = needs(Action.ADMIN)
