"""A real OpenID Connect provider for tests (oidc-provider on Node), and a user who signs in.

    with running_provider(tmp_path, clients=standard_clients(redirect_uri)) as idp:
        spec = OidcSpec(issuer=idp.issuer, client_id=CONFIDENTIAL_ID, ...)
        ...
        callback = login(httpx.Client(), authorize_url, "alice", USERS["alice"]["password"])

As a fixture (in a test module or tests/conftest.py):

    @pytest.fixture
    def oidc_provider(tmp_path: Path) -> Iterator[OidcProvider]:
        with running_provider(tmp_path, standard_clients(REDIRECT_URI)) as idp:
            yield idp

The provider's packages (tests/support/oidc/package-lock.json) are installed with
`npm ci` the first time they are missing, under a file lock so parallel test
processes install them once. Node (>= 18.12) and npm must be on PATH
(scripts/test-deps installs them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tests.support.fleetproc import free_port

HERE = Path(__file__).resolve().parent / "oidc"
READY_MARK = HERE / "node_modules" / ".dagfleet-installed"

CONFIDENTIAL_ID = "dagfleet"
PUBLIC_ID = "dagfleet-public"
USERS: dict[str, dict[str, Any]] = {
    "alice": {"password": "alice-pw-7f3a", "groups": ["platform"], "email": "alice@example.com"},
    "ana": {"password": "ana-pw-91c2", "groups": ["analytics"], "email": "ana@example.com"},
    "vic": {"password": "vic-pw-5d0e", "groups": ["viewers"], "email": "vic@example.com"},
}


class ProviderError(RuntimeError):
    pass


def standard_clients(
    redirect_uris: str | Sequence[str],
    secret: str = "dagfleet-test-client-secret-0c9b-5e1f",
    post_logout_redirect_uris: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One confidential client (CONFIDENTIAL_ID, `secret`) and one public client (PUBLIC_ID)."""
    uris = [redirect_uris] if isinstance(redirect_uris, str) else list(redirect_uris)
    common: dict[str, Any] = {"redirect_uris": uris}
    if post_logout_redirect_uris:
        common["post_logout_redirect_uris"] = list(post_logout_redirect_uris)
    return [
        {"client_id": CONFIDENTIAL_ID, "client_secret": secret, **common},
        {"client_id": PUBLIC_ID, "token_endpoint_auth_method": "none", **common},
    ]


def _lock_digest() -> str:
    return hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()


def _installed() -> bool:
    try:
        return READY_MARK.read_text().strip() == _lock_digest()
    except OSError:
        return False


