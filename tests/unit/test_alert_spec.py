"""`alerts:` in fleet.yaml and repo files: refused at load with file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfleet.alerts.links import commit_url
from dagfleet.spec import SpecError, load_fleet

FLEET = """\
environments: [{name: A}]
alerts:
  channels:
    ops: {slack_webhook: {url: {from_env: SLACK_WEBHOOK_URL}}}
    bot: {slack_bot: {token: {from_file: /run/secrets/slack}, channel: "#ops"}}
    hook: {webhook: {url: "https://alerts.example.com/in", secret: {from_env: HOOK_SECRET}}}
    mail:
      email: {host: smtp.example.com, from: df@example.com, to: [a@example.com],
              username: df, password: {from_env: SMTP_PASSWORD}}
  policies:
%s
"""
OK_POLICY = "    - {name: p, events: [commit_rejected], channels: [ops, bot, hook, mail]}"
REPO = "name: sales\ngit_url: https://github.com/acme/sales.git\n"


def load(tmp_path: Path, fleet: str, repo: str = REPO) -> list[str]:
    (tmp_path / "fleet.yaml").write_text(fleet)
    (tmp_path / "repos").mkdir(exist_ok=True)
    (tmp_path / "repos" / "sales.yaml").write_text(repo)
    try:
        load_fleet(tmp_path)
    except SpecError as err:
        return [str(p) for p in err.problems]
    return []


def test_a_full_alerts_section_loads(tmp_path: Path) -> None:
    assert load(tmp_path, FLEET % OK_POLICY) == []
    fleet = load_fleet(tmp_path)
    kinds = {n: c.kind for n, c in fleet.spec.alerts.channels.items()}
    assert kinds == {"ops": "slack_webhook", "bot": "slack_bot", "hook": "webhook", "mail": "email"}
    assert fleet.spec.alerts.channels["mail"].email.sender == "df@example.com"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "    - {name: p, events: [comit_rejected], channels: [ops]}",
            "fleet.yaml: alerts.policies[0].events: unknown event 'comit_rejected': use one of",
        ),
        (
            "    - {name: p, events: [not_serving_tip], channels: [ops]}",
            "fleet.yaml: alerts.policies[0]: not_serving_tip needs `minutes`: add e.g. minutes: 10",
        ),
        (
            "    - {name: p, events: [crash_loop], minutes: 5, channels: [ops]}",
            "fleet.yaml: alerts.policies[0]: crash_loop needs `crashes`",
        ),
        (
            "    - {name: p, events: [run_longer_than], channels: [ops]}",
            "fleet.yaml: alerts.policies[0]: run_longer_than needs `minutes`",
        ),
        (
            "    - {name: p, events: [commit_rejected], channels: [pager]}",
            "fleet.yaml: alerts: policies[0]: unknown channel 'pager': define it under "
            "alerts.channels in fleet.yaml (known: bot, hook, mail, ops)",
        ),
        (
            "    - {name: p, events: [commit_rejected], jobs: [etl], channels: [ops]}",
            "fleet.yaml: alerts.policies[0]: jobs and tags filter run events only",
        ),
    ],
)
def test_bad_policies_are_refused(tmp_path: Path, policy: str, expected: str) -> None:
    problems = load(tmp_path, FLEET % policy)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("channel", "field", "fix"),
    [
        ("{slack_webhook: {url: 'https://hooks.slack.com/services/T/B/x'}}",
         "alerts.channels.x.slack_webhook.url", "{from_env: SLACK_WEBHOOK_URL}"),
        ("{slack_bot: {token: xoxb-123}}", "alerts.channels.x.slack_bot.token",
         "{from_env: SLACK_BOT_TOKEN}"),
        ("{webhook: {url: 'https://x.test', secret: s3cret}}", "alerts.channels.x.webhook.secret",
         "{from_env: ALERT_WEBHOOK_SECRET}"),
        ("{email: {host: h, from: a@b.c, to: [d@e.f], username: u, password: pw}}",
         "alerts.channels.x.email.password", "{from_env: SMTP_PASSWORD}"),
    ],
)  # fmt: skip
def test_literal_secrets_are_refused_with_the_fix(
    tmp_path: Path, channel: str, field: str, fix: str
) -> None:
    fleet = f"environments: [{{name: A}}]\nalerts:\n  channels:\n    x: {channel}\n"
    [problem] = load(tmp_path, fleet)
    assert problem.startswith(f"fleet.yaml: {field}: a literal secret does not belong")
    assert fix in problem
    assert "s3cret" not in problem and "xoxb-123" not in problem


def test_a_channel_is_exactly_one_kind(tmp_path: Path) -> None:
    fleet = "environments: [{name: A}]\nalerts:\n  channels:\n    x: {rate_per_minute: 5}\n"
    [problem] = load(tmp_path, fleet)
    assert "give exactly one of slack_webhook, slack_bot, webhook or email" in problem


def test_repo_policies_must_use_fleet_channels(tmp_path: Path) -> None:
    repo = (
        REPO + "alerts:\n  policies:\n    - {name: mine, events: [run_failed], channels: [nope]}\n"
    )
    problems = load(tmp_path, FLEET % OK_POLICY, repo)
    assert problems == [
        "repos/sales.yaml: alerts.policies[0].channels: unknown channel 'nope': define it under "
        "alerts.channels in fleet.yaml (known: bot, hook, mail, ops)"
    ]
    ok = REPO + "alerts:\n  policies:\n    - {name: mine, events: [run_failed], channels: [ops]}\n"
    assert load(tmp_path, FLEET % OK_POLICY, ok) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/sales.git", "https://github.com/acme/sales/commit/abc"),
        ("git@github.com:acme/sales.git", "https://github.com/acme/sales/commit/abc"),
        ("ssh://git@gitlab.com/grp/sub/app.git", "https://gitlab.com/grp/sub/app/-/commit/abc"),
        ("https://bitbucket.org/acme/sales", "https://bitbucket.org/acme/sales/commits/abc"),
        ("https://git.example.com/acme/sales.git", "https://git.example.com/acme/sales/commit/abc"),
        ("http://git.example.com/acme/sales.git", None),
        ("file:///srv/git/sales", None),
        ("/srv/git/sales", None),
        ("https://git.example.com/sales", None),
    ],
)
def test_commit_urls(url: str, expected: str | None) -> None:
    assert commit_url(url, "abc") == expected
