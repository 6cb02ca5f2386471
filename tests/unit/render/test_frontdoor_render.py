"""Issue 14 item 6: every target exposes the front door, never the raw webserver, and
every secret the front door needs is a reference, never a value."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.render import ComposeOptions, EcsOptions, K8sOptions, render_compose, render_ecs
from dagfleet.render import common as c
from dagfleet.render import frontdoor as fd
from dagfleet.render import k8s_frontdoor as kf
from dagfleet.render.flux import FluxOptions, render_flux
from dagfleet.render.k8s import render_k8s
from dagfleet.render.write import texts
from dagfleet.spec import load_fleet
from dagfleet.spec.models import Fleet
from tests.unit.render.fleets import (
    FLEETS,
    OIDC_SECRET_ENV,
    SECRET_ENV,
    SECRET_VALUE,
    render_all,
    sso_file_fleet,
    three_repo_fleet,
)
from tests.unit.render.test_properties import NAMED_FLEETS, manifest_docs

pytestmark = pytest.mark.unit

ALL = {
    **NAMED_FLEETS,
    "sso-file": sso_file_fleet,
    "sso-file-absolute": lambda: sso_file_fleet("/run/secrets/oidc/client-secret"),
}


def _k8s(fleet: Fleet, **kw: Any) -> list[dict[str, Any]]:
    return manifest_docs(texts(render_k8s(fleet, K8sOptions(**kw))))


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("node_port", [None, 30000])
@pytest.mark.parametrize("fleet", list(ALL))
def test_only_the_front_door_is_exposed_on_kubernetes(fleet: str, node_port: int | None) -> None:
    spec = ALL[fleet]()
    docs = _k8s(spec, node_port=node_port)
    services = [d for d in docs if d["kind"] == "Service"]
    exposed = [d for d in services if d["spec"].get("type", "ClusterIP") != "ClusterIP"]
    if node_port is None:
        assert exposed == []
    else:
        # seed 001's localhost:30000 is the front door now.
        assert [d["metadata"]["name"] for d in exposed] == [kf.NAME]
        assert exposed[0]["spec"]["ports"][0]["nodePort"] == 30000
    door = _one(docs, "Service", kf.NAME)
    assert door["metadata"]["namespace"] == c.instance_namespace(spec)
    assert door["spec"]["selector"] == kf.selector(spec)
    assert door["spec"]["ports"][0]["targetPort"] == "http"
    # No Service of the render selects the chart's webserver pods.
    webserver = kf.webserver_selector(K8sOptions())
    for svc in services:
        selected = svc["spec"].get("selector", {})
        assert not (selected and selected.items() <= webserver.items()), svc["metadata"]["name"]
    values = render_k8s(spec, K8sOptions(node_port=node_port))["values.yaml"]
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert "nodePort" not in json.dumps(values)
    assert not [d for d in docs if d["kind"] == "Ingress"]


@pytest.mark.parametrize("fleet", list(ALL))
def test_front_door_deployment_runs_the_front_door_against_the_chart_webserver(fleet: str) -> None:
    spec = ALL[fleet]()
    opts = K8sOptions(frontdoor_replicas=2, public_url="https://dagster.example.com")
    deploy = _one(
        _k8s(spec, frontdoor_replicas=2, public_url=opts.public_url), "Deployment", kf.NAME
    )
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/dagfleet/dagfleet:latest"
    cmd = container["command"]
    assert cmd[:3] == ["dagfleet", "frontdoor", "serve"]
    args = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert args == {
        "--fleet": fd.FLEET_DIR,
        "--host": "0.0.0.0",
        "--port": "3000",
        "--upstream": f"http://dagster-dagster-webserver.{c.instance_namespace(spec)}"
        ".svc.cluster.local:80",
        "--users-file": kf.USERS_PATH,
        "--public-url": "https://dagster.example.com",
    }
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/auth/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 3000}]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # The only writable place is /tmp (an emptyDir); everything else is read-only.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/tmp"]["name"] == "tmp"
    assert all(m.get("readOnly") for p, m in mounts.items() if p != "/tmp")


def test_image_replicas_and_release_options() -> None:
    spec = FLEETS["default"]()
    docs = _k8s(
        spec, frontdoor_image="registry.example.com/ops/dagfleet:0.1.0", release_name="prod"
    )
    deploy = _one(docs, "Deployment", kf.NAME)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/ops/dagfleet:0.1.0"
    assert deploy["spec"]["replicas"] == 1
    assert "http://prod-dagster-webserver." in " ".join(container["command"])
    assert "--public-url" not in container["command"]
    tagged = _k8s(spec, registry="registry.example.com/team", image_tag="v3")
    image = _one(tagged, "Deployment", kf.NAME)["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "registry.example.com/team/dagfleet:v3"


def _secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}


def test_kubernetes_secrets_are_references_to_the_operators_secrets() -> None:
    spec = three_repo_fleet()  # OIDC client secret from_env
    docs = _k8s(spec)
    assert not [d for d in docs if d["kind"] == "Secret"]
    pod = _one(docs, "Deployment", kf.NAME)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    refs = _secret_refs(container)
    assert refs == {
        "DAGFLEET_SESSION_KEY": {"name": "dagfleet-frontdoor", "key": "session-key"},
        "DAGFLEET_API_TOKENS": {
            "name": "dagfleet-frontdoor",
            "key": "api-tokens",
            "optional": True,
        },
        OIDC_SECRET_ENV: {"name": "dagfleet-frontdoor", "key": OIDC_SECRET_ENV},
    }
    # Every other variable is a plain, non-secret value.
    assert {e["name"] for e in container["env"] if "value" in e} == {"PYTHONUNBUFFERED", "HOME"}
    users = next(v for v in pod["volumes"] if v["name"] == "users")
    assert users["secret"]["secretName"] == "dagfleet-frontdoor-users"
    assert users["secret"]["optional"] is True
    mount = next(m for m in container["volumeMounts"] if m["name"] == "users")
    assert f"{mount['mountPath']}/users" == kf.USERS_PATH


def test_a_relative_oidc_secret_file_is_projected_into_the_fleet_directory() -> None:
    pod = _one(_k8s(sso_file_fleet()), "Deployment", kf.NAME)["spec"]["template"]["spec"]
    fleet_volume = next(v for v in pod["volumes"] if v["name"] == "fleet")
    sources = fleet_volume["projected"]["sources"]
    assert sources[1] == {
        "secret": {
            "name": "dagfleet-frontdoor",
            "items": [{"key": "oidc-client-secret", "path": "secrets/oidc-client-secret"}],
        }
    }
    # fleet.yaml says `from_file: secrets/oidc-client-secret`, relative to --fleet.
    items = {i["path"] for i in sources[0]["configMap"]["items"]}
    assert "fleet.yaml" in items and "secrets/oidc-client-secret" not in items


def test_an_absolute_oidc_secret_file_is_mounted_at_that_path() -> None:
    path = "/run/secrets/oidc/client-secret"
    pod = _one(_k8s(sso_file_fleet(path)), "Deployment", kf.NAME)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == kf.OIDC_VOLUME)
    assert volume["secret"]["secretName"] == "dagfleet-frontdoor"
    assert volume["secret"]["items"] == [{"key": "client-secret", "path": "client-secret"}]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == kf.OIDC_VOLUME)
    assert mount == {
        "name": kf.OIDC_VOLUME,
        "mountPath": path,
        "subPath": "client-secret",
        "readOnly": True,
    }


@pytest.mark.parametrize("fleet", list(ALL))
def test_the_fleet_configmap_loads_back_as_the_same_fleet(fleet: str, tmp_path: Path) -> None:
    """What the front door reads is the fleet: the same fleet.yaml (auth included) and
    the same locations, laid out as the projected volume's items say."""
    spec = ALL[fleet]()
    docs = _k8s(spec)
    cm = _one(docs, "ConfigMap", kf.fleet_configmap_name(spec))
    pod = _one(docs, "Deployment", kf.NAME)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "fleet")
    source = volume["projected"]["sources"][0]["configMap"]
    assert source["name"] == cm["metadata"]["name"]
    assert {i["key"] for i in source["items"]} == set(cm["data"])
    for item in source["items"]:
        path = tmp_path / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cm["data"][item["key"]])
    loaded = load_fleet(tmp_path)
    assert loaded.spec == spec.spec
    assert loaded.locations() == spec.locations()
    assert set(loaded.repos) == set(spec.repos)


