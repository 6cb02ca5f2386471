"""A render with pinned locations (K8sOptions.commits) passes the same strict offline checks
as every other render: Kubernetes 1.30 objects, the served Flux CRDs (the HelmRelease with
its chart version) and the container context against dagster-k8s's schema."""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest

from dagfleet.render import K8sOptions, render_flux, render_k8s
from dagfleet.render.flux import FluxOptions
from dagfleet.render.write import texts
from tests.integration.test_render_validation import (
    CONTEXT_KEYS,
    CONTEXT_OBJECTS,
    KUBERNETES_VERSION,
    RUN_OBJECTS,
    camel,
    contexts,
    crd_schemas,
    is_crd_object,
    k8s_errors,
    manifests,
)
from tests.unit.render.fleets import FLEETS

pytestmark = pytest.mark.integration

SHA = "0123456789abcdef0123456789abcdef01234567"


def pinned_options(name: str) -> K8sOptions:
    """Every non-playground location of the fleet pinned (playgrounds are never pinned)."""
    fleet = FLEETS[name]()
    commits = {loc.name: SHA for loc in fleet.locations() if not loc.playground}
    return K8sOptions(image_tag="v1", commits=commits)


@pytest.mark.parametrize("name", list(FLEETS))
def test_pinned_render_is_valid(name: str) -> None:
    fleet = FLEETS[name]()
    opts = pinned_options(name)
    k8s = texts(render_k8s(fleet, opts))
    flux = texts(render_flux(fleet, FluxOptions(k8s=opts)))
    docs = manifests(k8s) + manifests(flux)
    pinned = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["labels"].get("dagfleet.dev/commit") == SHA
    ]
    assert len(pinned) == 2 * len(opts.commits)  # k8s and flux
    for doc in docs:
        if not is_crd_object(doc):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    schemas = crd_schemas()
    for doc in (d for d in docs if is_crd_object(d)):
        errors = list(
            jsonschema.Draft7Validator(schemas[(doc["apiVersion"], doc["kind"])]).iter_errors(doc)
        )
        assert not errors, [e.message[:200] for e in errors]
    found = contexts(k8s)
    assert len(found) == len(fleet.locations())
    for deployment, context in found:
        where = deployment["metadata"]["name"]
        ctx = context["k8s"]
        assert set(ctx) <= CONTEXT_KEYS, where
        errors = []
        for key, (definition, many) in CONTEXT_OBJECTS.items():
            for value in (ctx[key] if many else [ctx[key]]) if key in ctx else []:
                errors += k8s_errors(definition, camel(value, f"{where}.{key}"))
        for key, definition in RUN_OBJECTS.items():
            if key in ctx["run_k8s_config"]:
                obj = camel(ctx["run_k8s_config"][key], f"{where}.{key}")
                errors += k8s_errors(definition, obj, partial=True)
        assert not errors, (where, errors)
