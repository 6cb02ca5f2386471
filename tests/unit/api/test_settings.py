"""API settings: token parsing, webhook secrets and the bind safety check."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfleet.api.settings import (
    ApiSettings,
    SettingsError,
    check_bind,
    load_tokens,
    load_webhook_secret,
    parse_tokens,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "lines", "expected"),
    [
        # `read` is the old name of viewer: existing token lists keep working.
        ("tok1:admin,tok2:read", False, {"tok1": "admin", "tok2": "viewer"}),
        (" a:b:c:read , ", False, {"a:b:c": "viewer"}),
        ("tok1 admin\n# comment\n\ntok2 read\n", True, {"tok1": "admin", "tok2": "viewer"}),
        (
            "t1:launcher,t2:editor,t3:viewer",
            False,
            {"t1": "launcher", "t2": "editor", "t3": "viewer"},
        ),
    ],
)
def test_parse_tokens(text: str, lines: bool, expected: dict[str, str]) -> None:
    assert parse_tokens(text, "src", lines) == expected


@pytest.mark.parametrize(
    ("text", "lines"),
    [("tok1", False), ("tok1:root", False), (":admin", False), ("tok1\n", True), ("t x", True)],
)
def test_parse_tokens_refuses(text: str, lines: bool) -> None:
    with pytest.raises(SettingsError):
        parse_tokens(text, "src", lines)


def test_tokens_from_env_and_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("filetok admin\n")
    env = {"DAGFLEET_API_TOKENS": "envtok:read", "DAGFLEET_API_TOKEN_FILE": str(path)}
    assert load_tokens(env) == {"envtok": "viewer", "filetok": "admin"}
    with pytest.raises(SettingsError, match="cannot read"):
        load_tokens({"DAGFLEET_API_TOKEN_FILE": str(tmp_path / "missing")})


def test_webhook_secret_sources(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("s3cret\n")
    assert load_webhook_secret({"DAGFLEET_WEBHOOK_SECRET": "x"}) == "x"
    assert load_webhook_secret({"DAGFLEET_WEBHOOK_SECRET_FILE": str(path)}) == "s3cret"
    assert load_webhook_secret({}) is None
    settings = ApiSettings.from_env(tmp_path, environ={"DAGFLEET_WEBHOOK_SECRET_FILE": str(path)})
    assert settings.webhook_secret == "s3cret" and settings.tokens == {}


@pytest.mark.parametrize(
    ("host", "tokens", "safe"),
    [
        ("127.0.0.1", {}, True),
        ("127.0.0.2", {}, True),
        ("::1", {}, True),
        ("localhost", {}, True),
        ("0.0.0.0", {}, False),
        ("::", {}, False),
        ("10.1.2.3", {}, False),
        ("example.com", {}, False),
        ("0.0.0.0", {"t": "admin"}, True),
    ],
)
def test_check_bind(host: str, tokens: dict[str, str], safe: bool) -> None:
    refusal = check_bind(host, tokens)  # type: ignore[arg-type]
    assert (refusal is None) is safe
    if refusal:
        assert "DAGFLEET_API_TOKENS" in refusal
