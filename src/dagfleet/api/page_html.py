"""The status page's HTML: pure functions from statuses to escaped markup.

Every string that comes from a repo file, a commit or an error message goes
through `html.escape`; the page's script inserts nothing but this markup (and
history entries through `textContent`), so escaping lives here only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dagfleet.api.settings import Role
from dagfleet.status import LocationStatus

_SCP = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>[^/].*)$")  # git@host:owner/repo.git
_OWNER_REPO = re.compile(r"^/[\w.-]+/[\w.-]+?(\.git)?/?$")
_COMMIT_PATH = {
    "github.com": "/commit/",
    "gitlab.com": "/-/commit/",
    "bitbucket.org": "/commits/",
}
_MARK = {"True": "✓", "False": "✗", "Unknown": "…"}


def commit_base(git_url: str) -> str | None:
    """The URL that a commit SHA completes into its web page, or None for unknown hosts.

    github.com, gitlab.com and bitbucket.org over https, ssh or scp-like syntax;
    any other https remote whose path is owner/repo[.git] is taken for a Gitea-like
    host (`/owner/repo/commit/<sha>`). file:// and local paths have no web page.
    """
    scp = _SCP.match(git_url)
    if scp is not None:
        host, path, scheme = scp["host"].lower(), "/" + scp["path"], "ssh"
    else:
        parts = urlsplit(git_url)
        host, path, scheme = (parts.hostname or "").lower(), parts.path, parts.scheme
    path = path.rstrip("/").removesuffix(".git")
    if not host or path.count("/") < 2 or any(not p for p in path.split("/")[1:]):
        return None
    if host in _COMMIT_PATH and scheme in ("https", "ssh", "git+ssh"):
        return f"https://{host}{path}{_COMMIT_PATH[host]}"
    if scheme == "https" and _OWNER_REPO.match(path):
        port = urlsplit(git_url).port
        return f"https://{host}{f':{port}' if port else ''}{path}/commit/"
    return None


@dataclass(frozen=True)
class PageView:
    """What one render of the page shows; `role` None means "ask for a token first"."""

    fleet: str
    role: Role | None
    tokens: bool  # tokens are configured (otherwise the API is open on loopback)
    statuses: Sequence[LocationStatus] = ()
    links: Mapping[str, str] = field(default_factory=dict)  # repo -> commit_base
    environments: Sequence[str] = ()
    etag: str = ""

    @property
    def admin(self) -> bool:
        """May act (sync, promote, roll back): editor or admin."""
        return self.role in ("editor", "admin")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _condition(status: LocationStatus, type_: str) -> str:
    c = status.condition(type_)
    if c is None:
        return '<span class="st st-Unknown">… Unknown</span>'
    words = {"Ready": ("Ready", "Not ready"), "Synced": ("Synced", "Not synced")}[type_]
    word = {"True": words[0], "False": words[1]}.get(c.status, "Unknown")
    out = f'<span class="st st-{_e(c.status)}">{_MARK.get(c.status, "")} {word}</span>'
    out += f' <span class="reason">{_e(c.reason)}</span>'
    if c.message:
        out += f'<span class="msg">{_e(c.message)}</span>'
    return out


def _commit(status: LocationStatus, links: Mapping[str, str]) -> str:
    if not status.commit:
        return '<span class="none">none</span>'
    short = f"<code>{_e(status.commit[:12])}</code>"
    base = links.get(status.repo)
    if base is None:
        return f'<span title="{_e(status.commit)}">{short}</span>'
    return f'<a href="{_e(base + status.commit)}">{short}</a>'


def _time(iso: str | None) -> str:
    if not iso:
        return '<span class="none">never</span>'
    shown = iso.replace("T", " ").replace("+00:00", " UTC")
    return f'<time datetime="{_e(iso)}">{_e(shown)}</time>'


def _actions(status: LocationStatus, view: PageView, playground: bool) -> str:
    # The row carries the location, repo and environment; a button only names its action.
    name = _e(status.location)
    out = f'<button data-action="history" aria-label="History of {name}">History</button>'
    if view.admin and not playground:
        out += (
            f' <button data-action="sync" aria-label="Sync {name}">Sync</button>'
            f' <button data-action="rollback" aria-label="Roll back {name}">Roll back</button>'
        )
    return out


def _summary(status: LocationStatus) -> str:
    """One sentence for screen readers when the row changes (aria-live)."""
    parts = [status.location]
    for type_ in ("Ready", "Synced"):
        c = status.condition(type_)
        if c is not None:
            parts.append(f"{type_} {c.status} {c.reason}")
    if status.commit:
        parts.append(f"commit {status.commit[:12]}")
    return ", ".join(parts)


def _row(status: LocationStatus, view: PageView, playground: bool) -> str:
    # Cells in _COLUMNS order; under 640px the stylesheet labels them by position.
    cells = (
        _e(status.env),
        f"<code>{_e(status.ref)}</code>" if status.ref else "—",
        _commit(status, view.links),
        _condition(status, "Ready"),
        _condition(status, "Synced"),
        _time(status.last_sync),
        _e(status.debug_port) if status.debug_port else "—",
        _actions(status, view, playground),
    )
    tds = "".join(f"<td>{content}</td>" for content in cells)
    ready = "ready" if status.ready else "not-ready"
    return (
        f'<tr id="loc-{_e(status.location)}" class="{ready}" data-repo="{_e(status.repo)}" '
        f'data-env="{_e(status.env)}" data-summary="{_e(_summary(status))}">'
        f'<th scope="row">{_e(status.location)}</th>{tds}</tr>'
    )


_COLUMNS = (
    "Location",
    "Environment",
    "Branch",
    "Live commit",
    "Ready",
    "Synced",
    "Last attempt",
    "Debug port",
    "Actions",
)
_HEAD = "".join(f'<th scope="col">{h}</th>' for h in _COLUMNS)


def _table(
    caption: str, statuses: Sequence[LocationStatus], view: PageView, playground: bool
) -> str:
    if not statuses:
        return f'<p class="empty">{_e(caption)}: none.</p>'
    ready = sum(1 for s in statuses if s.ready)
    rows = "".join(_row(s, view, playground) for s in statuses)
    return (
        f"<table><caption>{_e(caption)} ({ready} of {len(statuses)} Ready)</caption>"
        f"<thead><tr>{_HEAD}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _options(values: Sequence[str]) -> str:
    return "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def _promote_form(view: PageView) -> str:
    repos = sorted({s.repo for s in view.statuses if s.repo != "playground"})
    envs = list(view.environments)
    if not view.admin or not repos or len(envs) < 2:
        return ""
    return (
        '<form id="promote" class="promote" aria-labelledby="promote-title">'
        '<h2 id="promote-title">Promote</h2>'
        "<p>Move the target environment's branch to the commit live and Ready in the source.</p>"
        f'<label>Repo <select name="repo">{_options(repos)}</select></label> '
        f'<label>From <select name="source">{_options(envs)}</select></label> '
        f'<label>To <select name="target">{_options(envs[1:] + envs[:1])}</select></label> '
        '<button type="submit">Promote</button></form>'
    )


def render_fleet(view: PageView) -> str:
    """The part of the page that updates: both tables and the promote form."""
    repos = [s for s in view.statuses if s.repo != "playground"]
    playgrounds = [s for s in view.statuses if s.repo == "playground"]
    return (
        _table("Locations", repos, view, False)
        + (_table("Playground locations", playgrounds, view, True) if playgrounds else "")
        + _promote_form(view)
    )


def _who(view: PageView) -> str:
    if not view.tokens:
        return "No API tokens are configured: the API is open on this machine only."
    if view.role is None:
        return "Sign in with an API token to see the fleet."
    can = "read and change" if view.admin else "read only"
    return f"Signed in as {_e(view.role)} ({can})."


_SIGNIN = (
    '<form id="signin" class="signin"><h2>Sign in</h2>'
    "<p>Tokens come from DAGFLEET_API_TOKENS; this tab keeps yours until it closes.</p>"
    '<label for="token">API token</label> '
    '<input id="token" name="token" type="password" autocomplete="off" required> '
    '<button type="submit">Sign in</button></form>'
)


def render_page(view: PageView) -> str:
    """The whole document; with a role it already holds every location (no fetch needed)."""
    signed_out = view.tokens and view.role is None
    fleet = "" if signed_out else render_fleet(view)
    signout = (
        ' <button type="button" id="signout">Sign out</button>'
        if view.tokens and not signed_out
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(view.fleet)} · dagfleet</title>"
        '<link rel="stylesheet" href="/static/status.css">'
        '<script src="/static/status.js" defer></script></head>'
        f'<body data-tokens="{"1" if view.tokens else "0"}">'
        '<a class="skip" href="#fleet">Skip to the locations</a>'
        f"<header><h1>{_e(view.fleet)} <span>dagfleet status</span></h1>"
        f'<p id="who">{_who(view)}{signout}</p>'
        '<p id="updated" class="updated"></p></header>'
        f"<main>{_SIGNIN if signed_out else ''}"
        '<p id="action-result" role="status"></p>'
        '<div id="announce" class="visually-hidden" aria-live="polite"></div>'
        f'<div id="fleet" data-etag="{_e(view.etag)}">{fleet}</div>'
        '<section id="history" hidden aria-labelledby="history-title">'
        '<h2 id="history-title" tabindex="-1">History</h2><div id="history-body"></div>'
        "</section></main></body></html>"
    )
