"""What every location's loop shares: layout, fleet, mirrors, env builder, callbacks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dagfleet.events import EventBus
from dagfleet.fsutil import KeyedLock
from dagfleet.gitops.auth import GitAuth
from dagfleet.gitops.auth import resolve as resolve_auth
from dagfleet.gitops.git import GitError, Mirror, Refs
from dagfleet.layout import Layout
from dagfleet.runtime import codeserver
from dagfleet.runtime.codeserver import Server
from dagfleet.runtime.processes import PidRegistry
from dagfleet.runtime.spare import SparePool
from dagfleet.runtime.warm import WarmPool
from dagfleet.spec import CodeTarget, Fleet
from dagfleet.spec.credentials import GitCredentials
from dagfleet.status import StatusStore
from dagfleet.venvs.builder import EnvBuilder, PythonEnv

RefsChanged = Callable[[str, float], None]


class MirrorPool:
    """One mirror per repo; concurrent syncs of one repo share a single fetch.

    A fetch first asks the remote for its branches and tags and fetches only if they
    differ from the mirror's; after a fetch it reads the mirror's once
    (`Mirror.read_refs`): the mirror it returns resolves them without running git.
    When a fetch finds them changed, the listeners hear `(repo, when the fetch
    started)`: the reconciler wakes the repo's other locations, which then resolve
    from this fetch instead of their own.

    A repo's `credentials` (references) are read at each fetch, so a rotated token
    or key file is picked up by the next sync; relative files resolve against
    `base`, by default the fleet root.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._locks = KeyedLock()
        self._fetched_at: dict[str, float] = {}
        self._refs: dict[str, Refs] = {}
        self._listeners: list[RefsChanged] = []
        self._ensured: dict[str, str] = {}  # repo -> the URL its mirror was last ensured for
        self.remote_checks = 0  # times the remote was asked (ls-remote, fetch or clone)
        self.fetches = 0  # ... of which fetches or clones

    def on_refs_changed(self, listener: RefsChanged) -> None:
        self._listeners.append(listener)

    def fetch(
        self,
        repo: str,
        url: str,
        since: float,
        credentials: GitCredentials | None = None,
        *,
        base: str | Path | None = None,
    ) -> Mirror:
        """Fetch unless a fetch that started after `since` already completed."""
        with self._locks.hold(repo):
            # Unreadable credentials fail the fetch (GitError), naming the reference.
            mirror = Mirror(self.layout.mirror(repo), url, self._auth(credentials, url, base))
            fetched = self._fetched_at.get(repo)  # never yet by this process: fetch
            if fetched is not None and fetched > since and mirror.path.exists():
                return replace(mirror, refs=self._refs.get(repo))
            started = time.monotonic()
            before = self._refs.get(repo)
            self.remote_checks += 1
            # `ensure` reads the mirror's remote URL (a git process): once per URL here.
            ensured = self._ensured.get(repo) == url and (mirror.path / "HEAD").exists()
            created = False if ensured else mirror.ensure()
            self._ensured[repo] = url
            if created or mirror.fetch(known=before):
                self.fetches += 1
                refs = mirror.read_refs()
            else:  # the remote's branches and tags are the ones the mirror has
                assert before is not None
                refs = before
            self._refs[repo] = refs
            self._fetched_at[repo] = started
        if before is not None and before != refs:
            for listener in self._listeners:
                listener(repo, started)
        return replace(mirror, refs=refs)

    def local(
        self,
        repo: str,
        url: str,
        credentials: GitCredentials | None = None,
        *,
        base: str | Path | None = None,
    ) -> Mirror:
        """The mirror as it is (no fetch), e.g. when the remote is unreachable. Never raises:
        without readable credentials, exports just cannot fetch submodules or LFS files."""
        try:
            auth = self._auth(credentials, url, base)
        except GitError:
            auth = None
        return Mirror(self.layout.mirror(repo), url, auth=auth)

    def _auth(
        self, credentials: GitCredentials | None, url: str, base: str | Path | None
    ) -> GitAuth | None:
        return resolve_auth(credentials, url, Path(base) if base is not None else self._fleet_root)

    @property
    def _fleet_root(self) -> Path:
        """Where relative `from_file`s resolve (as for environment secrets): the fleet root,
        i.e. the parent of `.dagfleet`, or `.dagfleet` itself for the embedded default fleet
        (Layout.for_fleet's inverse)."""
        state = self.layout.root
        return state if (state / "fleet.yaml").is_file() else state.parent


@dataclass
class ReconcileContext:
    layout: Layout
    fleet_ref: list[Fleet]
    builder: EnvBuilder
    mirrors: MirrorPool
    store: StatusStore
    pids: PidRegistry
    on_published: Callable[[str], None] = lambda _location: None
    spares: SparePool | None = None
    warm: WarmPool | None = None  # zygotes per env (fleet.yaml instance.warm_forks)
    # Attempts, crashes and promotions, for the publish history and alert policies.
    events: EventBus = field(default_factory=EventBus)
    install_slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(2))
    # Every server started and not yet stopped: live, loading, erroring and retiring.
    _servers: dict[int, Server] = field(default_factory=dict)
    _servers_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def fleet(self) -> Fleet:
        return self.fleet_ref[0]

    def start_server(
        self,
        location: str,
        sha: str,
        checkout: Path,
        env: PythonEnv,
        target: CodeTarget,
        environ: dict[str, str],
        debug_port: int | None,
    ) -> Server:
        """A new code server for `location`, tracked for cleanup; not yet loaded or live."""
        server = codeserver.start(
            location=location,
            sha=sha,
            checkout=checkout,
            env=env,
            target=target,
            run_dir=self.layout.run,
            environ=environ,
            log=self.layout.log(location),
            debug_port=debug_port,
            spares=self.spares,
            warm=self.warm,
        )
        self.pids.add(server.child.pid)
        with self._servers_lock:
            self._servers[server.child.pid] = server
        return server

    def forget(self, server: Server) -> None:
        """`server` has been stopped by its owner: no longer dagfleet's to clean up."""
        with self._servers_lock:
            self._servers.pop(server.child.pid, None)
        self.pids.discard(server.child.pid)

    def discard(self, server: Server, grace: float) -> None:
        """Stop `server` (SIGTERM, then SIGKILL of its group after `grace`), remove its
        private socket and stop tracking it."""
        server.child.stop(grace)
        codeserver.remove_sockets(server)
        self.forget(server)

    def stop_servers(self, grace: float) -> None:
        """Stop every server still running, whoever owns it (used on shutdown)."""
        with self._servers_lock:
            servers = list(self._servers.values())
        threads = [threading.Thread(target=self.discard, args=(s, grace)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
