"""Thin, safe wrappers over the git CLI for mirrors, refs, checkouts and pushes.

Checkouts are the repository's real tree, as git-sync (the Kubernetes render)
produces it: `Mirror.export` clones the bare mirror with `--shared` (objects are
borrowed through `objects/info/alternates`, nothing is copied or written into the
mirror), checks the commit out detached, initialises submodules recursively and
pulls Git LFS files. Submodules are cloned from their own URLs at export time (a
relative URL resolves against the repo's real remote URL, not the mirror's path),
and LFS objects are fetched from the remote's LFS endpoint; both use the repo's
credentials. `export-ignore` attributes do not apply: they are for `git archive`.

The checkout's `.git` (and each submodule's `.git` file) is removed before the
temp dir is renamed into place, so a checkout is plain files: it never points at
the mirror through alternates, survives the mirror's gc/re-clone, and costs no
more disk than the tree. Code that needs the commit reads the
variable DAGFLEET_COMMIT, not `git rev-parse`.

Every command runs with `_SAFE`: no ext:: or other remote helpers, hooks disabled
(also inside submodules: `-c` options reach git's child processes). Submodule URLs
come from the repository, so they are held to file/git/http/https/ssh, and file://
(or a local path) only when the repo itself is local: a remote repository must not
make dagfleet clone another repository of this host, such as a private mirror.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagfleet.gitops.auth import GitAuth
from dagfleet.gitops.errors import GitError as GitError
from dagfleet.gitops.urls import hide_credentials
from dagfleet.spec.credentials import url_kind
from dagfleet.spec.names import check_git_ref, check_git_url

# Remote helpers such as ext:: can run arbitrary commands; only plain transports pass.
_SAFE = [
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "protocol.allow=user",
    "-c",
    "core.hooksPath=/dev/null",
]
_SHA = re.compile(r"^[0-9a-f]{40}$")
FETCH_TIMEOUT = 120.0
# Cloning submodules and downloading LFS objects can take longer than a fetch.
EXPORT_TIMEOUT = 900.0
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
# Submodules of a remote repository: never file:// (see the module docstring).
REMOTE_SUBMODULE_PROTOCOLS = "git:http:https:ssh"
LFS_MISSING = (
    "this commit uses Git LFS (filter=lfs in .gitattributes) but git-lfs is not "
    "installed, so its large files would be pointer files: install git-lfs "
    "(apt-get install git-lfs, brew install git-lfs) and sync again"
)


@dataclass(frozen=True)
class Refs:
    """A mirror's branches and tags at one moment (`Mirror.read_refs`).

    `objects`: what each names, as the remote advertises it (`git ls-remote`): a commit,
    or an annotated tag's own object. `commits`: the commit each resolves to, or None
    where one `for-each-ref` cannot say (a tag of a tag, of a tree): `resolve` asks git.
    """

    objects: Mapping[str, str]
    commits: Mapping[str, str | None]


@dataclass(frozen=True)
class Mirror:
    """A bare mirror of one remote, shared by every environment of a repo.

    `auth` carries the repo's resolved credentials (environment only) for every git
    command that talks to the remote: clone, fetch, push, submodules and LFS.
    """

    path: Path
    url: str
    auth: GitAuth | None = field(default=None, repr=False, compare=False)
    # The mirror's branches and tags as of its last fetch, so that resolving a branch
    # spawns no git; None: ask git each time.
    refs: Refs | None = field(default=None, repr=False, compare=False)

    def git(self, *args: str, timeout: float = FETCH_TIMEOUT, check: bool = True) -> str:
        return run_git(
            "--git-dir", str(self.path), *args, timeout=timeout, check=check, auth=self.auth
        )

    def run(self, *args: str, cwd: Path, timeout: float = FETCH_TIMEOUT) -> str:
        """Any git command in `cwd` with this remote's credentials (e.g. a push)."""
        return run_git(*args, cwd=cwd, timeout=timeout, auth=self.auth)

    def ensure(self) -> bool:
        """Create the mirror if missing; True when it was created (a full clone)."""
        error = check_git_url(self.url)
        if error:
            raise GitError(error)
        if (self.path / "HEAD").exists():
            if self.git("config", "--get", "remote.origin.url", check=False).strip() != self.url:
                self.git("remote", "set-url", "origin", _url_arg(self.url))
            return False
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_git(
                "clone", "--mirror", "--quiet", "--", _url_arg(self.url), str(tmp), auth=self.auth
            )
        except GitError as exc:
            raise GitError(
                f"cannot clone {self.remote} into the mirror {self.path}: {exc.message}",
                exc.stderr,
            ) from exc
        os.replace(tmp, self.path)
        return True

    @property
    def remote(self) -> str:
        """The remote's URL as messages show it: without credentials."""
        return hide_credentials(self.url)

    def fetch(self, known: Refs | None = None) -> bool:
        """Fetch from the remote; True if it fetched. With `known` (the mirror's refs since
        its last fetch), ask the remote for its branches and tags first (`ls-remote`,
        about half the cost of a fetch that finds nothing) and fetch only if they moved."""
        try:
            if known is not None and self.remote_objects() == known.objects:
                return False
            self.git("fetch", "--prune", "--quiet", "--force", "origin")
        except GitError as exc:
            raise GitError(
                f"cannot fetch {self.remote} into the mirror {self.path}: {exc.message}",
                exc.stderr,
            ) from exc
        return True

    def remote_objects(self) -> dict[str, str]:
        """The remote's branches and tags and the object each names (not peeled)."""
        out = self.git("ls-remote", "--heads", "--tags", "--refs", "origin")
        objects = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            objects[name] = sha
        return objects

    def read_refs(self) -> Refs:
        """Every branch and tag of the mirror, with one `for-each-ref`."""
        fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)"
        out = self.git("for-each-ref", f"--format={fmt}", "refs/heads", "refs/tags")
        objects: dict[str, str] = {}
        commits: dict[str, str | None] = {}
        for line in out.splitlines():
            name, kind, sha, peeled_kind, peeled = line.split("\0")
            objects[name] = sha
            if kind == "commit":
                commits[name] = sha
            elif kind == "tag" and peeled_kind == "commit":
                commits[name] = peeled
            else:
                commits[name] = None
        return Refs(objects, commits)

    def resolve(self, ref: str) -> str | None:
        """The commit a branch, tag or SHA names in the mirror, or None if it is gone."""
        if _SHA.match(ref):
            out = self.git("cat-file", "-t", ref, check=False).strip()
            return ref if out == "commit" else None
        error = check_git_ref(ref)
        if error:
            raise GitError(error)
        known = self.refs.commits if self.refs is not None else None
        for name in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if known is not None and known.get(name) is not None:
                return known[name]
            if known is not None and name not in known:
                continue
            out = self.git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
            if out.strip():
                return out.strip()
        if re.match(r"^[0-9a-f]{7,39}$", ref):
            out = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
            if out.strip():
                return out.strip()
        return None

    def export(self, sha: str, dest: Path) -> None:
        """Check `sha` out at `dest` as git-sync would: the real tree with its submodules
        and LFS files, without `.git` (see the module docstring).

        A no-op when `dest` exists. Built in `<dest>.tmp` (any leftover of an
        interrupted export is removed first) and renamed into place, so a kill at
        any moment leaves either nothing or a temp dir the next export replaces;
        the mirror itself is only read.
        """
        if dest.exists():
            return
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._checkout(sha, tmp)
        except GitError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise GitError(f"cannot export {sha}", str(exc)) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.replace(tmp, dest)

    def _checkout(self, sha: str, work: Path) -> None:
        if self.resolve(sha) is None:
            raise GitError(f"{sha} is not a commit of the mirror of {self.url}")
        if _uses_lfs(self.path, sha, bare=True):
            _require_lfs()  # before any download: say so at once
        run_git(
            "clone", "--shared", "--no-checkout", "--quiet", "--", str(self.path), str(work),
            timeout=EXPORT_TIMEOUT,
        )  # fmt: skip

        def git(repo: Path, *args: str, **extra: str) -> str:
            # Pointer files at checkout; one batched `git lfs pull` per repo afterwards.
            env = {"GIT_LFS_SKIP_SMUDGE": "1", **extra}
            return run_git("-C", str(repo), *args, timeout=EXPORT_TIMEOUT, auth=self.auth, env=env)

        # Relative submodule URLs and the LFS endpoint derive from origin: the real remote.
        git(work, "config", "remote.origin.url", _url_arg(self.url))
        git(work, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha)
        submodules: list[str] = []
        if (work / ".gitmodules").is_file():
            local = url_kind(self.url) == "local"
            protocols = ALLOWED_PROTOCOLS if local else REMOTE_SUBMODULE_PROTOCOLS
            git(work, "submodule", "update", "--init", "--recursive", "--quiet",
                GIT_ALLOW_PROTOCOL=protocols)  # fmt: skip
            listed = git(work, "submodule", "foreach", "--quiet", "--recursive",
                         'printf "%s\\0" "$displaypath"')  # fmt: skip
            submodules = [p for p in listed.split("\0") if p]
        for repo in [work, *(work / p for p in submodules)]:
            if _uses_lfs(repo, "HEAD", bare=False):
                _require_lfs()
                git(repo, "lfs", "pull", GIT_LFS_SKIP_SMUDGE="0")
        for sub in submodules:
            (work / sub / ".git").unlink(missing_ok=True)
        shutil.rmtree(work / ".git")

    def is_ancestor(self, older: str, newer: str) -> bool:
        args = ("merge-base", "--is-ancestor", older, newer)
        result = subprocess.run(
            ["git", *_SAFE, "--git-dir", str(self.path), *args], capture_output=True, check=False
        )
        return result.returncode == 0


