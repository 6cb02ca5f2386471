"""Every rendered file validates offline against the real schemas of its platform.

- Kubernetes objects: kubernetes-validate, strict, for Kubernetes 1.30.
- Flux and CloudNativePG objects: the CRDs in ../shared/crds, served versions
  only, openAPIV3Schema converted to JSON Schema (unknown fields rejected unless
  x-kubernetes-preserve-unknown-fields).
- Helm values: merged over the chart's values.yaml the way Helm does, then the
  chart's values.schema.json with its Kubernetes $refs resolved from the
  definitions bundled in kubernetes-validate.
- The container context each code server hands the K8sRunLauncher
  (DAGSTER_CONTAINER_CONTEXT): the keys dagster-k8s 0.29.27 accepts, and every
  Kubernetes object inside it valid for 1.30 (dagster-k8s is not a dependency
  of this project, so its schema is written down below).
- ECS: cfn-lint. Compose: the compose-spec schema shipped by check-jsonschema.
- The front door's objects (issue 14) are among them: its Deployment, Service,
  ServiceAccount, NetworkPolicy and fleet ConfigMap; the ECS load balancer and
  sidecar; compose configs and secrets; with single sign-on secrets from files too.
  CI workflow: actionlint and the github-workflows schema.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import referencing.jsonschema
import yaml

from dagfleet.render import EcsOptions, render_ecs
from dagfleet.render import common as c
from dagfleet.render.write import texts
from dagfleet.spec.models import Fleet
from tests.support.schemas import configured, schemas_dir
from tests.unit.render.fleets import FLEETS, render_all, sso_file_fleet
from tests.unit.render.test_properties import max_names_fleet

pytestmark = pytest.mark.integration

KUBERNETES_VERSION = "1.30.0"
SHARED = configured()  # DAGFLEET_SCHEMAS_DIR, default ../shared (tests/support/schemas.py)
CRDS = SHARED / "crds"
CHART = SHARED / "helm" / "dagster"
CRD_GROUPS = ("toolkit.fluxcd.io", "postgresql.cnpg.io")
K8S_REMOTE = "https://raw.githubusercontent.com/yannh/kubernetes-json-schema/master/v1.19.0/_definitions.json"
# The shared fleets plus one with every name at its limit (local and s3 storage).
ALL_FLEETS: dict[str, Callable[[], Fleet]] = {
    **FLEETS,
    "max-names": max_names_fleet,
    "max-names-s3": lambda: max_names_fleet("s3://lake/dagster"),
    # Single sign-on with the client secret in a file: relative (a projected volume
    # item) and absolute (a subPath mount of the Secret).
    "sso-file": sso_file_fleet,
    "sso-file-absolute": lambda: sso_file_fleet("/run/secrets/oidc/client-secret"),
}
VARIANTS = [
    (name, cnpg, node_port)
    for name in ALL_FLEETS
    for cnpg, node_port in ((True, None), (False, 30000))
]
IDS = [f"{n}-{'cnpg' if c else 'statefulset'}" for n, c, _ in VARIANTS]


@cache
def rendered(name: str, cnpg: bool, node_port: int | None) -> dict[str, dict[str, str]]:
    return {
        t: texts(r)
        for t, r in render_all(ALL_FLEETS[name](), cnpg=cnpg, node_port=node_port).items()
    }


def manifests(files: dict[str, str]) -> list[dict[str, Any]]:
    docs = []
    for path, text in files.items():
        if path.startswith(("manifests/", "flux/")) and not path.endswith("kustomization.yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def is_crd_object(doc: dict[str, Any]) -> bool:
    return doc["apiVersion"].split("/")[0].endswith(CRD_GROUPS)


@pytest.mark.parametrize(("name", "cnpg", "node_port"), VARIANTS, ids=IDS)
def test_kubernetes_objects_are_valid_for_1_30(
    name: str, cnpg: bool, node_port: int | None
) -> None:
    out = rendered(name, cnpg, node_port)
    docs = [d for t in ("k8s", "flux") for d in manifests(out[t]) if not is_crd_object(d)]
    assert {d["kind"] for d in docs} >= {"Namespace", "Deployment", "Service", "NetworkPolicy"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


# --- CRDs -------------------------------------------------------------------------------


def openapi_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    is_object = node.get("type") == "object"
    if is_object and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas_dir("the CRD validation")
    out = {}
    for path in sorted(CRDS.rglob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
                # metadata is validated by the API server, not by the CRD schema.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                out[(f"{group}/{version['name']}", kind)] = schema
    return out


@pytest.mark.parametrize(("name", "cnpg", "node_port"), VARIANTS, ids=IDS)
def test_flux_and_cnpg_objects_match_served_crds(
    name: str, cnpg: bool, node_port: int | None
) -> None:
    out = rendered(name, cnpg, node_port)
    docs = [d for d in manifests(out["flux"]) if is_crd_object(d)]
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"GitRepository", "Kustomization", "HelmRepository", "HelmRelease"}
    assert ("Cluster" in kinds) == cnpg
    schemas = crd_schemas()
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        assert key in schemas, f"{key} is not a served version of a CRD in {CRDS}"
        errors = list(jsonschema.Draft7Validator(schemas[key]).iter_errors(doc))
        assert not errors, [f"{doc['kind']} {list(e.path)}: {e.message[:300]}" for e in errors]


# --- Helm values --------------------------------------------------------------------------


def helm_merge(base: Any, override: Any) -> Any:
    """Helm's coalescing: maps merge recursively, lists and scalars replace, null deletes."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@cache
