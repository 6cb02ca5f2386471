"""Single sign-on against a real OpenID Connect provider (oidc-provider on Node).

The provider runs on a free loopback port; a user signs in at its HTML form
over real HTTP; dagfleet's client redeems the code and validates the ID token
against the provider's published keys. The callback URL is never requested: the
test hands its query to `OidcClient.finish`, as the front door's callback does.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dagfleet.frontdoor.oidc import (
    OidcClient,
    OidcError,
    OidcIdentity,
    PendingLogin,
    pkce_challenge,
)
from dagfleet.spec.auth import OidcSpec
from dagfleet.spec.credentials import SecretRef
from tests.support.fleetproc import free_port
from tests.support.oidc_provider import (
    CONFIDENTIAL_ID,
    PUBLIC_ID,
    USERS,
    LoginFailed,
    OidcProvider,
    decline,
    login,
    running_provider,
    standard_clients,
)

T = TypeVar("T")
REDIRECT = "http://127.0.0.1:9/auth/oidc/callback"  # never requested
LOGOUT_REDIRECT = "http://127.0.0.1:9/auth/signed-out"
SECRET = "dagfleet-test-client-secret-0c9b-5e1f"


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    clients = standard_clients(REDIRECT, SECRET, post_logout_redirect_uris=[LOGOUT_REDIRECT])
    with running_provider(tmp_path_factory.mktemp("oidc"), clients) as provider:
        yield provider


def spec_for(issuer: str, public: bool = False, **overrides: Any) -> OidcSpec:
    return OidcSpec(
        issuer=issuer,
        client_id=PUBLIC_ID if public else CONFIDENTIAL_ID,
        client_secret=None if public else SecretRef(from_env="DAGFLEET_OIDC_SECRET"),
        **overrides,
    )


def client_for(issuer: str, public: bool = False, **overrides: Any) -> OidcClient:
    return OidcClient(spec_for(issuer, public, **overrides), None if public else SECRET)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


async def sign_in(
    client: OidcClient, user: str, next_path: str = "/"
) -> tuple[PendingLogin, dict[str, str]]:
    """begin, then the user signs in at the provider: the pending login and the callback query."""
    url, pending = await client.authorize(REDIRECT, next_path)
    with httpx.Client() as browser:
        callback = await asyncio.to_thread(login, browser, url, user, USERS[user]["password"])
    assert callback.startswith(REDIRECT + "?"), callback
    return pending, query(callback)


def test_full_flow_confidential_client_returns_the_user_and_groups(idp: OidcProvider) -> None:
    async def flow() -> tuple[str, PendingLogin, OidcIdentity]:
        client = client_for(idp.issuer)
        try:
            url, pending = await client.authorize(REDIRECT, "/runs")
            steps: list[str] = []
            with httpx.Client() as browser:
                callback = await asyncio.to_thread(
                    login, browser, url, "alice", USERS["alice"]["password"], steps
                )
            assert len(steps) == 1 and steps[0].endswith("/login")  # first party: no consent
            # The front door keeps the pending login in a cookie between the two requests.
            resumed = PendingLogin.from_json(pending.to_json())
            return url, resumed, await client.finish(resumed, query(callback))
        finally:
            await client.aclose()

    url, pending, identity = run(flow)
    asked = query(url)
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CONFIDENTIAL_ID
    assert asked["code_challenge_method"] == "S256"
    assert asked["code_challenge"] == pkce_challenge(pending.code_verifier)
    assert set(asked["scope"].split()) == {"openid", "profile", "email"}
    assert pending.next_path == "/runs"
    assert identity.username == "alice"
    assert identity.groups == frozenset({"platform"})
    assert identity.claims["email"] == "alice@example.com"
    assert identity.id_token.count(".") == 2
    assert "eyJ" not in repr(identity)  # the ID token is kept out of logs


def test_public_client_with_pkce_only(idp: OidcProvider) -> None:
    async def flow() -> OidcIdentity:
        client = client_for(idp.issuer, public=True)
        try:
            pending, params = await sign_in(client, "ana")
            return await client.finish(pending, params)
        finally:
            await client.aclose()

    identity = run(flow)
    assert (identity.username, identity.groups) == ("ana", frozenset({"analytics"}))
    assert identity.claims["aud"] == PUBLIC_ID


def test_the_provider_requires_pkce_and_its_error_is_shown(idp: OidcProvider) -> None:
    """An authorization request without a code challenge comes back as the provider's
    error, and finish shows the provider's own description."""

    async def flow() -> str:
        client = client_for(idp.issuer)
        try:
            url, pending = await client.authorize(REDIRECT)
            parts = urlsplit(url)
            kept = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("code_chal")]
            stripped = urlunsplit(parts._replace(query=urlencode(kept)))
            with httpx.Client() as browser:
                answer = browser.get(stripped, follow_redirects=False)
            assert answer.is_redirect
            with pytest.raises(OidcError) as refused:
                await client.finish(pending, query(answer.headers["location"]))
            return str(refused.value)
        finally:
            await client.aclose()

    message = run(flow)
    assert "refused the sign-in: invalid_request" in message
    assert "PKCE" in message  # the provider's error_description, passed on


