"""Every rendered file validates offline against the real schemas of its platform.

- Kubernetes objects: kubernetes-validate, strict, for Kubernetes 1.30.
- Flux and CloudNativePG objects: the CRDs in ../shared/crds, served versions
  only, openAPIV3Schema converted to JSON Schema (unknown fields rejected unless
  x-kubernetes-preserve-unknown-fields).
- Helm values: merged over the chart's values.yaml the way Helm does, then the
  chart's values.schema.json with its Kubernetes $refs resolved from the
  definitions bundled in kubernetes-validate.
- ECS: cfn-lint. Compose: the compose-spec schema shipped by check-jsonschema.
  CI workflow: actionlint and the github-workflows schema.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import referencing
import referencing.jsonschema
import yaml

from dagfleet.render.write import texts
from tests.unit.render.fleets import FLEETS, render_all

pytestmark = pytest.mark.integration

KUBERNETES_VERSION = "1.30.0"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CRDS = SHARED / "crds"
CHART = SHARED / "helm" / "dagster"
CRD_GROUPS = ("toolkit.fluxcd.io", "postgresql.cnpg.io")
K8S_REMOTE = "https://raw.githubusercontent.com/yannh/kubernetes-json-schema/master/v1.19.0/_definitions.json"
VARIANTS = [
    (name, cnpg, node_port) for name in FLEETS for cnpg, node_port in ((True, None), (False, 30000))
]
IDS = [f"{n}-{'cnpg' if c else 'statefulset'}" for n, c, _ in VARIANTS]


@cache
def rendered(name: str, cnpg: bool, node_port: int | None) -> dict[str, dict[str, str]]:
    return {
        t: texts(r) for t, r in render_all(FLEETS[name](), cnpg=cnpg, node_port=node_port).items()
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


# --- ECS, compose, CI --------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed: run `uv sync` (it is a dev dependency)")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FLEETS))
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


def _vendor_schema(name: str) -> dict[str, Any]:
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / name
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.parametrize("name", list(FLEETS))
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