def kubernetes_definitions() -> dict[str, Any]:
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    data = json.loads((root / f"v{KUBERNETES_VERSION}-local" / "_definitions.json").read_text())
    defs = data.get("$defs") or data["definitions"]
    # The chart refers to `#/definitions/...`; the bundled file's own refs use `#/$defs/...`.
    return {"definitions": defs, "$defs": defs}


def validate_chart_values(values: dict[str, Any], chart: Path) -> None:
    schemas_dir("the Helm values validation")
    schema = json.loads((chart / "values.schema.json").read_text())
    merged = helm_merge(yaml.safe_load((chart / "values.yaml").read_text()), values)
    resource = referencing.Resource.from_contents(
        kubernetes_definitions(), default_specification=referencing.jsonschema.DRAFT7
    )
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(K8S_REMOTE, resource)
    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema, registry=registry).iter_errors(merged), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.mark.parametrize(("name", "cnpg", "node_port"), VARIANTS, ids=IDS)
def test_helm_values_match_the_chart_schema(name: str, cnpg: bool, node_port: int | None) -> None:
    out = rendered(name, cnpg, node_port)
    values = yaml.safe_load(out["k8s"]["values.yaml"])
    validate_chart_values(values, CHART)
    release = next(d for d in manifests(out["flux"]) if d["kind"] == "HelmRelease")
    assert release["spec"]["values"] == values
    assert values["dagster-user-deployments"]["enabled"] is False


