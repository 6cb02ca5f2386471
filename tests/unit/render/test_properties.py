"""Properties every render must keep, as tables over fleets and targets."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.render import K8sOptions, render_ecs, render_flux, render_k8s
from dagfleet.render import common as c
from dagfleet.render.ecs_parts import prefix_policy, s3_prefixes
from dagfleet.render.flux import FluxOptions
from dagfleet.render.write import texts
from dagfleet.spec import names
from dagfleet.spec.models import Fleet
from dagfleet.storage import location_env
from dagfleet.storage.paths import repo_prefix
from tests.unit.render.fleets import (
    FLEETS,
    SECRET_ENV,
    SECRET_VALUE,
    default_fleet,
    make_fleet,
    render_all,
    three_repo_fleet,
)

pytestmark = pytest.mark.unit
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# RFC 1035: what a Service name must be (a DNS-1123 label starting with a letter).
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _long(prefix: str, length: int) -> str:
    return (prefix + "x" * length)[:length]


MAX_FLEET = _long("fleet-with-the-longest-name-allowed-", names.MAX_FLEET_NAME)
# Environments keep their case and may start with a digit.
MAX_ENVS = (_long("Production", names.MAX_ENV_NAME), _long("1st-Stage-", names.MAX_ENV_NAME))
MAX_REPOS = (
    _long("sales-pipelines-of-the-emea-region-", names.MAX_REPO_NAME),
    _long("marketing-attribution-models-", names.MAX_REPO_NAME),
)


def max_names_fleet(storage_root: str = ".dagfleet/data") -> Fleet:
    """Every name at its limit (names.MAX_*): fleet 40, repos 40, environments 12 characters,
    upper-case and digit-first environments, secrets, a custom prefix, debug and playgrounds."""
    fleet_doc = {
        "name": MAX_FLEET,
        "storage": {"root": storage_root},
        "environments": [
            {"name": MAX_ENVS[0], "branch": "main", "debug": True, "playground": True},
            {"name": MAX_ENVS[1], "branch": "stage", "playground": True},
        ],
    }
    repos = [
        {
            "name": MAX_REPOS[0],
            "git_url": "https://git.example.com/data/sales.git",
            "module_name": "sales.definitions",
            "environment": [
                {"name": "API_TOKEN", "from_env": SECRET_ENV},
                {"name": "WAREHOUSE_PASSWORD", "from_file": "/run/secrets/warehouse-password"},
            ],
        },
        {
            "name": MAX_REPOS[1],
            "git_url": "https://git.example.com/data/marketing.git",
            "s3_prefix": "teams/marketing/attribution",
        },
    ]
    fleet = make_fleet(fleet_doc, repos)
    assert len(fleet.name) == names.MAX_FLEET_NAME
    assert {len(e.name) for e in fleet.spec.environments} == {names.MAX_ENV_NAME}
    assert {len(r) for r in fleet.repos} == {names.MAX_REPO_NAME}
    return fleet


# Every fleet the name and storage properties are checked on.
NAMED_FLEETS: dict[str, Callable[[], Fleet]] = {
    **FLEETS,
    "max-names": max_names_fleet,
    "max-names-s3": lambda: max_names_fleet("s3://lake/dagster"),
}


def manifest_docs(files: dict[str, str]) -> list[dict[str, Any]]:
    """The Kubernetes (and Flux) objects of a k8s or flux render."""
    out = []
    for path, text in files.items():
        if path.startswith(("manifests/", "flux/")) and not path.endswith("kustomization.yaml"):
            out += [d for d in yaml.safe_load_all(text) if d]
    return out


def k8s_docs(fleet_name: str, **kw: Any) -> list[dict[str, Any]]:
    return manifest_docs(texts(render_k8s(NAMED_FLEETS[fleet_name](), K8sOptions(**kw))))


def flux_docs(fleet_name: str) -> list[dict[str, Any]]:
    return manifest_docs(texts(render_flux(NAMED_FLEETS[fleet_name](), FluxOptions())))


def _norm(key: str) -> str:
    # Objects use camelCase; container contexts (dagster-k8s) use snake_case.
    return key.replace("_", "").lower()


Name = tuple[str, str, Any]  # (rule, where, value)


def k8s_names(node: Any, where: str = "") -> Iterator[Name]:
    """Every name-like field of a Kubernetes object with the rule it must follow.

    Rules: `label` (a DNS-1123 label, <= 63), `service` (RFC 1035), `port` (IANA_SVC_NAME)
    and `labels` (a map of label keys and values). Container contexts are followed
    into: their volumes, mounts, init containers and labels become run pods.
    """
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from k8s_names(item, f"{where}[{i}]")
        return
    if not isinstance(node, dict):
        return
    if node.get("name") == "DAGSTER_CONTAINER_CONTEXT" and "value" in node:
        yield from k8s_names(json.loads(node["value"]), f"{where}<context>")
        return
    for key, value in node.items():
        k, at = _norm(key), f"{where}.{key}"
        if k in ("labels", "matchlabels") and isinstance(value, dict):
            yield ("labels", at, value)
            continue
        if k == "selector" and isinstance(value, dict) and "matchLabels" not in value:
            yield ("labels", at, value)  # a Service's selector
            continue
        if k == "metadata" and isinstance(value, dict):
            for field in ("name", "namespace"):
                if field in value:
                    rule = (
                        "service" if field == "name" and node.get("kind") == "Service" else "label"
                    )
                    yield (rule, f"{at}.{field}", value[field])
        elif k in ("containers", "initcontainers", "volumes", "volumemounts"):
            yield from (("label", f"{at}[{i}].name", v["name"]) for i, v in enumerate(value))
        elif k == "ports" and isinstance(value, list):
            yield from (
                ("port", f"{at}[{i}].name", v["name"]) for i, v in enumerate(value) if "name" in v
            )
        elif k in ("claimname", "serviceaccountname", "namespace") and isinstance(value, str):
            yield ("label", at, value)
        elif k == "servicename" and isinstance(value, str):
            yield ("service", at, value)
        elif k in ("secretkeyref", "configmap", "configmapref", "sourceref"):
            yield ("label", f"{at}.name", value["name"])
        elif k == "targetport" and isinstance(value, str):
            yield ("port", at, value)
        yield from k8s_names(value, at)


def name_problems(rule: str, value: Any) -> list[str]:
    if rule == "labels":
        problems = []
        for key, val in value.items():
            prefix, _, name = key.rpartition("/")
            if prefix and not (len(prefix) <= 253 and DNS_SUBDOMAIN.match(prefix)):
                problems.append(f"label key prefix {key!r}")
            if not (len(name) <= 63 and LABEL_NAME.match(name)):
                problems.append(f"label key {key!r}")
            if not (isinstance(val, str) and len(val) <= 63 and LABEL_VALUE.match(val)):
                problems.append(f"label value {key}={val!r}")
        return problems
    ok = isinstance(value, str) and len(value) <= 63 and bool(DNS_LABEL.match(value))
    if rule == "service":
        ok = ok and bool(DNS_1035_LABEL.match(value))
    if rule == "port":
        # IANA_SVC_NAME: at most 15 characters, at least one letter, no "--".
        ok = ok and len(value) <= 15 and bool(IANA_SVC_NAME.match(value))
        ok = ok and "--" not in value and any(ch.isalpha() for ch in value)
    return [] if ok else [f"{rule} name {value!r}"]


@pytest.mark.parametrize("target", ["k8s", "flux"])
@pytest.mark.parametrize("fleet", list(NAMED_FLEETS))
def test_every_kubernetes_name_and_label_is_valid(fleet: str, target: str) -> None:
    docs = k8s_docs(fleet) if target == "k8s" else flux_docs(fleet)
    found = list(k8s_names(docs))
    problems = [f"{where}: {p}" for rule, where, v in found for p in name_problems(rule, v)]
    assert not problems, problems
    # Not vacuous: every rule and every kind of field was seen, container contexts included.
    assert {rule for rule, _, _ in found} == {"label", "service", "port", "labels"}
    for field in ("containers", "initContainers", "volumes", "volumeMounts", "ports"):
        assert any(f".{field}[" in where for _, where, _ in found), field
    context = [where for _, where, _ in found if "<context>" in where]
    assert any(".init_containers[" in w for w in context)
    assert any(".volume_mounts[" in w for w in context) and any(".labels" in w for w in context)
    if target == "flux":
        kinds = {d["kind"] for d in docs}
        assert {"GitRepository", "Kustomization", "HelmRelease", "HelmRepository"} <= kinds


@pytest.mark.parametrize("s3", [False, True])
def test_maximal_names_fit_without_truncation(s3: bool) -> None:
    """The spec limits leave room: `<fleet>-<env>` and `<repo>-<env>` are never shortened,
    and environment names are lower-cased (Production99 -> production99)."""
    fleet = max_names_fleet("s3://lake/dagster" if s3 else ".dagfleet/data")
    docs = manifest_docs(texts(render_k8s(fleet)))
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert namespaces == {MAX_FLEET} | {f"{MAX_FLEET}-{e.lower()}" for e in MAX_ENVS}
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    expected = {f"{r}-{e.lower()}" for r in MAX_REPOS for e in MAX_ENVS}
    assert expected | {f"playground-{e.lower()}" for e in MAX_ENVS} <= services
    assert (
        max(len(n) for n in namespaces | services) == names.MAX_FLEET_NAME + 1 + names.MAX_ENV_NAME
    )
    secrets = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for d in docs
        if d["kind"] == "Deployment"
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in e and e["name"] == "API_TOKEN"
    }
    assert secrets == {f"dagfleet-{MAX_REPOS[0]}"}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("datpipe", "A"), "datpipe-a"),
        (("medallion-B",), "medallion-b"),
        (("x" * 40, "y" * 40), None),
    ],
)
def test_k8s_name(parts: tuple[str, ...], expected: str | None) -> None:
    name = c.k8s_name(*parts)
    assert len(name) <= 63 and DNS_LABEL.match(name)
    if expected:
        assert name == expected
    assert c.k8s_name(*parts) == name  # stable


@pytest.mark.parametrize("fleet", list(FLEETS))
def test_debug_port_only_in_debug_environments(fleet: str) -> None:
    spec = FLEETS[fleet]()
    debug_ns = {c.namespace(spec, e.name) for e in spec.spec.environments if e.debug}
    seen = set()
    for doc in k8s_docs(fleet):
        if doc["kind"] != "Deployment":
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        ports = {p["containerPort"] for p in container["ports"]}
        is_playground = doc["metadata"]["name"].startswith("playground-")
        wanted = doc["metadata"]["namespace"] in debug_ns and not is_playground
        assert (c.DEBUG_PORT in ports) == wanted, doc["metadata"]["name"]
        seen.add(wanted)
    assert seen == {True, False}


def test_code_server_port_probe_and_resources() -> None:
    docs = [d for d in k8s_docs("analytics") if d["kind"] == "Deployment"]
    sales = next(d for d in docs if d["metadata"]["name"] == "sales-dev")
    container = sales["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 4000
    assert container["readinessProbe"]["exec"]["command"][:3] == [
        "dagster",
        "api",
        "grpc-health-check",
    ]
    # seed 004: cpu 512 = half a vCPU, memory 1024 MiB.
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1024Mi"}
    sync = sales["spec"]["template"]["spec"]["initContainers"][0]
    args = " ".join(sync["args"])
    for flag in (
        "--repo=",
        "--ref=develop",
        "--period=10s",
        "--root=",
        "--link=",
        "--webhook-url=",
    ):
        assert flag in args
    marketing = next(d for d in docs if d["metadata"]["name"] == "marketing-prod")
    # A pin wins over the branch.
    assert "--ref=v1.2.0" in marketing["spec"]["template"]["spec"]["initContainers"][0]["args"]


def test_repo_without_target_is_discovered_by_the_launcher() -> None:
    docs = [d for d in k8s_docs("analytics") if d["kind"] == "Deployment"]
    finance = next(d for d in docs if d["metadata"]["name"].startswith("finance"))
    env = {e["name"] for e in finance["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "DAGFLEET_TARGET_ARGS" not in env and "DAGFLEET_CODE_DIR" in env


@pytest.mark.parametrize("cnpg", [True, False])
def test_local_storage_gets_data_and_layer_pvcs_and_s3_storage_none(cnpg: bool) -> None:
    local = [
        d["metadata"]["name"]
        for d in k8s_docs("default", cnpg=cnpg)
        if d["kind"] == "PersistentVolumeClaim"
    ]
    # A and B both have a playground: its claim comes with either storage.
    assert sorted(local) == sorted(["data", "bronze", "silver", "gold", "playground"] * 2)
    s3 = [d for d in k8s_docs("analytics", cnpg=cnpg) if d["kind"] == "PersistentVolumeClaim"]
    assert [d["metadata"]["name"] for d in s3] == ["playground"]  # only `dev` has one
    kinds = {d["kind"] for d in k8s_docs("default", cnpg=cnpg)}
    assert ("Cluster" in kinds) == cnpg and ("StatefulSet" in kinds) != cnpg


@pytest.mark.parametrize(
    ("kw", "mode"), [({}, "ReadWriteMany"), ({"pvc_access_mode": "ReadWriteOnce"}, "ReadWriteOnce")]
)
def test_data_claims_are_shared_by_pods_on_any_node_unless_configured(
    kw: dict[str, Any], mode: str
) -> None:
    """Code servers and the run pods of their locations mount the same claims."""
    claims = [d for d in k8s_docs("default", **kw) if d["kind"] == "PersistentVolumeClaim"]
    assert claims and all(d["spec"]["accessModes"] == [mode] for d in claims)


# --- storage: the variables `dagfleet up` sets, on paths that exist in the pod ------------

STORAGE_VARS = ("DAGFLEET_STORAGE_ROOT", "DAGFLEET_ASSETS", "DAGFLEET_RUNS", "DAGFLEET_LOGS")


def _pods(fleet_name: str) -> Iterator[tuple[Fleet, dict[str, Any], dict[str, Any]]]:
    """(fleet, Deployment, its code-server container's run context) of every location."""
    fleet = NAMED_FLEETS[fleet_name]()
    for doc in manifest_docs(texts(render_k8s(fleet))):
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] not in ("postgres",):
            container = doc["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e.get("value") for e in container["env"]}
            if "DAGSTER_CONTAINER_CONTEXT" in env:
                yield fleet, doc, json.loads(env["DAGSTER_CONTAINER_CONTEXT"])["k8s"]


def _env(doc: dict[str, Any]) -> dict[str, Any]:
    container = doc["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def _mounted(path: str, mounts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The mount holding `path` (the deepest one), if any."""
    holding = [
        m
        for m in mounts
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    return max(holding, key=lambda m: len(m["mountPath"]), default=None)


def _camel_mounts(context: dict[str, Any]) -> list[dict[str, Any]]:
    keys = {"mount_path": "mountPath", "sub_path": "subPath", "read_only": "readOnly"}
    return [{keys.get(k, k): v for k, v in m.items()} for m in context["volume_mounts"]]


@pytest.mark.parametrize("fleet", list(NAMED_FLEETS))
def test_locations_get_the_local_runtime_storage_variables(fleet: str) -> None:
    """Same names as dagfleet.storage.location_env (what `dagfleet up` sets), and with a
    local root every path is on a volume of the pod, in the location's own prefix."""
    for spec, doc, _ in _pods(fleet):
        env = _env(doc)
        repo, loc_env = env["DAGFLEET_REPO"], env["DAGFLEET_ENV"]
        wanted = set(location_env(spec, repo, loc_env))
        assert wanted <= set(env), wanted - set(env)
        if spec.spec.storage.is_s3:
            own = f"{spec.spec.storage.root}/{loc_env}/{repo_prefix(spec, repo)}"
            assert env["DAGFLEET_STORAGE_ROOT"] == own
        else:
            prefix = repo_prefix(spec, repo)
            assert env["DAGFLEET_STORAGE_ROOT"] == f"/data/{loc_env}/{prefix}"
        for var in STORAGE_VARS:
            assert env[var].startswith(env["DAGFLEET_STORAGE_ROOT"]), var


LOCAL_FLEETS = [f for f, make in NAMED_FLEETS.items() if not make().spec.storage.is_s3]


@pytest.mark.parametrize("fleet", LOCAL_FLEETS)
def test_local_storage_is_mounted_per_repo_in_code_servers_and_run_pods(fleet: str) -> None:
    """One `data` claim per environment, mounted with subPath = the repo's prefix; seed
    001's layers with the same subPath under the location's root; shared/ read-only;
    run pods (the container context) get exactly the same storage mounts."""
    seen: dict[str, list[tuple[str, str]]] = {}
    for spec, doc, context in _pods(fleet):
        env = _env(doc)
        pod = doc["spec"]["template"]["spec"]
        container_mounts = pod["containers"][0]["volumeMounts"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v and v["name"] != c.PLAYGROUND_CLAIM
        }
        assert sorted(claims.values()) == sorted(["data", *c.LAYERS])
        prefix = repo_prefix(spec, env["DAGFLEET_REPO"])
        for mounts in (container_mounts, _camel_mounts(context)):
            root = _mounted(env["DAGFLEET_STORAGE_ROOT"], mounts)
            assert root == {
                "name": "data",
                "mountPath": env["DAGFLEET_STORAGE_ROOT"],
                "subPath": prefix,
            }
            shared = _mounted(env["DAGFLEET_SHARED"], mounts)
            assert shared is not None and shared["subPath"] == "shared" and shared["readOnly"]
            for layer in c.LAYERS:
                mount = _mounted(posixpath.join(env["DAGFLEET_STORAGE_ROOT"], layer), mounts)
                assert mount is not None and (mount["name"], mount["subPath"]) == (layer, prefix)
            for var in (*STORAGE_VARS, "DAGFLEET_TEMP"):
                assert _mounted(env[var], mounts) is not None, f"{var}={env[var]} is on no volume"
            # Nothing else of a claim is visible: every claim mount is the prefix or shared.
            for m in mounts:
                if m["name"] in claims:
                    assert m.get("subPath") in (prefix, "shared"), m
        storage = {m["mountPath"]: m for m in container_mounts if m["name"] in [*claims, "temp"]}
        assert storage == {
            m["mountPath"]: m for m in _camel_mounts(context) if m["mountPath"] in storage
        }
        assert {m["mountPath"] for m in _camel_mounts(context)} >= set(storage)
        run_volumes = {v["name"] for v in context["volumes"]}
        assert set(claims) | {"temp"} <= run_volumes
        seen.setdefault(doc["metadata"]["namespace"], []).append((env["DAGFLEET_REPO"], prefix))
    for locations in seen.values():
        prefixes = [p for r, p in locations if r != "playground"]
        assert len(prefixes) == len(set(prefixes)) >= 1
        for a in prefixes:
            for b in prefixes:
                assert a == b or not names.prefixes_overlap(a, b)


@pytest.mark.parametrize("fleet", list(NAMED_FLEETS))
def test_playground_files_are_on_a_claim_its_run_pods_mount(fleet: str) -> None:
    """`kubectl cp` writes into the playground claim; the runs of `playground-<env>` load
    the same package from it, and no other location mounts it."""
    for spec, doc, context in _pods(fleet):
        pod = doc["spec"]["template"]["spec"]
        claim = {"name": "playground", "persistentVolumeClaim": {"claimName": "playground"}}
        is_playground = doc["metadata"]["name"].startswith("playground-")
        run_mount = _mounted(c.PLAYGROUND_DIR, _camel_mounts(context))
        if not is_playground:
            assert claim not in pod["volumes"] and run_mount is None
            continue
        run_claim = {"name": "playground", "persistent_volume_claim": {"claim_name": "playground"}}
        assert claim in pod["volumes"] and run_claim in context["volumes"]
        assert _mounted(c.PLAYGROUND_DIR, pod["containers"][0]["volumeMounts"]) == run_mount
        assert run_mount == {"name": "playground", "mountPath": c.PLAYGROUND_DIR}
        env = _env(doc)
        assert json.loads(env["DAGFLEET_TARGET_ARGS"]) == [
            "--package-name",
            "playground",
            "--working-directory",
            posixpath.dirname(c.PLAYGROUND_DIR),
        ]
        assert env["DAGFLEET_CODE_DIR"] == c.PLAYGROUND_DIR
        claims = [
            d
            for d in manifest_docs(texts(render_k8s(spec)))
            if d["kind"] == "PersistentVolumeClaim"
            and d["metadata"]["namespace"] == doc["metadata"]["namespace"]
            and d["metadata"]["name"] == "playground"
        ]
        assert len(claims) == 1


def test_two_repos_never_share_a_data_path() -> None:
    """The regression: every location of an environment used to get DAGFLEET_STORAGE_ROOT
    /data and the whole bronze/silver/gold claims."""
    writable_by_ns: dict[str, set[tuple[str, str]]] = {}
    for _, doc, _ in _pods("max-names"):
        mounts = doc["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        writable = {
            (m["name"], m.get("subPath", ""))
            for m in mounts
            if m["name"] in ("data", *c.LAYERS) and not m.get("readOnly")
        }
        assert writable and all(sub for _, sub in writable)
        others = writable_by_ns.setdefault(doc["metadata"]["namespace"], set())
        assert not writable & others, writable & others
        others |= writable
    assert len(writable_by_ns) == len(MAX_ENVS)


# --- the run launcher's container context -------------------------------------------------

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def _keys(
    node: Any, skip: frozenset[str] = frozenset({"labels", "requests", "limits"})
) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _keys(item, skip)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key not in skip:
                yield from _keys(value, skip)


@pytest.mark.parametrize("fleet", list(NAMED_FLEETS))
def test_runs_go_to_the_environment_namespace_with_the_code_server_settings(fleet: str) -> None:
    for spec, doc, context in _pods(fleet):
        ns = doc["metadata"]["namespace"]
        env_name = _env(doc)["DAGFLEET_ENV"]
        assert context["namespace"] == ns == c.namespace(spec, env_name)
        pod = doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert context["service_account_name"] == pod["serviceAccountName"]
        assert context["resources"] == container["resources"]
        assert context["labels"]["dagfleet.dev/location"] == doc["metadata"]["name"]
        # The same variables as the code server, minus the server's own control variables.
        server = {e["name"] for e in container["env"]}
        run = {e["name"] for e in context["env"]}
        assert run <= server and "DAGSTER_CONTAINER_CONTEXT" not in run
        assert {"DAGFLEET_STORAGE_ROOT", "DAGFLEET_SHARED", "DAGFLEET_TEMP"} <= run
        init = context["run_k8s_config"]["pod_spec_config"].get("init_containers", [])
        assert bool(init) != doc["metadata"]["name"].startswith("playground-")
        pod_security = context["run_k8s_config"]["pod_spec_config"]["security_context"]
        assert pod_security == {"fs_group": pod["securityContext"]["fsGroup"]}
        assert context["security_context"] == {
            "run_as_non_root": container["securityContext"]["runAsNonRoot"],
            "allow_privilege_escalation": container["securityContext"]["allowPrivilegeEscalation"],
        }


@pytest.mark.parametrize("release", ["dagster", "prod"])
def test_run_pods_find_the_chart_pipeline_env_in_their_namespace(release: str) -> None:
    """The chart's K8sRunLauncher gives run pods `envFrom: <fullname>-pipeline-env`, which
    the chart creates in its own namespace only; runs here run in the environments'."""
    fleet = default_fleet()
    fullname = release if "dagster" in release else f"{release}-dagster"
    docs = manifest_docs(texts(render_k8s(fleet, K8sOptions(release_name=release))))
    found = {
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{fullname}-pipeline-env"
    }
    assert found == {c.namespace(fleet, e.name) for e in fleet.spec.environments}


@pytest.mark.parametrize("fleet", list(NAMED_FLEETS))
def test_container_context_is_snake_case_throughout(fleet: str) -> None:
    """dagster-k8s's container context schema is snake_case; the Kubernetes objects inside
    it are read through the kubernetes client's models, written snake_case as well (the
    old context mixed `runAsNonRoot` and `security_context`)."""
    for _, _, context in _pods(fleet):
        bad = [k for k in _keys(context) if not SNAKE.match(k)]
        assert not bad, bad


def test_node_port_is_opt_in() -> None:
    def node_ports(**kw: Any) -> list[int]:
        return [
            p["nodePort"]
            for d in k8s_docs("default", **kw)
            if d["kind"] == "Service" and d["spec"].get("type") == "NodePort"
            for p in d["spec"]["ports"]
        ]

    assert node_ports() == []
    assert node_ports(node_port=30000) == [30000]


def test_workspace_lists_every_location_at_its_service() -> None:
    fleet = default_fleet()
    cm = next(
        d
        for d in k8s_docs("default")
        if d["kind"] == "ConfigMap" and "workspace.yaml" in d.get("data", {})
    )
    workspace = yaml.safe_load(cm["data"]["workspace.yaml"])
    hosts = {
        e["grpc_server"]["location_name"]: e["grpc_server"]["host"] for e in workspace["load_from"]
    }
    assert set(hosts) == {loc.name for loc in fleet.locations()}
    assert hosts["medallion-A"] == "medallion-a.dagfleet-a.svc.cluster.local"


def test_no_secret_value_appears_in_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "warehouse-password"
    secret_file.write_text(SECRET_VALUE + "-from-file")
    monkeypatch.setenv(SECRET_ENV, SECRET_VALUE)
    fleet = three_repo_fleet(str(secret_file))
    for node_port, cnpg in ((None, True), (30000, False)):
        for target, result in render_all(fleet, cnpg=cnpg, node_port=node_port).items():
            for path, text in texts(result).items():
                assert SECRET_VALUE not in text, f"{target}/{path} leaks a secret value"
    k8s = texts(render_k8s(fleet))
    sales = yaml.safe_load_all(k8s["manifests/dev/sales-dev.yaml"])
    env = next(iter(sales))["spec"]["template"]["spec"]["containers"][0]["env"]
    token = next(e for e in env if e["name"] == "API_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "dagfleet-sales", "key": SECRET_ENV}


@pytest.mark.parametrize(
    ("env", "repo", "own", "shared"),
    [
        ("dev", "sales", "dagster/dev/repos/sales", "dagster/dev/shared"),
        ("prod", "marketing", "dagster/prod/repos/marketing", "dagster/prod/shared"),
    ],
)
def test_iam_prefix_is_exact(env: str, repo: str, own: str, shared: str) -> None:
    fleet = three_repo_fleet()
    assert s3_prefixes(fleet, env, repo, "ignored") == ("lake-bucket", own, shared)
    policy = json.dumps(prefix_policy(fleet, env, repo, "ignored"))
    assert f"lake-bucket/{own}/*" in policy and f"lake-bucket/{shared}/*" in policy
    # Nothing wider than the location's own prefix, the shared one and the instance's
    # step logs (issue 15: run tasks upload them there, put/get only, never listed).
    logs = "lake-bucket/dagster/_system/compute_logs/storage/*"
    resources = re.findall(r"s3:::([^\"]*)", policy)
    assert sorted(resources) == sorted(
        ["lake-bucket", f"lake-bucket/{own}/*", f"lake-bucket/{shared}/*", logs]
    )
    statements = prefix_policy(fleet, env, repo, "ignored")["Statement"]
    (step_logs,) = [st for st in statements if logs in json.dumps(st["Resource"])]
    assert sorted(step_logs["Action"]) == ["s3:GetObject", "s3:PutObject"]


def test_iam_prefix_with_local_storage_uses_the_bucket_option() -> None:
    assert s3_prefixes(default_fleet(), "A", "medallion", "dagster-storage") == (
        "dagster-storage",
        "A/repos/medallion",
        "A/shared",
    )


def test_ecs_workspace_uses_cloud_map_names() -> None:
    workspace = render_ecs(three_repo_fleet())["workspace.yaml"]
    entries = {e["grpc_server"]["location_name"]: e["grpc_server"] for e in workspace["load_from"]}
    assert entries["sales-dev"] == {
        "host": "sales-dev.analytics-dev.local",
        "port": 4000,
        "location_name": "sales-dev",
    }