def test_user_who_cancels_sees_the_providers_description(idp: OidcProvider) -> None:
    async def flow() -> str:
        client = client_for(idp.issuer)
        try:
            url, pending = await client.authorize(REDIRECT)
            with httpx.Client() as browser:
                callback = await asyncio.to_thread(decline, browser, url)
            assert query(callback)["error"] == "access_denied"
            with pytest.raises(OidcError) as refused:
                await client.finish(pending, query(callback))
            return str(refused.value)
        finally:
            await client.aclose()

    message = run(flow)
    assert message == (
        "the identity provider refused the sign-in: access_denied: the user cancelled the sign-in"
    )


def test_wrong_state_is_refused_before_the_code_is_redeemed(idp: OidcProvider) -> None:
    async def flow() -> tuple[str, OidcIdentity]:
        client = client_for(idp.issuer)
        try:
            pending, params = await sign_in(client, "alice")
            with pytest.raises(OidcError) as refused:
                await client.finish(pending, {**params, "state": params["state"] + "x"})
            with pytest.raises(OidcError):
                await client.finish(pending, {k: v for k, v in params.items() if k != "state"})
            # The code was not spent: the genuine callback still signs in.
            return str(refused.value), await client.finish(pending, params)
        finally:
            await client.aclose()

    message, identity = run(flow)
    assert "state differs" in message
    assert identity.username == "alice"


def test_a_replayed_code_is_refused(idp: OidcProvider) -> None:
    async def flow() -> tuple[OidcIdentity, str]:
        client = client_for(idp.issuer)
        try:
            pending, params = await sign_in(client, "vic")
            first = await client.finish(pending, params)
            with pytest.raises(OidcError) as refused:
                await client.finish(pending, params)
            return first, str(refused.value)
        finally:
            await client.aclose()

    first, message = run(flow)
    assert first.groups == frozenset({"viewers"})
    assert "refused the code exchange (invalid_grant" in message
    assert "sign in again" in message


