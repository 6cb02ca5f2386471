"""Single sign-on's pure parts: PKCE, the discovery document, claims to an identity,
the pending login's round trip, and sign-out URLs. The flow itself is tested against
a real provider in tests/integration/test_oidc.py."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dagfleet.frontdoor.oidc import (
    OidcClient,
    OidcError,
    PendingLogin,
    identity_from_claims,
    parse_metadata,
    pkce_challenge,
)
from dagfleet.spec.auth import OidcSpec
from dagfleet.spec.credentials import SecretRef

ISSUER = "https://sso.example.com"
DOC: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": ISSUER + "/auth?tenant=a",
    "token_endpoint": ISSUER + "/token",
    "jwks_uri": ISSUER + "/jwks",
    "userinfo_endpoint": ISSUER + "/me",
    "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
}
URL = ISSUER + "/.well-known/openid-configuration"


def spec(**kw: Any) -> OidcSpec:
    return OidcSpec(issuer=ISSUER, client_id="dagfleet", **kw)


def test_pkce_challenge_is_unpadded_base64url_of_sha256() -> None:
    """RFC 7636 S256; the integration tests check a real provider accepts it."""
    verifier = "dBjftJeZ4CVP-mJ92K1KFaQbqe6_VrAVn0zfr0yeOHk"
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = pkce_challenge(verifier)
    assert challenge == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert len(challenge) == 43 and "=" not in challenge and "+" not in challenge


def test_metadata_keeps_only_asymmetric_algorithms_and_optional_endpoints() -> None:
    meta = parse_metadata(DOC, ISSUER, URL)
    assert meta.signing_algorithms == frozenset({"RS256"})
    assert meta.userinfo_endpoint == ISSUER + "/me"
    assert meta.end_session_endpoint is None


def test_metadata_accepts_the_issuer_with_a_trailing_slash() -> None:
    """fleet.yaml drops the slash; the ID token's iss must then carry it, as the provider says."""
    assert parse_metadata({**DOC, "issuer": ISSUER + "/"}, ISSUER, URL).issuer == ISSUER + "/"


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({**DOC, "issuer": "https://other.example.com"}, r"fleet\.yaml auth\.oidc\.issuer"),
        ({**DOC, "issuer": ISSUER + "/realms/x"}, "must be the same URL exactly"),
        ({k: v for k, v in DOC.items() if k != "issuer"}, "calls itself None"),
        ({k: v for k, v in DOC.items() if k != "jwks_uri"}, "has no jwks_uri"),
        ({**DOC, "id_token_signing_alg_values_supported": ["HS256"]}, "configure the client"),
        (["not", "a", "document"], "not an OpenID Connect discovery document"),
    ],
)
def test_metadata_refusals_say_what_to_fix(doc: Any, needle: str) -> None:
    with pytest.raises(OidcError, match=needle):
        parse_metadata(doc, ISSUER, URL)


@pytest.mark.parametrize(
    ("claims", "username", "groups"),
    [
        ({"sub": "u1", "preferred_username": "alice", "groups": ["a", "b"]}, "alice", {"a", "b"}),
        ({"sub": "u1", "email": "al@example.com", "groups": "solo"}, "al@example.com", {"solo"}),
        ({"sub": "u1", "preferred_username": " ", "groups": []}, "u1", set()),
        ({"sub": "u1"}, "u1", set()),
    ],
)
def test_identity_from_claims(claims: dict[str, Any], username: str, groups: set[str]) -> None:
    identity = identity_from_claims(spec(), claims)
    assert (identity.username, identity.groups) == (username, frozenset(groups))


def test_identity_refuses_groups_that_are_not_names_and_a_missing_user() -> None:
    with pytest.raises(OidcError, match=r"auth\.oidc\.groups_claim"):
        identity_from_claims(spec(), {"sub": "u1", "groups": [{"id": 1}]})
    with pytest.raises(OidcError, match=r"auth\.oidc\.username_claim"):
        identity_from_claims(spec(), {"groups": ["a"]})


def test_pending_login_round_trips_and_refuses_garbage() -> None:
    pending = PendingLogin("s", "n", "v" * 64, "https://d.example.com/cb", 1700000000.5, "/runs")
    assert PendingLogin.from_json(pending.to_json()) == pending
    for bad in ("", "[]", '{"state": "s"}', '{"state": 1, "nonce": "n"}'):
        with pytest.raises(OidcError, match="start again"):
            PendingLogin.from_json(bad)


def test_begin_keeps_the_endpoints_query_and_always_asks_for_openid() -> None:
    client = OidcClient(spec(scopes=["profile", "groups"]), None)
    client._metadata = parse_metadata(DOC, ISSUER, URL)  # as discover() leaves it
    url, pending = client.begin("https://d.example.com/cb", "/x")
    asked = parse_qs(urlsplit(url).query)
    assert asked["tenant"] == ["a"]
    assert asked["scope"] == ["openid profile groups"]
    assert asked["state"] == [pending.state] and asked["nonce"] == [pending.nonce]
    assert asked["code_challenge"] == [pkce_challenge(pending.code_verifier)]
    assert 43 <= len(pending.code_verifier) <= 128
    assert client.end_session_url("tok", None) is None  # the provider has no endpoint


def test_from_spec_reads_the_secret_reference_and_names_it_when_unset(tmp_path: Any) -> None:
    ref = spec(client_secret=SecretRef(from_env="DAGFLEET_OIDC_SECRET"))
    assert not OidcClient.from_spec(ref, {"DAGFLEET_OIDC_SECRET": "x"}, tmp_path).public
    assert OidcClient.from_spec(spec(), {}, tmp_path).public
    with pytest.raises(
        OidcError, match=r"auth\.oidc\.client_secret: from_env DAGFLEET_OIDC_SECRET"
    ):
        OidcClient.from_spec(ref, {}, tmp_path)