def test_the_webserver_admits_only_the_front_door_and_the_code_servers() -> None:
    spec = three_repo_fleet()
    policy = _one(_k8s(spec), "NetworkPolicy", "dagster-webserver-ingress")
    assert policy["metadata"]["namespace"] == c.instance_namespace(spec)
    assert policy["spec"]["podSelector"]["matchLabels"] == kf.webserver_selector(K8sOptions())
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"][0] == {"podSelector": {"matchLabels": kf.selector(spec)}}
    namespaces = {
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for s in rule["from"][1:]
    }
    assert namespaces == {c.namespace(spec, e.name) for e in spec.spec.environments}
    assert all(
        s["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "code-server"}
        for s in rule["from"][1:]
    )


def test_flux_applies_the_front_door() -> None:
    files = texts(render_flux(three_repo_fleet(), FluxOptions()))
    kustomization = yaml.safe_load(files["manifests/kustomization.yaml"])
    assert "instance/frontdoor.yaml" in kustomization["resources"]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in manifest_docs(files)}
    assert {("Deployment", kf.NAME), ("Service", kf.NAME)} <= kinds
    k8s = yaml.safe_load(texts(render_k8s(three_repo_fleet()))["manifests/kustomization.yaml"])
    assert "instance/frontdoor.yaml" in k8s["resources"]


