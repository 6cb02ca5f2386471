"""The status page at `/`: every location at a glance, updated in place, with actions.

`GET /` is server-rendered with the data in it, so the first paint needs no
fetch. Its script (static/status.js) then polls `GET /api/v1/locations` with
If-None-Match every 2 s: an unchanged fleet costs a 304 with no body, and only
a change fetches the re-rendered fragment (`GET /page/fleet`), so the markup is
made (and escaped) in one place, `page_html`. Polling rather than SSE: it
needs no long-lived connection per open tab, works through every proxy, and
the locations route already serves many pollers from one cached body.

Auth follows the data routes: with tokens configured, `/` without a valid
bearer token holds no fleet data, only a sign-in form (the token is kept in
sessionStorage and sent as `Authorization: Bearer`); the actions appear only
for an admin token. Without tokens (loopback only) everything is open.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from dagfleet.api.auth import authenticated, principal_of
from dagfleet.api.context import ApiContext, get_ctx
from dagfleet.api.page_html import PageView, commit_base, render_fleet, render_page
from dagfleet.api.routes_fleet import locations_etag
from dagfleet.api.settings import Role

STATIC = Path(__file__).with_name("static")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Ctx = Annotated[ApiContext, Depends(get_ctx)]
router = APIRouter(include_in_schema=False)
# script-src 'self': even a markup bug could not run an inline script.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Links:
    """repo -> commit URL base, re-read only when the repos directory changes.

    Only `name` and `git_url` are read, with the C YAML loader: validating every repo
    file (the registry's way) costs 70 ms for 100 repos, and a link is cosmetic; a
    file the loader rejects simply gets no link.
    """

    def __init__(self, repos_dir: Path) -> None:
        self.repos_dir = repos_dir
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._links: dict[str, str] = {}

    def get(self) -> dict[str, str]:
        try:
            st = self.repos_dir.stat()
            key: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except OSError:
            key = None
        with self._lock:
            if key is None or key != self._key:
                self._links, self._key = self._read(), key
            return self._links

    def _read(self) -> dict[str, str]:
        links: dict[str, str] = {}
        for path in sorted(self.repos_dir.glob("*.y*ml")):
            try:
                doc = yaml.load(path.read_bytes(), Loader=_LOADER)
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("git_url"), str):
                base = commit_base(doc["git_url"])
                if base is not None:
                    links[str(doc.get("name", path.stem))] = base
        return links


def _role(request: Request) -> Role | None:
    """The caller's strongest role; None when they are nobody here (or hold no role)."""
    principal = principal_of(request)
    return None if principal is None else principal.strongest()


async def _view(request: Request, ctx: ApiContext, role: Role | None) -> PageView:
    tokens = not ctx.keeper.open_door()
    name = ctx.identity.name
    if role is None:
        return PageView(fleet=name, role=None, tokens=tokens)
    if not ctx.statuses.fresh():
        await run_in_threadpool(ctx.statuses.refresh)
    statuses, body = ctx.statuses.get()
    links: _Links = request.app.state.page_links

    # The promote form offers the environments that have locations, in the fleet's order
    # (the controllers sort statuses by it): no read of fleet.yaml per render.
    envs = list(dict.fromkeys(s.env for s in statuses if s.repo != "playground"))
    repo_links = await run_in_threadpool(links.get)
    return PageView(
        fleet=name,
        role=role,
        tokens=tokens,
        statuses=statuses,
        links=repo_links,
        environments=envs,
        etag=locations_etag(body),
    )


@router.get("/")
async def status_page(request: Request, ctx: Ctx) -> Response:
    """The page; a browser sends the front door's session cookie, `curl -H` a bearer token."""
    view = await _view(request, ctx, _role(request))
    return Response(render_page(view), media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/page/fleet")
async def fleet_fragment(request: Request, ctx: Ctx) -> Response:
    """The updating part of the page, for the page's script (same auth as /locations)."""
    role = authenticated(request).strongest()
    if role is None:
        raise HTTPException(403, "you hold no role in this fleet: ask an admin for one")
    view = await _view(request, ctx, role)
    headers = {**_HEADERS, "ETag": view.etag}
    return Response(render_fleet(view), media_type="text/html; charset=utf-8", headers=headers)


def install(app: FastAPI) -> None:
    """Serve the page at `/` and its two static files under `/static`."""
    ctx: ApiContext = app.state.ctx
    app.state.page_links = _Links(ctx.service.registry.repos_dir)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
