"""Alert channels against real local servers: Slack-shaped HTTP, a signed webhook, SMTP.

Delivery (retries with backoff, dedupe, the rate limit's summary, permanent errors)
and the engine end to end from EventBus events to messages and the status file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagfleet.alerts import report
from dagfleet.alerts.delivery import ChannelWorker
from dagfleet.alerts.engine import AlertEngine
from dagfleet.alerts.model import Notice, State
from dagfleet.alerts.senders import make
from dagfleet.events import Attempt, Event, EventBus, Kind, Outcome
from dagfleet.layout import Layout
from dagfleet.spec.alerts import ChannelSpec
from dagfleet.spec.models import Fleet, FleetSpec, RepoSpec
from tests.support.alert_servers import HOOK_SECRET, SLACK_TOKEN, AlertHttp, SmtpSink
from tests.support.fleetproc import wait_for

ENV = {"HOOK_URL": "", "SLACK_TOKEN": SLACK_TOKEN, "HOOK_SECRET": HOOK_SECRET}


@pytest.fixture
def http() -> Iterator[AlertHttp]:
    server = AlertHttp().start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


def notice(n: int = 1, state: State = State.FIRING) -> Notice:
    return Notice(
        episode=f"p/commit_rejected/demo-A/{n}",
        policy="p",
        event="commit_rejected",
        state=state,
        title=f"demo-A rejected commit number {n}",
        text="ImportError",
        location="demo-A",
        links=(("location", "http://dagster.test/locations/demo-A"), ("commit", "abc")),
        at="2027-01-01T00:00:00+00:00",
    )


def channels(http: AlertHttp, smtp: SmtpSink | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        "slack": {"slack_webhook": {"url": {"from_env": "HOOK_URL"}}},
        "bot": {"slack_bot": {"token": {"from_env": "SLACK_TOKEN"}, "api_url": f"{http.url}/api"}},
        "hook": {"webhook": {"url": f"{http.url}/hook", "secret": {"from_env": "HOOK_SECRET"}}},
    }
    if smtp is not None:
        out["mail"] = {
            "email": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "from": "dagfleet@example.com",
                "to": ["oncall@example.com"],
                "starttls": False,
            }
        }
    return out


def environ(http: AlertHttp, **extra: str) -> dict[str, str]:
    return {**ENV, "HOOK_URL": http.slack_webhook_url, "SLACK_DEFAULT_CHANNEL": "#ops", **extra}


def worker(
    http: AlertHttp, name: str, rate: int = 20, start: bool = True, **env: str
) -> ChannelWorker:
    spec = ChannelSpec.model_validate(channels(http)[name] | {"rate_per_minute": rate})
    sender = make(spec, environ(http, **env), Path("/nonexistent"))
    return ChannelWorker(
        name, spec.kind, sender, rate, backoff_first=0.05, backoff_cap=0.2, start=start
    )


def test_each_http_channel_delivers_in_its_shape(http: AlertHttp) -> None:
    workers = [worker(http, name) for name in ("slack", "bot", "hook")]
    for w in workers:
        w.put(notice())
    wait_for(lambda: all(w.snapshot().sent == 1 for w in workers), 10, "three deliveries")
    [slack] = http.at("/services/")
    assert "demo-A rejected commit number 1" in slack.json["text"]
    assert "<http://dagster.test/locations/demo-A|location>" in slack.json["text"]
    [bot] = http.at("/api/chat.postMessage")
    assert bot.json["channel"] == "#ops"  # SLACK_DEFAULT_CHANNEL
    assert bot.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    [hook] = http.at("/hook")
    assert hook.verified is True
    doc = hook.json
    assert doc["alerts"][0]["state"] == "firing"
    assert doc["alerts"][0]["links"]["commit"] == "abc"
    for w in workers:
        w.stop(0)


def test_the_slack_webhook_url_is_never_logged(
    http: AlertHttp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    w = worker(http, "slack")
    w.put(notice())
    wait_for(lambda: w.snapshot().sent == 1, 10, "a delivery")
    http.stop()
    w.put(notice(2))
    wait_for(lambda: w.snapshot().failures >= 1, 10, "a failed attempt")
    w.stop(0)
    assert "/services/" not in caplog.text and http.slack_webhook_url not in caplog.text
    assert "/services/" not in (w.snapshot().last_error or "")


def test_slack_ok_false_is_a_failure_and_a_bad_token_is_not_retried(http: AlertHttp) -> None:
    w = worker(http, "bot", SLACK_TOKEN="xoxb-wrong")
    w.put(notice())
    wait_for(lambda: w.snapshot().failures == 1, 10, "the invalid_auth answer")
    status = w.snapshot()
    assert not status.up and status.queued == 0 and status.sent == 0
    assert status.last_error == "slack chat.postMessage: invalid_auth"
    assert len(http.at("/api/chat.postMessage")) == 1  # permanent: dropped, not retried
    w.stop(0)


def test_a_wrong_signing_secret_is_refused_by_the_receiver(http: AlertHttp) -> None:
    w = worker(http, "hook", HOOK_SECRET="not-the-secret")
    w.put(notice())
    wait_for(lambda: w.snapshot().failures >= 1, 10, "the 401")
    assert http.at("/hook")[0].verified is False
    assert "401" in (w.snapshot().last_error or "")
    w.stop(0)


def test_a_channel_that_is_down_retries_with_backoff_and_delivers_once_back(
    http: AlertHttp,
) -> None:
    http.stop()
    w = worker(http, "hook")
    w.put(notice())
    wait_for(lambda: w.snapshot().failures >= 3, 10, "several failed attempts")
    status = w.snapshot()
    assert not status.up and status.queued == 1 and "ConnectError" in (status.last_error or "")
    http.start()
    wait_for(lambda: w.snapshot().sent == 1, 10, "delivery once the receiver is back")
    assert w.snapshot().up
    assert [r.verified for r in http.at("/hook")] == [True]
    w.stop(0)


def test_dedupe_per_episode_and_state(http: AlertHttp) -> None:
    w = worker(http, "slack", start=False)
    assert w.put(notice(1))
    assert not w.put(notice(1))  # queued already
    assert w.put(notice(1, State.RESOLVED))
    w.start()
    wait_for(lambda: w.snapshot().sent == 2, 10, "two messages")
    assert not w.put(notice(1))  # delivered already
    assert len(http.at("/services/")) == 2
    w.stop(0)


def test_the_rate_limit_summarises_the_excess_into_one_message(http: AlertHttp) -> None:
    w = worker(http, "hook", rate=3, start=False)
    for n in range(10):
        w.put(notice(n))
    w.start()
    wait_for(lambda: w.snapshot().queued == 0, 10, "the queue to drain")
    got = http.at("/hook")
    assert [len(r.json["alerts"]) for r in got] == [1, 1, 8]
    assert got[2].json["summary"] == "8 alerts (rate limit reached; summarised)"
    assert w.put(notice(11))  # the minute is used up: it waits in the queue
    assert w.snapshot().queued == 1
    assert len(http.at("/hook")) == 3
    w.stop(0)


def test_email_over_smtp(http: AlertHttp, smtp: SmtpSink) -> None:
    spec = ChannelSpec.model_validate(channels(http, smtp)["mail"])
    w = ChannelWorker("mail", "email", make(spec, {}, Path("/")), 20)
    w.put(notice())
    wait_for(lambda: w.snapshot().sent == 1, 10, "a mail")
    [msg] = smtp.messages
    assert msg["Subject"] == "[dagfleet] demo-A rejected commit number 1"
    assert msg["To"] == "oncall@example.com"
    assert "http://dagster.test/locations/demo-A" in msg.get_payload()  # type: ignore[operator]
    w.stop(0)


def attempt(outcome: Outcome, commit: str) -> Event:
    a = Attempt(
        location="demo-A",
        repo="demo",
        env="A",
        commit=commit,
        previous=None,
        started="2027-01-01T00:00:00+00:00",
        finished="2027-01-01T00:00:01+00:00",
        outcome=outcome,
        reason="DefinitionsInvalid" if outcome is Outcome.FAILED else None,
        message="SyntaxError: invalid syntax" if outcome is Outcome.FAILED else None,
        author="Ada",
        subject="oops",
    )
    return Event(Kind.ATTEMPT, "demo-A", "demo", "A", commit, a.message or "", a)


def test_engine_from_bus_events_to_every_channel_and_the_status_file(
    tmp_path: Path, http: AlertHttp, smtp: SmtpSink
) -> None:
    spec = FleetSpec.model_validate(
        {
            "environments": [{"name": "A"}],
            "alerts": {
                "channels": channels(http, smtp),
                "policies": [
                    {
                        "name": "broken",
                        "events": ["commit_rejected"],
                        "channels": ["slack", "bot", "hook", "mail"],
                    }
                ],
            },
        }
    )
    repo = RepoSpec.model_validate({"name": "demo", "git_url": "/srv/demo"})
    fleet = Fleet(root=str(tmp_path), spec=spec, repos={"demo": repo})
    layout = Layout.for_fleet(tmp_path)
    engine = AlertEngine(lambda: fleet, layout, "http://127.0.0.1:3000", environ(http))
    bus = EventBus()
    engine.attach(bus)
    engine.start()
    bad, good = "b" * 40, "c" * 40
    bus.publish(attempt(Outcome.FAILED, bad))
    bus.publish(attempt(Outcome.FAILED, bad))  # the same problem again: no second alert
    wait_for(lambda: len(smtp.messages) == 1 and len(http.received) == 3, 10, "four alerts")
    wait_for(lambda: report.read(layout).episodes, 10, "the open episode in alerts.json")
    bus.publish(attempt(Outcome.PUBLISHED, good))
    engine.stop()
    assert len(smtp.messages) == 2 and len(http.received) == 6
    assert smtp.subjects() == [
        "[dagfleet] demo-A rejected bbbbbbbbbbbb",
        "[dagfleet] Resolved: demo-A rejected bbbbbbbbbbbb",
    ]
    assert [r.text.split("\n")[0] for r in http.at("/services/")] == [
        ":red_circle: *demo-A rejected bbbbbbbbbbbb*",
        ":large_green_circle: *Resolved: demo-A rejected bbbbbbbbbbbb*",
    ]
    final = json.loads((layout.root / "alerts.json").read_text())
    assert final["running"] is False and final["episodes"] == []
    assert {c["name"]: c["sent"] for c in final["channels"]} == {
        "bot": 2,
        "hook": 2,
        "mail": 2,
        "slack": 2,
    }
