"""Scenario: alert policies tell Slack, a signed webhook and email what breaks and when it
is fixed: a broken push is one alert per channel and the fixing push one "resolved"; a
code server killed again and again is one crash-loop alert and one "resolved"; a
receiver that is down shows as failing in `GET /alerts`, the metrics and `dagfleet
alerts`, and gets its message once it is back."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.alert_servers import HOOK_SECRET, SLACK_TOKEN, AlertHttp, SmtpSink
from tests.support.fleetproc import DAGFLEET, wait_for
from tests.support.gitrepo import CodeRepo


@pytest.fixture
def servers() -> Iterator[tuple[AlertHttp, AlertHttp, SmtpSink]]:
    slack, hook, smtp = AlertHttp().start(), AlertHttp().start(), SmtpSink().start()
    yield slack, hook, smtp
    slack.stop()
    hook.stop()
    smtp.stop()


def alerts_section(slack: AlertHttp, hook: AlertHttp, smtp: SmtpSink) -> dict[str, object]:
    return {
        "channels": {
            "slack": {"slack_webhook": {"url": {"from_env": "E2E_SLACK_WEBHOOK_URL"}}},
            "bot": {
                "slack_bot": {
                    "token": {"from_env": "E2E_SLACK_BOT_TOKEN"},
                    "api_url": f"{slack.url}/api",
                }
            },
            "hook": {"webhook": {"url": f"{hook.url}/hook", "secret": {"from_env": "E2E_SECRET"}}},
            "mail": {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "from": "dagfleet@example.com",
                    "to": ["oncall@example.com"],
                    "starttls": False,
                }
            },
        },
        "policies": [
            {
                "name": "broken",
                "events": ["commit_rejected"],
                "channels": ["slack", "bot", "hook", "mail"],
            },
            {
                "name": "crashing",
                "events": ["crash_loop"],
                "crashes": 3,
                "minutes": 10,
                "quiet_minutes": 0.2,
                "channels": ["slack", "hook"],
            },
        ],
    }


def test_alerts_on_every_channel(
    tmp_path: Path,
    code_repo: CodeRepo,
    start_fleet,
    servers: tuple[AlertHttp, AlertHttp, SmtpSink],
) -> None:
    slack, hook, smtp = servers
    fleet_dir = demo_fleet(tmp_path, code_repo, environments=["A"])
    doc = yaml.safe_load((fleet_dir / "fleet.yaml").read_text())
    doc["alerts"] = alerts_section(slack, hook, smtp)
    (fleet_dir / "fleet.yaml").write_text(yaml.safe_dump(doc))
    env = {
        "E2E_SLACK_WEBHOOK_URL": slack.slack_webhook_url,
        "E2E_SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_DEFAULT_CHANNEL": "#deploys",
        "E2E_SECRET": HOOK_SECRET,
    }
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"], env=env)
    fleet.wait_loaded({"demo-A"})

    # A broken push: one alert on each channel, naming the commit, its author and subject.
    bad = code_repo.commit({"demo/definitions.py": "def broken(:\n"}, "oops, a typo")
    code_repo.push("A")

    def counts() -> tuple[int, int, int, int]:
        return (
            len(slack.at("/services/")),
            len(slack.at("/api/chat.postMessage")),
            len(hook.at("/hook")),
            len(smtp.messages),
        )

    wait_for(lambda: counts() == (1, 1, 1, 1), 120, "one commit_rejected alert per channel")
    [fired] = hook.at("/hook")
    assert fired.verified
    alert = fired.json["alerts"][0]
    assert (alert["event"], alert["state"], alert["location"]) == (
        "commit_rejected",
        "firing",
        "demo-A",
    )
    assert alert["fields"]["commit"] == bad and alert["fields"]["subject"] == "oops, a typo"
    assert alert["links"]["location"] == f"http://127.0.0.1:{fleet.web_port}/locations/demo-A"
    assert alert["links"]["commit"] == bad  # a file:// remote: the SHA, no web page
    assert "oops, a typo" in slack.at("/services/")[0].json["text"]
    assert slack.at("/api/chat.postMessage")[0].json["channel"] == "#deploys"
    assert smtp.subjects() == [f"[dagfleet] demo-A rejected {bad[:12]}"]
    status = httpx.get(f"{fleet.api}/alerts").json()
    assert [e["key"] for e in status["episodes"]] == ["broken/commit_rejected/demo-A"]

    # The fixing push: one "resolved" each.
    good = code_repo.commit({"demo/definitions.py": with_asset("fixed")}, "fix the typo")
    code_repo.push("A")
    fleet.wait_serving("demo-A", good, timeout=180)
    wait_for(lambda: counts() == (2, 2, 2, 2), 60, "one resolved message per channel")
    assert hook.at("/hook")[1].json["alerts"][0]["state"] == "resolved"
    assert smtp.subjects()[1] == f"[dagfleet] Resolved: demo-A rejected {bad[:12]}"
    wait_for(lambda: httpx.get(f"{fleet.api}/alerts").json()["episodes"] == [], 10, "no episode")

    # The webhook receiver goes down; the code server is killed three times: a crash loop.
    hook.stop()
    for _ in range(3):
        pid = fleet.pid("demo-A")
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda pid=pid: (
                fleet.status("demo-A").get("pid") not in (None, pid)
                and fleet.condition("demo-A", "Ready").get("status") == "True"
            ),
            90,
            "a new code server for demo-A",
        )
    wait_for(lambda: len(slack.at("/services/")) == 3, 60, "the crash-loop alert on Slack")
    assert "crash loop" in slack.at("/services/")[2].json["text"]

    def hook_status() -> dict[str, object]:
        channels = httpx.get(f"{fleet.api}/alerts").json()["channels"]
        return next(c for c in channels if c["name"] == "hook")

    failing = wait_for(lambda: (s := hook_status())["failures"] and s, 60, "hook failing")
    assert failing["up"] is False and failing["queued"] >= 1
    metrics = httpx.get(f"{fleet.api}/metrics").text
    assert 'dagfleet_alert_channel_up{channel="hook"} 0.0' in metrics
    assert 'dagfleet_alert_channel_up{channel="slack"} 1.0' in metrics
    assert 'dagfleet_alerts_sent_total{channel="mail"} 2.0' in metrics
    cli = subprocess.run(
        [DAGFLEET, "alerts", "--fleet", str(fleet_dir), "--api", fleet.api.removesuffix("/api/v1")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 1, cli.stderr
    assert "FAILING" in cli.stdout

    # Back up: the queued alert (and, after the quiet period, the resolved one) arrive.
    hook.start()
    wait_for(lambda: len(hook.at("/hook")) >= 3, 120, "the crash-loop alert on the webhook")
    wait_for(lambda: hook_status()["up"] is True, 30, "hook up again")
    wait_for(lambda: len(slack.at("/services/")) == 4, 120, "crash loop resolved on Slack")
    wait_for(lambda: len(hook.at("/hook")) == 4, 120, "crash loop resolved on the webhook")
    states = [(r.json["alerts"][0]["event"], r.json["alerts"][0]["state"]) for r in hook.at("/")]
    assert states == [
        ("commit_rejected", "firing"),
        ("commit_rejected", "resolved"),
        ("crash_loop", "firing"),
        ("crash_loop", "resolved"),
    ]
    assert all(r.verified for r in hook.at("/hook"))
    # Exactly one message per episode and state, on every channel.
    assert counts() == (4, 2, 4, 2)
    # The Slack webhook URL and bot token are secrets: in no log.
    logs = fleet.log() + (fleet.state / "logs" / "dagfleet.log").read_text()
    assert "/services/T000" not in logs and SLACK_TOKEN not in logs
