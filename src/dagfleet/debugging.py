"""What `dagfleet debug` prints: VS Code attach configurations and port-forward commands.

Pure functions of the fleet, a location and its recorded debug port; the
command in `dagfleet.cli.debug` reads the status and prints them. Locally a
code server of a `debug: true` environment runs under debugpy on a loopback
port (recorded in its status; it alternates between two ports on every
handoff). In the Kubernetes render it listens on 5678 inside the pod, which
`kubectl port-forward` brings to the developer's machine.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagfleet.render import common as k8s
from dagfleet.spec import Fleet, LocationSpec

LOCAL_HOST = "127.0.0.1"
WORKSPACE_FOLDER = "${workspaceFolder}"


class DebugError(Exception):
    """The location cannot be debugged; the message says why and what to change."""


def location_spec(fleet: Fleet, location: str) -> LocationSpec:
    """The location named `location`, or a DebugError listing the known ones."""
    for loc in fleet.locations():
        if loc.name == location:
            return loc
    known = ", ".join(loc.name for loc in fleet.locations()) or "none"
    raise DebugError(f"unknown location {location!r}: this fleet's locations are {known}")


def check_debuggable(fleet: Fleet, loc: LocationSpec) -> None:
    if not fleet.environment(loc.env).debug:
        raise DebugError(
            f"environment {loc.env} does not run its code servers under debugpy: "
            f"set debug: true on environment {loc.env} in fleet.yaml"
        )


def attach_config(
    name: str,
    port: int,
    remote_root: str,
    host: str = LOCAL_HOST,
    local_root: str = WORKSPACE_FOLDER,
) -> dict[str, Any]:
    """One `launch.json` configuration attaching the Python Debugger extension to debugpy.

    `subProcess: true` makes the client follow the processes that run asset
    code (the run worker and, with the multiprocess executor, each step);
    `justMyCode: false` lets breakpoints hit wherever the location's code sits.
    """
    return {
        "name": name,
        "type": "debugpy",
        "request": "attach",
        "connect": {"host": host, "port": port},
        "pathMappings": [{"localRoot": local_root, "remoteRoot": remote_root}],
        "justMyCode": False,
        "subProcess": True,
    }


def launch_json(*configs: dict[str, Any]) -> dict[str, Any]:
    """A whole `.vscode/launch.json` document holding `configs`."""
    return {"version": "0.2.0", "configurations": list(configs)}


def local_remote_root(state_root: Path, loc: LocationSpec) -> str:
    """Where the code server's files are on this machine.

    The `current` link of the location's checkouts (a repo checkout's root,
    which `${workspaceFolder}` mirrors), or the playground directory itself.
    """
    if loc.playground:
        return str(state_root / "playground" / loc.env / "playground")
    return str(state_root / "checkouts" / loc.name / "current")


def k8s_remote_root(loc: LocationSpec) -> str:
    """The same in the rendered pod: git-sync's link, or the playground directory."""
    if loc.playground:
        return k8s.PLAYGROUND_DIR
    return f"{k8s.CHECKOUT_DIR}/{k8s.CHECKOUT_LINK}"


@dataclass(frozen=True)
class PortForward:
    namespace: str
    deployment: str
    local_port: int
    remote_port: int

    def argv(self) -> list[str]:
        return [
            "kubectl",
            "port-forward",
            "-n",
            self.namespace,
            f"deployment/{self.deployment}",
            f"{self.local_port}:{self.remote_port}",
        ]

    def command(self) -> str:
        return shlex.join(self.argv())


def port_forward(fleet: Fleet, loc: LocationSpec, local_port: int = k8s.DEBUG_PORT) -> PortForward:
    """The tunnel to the rendered Deployment's debugpy port (seed 000, workflow C).

    Names follow `dagfleet render k8s`: namespace `<fleet>-<env>`, Deployment
    named after the location, both lower-cased.
    """
    if loc.playground:
        # The rendered playground runs the stock Dagster image, which has no debugpy.
        raise DebugError(
            f"{loc.name}: the Kubernetes render runs playgrounds without debugpy; "
            "debug a repo location instead"
        )
    return PortForward(
        namespace=k8s.namespace(fleet, loc.env),
        deployment=k8s.location_k8s_name(loc),
        local_port=local_port,
        remote_port=k8s.DEBUG_PORT,
    )
