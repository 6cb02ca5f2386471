"""The code-server launcher shipped inside rendered deployments (ConfigMap or image).

`dagster code-server start` takes only explicit target flags; the discovery of a
target from `[tool.dagster]`/`[tool.dg]` or a workspace.yaml lives in Dagster's
workspace loader (`dagster._cli.workspace.cli_target`), which `dagster dev` uses
but the code server does not. A repo that names no target is resolved at start
time, in the container, by calling that same loader (`PyProjectFileTarget`,
`WorkspaceFileTarget`) and passing the result on as flags; the fleet files carry
no target, and the checkout only exists once git-sync has run.

The launcher also: reads `DAGFLEET_FILE__<NAME>=<path>` into `<NAME>` (compose
secrets are files), installs the playground loader (dagfleet's own, shipped next
to it as `playground_init.py`) as the playground package's `__init__.py`, wraps the
server in debugpy when `DAGFLEET_DEBUG_PORT` is set, and serves git-sync's
webhook on 127.0.0.1 by asking the central webserver to reload the location
(GraphQL `reloadRepositoryLocation`, which makes the code server reload).

`launch.py --probe` is the readiness probe of a code server pinned to a commit
(k8s_location): it asks the server on DAGFLEET_PORT for its repositories over
gRPC (`ListRepositories`, the call the webserver makes) and exits 0 only when
the answer is a `ListRepositoriesResponse`. `dagster api grpc-health-check`
passes as soon as the server listens, also when the definitions failed to load
(the server then answers every call with the load error); this does not. It
uses grpcio alone (the reply is one protobuf string field, decoded by hand), so
a probe every few seconds does not import Dagster.
"""

from __future__ import annotations

LAUNCHER_SOURCE = r'''"""dagfleet code-server launcher, rendered by dagfleet (docs/deploy.md)."""
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request

PLAYGROUND_INIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playground_init.py")


def install_playground(code_dir):
    """The playground package: every *.py file in `code_dir` (as dagfleet's loader does)."""
    os.makedirs(code_dir, exist_ok=True)
    with open(PLAYGROUND_INIT, encoding="utf-8") as f:
        loader = f.read()
    tmp = os.path.join(code_dir, ".__init__.py.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(loader)
    os.replace(tmp, os.path.join(code_dir, "__init__.py"))


def discover(code_dir):
    """Dagster's own no-argument target resolution, as `dagster dev` does it."""
    from dagster._cli.utils import has_pyproject_dagster_block
    from dagster._core.workspace.load_target import PyProjectFileTarget, WorkspaceFileTarget

    os.chdir(code_dir)
    if has_pyproject_dagster_block("pyproject.toml"):
        target = PyProjectFileTarget("pyproject.toml")
    elif os.path.exists("workspace.yaml") or os.path.exists("workspace.yml"):
        name = "workspace.yaml" if os.path.exists("workspace.yaml") else "workspace.yml"
        target = WorkspaceFileTarget(paths=[name])
    else:
        sys.exit(f"{code_dir}: no code target: add [tool.dagster] to pyproject.toml, "
                 "a workspace.yaml, or module_name/python_file/package_name to the repo file")
    for origin in target.create_origins():
        if origin.location_name == "playground":
            continue
        lto = origin.loadable_target_origin
        args = []
        for flag, value in (("--module-name", lto.module_name), ("--python-file", lto.python_file),
                            ("--package-name", lto.package_name), ("--attribute", lto.attribute),
                            ("--autoload-defs-module-name", lto.autoload_defs_module_name)):
            if value:
                args += [flag, value]
        return args + ["--working-directory", code_dir]
    sys.exit(f"{code_dir}: the workspace names no location besides the playground")


def reload_location(url, location):
    query = ("mutation($n: String!) { reloadRepositoryLocation(repositoryLocationName: $n)"
             " { __typename } }")
    body = json.dumps({"query": query, "variables": {"n": location}}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/graphql", body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status


def serve_hook(port, url, location):
    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                status = reload_location(url, location)
            except OSError as exc:
                print(f"dagfleet: reload of {location} failed: {exc}", flush=True)
                status = 502
            self.send_response(200 if status == 200 else 502)
            self.end_headers()

        do_GET = do_POST

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _read_varint(data, pos):
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def probe(port, timeout=20.0):
    """0 when the server on `port` has loaded its definitions, else 1 (with the reason)."""
    import grpc

    target = "127.0.0.1:" + str(port)
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/api.DagsterApi/ListRepositories",
                                   request_serializer=lambda _: b"",
                                   response_deserializer=lambda raw: raw)
        try:
            raw = call(None, timeout=timeout)
        except grpc.RpcError as exc:
            print(f"dagfleet probe: {target}: {exc.code()}", file=sys.stderr)
            return 1
    text, pos = "", 0
    while pos < len(raw):
        key, pos = _read_varint(raw, pos)
        if key & 7 != 2:
            print("dagfleet probe: unexpected reply", file=sys.stderr)
            return 1
        size, pos = _read_varint(raw, pos)
        if key >> 3 == 1:
            text = raw[pos:pos + size].decode("utf-8")
        pos += size
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"message": text}
    if not isinstance(answer, dict):
        answer = {"message": text}
    if answer.get("__class__") == "ListRepositoriesResponse":
        return 0
    # A load error: its root cause (the user's exception) says why.
    while isinstance(answer.get("cause"), dict):
        answer = answer["cause"]
    message = str(answer.get("message", "")).strip()
    print(f"dagfleet probe: definitions not loaded: {message[:500]}", file=sys.stderr)
    return 1


def main():
    env = os.environ
    if "--probe" in sys.argv:
        return probe(int(env.get("DAGFLEET_PORT", "4000")))
    for key, path in list(env.items()):
        if key.startswith("DAGFLEET_FILE__"):
            with open(path, encoding="utf-8") as f:
                os.environ[key.removeprefix("DAGFLEET_FILE__")] = f.read().strip()
    code_dir = env.get("DAGFLEET_CODE_DIR", os.getcwd())
    if env.get("DAGFLEET_PLAYGROUND") == "1":
        install_playground(code_dir)
    args = json.loads(env["DAGFLEET_TARGET_ARGS"]) if env.get("DAGFLEET_TARGET_ARGS") else None
    if args is None:
        args = discover(code_dir)
    cmd = [sys.executable, "-m", "dagster", "code-server", "start", "--host", "0.0.0.0",
           "--port", env.get("DAGFLEET_PORT", "4000"),
           "--location-name", env.get("DAGFLEET_LOCATION", "location"), *args]
    if env.get("DAGFLEET_DEBUG_PORT"):
        cmd[1:1] = ["-m", "debugpy", "--listen", "0.0.0.0:" + env["DAGFLEET_DEBUG_PORT"]]
    if "--print" in sys.argv:
        print(json.dumps(cmd))
        return 0
    if env.get("DAGFLEET_RELOAD_PORT") and env.get("DAGFLEET_WEBSERVER_URL"):
        serve_hook(int(env["DAGFLEET_RELOAD_PORT"]), env["DAGFLEET_WEBSERVER_URL"],
                   env.get("DAGFLEET_LOCATION", "location"))
    child = subprocess.Popen(cmd)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
'''