# --- the K8sRunLauncher's container context ---------------------------------------------
#
# Written down from dagster-k8s 0.29.27 (the release paired with dagster 1.13.27 in
# uv.lock), dagster_k8s/job.py and container_context.py:
# - `K8sContainerContext.create_from_config` reads `context["k8s"]` with the config
#   type `DagsterK8sJobConfig.config_type_container_context()`, whose fields are
#   `config_type_container()` plus namespace, run_k8s_config, server_k8s_config, env
#   and server_replica_count (a Shape: unknown keys are errors);
# - `run_k8s_config` is USER_DEFINED_K8S_JOB_CONFIG_SCHEMA;
# - volumes, volume_mounts and env are read with `k8s_snake_case_dict` against the
#   kubernetes client's V1Volume, V1VolumeMount and V1EnvVar; `resources` is
#   {limits, requests}; `security_context` becomes the container's; pod_spec_config
#   and container_config are read against V1PodSpec and V1Container. Those models take
#   the snake_case attribute names (or their camelCase JSON names); dagfleet writes
#   snake_case, and the checks below turn it back into the API's JSON to validate it
#   with the Kubernetes 1.30 schema (strict).
# - `namespace` is where the launcher creates the run's Job
#   (`create_namespaced_job_with_retries(namespace=container_context.namespace)`).
CONTEXT_KEYS = {
    "image_pull_policy",
    "image_pull_secrets",
    "service_account_name",
    "env_config_maps",
    "env_secrets",
    "env_vars",
    "volume_mounts",
    "volumes",
    "labels",
    "resources",
    "scheduler_name",
    "security_context",
    "namespace",
    "run_k8s_config",
    "server_k8s_config",
    "env",
    "server_replica_count",
}
RUN_K8S_CONFIG_KEYS = {
    "container_config",
    "pod_template_spec_metadata",
    "pod_spec_config",
    "job_config",
    "job_metadata",
    "job_spec_config",
    "merge_behavior",
}
# context key -> (Kubernetes definition, whether the value is a list of them)
CONTEXT_OBJECTS = {
    "volumes": ("io.k8s.api.core.v1.Volume", True),
    "volume_mounts": ("io.k8s.api.core.v1.VolumeMount", True),
    "env": ("io.k8s.api.core.v1.EnvVar", True),
    "resources": ("io.k8s.api.core.v1.ResourceRequirements", False),
    "security_context": ("io.k8s.api.core.v1.SecurityContext", False),
    "image_pull_secrets": ("io.k8s.api.core.v1.LocalObjectReference", True),
}
RUN_OBJECTS = {
    "container_config": "io.k8s.api.core.v1.Container",
    "pod_spec_config": "io.k8s.api.core.v1.PodSpec",
    "pod_template_spec_metadata": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "job_metadata": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "job_spec_config": "io.k8s.api.batch.v1.JobSpec",
}
MAP_FIELDS = {"labels", "annotations", "requests", "limits", "node_selector"}
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def camel(node: Any, where: str) -> Any:
    """The Kubernetes JSON of an object written with snake_case names (failing on others)."""
    if isinstance(node, list):
        return [camel(v, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        assert SNAKE.match(key), f"{where}.{key}: not snake_case"
        head, *rest = key.split("_")
        name = head + "".join(part.capitalize() for part in rest)
        out[name] = value if key in MAP_FIELDS else camel(value, f"{where}.{key}")
    return out


@cache
def strict_definitions() -> dict[str, Any]:
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = root / f"v{KUBERNETES_VERSION}-local-strict" / "_definitions.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def k8s_errors(definition: str, value: Any, *, partial: bool = False) -> list[str]:
    """Errors of `value` as the Kubernetes `definition` (strict: no unknown fields).
    `partial`: only the fields present are checked (a patch such as pod_spec_config)."""
    data = strict_definitions()
    defs = data["$defs"]
    schema: dict[str, Any] = {"$ref": f"#/$defs/{definition}", "$defs": defs}
    if partial:
        schema = {**defs[definition], "$defs": defs}
        schema.pop("required", None)
    cls = jsonschema.validators.validator_for({"$schema": data["$schema"]})
    return [f"{list(e.path)}: {e.message[:200]}" for e in cls(schema).iter_errors(value)]


def contexts(files: dict[str, str]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(Deployment, parsed DAGSTER_CONTAINER_CONTEXT) of every code server."""
    out = []
    for doc in manifests(files):
        if doc["kind"] != "Deployment":
            continue
        env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
        value = next((e["value"] for e in env if e["name"] == "DAGSTER_CONTAINER_CONTEXT"), None)
        if value is not None:
            out.append((doc, json.loads(value)))
    return out


@pytest.mark.parametrize("name", list(ALL_FLEETS))
def test_container_context_matches_dagster_k8s_and_kubernetes(name: str) -> None:
    fleet = ALL_FLEETS[name]()
    found = contexts(rendered(name, True, None)["k8s"])
    assert len(found) == len(fleet.locations())
    for doc, context in found:
        where = doc["metadata"]["name"]
        assert set(context) == {"k8s"}, where
        k8s = context["k8s"]
        assert set(k8s) <= CONTEXT_KEYS, (where, set(k8s) - CONTEXT_KEYS)
        assert set(k8s["run_k8s_config"]) <= RUN_K8S_CONFIG_KEYS, where
        # Runs of `<repo>-<env>` run in `<fleet>-<env>`, beside their code server.
        env_name = next(
            e["value"]
            for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]
            if e["name"] == "DAGFLEET_ENV"
        )
        assert k8s["namespace"] == c.namespace(fleet, env_name) == doc["metadata"]["namespace"]
        errors = []
        for key, (definition, many) in CONTEXT_OBJECTS.items():
            if key in k8s:
                values = k8s[key] if many else [k8s[key]]
                for i, value in enumerate(values):
                    obj = camel(value, f"{where}.{key}")
                    errors += [f"{where}.{key}[{i}] {e}" for e in k8s_errors(definition, obj)]
        for key, definition in RUN_OBJECTS.items():
            if key in k8s["run_k8s_config"]:
                obj = camel(k8s["run_k8s_config"][key], f"{where}.run_k8s_config.{key}")
                errors += [
                    f"{where}.run_k8s_config.{key} {e}"
                    for e in k8s_errors(definition, obj, partial=True)
                ]
        assert all(isinstance(v, str) for v in k8s.get("labels", {}).values()), where
        assert not errors, errors
        # Every mount, including the init containers', names a volume of the run pod.
        volumes = {v["name"] for v in k8s["volumes"]}
        mounts = [m["name"] for m in k8s["volume_mounts"]]
        for init in k8s["run_k8s_config"].get("pod_spec_config", {}).get("init_containers", []):
            mounts += [m["name"] for m in init.get("volume_mounts", [])]
        assert set(mounts) <= volumes, (where, set(mounts) - volumes)


def test_container_context_check_rejects_the_old_mixed_case_and_unknown_keys() -> None:
    """The checks above are not vacuous: camelCase inside, or a key dagster-k8s lacks."""
    with pytest.raises(AssertionError, match="not snake_case"):
        camel({"security_context": {"runAsNonRoot": True}}, "old")
    volume = {"name": "data", "persistent_volume_claim": {"claim_name": "data", "size": "1Gi"}}
    assert k8s_errors("io.k8s.api.core.v1.Volume", camel(volume, "v"))
    assert "job_namespace" not in CONTEXT_KEYS


# --- ECS, compose, CI --------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed: run `uv sync` (it is a dev dependency)")
    return path


# The shared fleets, plus single sign-on with a file secret (the front door's extras).
SSO_FLEETS = [*FLEETS, "sso-file", "sso-file-absolute"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SSO_FLEETS)
def test_ecs_template_passes_cfn_lint(name: str, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(rendered(name, True, None)["ecs"]["template.yaml"])
    result = subprocess.run(
        [_tool("cfn-lint"), "--regions", "eu-west-1", "--", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["analytics", "max-names-s3"])
def test_ecs_template_with_every_location_pinned_passes_cfn_lint(name: str, tmp_path: Path) -> None:
    """Commits in the task definitions, image tags, tags and run contexts (issue 15)."""
    fleet = ALL_FLEETS[name]()
    commits = {
        loc.name: hashlib.sha1(loc.name.encode()).hexdigest()
        for loc in fleet.locations()
        if not loc.playground
    }
    result = render_ecs(fleet, EcsOptions(commits=commits))
    template = tmp_path / "template.yaml"
    template.write_text(texts(result)["template.yaml"])
    assert set(commits.values()) <= set(re.findall(r"[0-9a-f]{40}", template.read_text()))
    lint = subprocess.run(
        [_tool("cfn-lint"), "--regions", "eu-west-1", "--", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _vendor_schema(name: str) -> dict[str, Any]:
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / name
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.parametrize("name", SSO_FLEETS)
def test_compose_file_matches_the_compose_spec(name: str) -> None:
    doc = yaml.safe_load(rendered(name, True, None)["compose"]["compose.yaml"])
    schema = _vendor_schema("compose-spec.json")
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


@pytest.mark.parametrize("name", list(FLEETS))
def test_workflow_passes_actionlint_and_schema(name: str, tmp_path: Path) -> None:
    text = rendered(name, True, None)["ci"][".github/workflows/dagfleet.yaml"]
    schema = _vendor_schema("github-workflows.json")
    jsonschema.validators.validator_for(schema)(schema).validate(yaml.safe_load(text))
    workflow = tmp_path / ".github" / "workflows" / "dagfleet.yaml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(text)
    result = subprocess.run(
        [_tool("actionlint"), "-no-color", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