def test_secret_commands_name_every_key_with_placeholders() -> None:
    lines = kf.secret_commands(three_repo_fleet())
    assert lines[0].startswith("kubectl -n analytics create secret generic dagfleet-frontdoor ")
    for key in ("session-key", "api-tokens", OIDC_SECRET_ENV):
        assert f'--from-literal={key}="$' in lines[0]
    assert "dagfleet-frontdoor-users --from-file=users=" in lines[1]


# --- compose ------------------------------------------------------------------------------


def _compose(fleet: Fleet, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        texts(render_compose(fleet, ComposeOptions(**kw)))["compose.yaml"]
    )
    return doc


@pytest.mark.parametrize("fleet", list(ALL))
def test_compose_publishes_only_the_front_doors(fleet: str) -> None:
    spec = ALL[fleet]()
    doc = _compose(spec)
    published = {name: s["ports"] for name, s in doc["services"].items() if s.get("ports")}
    envs = [c.k8s_name(e.name) for e in spec.spec.environments]
    assert published == {f"frontdoor-{e}": [f"{3001 + i}:3000"] for i, e in enumerate(envs)}
    for e in envs:
        door = doc["services"][f"frontdoor-{e}"]
        cmd = door["command"]
        assert cmd[:3] == ["dagfleet", "frontdoor", "serve"]
        assert cmd[cmd.index("--upstream") + 1] == f"http://webserver-{e}:3001"
        assert "expose" not in doc["services"][f"webserver-{e}"]
        assert door["read_only"] is True and door["security_opt"] == ["no-new-privileges:true"]
        assert door["depends_on"] == {f"webserver-{e}": {"condition": "service_started"}}
        assert "/auth/healthz" in " ".join(door["healthcheck"]["test"])


def test_compose_secrets_are_references() -> None:
    spec = three_repo_fleet()
    doc = _compose(spec, public_url="https://dagster.example.com")
    assert doc["secrets"]["dagfleet-session-key"] == {"environment": "DAGFLEET_SESSION_KEY"}
    assert doc["secrets"]["dagfleet-users"] == {"file": "${DAGFLEET_USERS_FILE:-./users}"}
    door = doc["services"]["frontdoor-dev"]
    assert door["secrets"] == ["dagfleet-session-key", "dagfleet-users"]
    assert door["environment"] == {
        "DAGFLEET_SESSION_KEY_FILE": "/run/secrets/dagfleet-session-key",
        "DAGFLEET_API_TOKENS": "${DAGFLEET_API_TOKENS:-}",
        OIDC_SECRET_ENV: f"${{{OIDC_SECRET_ENV}:?set {OIDC_SECRET_ENV} (the OIDC client secret)}}",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
    }
    cmd = door["command"]
    assert cmd[cmd.index("--users-file") + 1] == "/run/secrets/dagfleet-users"
    assert cmd[cmd.index("--public-url") + 1] == "https://dagster.example.com"
    # The fleet files are inline configs at the paths --fleet reads.
    targets = {c["target"] for c in door["configs"]}
    assert f"{fd.FLEET_DIR}/fleet.yaml" in targets
    assert {f"{fd.FLEET_DIR}/repos/{r}.yaml" for r in spec.repos} <= targets


