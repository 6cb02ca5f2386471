"""The repo registry: the only writer of `repos/<name>.yaml`.

Every write is validated with the loader's own rules (`parse_repo` plus the
cross-checks against fleet.yaml's environments), written atomically (temp
file, fsync, rename) and serialised by `fsutil.exclusive` (a lock per fleet
directory in this process plus an `fcntl` lock on `<fleet>/.registry.lock`), so
concurrent writers in threads or processes never lose an update. Each repo file
has an ETag (a hash of its bytes); replace/patch/delete honour If-Match.

The text goes through `yamledit`, the one YAML writer: new files in its house
style, edits (patch and replace) in the file's own style, so that a change shows
in a GitOps diff as the lines it changed and nothing else.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagfleet.fsutil import atomic_write, exclusive, fsync_dir
from dagfleet.spec import FleetSpec, RepoSpec, SpecError, SpecProblem, parse_repo
from dagfleet.spec.load import (
    FLEET_FILE,
    REPOS_DIR,
    _read_yaml,
    _validate,
    cross_repo_problems,
    read_yaml_text,
)
from dagfleet.spec.names import check_repo_name
from dagfleet.storage.paths import is_remote, location_dir, resolve_root
from dagfleet.yamledit import dump_new, merge_patch_text, replace_text

LOCK_KEY = "registry"  # the lock file is <fleet>/.registry.lock
HEADER = "# One git repository served as a code location in each environment.\n"
_SUFFIXES = (".yaml", ".yml")


def _strict(text: str, shown: str) -> dict[str, Any]:
    """A repo file's mapping, read as the loader reads it (no duplicate keys, bounded
    depth and size: spec.load.read_yaml_text); SpecError naming the file otherwise."""
    data, problems = read_yaml_text(text, shown)
    if data is None:
        raise SpecError(problems)
    return data


class RegistryError(Exception):
    """A registry request refused; status_code is the HTTP status the API returns."""

    status_code = 400


class NotFound(RegistryError):
    status_code = 404


class Conflict(RegistryError):
    status_code = 409


class PreconditionFailed(RegistryError):
    status_code = 412


@dataclass(frozen=True)
class RepoEntry:
    """One registered repo: its validated spec and the ETag of its file."""

    spec: RepoSpec
    etag: str


def etag_of(raw: bytes) -> str:
    return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def matches(if_match: str | None, etag: str) -> bool:
    """RFC 9110 If-Match: `*`, or any listed tag (weak prefixes ignored)."""
    if if_match is None:
        return True
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    return "*" in tags or etag in tags


def to_document(spec: RepoSpec) -> dict[str, Any]:
    """The repo as written to its file: defaults left out so files stay short."""
    doc: dict[str, Any] = spec.model_dump(mode="json", exclude_defaults=True)
    doc["name"] = spec.name
    doc["git_url"] = spec.git_url
    return {"name": doc.pop("name"), "git_url": doc.pop("git_url"), **doc}


def kept_document(spec: RepoSpec, current: Mapping[str, Any]) -> dict[str, Any]:
    """What a replace writes: `spec`'s document, plus the keys of the `current` file
    that `to_document` leaves out but that say the same as `spec` (a default spelled
    out by hand, `suspend: false`), so a PUT of what the file says changes no line."""
    doc = to_document(spec)
    for key, value in current.items():
        if key in doc:
            continue
        with contextlib.suppress(SpecError, TypeError):
            if parse_repo({**doc, key: value}, "") == spec:
                doc[key] = value
    return doc


class Registry:
    """CRUD on one fleet directory's repo files; safe across threads and processes."""

    def __init__(self, fleet_dir: Path) -> None:
        self.root = fleet_dir.resolve()
        self.repos_dir = self.root / REPOS_DIR

    # ---- reading ----------------------------------------------------------------------
    def path(self, name: str) -> Path | None:
        for suffix in _SUFFIXES:
            candidate = self.repos_dir / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
        return None

    def _read(self, path: Path) -> RepoEntry:
        raw = path.read_bytes()
        shown = f"{REPOS_DIR}/{path.name}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError([SpecProblem(shown, "", f"not UTF-8 text: {exc}")]) from None
        return RepoEntry(parse_repo(_strict(text, shown), shown), etag_of(raw))

    def get(self, name: str) -> RepoEntry:
        if check_repo_name(name) is not None:
            raise NotFound(f"unknown repo {name!r}")
        path = self.path(name)
        if path is None:
            raise NotFound(f"unknown repo {name!r}")
        try:
            return self._read(path)
        except FileNotFoundError:
            raise NotFound(f"unknown repo {name!r}") from None

    def list(self) -> list[RepoEntry]:
        """Every valid repo file, by name; invalid files are the loader's to report."""
        out: dict[str, RepoEntry] = {}
        for suffix in _SUFFIXES:
            for path in sorted(self.repos_dir.glob(f"*{suffix}")):
                with contextlib.suppress(SpecError, OSError):
                    entry = self._read(path)
                    out.setdefault(entry.spec.name, entry)
        return [out[k] for k in sorted(out)]

    def unreadable(self) -> builtins.list[SpecProblem]:
        """What is wrong with each repo file `list` had to leave out."""
        problems: builtins.list[SpecProblem] = []
        for suffix in _SUFFIXES:
            for path in sorted(self.repos_dir.glob(f"*{suffix}")):
                try:
                    self._read(path)
                except SpecError as exc:
                    problems += exc.problems
                except OSError as exc:
                    problems.append(SpecProblem(f"{REPOS_DIR}/{path.name}", "", str(exc)))
        return problems

    def fleet_spec(self) -> FleetSpec:
        data, problems = _read_yaml(self.root / FLEET_FILE, FLEET_FILE)
        spec = None
        if data is not None:
            spec, problems = _validate(FleetSpec, data, FLEET_FILE)
        if spec is None:
            raise SpecError(problems)
        return spec

    def locations(self, spec: RepoSpec, fleet: FleetSpec | None = None) -> builtins.list[str]:
        """The location names this repo has (or would have, when suspended)."""
        envs = (fleet or self.fleet_spec()).environments
        return [name for e in envs for name in spec.location_names(e.name)]

    def check_env(self, env: str | None) -> None:
        """Raise NotFound for an environment the fleet does not have (None: all of them)."""
        if env is not None and env not in {e.name for e in self.fleet_spec().environments}:
            raise NotFound(f"unknown environment {env!r}")

    def locations_in(self, spec: RepoSpec, env: str | None) -> builtins.list[str]:
        """The repo's locations, only those in `env` when given (none: it does not run there)."""
        if env is None:
            return self.locations(spec)
        return spec.location_names(env)

    # ---- validation -------------------------------------------------------------------
    def validate(self, doc: Mapping[str, Any], name: str | None = None) -> RepoSpec:
        """parse_repo plus the loader's cross-checks; `name` is the one the path names."""
        shown = f"{REPOS_DIR}/{name or doc.get('name', '?')}.yaml"
        spec = parse_repo(dict(doc), shown)
        if name is not None and spec.name != name:
            raise SpecError(
                [SpecProblem(shown, "name", f"{spec.name!r} must match the repo name {name!r}")]
            )
        others = {e.spec.name: e.spec for e in self.list() if e.spec.name != spec.name}
        problems = cross_repo_problems(self.fleet_spec(), spec, others)
        if problems:
            raise SpecError(problems)
        return spec

    # ---- writing ----------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive access to the registry across threads and processes."""
        with exclusive(self.root, LOCK_KEY):
            yield

    def _write_text(
        self, path: Path, text: str, name: str, validated: RepoSpec | None = None
    ) -> RepoEntry:
        """Validate what `text` says (as the loader will read it), then write it; when it
        says `validated`, already checked against the other repos, parsing it is enough."""
        data = _strict(text, f"{REPOS_DIR}/{path.name}")
        spec = validated
        if spec is None or parse_repo(data, f"{REPOS_DIR}/{path.name}") != spec:
            spec = self.validate(data, name)
        raw = text.encode()
        atomic_write(path, raw)
        return RepoEntry(spec, etag_of(raw))

    def _current(self, name: str, if_match: str | None) -> tuple[RepoEntry, Path]:
        path = self.path(name) if check_repo_name(name) is None else None
        if path is None:
            raise NotFound(f"unknown repo {name!r}")
        entry = self._read(path)
        if not matches(if_match, entry.etag):
            raise PreconditionFailed(
                f"repo {name!r} changed since you read it (ETag is {entry.etag}): "
                "read it again and retry"
            )
        return entry, path

    def create(self, doc: Mapping[str, Any]) -> RepoEntry:
        with self.locked():
            spec = self.validate(doc)
            if self.path(spec.name) is not None:
                raise Conflict(f"repo {spec.name!r} already exists: use PUT or PATCH to change it")
            raw = dump_new(to_document(spec), HEADER).encode()
            atomic_write(self.repos_dir / f"{spec.name}.yaml", raw)
            return RepoEntry(spec, etag_of(raw))

    def replace(self, name: str, doc: Mapping[str, Any], if_match: str | None = None) -> RepoEntry:
        """Make the file hold `doc`, as an edit of it: lines that did not change stay."""
        with self.locked():
            spec = self.validate(doc, name)
            _, path = self._current(name, if_match)
            text = path.read_text(encoding="utf-8")
            written = kept_document(spec, _strict(text, f"{REPOS_DIR}/{path.name}"))
            return self._write_text(path, replace_text(text, written), name, spec)

    def patch(self, name: str, patch: Mapping[str, Any], if_match: str | None = None) -> RepoEntry:
        """Merge-patch the file in place, keeping its comments, order and quoting."""
        with self.locked():
            _, path = self._current(name, if_match)
            text = merge_patch_text(path.read_text(encoding="utf-8"), patch)
            return self._write_text(path, text, name)

    def set_suspend(self, name: str, suspend: bool) -> RepoEntry:
        return self.patch(name, {"suspend": True if suspend else None})

    def purge_data(self, spec: RepoSpec) -> tuple[builtins.list[str], builtins.list[str]]:
        """Delete a removed repo's local data in every environment: (removed paths, notes)."""
        fleet = self.fleet_spec()
        root = resolve_root(fleet.storage.root, self.root)
        if is_remote(root):
            return [], [f"data under {fleet.storage.root} is not purged: remove it with S3 tools"]
        removed = []
        for env in fleet.environments:
            path = Path(location_dir(root, env.name, spec.storage_prefix))
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(str(path))
        return removed, []

    def delete(self, name: str, if_match: str | None = None) -> RepoSpec:
        with self.locked():
            entry, path = self._current(name, if_match)
            path.unlink()
            fsync_dir(path.parent)
            return entry.spec
