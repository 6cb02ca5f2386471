"""render_flux renders the release flow's status records as the `<fleet>-status` ConfigMap
(`manifests/instance/status.yaml`, in the kustomization) only when it is given them and
the render includes the in-cluster API that reads it."""

from __future__ import annotations

import kubernetes_validate

from dagfleet.render import K8sOptions
from dagfleet.render import k8s_dagfleet as kd
from dagfleet.render.flux import FluxOptions, render_flux
from dagfleet.render.write import texts
from tests.integration.test_render_validation import KUBERNETES_VERSION, manifests
from tests.unit.render.fleets import default_fleet

STATUS = "manifests/instance/status.yaml"


def test_status_records_become_the_configmap_the_api_mounts() -> None:
    fleet = default_fleet()
    records = {"medallion-A": '{"location": "medallion-A"}\n'}
    files = render_flux(fleet, FluxOptions(status_records=records))
    (cm,) = files[STATUS]
    assert cm == kd.status_configmap(fleet, records)
    assert cm["data"] == {"medallion-A.json": records["medallion-A"]}
    assert "instance/status.yaml" in files["manifests/kustomization.yaml"]["resources"]
    (deployment,) = [
        o for o in files["manifests/instance/dagfleet.yaml"] if o["kind"] == "Deployment"
    ]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["status"]["configMap"]["name"] == cm["metadata"]["name"]
    # As written to the deploy repo: a valid ConfigMap under the strict 1.30 schema.
    (written,) = manifests({STATUS: texts(files)[STATUS]})
    kubernetes_validate.validate(written, KUBERNETES_VERSION, strict=True)


def test_no_records_or_no_api_no_configmap() -> None:
    fleet = default_fleet()
    assert STATUS not in render_flux(fleet, FluxOptions())
    no_api = FluxOptions(status_records={}, k8s=K8sOptions(dagfleet_api=False))
    files = render_flux(fleet, no_api)
    assert STATUS not in files
    assert "instance/status.yaml" not in files["manifests/kustomization.yaml"]["resources"]