def test_compose_oidc_secret_file_is_a_compose_secret_at_the_path_fleet_yaml_names() -> None:
    doc = _compose(sso_file_fleet())
    assert doc["secrets"]["dagfleet-oidc-client-secret"] == {"file": "./oidc-client-secret"}
    door = doc["services"]["frontdoor-a"]
    assert {
        "source": "dagfleet-oidc-client-secret",
        "target": f"{fd.FLEET_DIR}/secrets/oidc-client-secret",
    } in door["secrets"]
    absolute = _compose(sso_file_fleet("/run/secrets/oidc/client-secret"))
    assert absolute["secrets"]["dagfleet-oidc-client-secret"] == {
        "file": "/run/secrets/oidc/client-secret"
    }


# --- ECS ----------------------------------------------------------------------------------


def _template(fleet: Fleet) -> dict[str, Any]:
    out: dict[str, Any] = yaml.safe_load(texts(render_ecs(fleet, EcsOptions()))["template.yaml"])
    return out


def _containers(template: dict[str, Any], task: str) -> dict[str, dict[str, Any]]:
    props = template["Resources"][task]["Properties"]
    return {cd["Name"]: cd for cd in props["ContainerDefinitions"]}


@pytest.mark.parametrize("fleet", list(ALL))
def test_ecs_load_balancer_reaches_the_front_door_and_the_webserver_stays_in_its_task(
    fleet: str,
) -> None:
    template = _template(ALL[fleet]())
    resources = template["Resources"]
    web = _containers(template, "TaskDefinitionWebserver")
    assert set(web) == {"webserver", "frontdoor"}
    # The webserver listens on loopback only and maps no port.
    assert "dagster-webserver -h 127.0.0.1 -p 3001" in web["webserver"]["Command"][0]
    assert "PortMappings" not in web["webserver"]
    assert web["frontdoor"]["PortMappings"] == [{"ContainerPort": 3000, "Protocol": "tcp"}]
    script = web["frontdoor"]["Command"][0]
    assert "exec dagfleet frontdoor serve" in script
    assert "--upstream http://127.0.0.1:3001" in script
    # Only the front door's port is open on the instance group, from the ALB's group.
    ingress = resources["InstanceSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress == [
        {
            "IpProtocol": "tcp",
            "FromPort": 3000,
            "ToPort": 3000,
            "SourceSecurityGroupId": {"Ref": "FrontDoorLoadBalancerSecurityGroup"},
        }
    ]
    service = resources["ServiceWebserver"]
    assert service["Properties"]["LoadBalancers"] == [
        {
            "ContainerName": "frontdoor",
            "ContainerPort": 3000,
            "TargetGroupArn": {"Ref": "FrontDoorTargetGroup"},
        }
    ]
    assert service["DependsOn"] == "FrontDoorHttpsListener"
    target = resources["FrontDoorTargetGroup"]["Properties"]
    assert (target["Port"], target["HealthCheckPath"]) == (3000, "/auth/healthz")
    assert resources["FrontDoorHttpsListener"]["Properties"]["Protocol"] == "HTTPS"
    # Nothing else is load-balanced or public.
    balanced = [k for k, r in resources.items() if "LoadBalancers" in r.get("Properties", {})]
    assert balanced == ["ServiceWebserver"]
    assert all(
        r["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"]
        == "DISABLED"
        for r in resources.values()
        if r["Type"] == "AWS::ECS::Service"
    )


