"""The front door on ECS: a second container in the webserver's task, behind an ALB.

Why a sidecar and not a service of its own: containers of one Fargate task share
the task's network namespace, so the webserver listens on 127.0.0.1 only and the
front door reaches it at `http://127.0.0.1:3001`. Nothing outside the task can
reach the webserver, whatever the security groups say; there is no Cloud Map
name or security group rule for it to get wrong, and the two deploy together
(the instance runs one webserver task). The front door listens on 3000, the only
port of the instance security group, open only to the load balancer's group.

Rendered: an internet-facing Application Load Balancer in `PublicSubnetIds`
(HTTPS 443 with `FrontDoorCertificateArn`, HTTP 80 redirecting to it, from
`FrontDoorAllowedCidr`), a target group of the front door's task IPs with the
health check on /auth/healthz, and the container itself. Secrets are Secrets
Manager ARNs given as parameters, passed as ECS `Secrets` (never in the
template): the session key (required), the users file and the API tokens
(optional: empty skips them), and the OIDC client secret when fleet.yaml names
one. The container writes the fleet files (passed as variables: references
only) and the users file into /tmp/dagfleet at start, then execs `dagfleet
frontdoor serve`.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Any

from dagfleet.render import common as c
from dagfleet.render import ecs_parts as p
from dagfleet.render import frontdoor as fd
from dagfleet.render.options import EcsOptions
from dagfleet.spec.models import Fleet

CONTAINER = "frontdoor"
WORK_DIR = "/tmp/dagfleet"
FLEET_DIR = f"{WORK_DIR}/fleet"
USERS_PATH = f"{WORK_DIR}/users"
SESSION_PARAM = "FrontDoorSessionKeySecretArn"
USERS_PARAM = "FrontDoorUsersSecretArn"
TOKENS_PARAM = "FrontDoorApiTokensSecretArn"
OIDC_PARAM = "FrontDoorOidcClientSecretArn"
HAS_USERS = "HasFrontDoorUsers"
HAS_TOKENS = "HasFrontDoorApiTokens"
OIDC_FILE_VAR = "DAGFLEET_OIDC_CLIENT_SECRET_VALUE"
LISTENER = "FrontDoorHttpsListener"
TARGET_GROUP = "FrontDoorTargetGroup"
LB_GROUP = "FrontDoorLoadBalancerSecurityGroup"


def parameters(fleet: Fleet) -> dict[str, Any]:
    def arn(what: str, optional: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Type": "String",
            "Description": f"ARN of the Secrets Manager secret holding {what}"
            + (" (empty: none)" if optional else ""),
        }
        if optional:
            out["Default"] = ""
        return out

    out: dict[str, Any] = {
        "PublicSubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Public subnets of the front door's load balancer",
        },
        "FrontDoorCertificateArn": {
            "Type": "String",
            "Description": "ACM certificate of the front door's HTTPS listener",
        },
        "FrontDoorPublicUrl": {
            "Type": "String",
            "AllowedPattern": "^https://.+",
            "Description": "How users reach the front door, e.g. https://dagster.example.com "
            "(Secure cookies; single sign-on redirects to <url>/auth/oidc/callback)",
        },
        "FrontDoorAllowedCidr": {
            "Type": "String",
            "Default": "0.0.0.0/0",
            "Description": "Who may reach the load balancer",
        },
        SESSION_PARAM: arn("the front door's session key (32+ characters)", False),
        USERS_PARAM: arn("the users file (`name scrypt$...` lines)", True),
        TOKENS_PARAM: arn("API tokens (`tok:role,tok:role`)", True),
    }
    if fd.oidc_secret(fleet) is not None:
        out[OIDC_PARAM] = arn("the OIDC client secret", False)
    return out


def conditions() -> dict[str, Any]:
    return {
        HAS_USERS: {"Fn::Not": [{"Fn::Equals": [{"Ref": USERS_PARAM}, ""]}]},
        HAS_TOKENS: {"Fn::Not": [{"Fn::Equals": [{"Ref": TOKENS_PARAM}, ""]}]},
    }


def _optional(condition: str, value: Any) -> dict[str, Any]:
    return {"Fn::If": [condition, value, {"Ref": "AWS::NoValue"}]}


def secret_arns(fleet: Fleet) -> list[Any]:
    """What the execution role must read for the front door."""
    out: list[Any] = [
        {"Ref": SESSION_PARAM},
        _optional(HAS_USERS, {"Ref": USERS_PARAM}),
        _optional(HAS_TOKENS, {"Ref": TOKENS_PARAM}),
    ]
    if fd.oidc_secret(fleet) is not None:
        out.append({"Ref": OIDC_PARAM})
    return out


def _var(index: int) -> str:
    return f"DAGFLEET_FLEET_FILE_{index}"


def container(fleet: Fleet, opts: EcsOptions, upstream: str) -> dict[str, Any]:
    files = fd.fleet_files(fleet)
    environment: list[dict[str, Any]] = [
        {"Name": _var(i), "Value": text} for i, text in enumerate(files.values())
    ]
    environment += [
        {"Name": "DAGFLEET_PUBLIC_URL", "Value": {"Ref": "FrontDoorPublicUrl"}},
        {"Name": "PYTHONUNBUFFERED", "Value": "1"},
    ]
    secrets: list[Any] = [
        {"Name": "DAGFLEET_SESSION_KEY", "ValueFrom": {"Ref": SESSION_PARAM}},
        _optional(HAS_USERS, {"Name": "DAGFLEET_USERS", "ValueFrom": {"Ref": USERS_PARAM}}),
        _optional(HAS_TOKENS, {"Name": "DAGFLEET_API_TOKENS", "ValueFrom": {"Ref": TOKENS_PARAM}}),
    ]
    script = [f"mkdir -p {FLEET_DIR}/{fd.REPOS_DIR}"]
    for i, path in enumerate(files):
        script.append(f'printf "%s" "${_var(i)}" > {shlex.quote(f"{FLEET_DIR}/{path}")}')
    script.append(f'printf "%s\\n" "${{DAGFLEET_USERS:-}}" > {USERS_PATH}')
    oidc = fd.oidc_secret(fleet)
    if oidc is not None:
        name = oidc.env or OIDC_FILE_VAR
        secrets.append({"Name": name, "ValueFrom": {"Ref": OIDC_PARAM}})
        target = oidc.container_path(FLEET_DIR)
        if target is not None:
            quoted = shlex.quote(target)
            script.append(f"mkdir -p {shlex.quote(posixpath.dirname(target))}")
            script.append(f'printf "%s" "${OIDC_FILE_VAR}" > {quoted} && chmod 600 {quoted}')
            script.append(f"unset {OIDC_FILE_VAR}")
    script.append("unset DAGFLEET_USERS")
    serve = fd.command(upstream, users_file=USERS_PATH, public_url=None, fleet_dir=FLEET_DIR)
    script.append(f'exec {shlex.join(serve)} --public-url "$DAGFLEET_PUBLIC_URL"')
    health = f"http://127.0.0.1:{fd.FRONTDOOR_PORT}{fd.HEALTH_PATH}"
    return {
        "Name": CONTAINER,
        "Image": opts.frontdoor(),
        "Essential": True,
        "EntryPoint": ["sh", "-c"],
        "Command": [" && ".join(script)],
        "PortMappings": [{"ContainerPort": fd.FRONTDOOR_PORT, "Protocol": "tcp"}],
        "Environment": environment,
        "Secrets": secrets,
        "HealthCheck": {
            "Command": [
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen({health!r}, timeout=3)",
            ],
            "Interval": 15,
            "Timeout": 5,
            "Retries": 3,
            "StartPeriod": 30,
        },
        "LogConfiguration": p.log_configuration("LogGroupInstance", CONTAINER),
    }


def service_load_balancers() -> list[dict[str, Any]]:
    return [
        {
            "ContainerName": CONTAINER,
            "ContainerPort": fd.FRONTDOOR_PORT,
            "TargetGroupArn": {"Ref": TARGET_GROUP},
        }
    ]


def load_balancer_resources(fleet: Fleet) -> dict[str, Any]:
    cidr = {"Ref": "FrontDoorAllowedCidr"}
    ingress = [
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIp": cidr}
        for port in (443, 80)
    ]
    return {
        LB_GROUP: {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "dagfleet front door load balancer: HTTPS (and HTTP redirect)",
                "VpcId": {"Ref": "VpcId"},
                "SecurityGroupIngress": ingress,
            },
        },
        "FrontDoorLoadBalancer": {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                "Type": "application",
                "Scheme": "internet-facing",
                "Subnets": {"Ref": "PublicSubnetIds"},
                "SecurityGroups": [{"Ref": LB_GROUP}],
                # The UI's GraphQL subscriptions are long-lived websockets.
                "LoadBalancerAttributes": [
                    {"Key": "idle_timeout.timeout_seconds", "Value": "300"},
                    {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                ],
            },
        },
        TARGET_GROUP: {
            "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
            "Properties": {
                "TargetType": "ip",
                "Protocol": "HTTP",
                "Port": fd.FRONTDOOR_PORT,
                "VpcId": {"Ref": "VpcId"},
                "HealthCheckPath": fd.HEALTH_PATH,
                "Matcher": {"HttpCode": "200"},
            },
        },
        LISTENER: {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": {"Ref": "FrontDoorLoadBalancer"},
                "Port": 443,
                "Protocol": "HTTPS",
                "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "Certificates": [{"CertificateArn": {"Ref": "FrontDoorCertificateArn"}}],
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": TARGET_GROUP}}],
            },
        },
        "FrontDoorHttpRedirect": {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": {"Ref": "FrontDoorLoadBalancer"},
                "Port": 80,
                "Protocol": "HTTP",
                "DefaultActions": [
                    {
                        "Type": "redirect",
                        "RedirectConfig": {
                            "Protocol": "HTTPS",
                            "Port": "443",
                            "StatusCode": "HTTP_301",
                        },
                    }
                ],
            },
        },
    }


def instance_ingress() -> list[dict[str, Any]]:
    """The instance security group's only rule: the front door's port, from the ALB."""
    return [
        {
            "IpProtocol": "tcp",
            "FromPort": fd.FRONTDOOR_PORT,
            "ToPort": fd.FRONTDOOR_PORT,
            "SourceSecurityGroupId": {"Ref": LB_GROUP},
        }
    ]


def outputs() -> dict[str, Any]:
    return {
        "FrontDoorUrl": {"Value": {"Ref": "FrontDoorPublicUrl"}},
        "FrontDoorLoadBalancerDns": {
            "Description": "Point the public URL's DNS name (CNAME/alias) here",
            "Value": {"Fn::GetAtt": ["FrontDoorLoadBalancer", "DNSName"]},
        },
    }


def webserver_upstream() -> str:
    return f"http://127.0.0.1:{c.WEBSERVER_PORT}"
