"""The front door's own pages: sign in, sign out, refused. Plain HTML, no scripts."""

from __future__ import annotations

from html import escape

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;background:#f6f7f9;color:#1f2328;margin:0}
main{max-width:22rem;margin:12vh auto;background:#fff;border:1px solid #d8dee4;
border-radius:8px;padding:1.6rem 1.8rem}
h1{font-size:1.2rem;margin:0 0 1rem}
label{display:block;margin:.7rem 0 .2rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.45rem .5rem;border:1px solid #c9d1d9;
border-radius:5px;font:inherit}
button,.button{display:block;width:100%;margin-top:1.1rem;padding:.55rem;border:0;
border-radius:5px;background:#4f43dd;color:#fff;font:inherit;font-weight:600;
text-align:center;text-decoration:none;cursor:pointer}
.sso{background:#24292f}.error{color:#b42318;margin:.3rem 0 .6rem}
.note{color:#57606a;font-size:.85rem;margin-top:1rem}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def login_page(
    fleet: str,
    csrf: str,
    next_path: str,
    passwords: bool,
    sso: bool,
    error: str | None = None,
) -> str:
    parts = [f"<h1>Sign in to {escape(fleet)}</h1>"]
    if error:
        parts.append(f"<p class=error role=alert id=error>{escape(error)}</p>")
    if passwords:
        parts.append(
            '<form method=post action="/auth/login">'
            f'<input type=hidden name=csrf value="{escape(csrf)}">'
            f'<input type=hidden name=next value="{escape(next_path)}">'
            "<label for=username>User</label>"
            "<input id=username name=username autocomplete=username required autofocus>"
            "<label for=password>Password</label>"
            "<input id=password name=password type=password autocomplete=current-password required>"
            "<button type=submit id=signin>Sign in</button></form>"
        )
    if sso:
        href = "/auth/oidc/login?next=" + escape(next_path, quote=True)
        parts.append(f'<a class="button sso" id=sso href="{href}">Sign in with single sign-on</a>')
    if not passwords and not sso:
        parts.append("<p>Only API tokens are configured: send 'Authorization: Bearer TOKEN'.</p>")
    parts.append("<p class=note>dagfleet front door for the Dagster UI.</p>")
    return _page(f"Sign in · {fleet}", "".join(parts))


def logout_page(csrf: str, name: str) -> str:
    return _page(
        "Sign out",
        f"<h1>Signed in as {escape(name)}</h1>"
        '<form method=post action="/auth/logout">'
        f'<input type=hidden name=csrf value="{escape(csrf)}">'
        "<button type=submit id=signout>Sign out</button></form>",
    )


def refused_page(message: str) -> str:
    return _page(
        "Not allowed",
        f"<h1>Not allowed</h1><p class=error>{escape(message)}</p>"
        '<p class=note><a href="/auth/logout">Sign in as someone else</a></p>',
    )