def _uses_lfs(repo: Path, commit: str, *, bare: bool) -> bool:
    """Whether a .gitattributes of `commit` routes files through the LFS filter."""
    where = ("--git-dir", str(repo)) if bare else ("-C", str(repo))
    out = run_git(*where, "grep", "-l", "-F", "filter=lfs", commit, "--", ".gitattributes",
                  ":(glob)**/.gitattributes", check=False)  # fmt: skip
    return bool(out.strip())


def _require_lfs() -> None:
    if shutil.which("git-lfs") is None:
        raise GitError(LFS_MISSING)


def _url_arg(url: str) -> str:
    return url


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never block on a password prompt: a sync loop has no terminal.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["GIT_ALLOW_PROTOCOL"] = ALLOWED_PROTOCOLS
    return env


_AUTH_FAILED = re.compile(
    r"Authentication failed|could not read (Username|Password)|"
    r"Permission denied \(publickey|Host key verification failed|returned error: 40[13]",
    re.IGNORECASE,
)
AUTH_HINT = (
    "the remote refused dagfleet's credentials or asked for some: set or check "
    "`credentials:` in the repo file (docs/private-remotes.md)"
)


def run_git(
    *args: str,
    cwd: Path | None = None,
    timeout: float = FETCH_TIMEOUT,
    check: bool = True,
    auth: GitAuth | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run git with `_SAFE`, no prompts, and `auth`'s options and variables.

    Secret values of `auth` are scrubbed from the error raised when git fails.
    """
    full_env = git_env()
    config: tuple[str, ...] = ()
    if auth is not None:
        full_env.update(auth.env)
        config = auth.config
    full_env.update(env or {})
    try:
        result = subprocess.run(
            ["git", *_SAFE, *config, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f}s") from exc
    if check and result.returncode != 0:
        shown = _shown(args)
        stderr = hide_credentials(result.stderr)
        if _AUTH_FAILED.search(stderr):
            stderr = f"{stderr.rstrip()}\n{AUTH_HINT}"
        if auth is not None:
            shown, stderr = auth.scrub(shown), auth.scrub(stderr)
        raise GitError(f"git {shown} failed", stderr)
    return result.stdout


def _shown(args: tuple[str, ...]) -> str:
    """The git command for a message: the subcommand and its options, without where it
    ran (`--git-dir`/`-C` and their paths: callers name the mirror or checkout), local
    paths, or credentials in URLs."""
    shown: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg in ("--git-dir", "-C"):
            next(rest, None)
        elif not arg.startswith("/"):
            shown.append(hide_credentials(arg))
    return " ".join(shown)[:120]
