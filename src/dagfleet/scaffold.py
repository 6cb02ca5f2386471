"""Create fleets on disk: the embedded default (`dagfleet up` with no fleet) and `init`.

The medallion example ships with dagfleet; it is published to a local git
repository with branches A and B so that the default fleet is real GitOps.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from dagfleet.fsutil import atomic_write
from dagfleet.gitops.git import run_git
from dagfleet.layout import STATE_DIR
from dagfleet.registry import HEADER as REPO_HEADER
from dagfleet.spec.defaults import MEDALLION_REPO, default_fleet_document, medallion_repo_document
from dagfleet.spec.load import FLEET_FILE, REPOS_DIR
from dagfleet.yamledit import dump_new

_IGNORE = shutil.ignore_patterns(
    ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".mypy_cache", "*.egg-info"
)
_IDENTITY = ["-c", "user.name=dagfleet", "-c", "user.email=dagfleet@localhost"]


def example_source(name: str = MEDALLION_REPO) -> Path:
    """The example's files: from the source tree, or packaged inside an installed wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "examples" / name, here.parent / "_examples" / name):
        if (candidate / "pyproject.toml").exists():
            return candidate
    raise FileNotFoundError(f"the {name} example is not shipped with this dagfleet")


def publish_example(
    dest: Path, branches: tuple[str, ...] = ("A", "B"), name: str = MEDALLION_REPO
) -> str:
    """Create a bare repository at `dest` holding the example on each branch; returns its URL."""
    url = dest.resolve().as_uri()
    if (dest / "HEAD").exists():
        return url
    with tempfile.TemporaryDirectory(prefix="dagfleet-example-") as tmp:
        work = Path(tmp) / name
        shutil.copytree(example_source(name), work, ignore=_IGNORE)
        run_git("init", "--quiet", "--initial-branch", branches[0], cwd=work)
        run_git("add", "-A", cwd=work)
        run_git(*_IDENTITY, "commit", "--quiet", "-m", f"{name} example", cwd=work)
        for branch in branches[1:]:
            run_git("branch", branch, cwd=work)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_dest = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp_dest, ignore_errors=True)
        run_git("clone", "--bare", "--quiet", str(work), str(tmp_dest))
        tmp_dest.rename(dest)
    return url


FLEET_HEADER = "# dagfleet fleet: environments, instance and storage. See README.md.\n"


def write_fleet(directory: Path, storage_root: str, remote: Path) -> None:
    """fleet.yaml and repos/medallion.yaml, written by `yamledit` in the house style that
    `repo add` and every later edit use."""
    url = publish_example(remote)
    directory.mkdir(parents=True, exist_ok=True)
    fleet_doc = default_fleet_document(storage_root=storage_root)
    atomic_write(directory / FLEET_FILE, dump_new(fleet_doc, FLEET_HEADER))
    repo_doc = medallion_repo_document(url)
    atomic_write(directory / REPOS_DIR / f"{MEDALLION_REPO}.yaml", dump_new(repo_doc, REPO_HEADER))


def ensure_embedded_default(cwd: Path) -> Path:
    """`.dagfleet/` as a fleet of its own: fleet.yaml and repos/ beside the state."""
    state = cwd / STATE_DIR
    if not (state / FLEET_FILE).exists():
        write_fleet(state, storage_root="data", remote=state / "remotes" / f"{MEDALLION_REPO}.git")
    return state


def init_fleet(directory: Path) -> Path:
    """`dagfleet init DIR`: the default fleet as editable files."""
    if (directory / FLEET_FILE).exists():
        raise FileExistsError(f"{directory / FLEET_FILE} already exists")
    write_fleet(
        directory,
        storage_root=f"{STATE_DIR}/data",
        remote=directory / STATE_DIR / "remotes" / f"{MEDALLION_REPO}.git",
    )
    return directory


def find_fleet_dir(cwd: Path) -> Path | None:
    """A fleet.yaml in `cwd`, else the embedded default in `cwd/.dagfleet`, else None."""
    if (cwd / FLEET_FILE).exists():
        return cwd
    if (cwd / STATE_DIR / FLEET_FILE).exists():
        return cwd / STATE_DIR
    return None
