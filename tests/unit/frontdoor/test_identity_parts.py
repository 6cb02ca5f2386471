"""The front door's pure parts: grants and the check, session values, passwords, the
users file, token lists, the sign-in limit and `next` paths."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dagfleet.frontdoor.door import safe_next
from dagfleet.frontdoor.passwords import check_hash, hash_password, verify_password
from dagfleet.frontdoor.roles import Action, Grant, Principal, Target, denial, grants_for
from dagfleet.frontdoor.sessions import LoginLimiter, SessionCodec, load_key, same_origin
from dagfleet.frontdoor.tokens import TokenError, parse_tokens, token_name
from dagfleet.frontdoor.users import UsersFile, UsersFileError
from dagfleet.spec.auth import AuthSpec

A = Target("sales-A", "sales", "A")
B = Target("sales-B", "sales", "B")
OTHER = Target("ops-A", "ops", "A")


def test_scoped_grants_cover_only_their_locations() -> None:
    lee = Principal("lee", "password", (Grant("launcher", frozenset({"A"})), Grant("viewer")))
    assert lee.may(Action.LAUNCH, A) and lee.may(Action.LAUNCH, OTHER)
    assert not lee.may(Action.LAUNCH, B) and lee.may(Action.VIEW, B)
    assert not lee.may(Action.LAUNCH, None)  # instance-wide needs a fleet-wide grant
    assert not lee.may(Action.EDIT, A) and lee.strongest() == "launcher"
    pat = Principal("pat", "password", (Grant("editor", locations=("sales-*",)),))
    assert pat.may(Action.EDIT, B) and not pat.may(Action.EDIT, OTHER)
    assert pat.may(Action.LAUNCH, A) and not pat.may(Action.ADMIN, A)
    repo_admin = Principal("r", "token", (Grant("admin", repositories=frozenset({"ops"})),))
    assert repo_admin.may(Action.ADMIN, OTHER) and not repo_admin.may(Action.ADMIN, A)
    unknown = Target("stray-A")  # a location dagfleet does not know
    assert not lee.may(Action.LAUNCH, unknown) and pat.may(Action.VIEW, Target("sales-x"))
    message = denial(lee, Action.LAUNCH, B)
    assert message.startswith("lee may not launch in location sales-B: that needs the launcher")
    assert "launcher in environments A" in message and "auth.roles" in message


def test_grants_come_from_users_and_groups() -> None:
    auth = AuthSpec.model_validate(
        {
            "roles": [
                {"role": "admin", "users": ["ada"]},
                {"role": "launcher", "groups": ["analytics"], "environments": ["A"]},
            ]
        }
    )
    assert grants_for(auth, "ada") == (Grant("admin"),)
    assert grants_for(auth, "ana", ["analytics"]) == (Grant("launcher", frozenset({"A"})),)
    assert grants_for(auth, "nobody", ["x"]) == ()
    with pytest.raises(ValueError, match="granted to nobody"):
        AuthSpec.model_validate({"roles": [{"role": "admin"}]})
    with pytest.raises(ValueError):
        AuthSpec.model_validate({"roles": [{"role": "root", "users": ["x"]}]})


def test_sessions_are_signed_expire_and_can_be_revoked() -> None:
    codec = SessionCodec(b"k" * 40, lifetime_seconds=60)
    value, session = codec.issue("ada", "password", ("g",))
    assert codec.read(value) == session
    body, _, mac = value.partition(".")
    assert codec.read(body + "." + mac[:-2] + "AA") is None  # a changed signature
    assert codec.read(value.replace(body, body[:-1])) is None  # a changed body
    assert SessionCodec(b"x" * 40, 60).read(value) is None  # another key
    assert codec.read(codec.sign("login", {"n": "/"})) is None  # another purpose
    codec.revoke(session)
    assert codec.read(value) is None
    short = SessionCodec(b"k" * 40, lifetime_seconds=-1)
    expired, _ = short.issue("ada", "password")
    assert short.read(expired) is None


def test_session_keys(tmp_path: Path) -> None:
    made = load_key({}, tmp_path)
    assert len(made) >= 32 and (tmp_path / "session.key").stat().st_mode & 0o777 == 0o600
    assert load_key({}, tmp_path) == made  # made once, then read
    assert load_key({"DAGFLEET_SESSION_KEY": "s" * 40}, tmp_path) == b"s" * 40
    with pytest.raises(Exception, match="too short"):
        load_key({"DAGFLEET_SESSION_KEY": "short"}, tmp_path)


def test_same_origin() -> None:
    host = "127.0.0.1:3000"
    assert same_origin({"origin": "http://127.0.0.1:3000"}, host)
    assert same_origin({"referer": "http://127.0.0.1:3000/runs"}, host)
    assert not same_origin({"origin": "http://evil.example"}, host)
    assert not same_origin({}, host) and not same_origin({"origin": "null"}, host)
    assert not same_origin(
        {"origin": "http://127.0.0.1:3000", "sec-fetch-site": "cross-site"}, host
    )


def test_passwords() -> None:
    encoded = hash_password("correct horse")
    assert check_hash(encoded) is None and encoded.startswith("scrypt$15$8$1$")
    assert verify_password("correct horse", encoded) and not verify_password("wrong", encoded)
    assert hash_password("correct horse") != encoded  # salted
    assert "dagfleet user add" in (check_hash("plaintext") or "")
    assert not verify_password("x", "scrypt$99$8$1$AA$AA")
    with pytest.raises(ValueError):
        hash_password("")


def test_users_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    assert UsersFile(path).read() == {}
    path.write_text("# comment\nada " + hash_password("pw-pw-pw") + "\nbad name\n")
    with pytest.raises(UsersFileError, match=r"users line 3"):
        UsersFile(path).read()


def test_token_lists() -> None:
    assert parse_tokens("a:admin, b:read ,c:launcher", "ENV", False) == {
        "a": "admin",
        "b": "viewer",
        "c": "launcher",
    }
    with pytest.raises(TokenError, match="ENV entry 1"):
        parse_tokens("a:root", "ENV", False)
    assert token_name("secret-token").startswith("token:") and "secret" not in token_name(
        "secret-token"
    )


def test_login_limiter() -> None:
    limiter = LoginLimiter(failures=2, window=0.3)
    assert limiter.retry_after("ip:1", "user:a") == 0
    limiter.failed("ip:1", "user:a")
    limiter.failed("ip:1", "user:a")
    assert limiter.retry_after("ip:1") > 0 and limiter.retry_after("user:a") > 0
    assert limiter.retry_after("ip:2", "user:b") == 0
    time.sleep(0.35)
    assert limiter.retry_after("ip:1", "user:a") == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/runs?x=1", "/runs?x=1"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
        ("", "/"),
    ],
)
def test_next_stays_on_this_site(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_an_unreadable_users_file_keeps_the_door_closed(tmp_path: Path) -> None:
    from dagfleet.frontdoor.identity import Identities
    from dagfleet.spec import load_fleet

    (tmp_path / "repos").mkdir()
    (tmp_path / "fleet.yaml").write_text("name: t\nenvironments: [{name: A}]\n")
    fleet = load_fleet(tmp_path)
    users = UsersFile(tmp_path / "users")
    ids = Identities(lambda: fleet, users, {}, oidc_enabled=False)
    assert not ids.configured()  # no users file: the loopback default
    (tmp_path / "users").write_text("ada not-a-hash\n")
    ids = Identities(lambda: fleet, users, {}, oidc_enabled=False)
    assert ids.configured() and ids.user_hashes() == {}  # broken: nobody in, nobody admin