def test_a_wrong_client_secret_is_refused_without_showing_it(idp: OidcProvider) -> None:
    async def flow() -> str:
        client = OidcClient(spec_for(idp.issuer), "not-the-secret-4242")
        try:
            pending, params = await sign_in(client, "alice")
            with pytest.raises(OidcError) as refused:
                await client.finish(pending, params)
            return str(refused.value)
        finally:
            await client.aclose()

    message = run(flow)
    assert "invalid_client" in message
    assert "check fleet.yaml auth.oidc.client_id and client_secret" in message
    assert "not-the-secret-4242" not in message


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_tampered_foreign_signed_or_misaddressed_id_tokens_are_refused(
    idp: OidcProvider,
) -> None:
    async def flow() -> tuple[dict[str, Any], dict[str, str]]:
        client = client_for(idp.issuer)
        public = client_for(idp.issuer, public=True)
        try:
            pending, params = await sign_in(client, "alice")
            genuine = (await client.finish(pending, params)).id_token
            claims = await client.validate_id_token(genuine, pending.nonce)
            header = jwt.get_unverified_header(genuine)
            head, body, sig = genuine.split(".")

            # Same signature, payload changed to claim another group.
            payload = json.loads(_unb64url(body))
            payload["groups"] = ["platform", "admins"]
            tampered = f"{head}.{_b64url(json.dumps(payload).encode())}.{sig}"

            # Signed with another key, under the provider's own key id and under a new one.
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            now = int(time.time())
            forged_claims = {
                "iss": idp.issuer,
                "sub": "mallory",
                "aud": CONFIDENTIAL_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": pending.nonce,
                "groups": ["platform"],
            }
            same_kid = jwt.encode(forged_claims, other, "RS256", headers={"kid": header["kid"]})
            new_kid = jwt.encode(forged_claims, other, "RS256", headers={"kid": "attacker"})
            unsigned = jwt.encode(forged_claims, "", "none")
            hmac_signed = jwt.encode(forged_claims, SECRET, "HS256")

            # A genuine token issued to the public client is not for the confidential one.
            p_pending, p_params = await sign_in(public, "ana")
            for_public = (await public.finish(p_pending, p_params)).id_token

            errors: dict[str, str] = {}
            for name, token, nonce in [
                ("tampered", tampered, pending.nonce),
                ("same_kid", same_kid, pending.nonce),
                ("new_kid", new_kid, pending.nonce),
                ("unsigned", unsigned, pending.nonce),
                ("hmac", hmac_signed, pending.nonce),
                ("other_client", for_public, p_pending.nonce),
                ("wrong_nonce", genuine, "another-sign-in"),
                ("garbage", "not.a.token", pending.nonce),
            ]:
                with pytest.raises(OidcError) as refused:
                    await client.validate_id_token(token, nonce)
                errors[name] = str(refused.value)
            return claims, errors
        finally:
            await client.aclose()
            await public.aclose()

    claims, errors = run(flow)
    assert claims["sub"] == "alice"  # the genuine token validates
    assert "signature does not verify" in errors["tampered"]
    assert "signature does not verify" in errors["same_kid"]
    assert "key the identity provider does not publish" in errors["new_kid"]
    assert "'none'" in errors["unsigned"]
    assert "'HS256'" in errors["hmac"]
    assert "issued to another client" in errors["other_client"]
    assert "nonce differs" in errors["wrong_nonce"]
    assert "malformed" in errors["garbage"]


def test_issuer_mismatch_names_the_fleet_yaml_field(idp: OidcProvider) -> None:
    """The provider answers at localhost but calls itself 127.0.0.1: refused, with the fix."""
    configured = idp.issuer.replace("127.0.0.1", "localhost")

    async def flow() -> str:
        client = client_for(configured)
        try:
            with pytest.raises(OidcError) as refused:
                await client.discover()
            return str(refused.value)
        finally:
            await client.aclose()

    message = run(flow)
    assert "fleet.yaml auth.oidc.issuer" in message
    assert repr(idp.issuer) in message and repr(configured) in message


def test_unreachable_issuer_is_a_clear_error() -> None:
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async def flow() -> str:
        client = client_for(issuer)
        try:
            with pytest.raises(OidcError) as refused:
                await client.authorize(REDIRECT)
            return str(refused.value)
        finally:
            await client.aclose()

    message = run(flow)
    assert message.startswith(f"cannot reach the identity provider at {issuer}")
    assert "check fleet.yaml auth.oidc.issuer" in message


def test_a_stale_or_foreign_pending_login_is_refused(idp: OidcProvider) -> None:
    async def flow() -> tuple[str, str]:
        client = client_for(idp.issuer)
        try:
            pending, params = await sign_in(client, "alice")
            old = PendingLogin.from_json(
                pending.to_json().replace(str(pending.created), str(pending.created - 601))
            )
            with pytest.raises(OidcError) as stale:
                await client.finish(old, params)
            with pytest.raises(OidcError) as garbled:
                PendingLogin.from_json('{"state": 1}')
            return str(stale.value), str(garbled.value)
        finally:
            await client.aclose()

    stale, garbled = run(flow)
    assert stale == "the sign-in took longer than 10 minutes: sign in again"
    assert garbled == "this sign-in cannot be resumed: start again"


def test_wrong_password_is_refused_by_the_provider(idp: OidcProvider) -> None:
    async def flow() -> None:
        client = client_for(idp.issuer)
        try:
            url, _ = await client.authorize(REDIRECT)
            with httpx.Client() as browser, pytest.raises(LoginFailed, match="Wrong username"):
                await asyncio.to_thread(login, browser, url, "alice", "guess")
        finally:
            await client.aclose()

    run(flow)