def ensure_installed(timeout: float = 300) -> None:
    """`npm ci` into tests/support/oidc once (the mark is written last, after success)."""
    if _installed():
        return
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise ProviderError(
                f"{tool} is not installed: the single sign-on tests run a real OpenID Connect "
                "provider on Node.js; run scripts/test-deps (or install nodejs and npm)"
            )
    key = hashlib.sha256(str(HERE).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"dagfleet-oidc-npm-{key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing
        try:
            if _installed():
                return
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode != 0:
                raise ProviderError(
                    f"npm ci in {HERE} failed (exit {done.returncode}):\n"
                    + (done.stdout + done.stderr)[-3000:]
                )
            READY_MARK.write_text(_lock_digest() + "\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class OidcProvider:
    """A running provider: `issuer`, `clients`, `users`; `stop()` ends it."""

    issuer: str
    port: int
    clients: list[dict[str, Any]]
    users: dict[str, dict[str, Any]]
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls,
        tmp_dir: Path,
        clients: Sequence[Mapping[str, Any]],
        users: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        issuer: str | None = None,
        groups_claim: str = "groups",
        groups_scope: str | None = None,
        groups_in_id_token: bool = True,
        auto_consent: bool = True,
        timeout: float = 30,
    ) -> OidcProvider:
        """Start `node provider.mjs` on a free loopback port and wait for its discovery.

        groups_scope None: the groups claim comes with every sign-in; a name: only
        when that scope is asked for. groups_in_id_token False: claims only from
        userinfo. auto_consent False: the provider asks the user to allow the client.
        """
        ensure_installed()
        tmp_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        issuer = issuer or f"http://127.0.0.1:{port}"
        users_ = {name: dict(u) for name, u in (users or USERS).items()}
        clients_ = [dict(c) for c in clients]
        config: dict[str, Any] = {
            "port": port,
            "issuer": issuer,
            "clients": clients_,
            "users": users_,
            "groups_claim": groups_claim,
            "groups_scope": groups_scope,
            "groups_in_id_token": groups_in_id_token,
            "auto_consent": auto_consent,
        }
        config_path = tmp_dir / f"oidc-provider-{port}.json"
        config_path.write_text(json.dumps(config, indent=2))
        log_path = tmp_dir / f"oidc-provider-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["node", str(HERE / "provider.mjs"), str(config_path)],
                cwd=HERE,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        provider = cls(issuer, port, clients_, users_, process, log_path)
        try:
            provider._wait_ready(timeout)
        except BaseException:
            provider.stop()
            raise
        return provider

    def _wait_ready(self, timeout: float) -> None:
        url = f"http://127.0.0.1:{self.port}/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProviderError(
                    f"the OpenID Connect provider exited ({self.process.returncode}):\n"
                    + self.log()[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise ProviderError(
            f"the OpenID Connect provider did not serve {url} within {timeout:.0f} s:\n"
            + self.log()[-3000:]
        )

    @property
    def base_url(self) -> str:
        """Where it listens (the issuer may name another host for mismatch tests)."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@contextlib.contextmanager
def running_provider(
    tmp_dir: Path,
    clients: Sequence[Mapping[str, Any]],
    users: Mapping[str, Mapping[str, Any]] | None = None,
    **options: Any,
) -> Iterator[OidcProvider]:
    """`OidcProvider.start` that always stops (for fixtures: `with ... as idp: yield idp`)."""
    provider = OidcProvider.start(tmp_dir, clients, users, **options)
    try:
        yield provider
    finally:
        provider.stop()


# ---- a user at the provider's pages ----------------------------------------------------


@dataclass
class _Form:
    action: str
    inputs: list[str]
    buttons: list[str]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.alert = ""
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(_Form(a.get("action", ""), [], []))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs.append(a.get("name", ""))
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append(a.get("id", ""))
        elif a.get("role") == "alert":
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:
        self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._in_alert:
            self.alert += data


class LoginFailed(AssertionError):
    pass


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _walk(
    http: httpx.Client,
    authorize_url: str,
    fill: Mapping[str, str] | None,
    choose: str,
    trace: list[str] | None = None,
    max_steps: int = 12,
) -> str:
    """Follow the provider's redirects and pages until it redirects elsewhere; return that URL.

    With `fill`, the sign-in form (the one with a `login` input) is posted with it;
    otherwise, and on the consent page, the form with the `choose` button is
    pressed ("allow", or "cancel" to decline)."""
    provider = _origin(authorize_url)
    url, response = authorize_url, http.get(authorize_url, follow_redirects=False)
    for _ in range(max_steps):
        if response.is_redirect:
            target = urljoin(url, response.headers["location"])
            if _origin(target) != provider:
                return target
            url, response = target, http.get(target, follow_redirects=False)
            continue
        page = _Forms()
        page.feed(response.text)
        if response.status_code == 401 and page.alert:
            raise LoginFailed(f"the provider refused the sign-in: {page.alert.strip()}")
        if response.status_code != 200 or not page.forms:
            raise LoginFailed(
                f"unexpected answer from {url}: HTTP {response.status_code}\n{response.text[:800]}"
            )
        data: dict[str, str] = {}
        if fill is None:
            form = next((f for f in page.forms if choose in f.buttons), None)
        else:
            form = next((f for f in page.forms if "login" in f.inputs), None)
            if form is not None:
                data = dict(fill)
            else:
                form = next((f for f in page.forms if choose in f.buttons), None)
        if form is None:
            raise LoginFailed(f"no form to continue on {url}:\n{response.text[:800]}")
        url = urljoin(url, form.action)
        if trace is not None:
            trace.append(urlsplit(url).path)
        response = http.post(url, data=data, follow_redirects=False)
    raise LoginFailed(f"the sign-in did not finish within {max_steps} steps (last: {url})")


def login(
    http: httpx.Client,
    authorize_url: str,
    username: str,
    password: str,
    trace: list[str] | None = None,
) -> str:
    """Sign in at the provider as a browser would; the URL it redirects to (not requested).

    Consent, when the provider asks, is given. Raises LoginFailed on a wrong password.
    `trace` collects the path of each form posted (…/login, …/confirm)."""
    credentials = {"login": username, "password": password}
    return _walk(http, authorize_url, credentials, "allow", trace)


def decline(http: httpx.Client, authorize_url: str) -> str:
    """Press Cancel on the provider's sign-in page; the error redirect it answers with."""
    return _walk(http, authorize_url, None, "cancel")