def test_ecs_front_door_secrets_are_parameter_references() -> None:
    template = _template(three_repo_fleet())
    door = _containers(template, "TaskDefinitionWebserver")["frontdoor"]
    secrets = door["Secrets"]
    assert secrets[0] == {
        "Name": "DAGFLEET_SESSION_KEY",
        "ValueFrom": {"Ref": "FrontDoorSessionKeySecretArn"},
    }
    assert secrets[1]["Fn::If"][0] == "HasFrontDoorUsers"
    assert secrets[2]["Fn::If"][0] == "HasFrontDoorApiTokens"
    assert secrets[3] == {
        "Name": OIDC_SECRET_ENV,
        "ValueFrom": {"Ref": "FrontDoorOidcClientSecretArn"},
    }
    params = template["Parameters"]
    for name in (
        "FrontDoorSessionKeySecretArn",
        "FrontDoorUsersSecretArn",
        "FrontDoorApiTokensSecretArn",
        "FrontDoorOidcClientSecretArn",
        "FrontDoorCertificateArn",
        "FrontDoorPublicUrl",
        "PublicSubnetIds",
    ):
        assert name in params, name
    # The execution role may read exactly those secrets (plus the fleet's and the database's).
    policy = template["Resources"]["ExecutionRole"]["Properties"]["Policies"][0]
    readable = json.dumps(policy["PolicyDocument"]["Statement"][0]["Resource"])
    for name in ("FrontDoorSessionKeySecretArn", "FrontDoorOidcClientSecretArn"):
        assert name in readable
    # No OIDC in fleet.yaml: no OIDC parameter.
    assert "FrontDoorOidcClientSecretArn" not in _template(FLEETS["default"]())["Parameters"]
    # The public URL reaches --public-url through a variable, not a literal.
    assert {"Name": "DAGFLEET_PUBLIC_URL", "Value": {"Ref": "FrontDoorPublicUrl"}} in door[
        "Environment"
    ]
    assert door["Command"][0].endswith('--public-url "$DAGFLEET_PUBLIC_URL"')


def test_ecs_script_writes_the_oidc_secret_file_where_fleet_yaml_says() -> None:
    door = _containers(_template(sso_file_fleet()), "TaskDefinitionWebserver")["frontdoor"]
    script = door["Command"][0]
    assert (
        'printf "%s" "$DAGFLEET_OIDC_CLIENT_SECRET_VALUE" > '
        + shlex.quote("/tmp/dagfleet/fleet/secrets/oidc-client-secret")
        in script
    )
    assert {
        "Name": "DAGFLEET_OIDC_CLIENT_SECRET_VALUE",
        "ValueFrom": {"Ref": "FrontDoorOidcClientSecretArn"},
    } in door["Secrets"]


# --- every target: no secret value anywhere ---------------------------------------------


@pytest.mark.parametrize("node_port", [None, 30000])
def test_no_front_door_secret_value_appears_in_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, node_port: int | None
) -> None:
    """A fleet whose environment holds every secret the front door reads (session key,
    tokens, OIDC client secret, a users file beside fleet.yaml, a from_file secret):
    none of the values appears in any rendered file."""
    values = {
        "DAGFLEET_SESSION_KEY": SECRET_VALUE + "-session",
        "DAGFLEET_API_TOKENS": SECRET_VALUE + "-token:admin",
        OIDC_SECRET_ENV: SECRET_VALUE + "-oidc",
        SECRET_ENV: SECRET_VALUE + "-repo",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    secret_file = tmp_path / "warehouse-password"
    secret_file.write_text(SECRET_VALUE + "-from-file")
    users = tmp_path / ".dagfleet" / "users"
    users.parent.mkdir()
    users.write_text(f"alice scrypt${SECRET_VALUE}-hash\n")
    oidc_file = tmp_path / "oidc-client-secret"
    oidc_file.write_text(SECRET_VALUE + "-oidc-file")
    fleets = [three_repo_fleet(str(secret_file)), sso_file_fleet(str(oidc_file))]
    seen_targets = set()
    for fleet in fleets:
        for target, result in render_all(fleet, node_port=node_port).items():
            seen_targets.add(target.split("/")[0])
            for path, text in texts(result).items():
                assert SECRET_VALUE not in text, f"{target}/{path} leaks a secret value"
    assert {"k8s", "flux", "ecs", "compose"} <= seen_targets