def test_username_falls_back_to_email_and_end_session_url(idp: OidcProvider) -> None:
    async def flow() -> tuple[OidcIdentity, str | None]:
        client = client_for(idp.issuer, username_claim="upn")
        try:
            pending, params = await sign_in(client, "alice")
            identity = await client.finish(pending, params)
            return identity, client.end_session_url(identity.id_token, LOGOUT_REDIRECT)
        finally:
            await client.aclose()

    identity, logout = run(flow)
    assert identity.username == "alice@example.com"
    assert logout is not None and logout.startswith(idp.issuer + "/session/end?")
    asked = parse_qs(urlsplit(logout).query)
    assert asked["post_logout_redirect_uri"] == [LOGOUT_REDIRECT]
    assert asked["id_token_hint"] == [identity.id_token]
    with httpx.Client() as browser:  # the provider accepts the request (its confirm page)
        assert browser.get(logout).status_code == 200


def test_groups_from_userinfo_a_single_group_string_and_consent(tmp_path: Path) -> None:
    """A provider that puts claims only in userinfo, asks for consent, and sends a
    lone group as a string; the groups claim has another name and needs its scope."""
    users: dict[str, dict[str, Any]] = {
        "alice": {"password": "pw-alice-1", "groups": ["platform", "analytics"]},
        "solo": {"password": "pw-solo-1", "groups": "analytics", "email": "solo@example.com"},
    }
    with running_provider(
        tmp_path,
        standard_clients(REDIRECT, SECRET),
        users,
        groups_claim="roles",
        groups_scope="roles",
        groups_in_id_token=False,
        auto_consent=False,
    ) as provider:

        async def flow(user: str, scopes: list[str]) -> tuple[OidcIdentity, dict[str, Any]]:
            client = client_for(provider.issuer, groups_claim="roles", scopes=scopes)
            try:
                url, pending = await client.authorize(REDIRECT)
                steps: list[str] = []
                with httpx.Client() as browser:
                    callback = await asyncio.to_thread(
                        login, browser, url, user, users[user]["password"], steps
                    )
                assert [s.rsplit("/", 1)[-1] for s in steps] == ["login", "confirm"]
                identity = await client.finish(pending, query(callback))
                raw = await client.validate_id_token(identity.id_token, pending.nonce)
                return identity, raw
            finally:
                await client.aclose()

        alice, alice_token = run(lambda: flow("alice", ["openid", "profile", "roles"]))
        solo, _ = run(lambda: flow("solo", ["openid", "email", "roles"]))
        bare, _ = run(lambda: flow("solo", ["openid", "email"]))

    assert "roles" not in alice_token and "preferred_username" not in alice_token
    assert (alice.username, alice.groups) == ("alice", frozenset({"platform", "analytics"}))
    assert (solo.username, solo.groups) == ("solo@example.com", frozenset({"analytics"}))
    assert bare.groups == frozenset()  # the roles scope not asked for: no groups


class _Callback(http.server.BaseHTTPRequestHandler):
    """The relying party's callback, as a browser reaches it: records the query."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = b"<!doctype html><title>signed in</title><p id=done>back at dagfleet</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_headless_browser_signs_in_at_the_providers_form(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.support.browser import chromium, wait_until

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{server.server_address[1]}/auth/oidc/callback"
    _Callback.seen.clear()

    def browse(url: str) -> str:
        """A user in a real browser: the sign-in form, then back at the callback."""
        driver = chromium()
        try:
            driver.get(url)
            wait_until(driver, lambda d: d.find_elements(By.NAME, "login"), 20, "the sign-in form")
            driver.find_element(By.NAME, "login").send_keys("alice")
            driver.find_element(By.NAME, "password").send_keys(USERS["alice"]["password"])
            driver.find_element(By.ID, "submit").click()
            wait_until(driver, lambda d: d.find_elements(By.ID, "done"), 20, "the callback")
        finally:
            driver.quit()
        hits = [p for p in _Callback.seen if p.startswith("/auth/oidc/callback?")]
        assert len(hits) == 1, _Callback.seen
        return hits[0]

    async def flow(issuer: str) -> OidcIdentity:
        client = client_for(issuer)
        try:
            url, pending = await client.authorize(callback)
            return await client.finish(pending, query(await asyncio.to_thread(browse, url)))
        finally:
            await client.aclose()

    try:
        with running_provider(tmp_path, standard_clients(callback, SECRET)) as provider:
            identity = run(lambda: flow(provider.issuer))
    finally:
        server.shutdown()
        server.server_close()
    assert (identity.username, identity.groups) == ("alice", frozenset({"platform"}))
