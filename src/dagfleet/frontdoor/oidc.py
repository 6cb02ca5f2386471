"""Single sign-on: the OpenID Connect authorization code flow with PKCE, as a client.

    client = OidcClient.from_spec(spec.auth.oidc, os.environ, fleet_root)
    await client.discover()                        # once; cached
    url, pending = client.begin(redirect_uri, next_path="/runs")
    ... store pending.to_json() in a short-lived signed cookie, redirect to url ...
    identity = await client.finish(PendingLogin.from_json(cookie), callback_query)

`finish` checks the state, surfaces the provider's own error, exchanges the code
(client_secret_basic for a confidential client, the PKCE verifier always), and
validates the ID token against the provider's published keys (signature, issuer,
audience, expiry, nonce). The identity's groups come from `groups_claim`, read from
userinfo when the ID token leaves them out. Every failure is an `OidcError` whose
message says what to do; none carries a token or a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import jwt

from dagfleet.alerts.secrets import SecretUnreadable, read
from dagfleet.spec.auth import OidcSpec

PENDING_SECONDS = 10 * 60  # a sign-in started longer ago than this is refused
LEEWAY_SECONDS = 60  # clock skew allowed on exp/iat
JWKS_REFRESH_SECONDS = 30  # an unknown key id refetches the key set at most this often
DISCOVERY_TTL_SECONDS = 3600
HTTP_TIMEOUT = httpx.Timeout(10.0)
# Asymmetric signatures only: `none` and HMAC (keyed with the client secret) are refused.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_ISSUER_FIELD = "fleet.yaml auth.oidc.issuer"


class OidcError(Exception):
    """A sign-in that cannot go on; the message is safe to show to the user."""


@dataclass(frozen=True)
class OidcIdentity:
    username: str
    groups: frozenset[str]
    claims: Mapping[str, Any]
    id_token: str = field(default="", repr=False)  # the hint for end_session_url


@dataclass(frozen=True)
class PendingLogin:
    """What the callback must match: kept by the browser (signed) between begin and finish."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    created: float
    next_path: str = "/"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PendingLogin:
        try:
            data = json.loads(text)
            pending = cls(
                state=_str(data["state"]),
                nonce=_str(data["nonce"]),
                code_verifier=_str(data["code_verifier"]),
                redirect_uri=_str(data["redirect_uri"]),
                created=float(data["created"]),
                next_path=_str(data.get("next_path", "/")),
            )
        except (ValueError, KeyError, TypeError):
            raise OidcError("this sign-in cannot be resumed: start again") from None
        return pending

    def age(self, now: float) -> float:
        return now - self.created


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the provider's discovery document this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    signing_algorithms: frozenset[str]


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def parse_metadata(doc: object, configured_issuer: str, url: str) -> ProviderMetadata:
    """Validate a discovery document against the configured issuer. Pure."""
    if not isinstance(doc, dict):
        raise OidcError(f"{url} is not an OpenID Connect discovery document: check {_ISSUER_FIELD}")
    issuer = doc.get("issuer")
    # fleet.yaml drops a trailing slash from the issuer; some providers keep one.
    if not isinstance(issuer, str) or issuer not in (configured_issuer, configured_issuer + "/"):
        raise OidcError(
            f"the identity provider at {url} calls itself {issuer!r}, but {_ISSUER_FIELD} is "
            f"{configured_issuer!r}: they must be the same URL exactly; set {_ISSUER_FIELD} "
            "to the provider's issuer"
        )
    missing = [
        key
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(doc.get(key), str) or not doc[key]
    ]
    if missing:
        raise OidcError(
            f"the identity provider's discovery document ({url}) has no {', '.join(missing)}: "
            "it does not support the authorization code flow"
        )
    algs = doc.get("id_token_signing_alg_values_supported")
    offered = (
        frozenset(a for a in algs if isinstance(a, str)) if isinstance(algs, list) else {"RS256"}
    )
    usable = frozenset(offered) & SIGNING_ALGORITHMS
    if not usable:
        raise OidcError(
            f"the identity provider signs ID tokens only with {sorted(offered)}; dagfleet needs "
            f"one of {sorted(SIGNING_ALGORITHMS)}: configure the client for RS256 at the provider"
        )

    def optional(key: str) -> str | None:
        value = doc.get(key)
        return value if isinstance(value, str) and value else None

    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        userinfo_endpoint=optional("userinfo_endpoint"),
        end_session_endpoint=optional("end_session_endpoint"),
        signing_algorithms=usable,
    )


def identity_from_claims(spec: OidcSpec, claims: Mapping[str, Any]) -> OidcIdentity:
    """Username (username_claim, then email, then sub) and groups (groups_claim). Pure."""
    username = ""
    for key in (spec.username_claim, "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            username = value.strip()
            break
    if not username:
        raise OidcError(
            f"the identity provider sent no user name (claims {spec.username_claim!r}, "
            "'email', 'sub'): set fleet.yaml auth.oidc.username_claim to a claim it sends"
        )
    raw = claims.get(spec.groups_claim)
    if raw is None:
        groups: frozenset[str] = frozenset()
    elif isinstance(raw, str):
        groups = frozenset({raw}) if raw else frozenset()
    elif isinstance(raw, list) and all(isinstance(g, str) for g in raw):
        groups = frozenset(g for g in raw if g)
    else:
        raise OidcError(
            f"the identity provider's {spec.groups_claim!r} claim is not a list of group "
            "names: map groups to names at the provider, or set fleet.yaml "
            "auth.oidc.groups_claim to a claim that is"
        )
    return OidcIdentity(username=username, groups=groups, claims=dict(claims))


def _clean(text: object, limit: int = 300) -> str:
    """A provider's message, printable and short, for showing to a user."""
    out = "".join(c if c.isprintable() else " " for c in str(text)).strip()
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class OidcClient:
    """One relying party: a client of one issuer, as fleet.yaml `auth.oidc` configures it."""

    def __init__(
        self,
        spec: OidcSpec,
        client_secret: str | None,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self._secret = client_secret
        self._http = http
        self._own_http = http is None
        self._clock = clock
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_at = float("-inf")

    @classmethod
    def from_spec(
        cls,
        spec: OidcSpec,
        environ: Mapping[str, str],
        base: Path,
        http: httpx.AsyncClient | None = None,
    ) -> OidcClient:
        """The client for fleet.yaml's `auth.oidc`, its secret read from its reference."""
        secret = None
        if spec.client_secret is not None:
            try:
                secret = read(
                    spec.client_secret, "fleet.yaml auth.oidc.client_secret", environ, base
                )
            except SecretUnreadable as exc:
                raise OidcError(str(exc)) from None
        return cls(spec, secret, http)

    @property
    def public(self) -> bool:
        """A public client: no secret, PKCE alone proves who redeems the code."""
        return self._secret is None

    @property
    def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            raise OidcError("single sign-on is not ready yet: the provider was not discovered")
        return self._metadata

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # ---- discovery ----------------------------------------------------------------------
    async def discover(self, refresh: bool = False) -> ProviderMetadata:
        """The provider's metadata, fetched once (and again after an hour)."""
        now = self._clock()
        if (
            self._metadata is not None
            and not refresh
            and now - self._metadata_at < DISCOVERY_TTL_SECONDS
        ):
            return self._metadata
        url = self.spec.issuer + "/.well-known/openid-configuration"
        response = await self._get(url, "its discovery document")
        if response.status_code != 200:
            raise OidcError(
                f"the identity provider answered HTTP {response.status_code} for {url}: "
                f"is {_ISSUER_FIELD} ({self.spec.issuer}) the provider's issuer URL?"
            )
        metadata = parse_metadata(self._json(response, url), self.spec.issuer, url)
        self._metadata, self._metadata_at = metadata, now
        return metadata

    async def _get(self, url: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client().get(url, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(what, exc) from None

    def _unreachable(self, what: str, exc: httpx.HTTPError) -> OidcError:
        reason = _clean(exc, 160) or type(exc).__name__
        return OidcError(
            f"cannot reach the identity provider at {self.spec.issuer} for {what} ({reason}): "
            f"check {_ISSUER_FIELD} and that the provider is up and reachable from here"
        )

    @staticmethod
    def _json(response: httpx.Response, url: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise OidcError(
                f"the identity provider's answer from {url} is not JSON "
                f"(HTTP {response.status_code}): check {_ISSUER_FIELD}"
            ) from None

    # ---- the flow -----------------------------------------------------------------------
    def begin(self, redirect_uri: str, next_path: str = "/") -> tuple[str, PendingLogin]:
        """The provider's authorization URL and what the callback must match.

        Needs `discover()` first (it is cached; `authorize` does both)."""
        pending = PendingLogin(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),  # 64 characters, within RFC 7636's 43-128
            redirect_uri=redirect_uri,
            created=self._clock(),
            next_path=next_path,
        )
        scopes = list(self.spec.scopes)
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        url = _with_query(
            self.metadata.authorization_endpoint,
            {
                "response_type": "code",
                "client_id": self.spec.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pkce_challenge(pending.code_verifier),
                "code_challenge_method": "S256",
            },
        )
        return url, pending

    async def authorize(self, redirect_uri: str, next_path: str = "/") -> tuple[str, PendingLogin]:
        """`discover()` then `begin()`."""
        await self.discover()
        return self.begin(redirect_uri, next_path)

    async def finish(self, pending: PendingLogin, params: Mapping[str, str]) -> OidcIdentity:
        """The signed-in user, from the provider's redirect back (its query parameters)."""
        age = pending.age(self._clock())
        if age > PENDING_SECONDS or age < -LEEWAY_SECONDS:
            raise OidcError("the sign-in took longer than 10 minutes: sign in again")
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise OidcError(
                "the sign-in response does not match the sign-in this browser started "
                "(state differs): start again from the sign-in page"
            )
        metadata = await self.discover()
        if "error" in params:
            error = _clean(params["error"], 80)
            description = _clean(params.get("error_description", ""))
            raise OidcError(
                f"the identity provider refused the sign-in: {error}"
                + (f": {description}" if description else "")
            )
        iss = params.get("iss")
        if iss is not None and iss != metadata.issuer:
            raise OidcError(
                "the sign-in response names another issuer than the one this sign-in used: "
                "start again from the sign-in page"
            )
        code = params.get("code", "")
        if not code:
            raise OidcError("the identity provider sent no authorization code: sign in again")
        tokens = await self._redeem(code, pending)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise OidcError(
                "the identity provider returned no ID token: add 'openid' to fleet.yaml "
                "auth.oidc.scopes and allow the client to use OpenID Connect at the provider"
            )
        claims = await self.validate_id_token(id_token, pending.nonce)
        access_token = tokens.get("access_token")
        if (
            self.spec.groups_claim not in claims or self.spec.username_claim not in claims
        ) and isinstance(access_token, str):
            claims = {**await self._userinfo(access_token, claims), **claims}
        identity = identity_from_claims(self.spec, claims)
        return OidcIdentity(identity.username, identity.groups, identity.claims, id_token)

    async def _redeem(self, code: str, pending: PendingLogin) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers = {"accept": "application/json"}
        if self._secret is None:
            form["client_id"] = self.spec.client_id
        else:  # client_secret_basic: both parts form-encoded first (RFC 6749 2.3.1)
            pair = f"{quote(self.spec.client_id, safe='')}:{quote(self._secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        url = self.metadata.token_endpoint
        try:
            response = await self._client().post(url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise self._unreachable("the token exchange", exc) from None
        body = self._json(response, url)
        if response.status_code != 200 or not isinstance(body, dict):
            error = _clean(body.get("error", "")) if isinstance(body, dict) else ""
            description = (
                _clean(body.get("error_description", "")) if isinstance(body, dict) else ""
            )
            hint = {
                "invalid_client": "check fleet.yaml auth.oidc.client_id and client_secret",
                "invalid_grant": "the code was already used, expired, or was issued for "
                "another redirect URL; sign in again",
                "unauthorized_client": "allow the authorization code flow for this client "
                "at the provider",
            }.get(error, "sign in again")
            detail = (
                ": ".join(p for p in (error, description) if p) or f"HTTP {response.status_code}"
            )
            raise OidcError(f"the identity provider refused the code exchange ({detail}): {hint}")
        return body

    # ---- the ID token -------------------------------------------------------------------
    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
        metadata = await self.discover()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise OidcError("the ID token is malformed: sign in again") from None
        alg = header.get("alg")
        if alg not in metadata.signing_algorithms:
            raise OidcError(
                f"the ID token is signed with {_clean(alg, 20)!r}, which dagfleet does not "
                f"accept (it accepts {', '.join(sorted(metadata.signing_algorithms))})"
            )
        key = await self._signing_key(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=[alg],
                audience=self.spec.client_id,
                issuer=metadata.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise OidcError(
                "the ID token has expired: sign in again (if this keeps happening, "
                "check this machine's clock)"
            ) from None
        except jwt.ImmatureSignatureError:
            raise OidcError(
                "the ID token was issued in the future: check this machine's clock"
            ) from None
        except jwt.InvalidAudienceError:
            raise OidcError(
                "the ID token was issued to another client: check fleet.yaml auth.oidc.client_id"
            ) from None
        except jwt.InvalidIssuerError:
            raise OidcError(
                f"the ID token was issued by another issuer: check {_ISSUER_FIELD}"
            ) from None
        except jwt.InvalidSignatureError:
            raise OidcError(
                "the ID token's signature does not verify with the identity provider's keys"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise OidcError(f"the ID token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise OidcError("the ID token is malformed: sign in again") from None
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.spec.client_id:
            raise OidcError("the ID token was issued to another client (azp): sign in again")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise OidcError(
                "the ID token does not belong to this sign-in (nonce differs): sign in again"
            )
        return claims

    async def _signing_key(self, kid: object, alg: str) -> Any:
        for attempt in (0, 1):
            jwks = await self._key_set(refresh=attempt == 1)
            if jwks is None:
                break
            keys = [
                k
                for k in jwks.keys
                if (kid is None or k.key_id == kid) and k.public_key_use in (None, "sig")
            ]
            if kid is None and len(keys) > 1:
                keys = [k for k in keys if getattr(k, "algorithm_name", alg) == alg][:1]
            if keys:
                return keys[0].key
        raise OidcError(
            "the ID token is signed with a key the identity provider does not publish: "
            "sign in again"
        )

    async def _key_set(self, refresh: bool) -> jwt.PyJWKSet | None:
        """The provider's keys; refetched on an unknown key id, at most every 30 s."""
        now = self._clock()
        if self._jwks is not None and not refresh:
            return self._jwks
        if refresh and now - self._jwks_at < JWKS_REFRESH_SECONDS:
            return None
        url = self.metadata.jwks_uri
        response = await self._get(url, "its signing keys")
        if response.status_code != 200:
            raise OidcError(
                f"the identity provider answered HTTP {response.status_code} for its signing "
                f"keys ({url}): try again later"
            )
        body = self._json(response, url)
        try:
            self._jwks = jwt.PyJWKSet.from_dict(body)
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, TypeError, KeyError, AttributeError):
            raise OidcError(
                f"the identity provider's signing keys ({url}) hold no key dagfleet can use"
            ) from None
        self._jwks_at = now
        return self._jwks

    async def _userinfo(self, access_token: str, claims: Mapping[str, Any]) -> dict[str, Any]:
        """Claims from the userinfo endpoint (for groups the ID token leaves out)."""
        url = self.metadata.userinfo_endpoint
        if url is None:
            return {}
        response = await self._get(
            url,
            "the user's details",
            headers={"authorization": f"Bearer {access_token}", "accept": "application/json"},
        )
        if response.status_code != 200:
            raise OidcError(
                f"the identity provider's userinfo endpoint answered HTTP "
                f"{response.status_code}: sign in again"
            )
        info = self._json(response, url)
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            raise OidcError(
                "the identity provider's userinfo answer is for another user: sign in again"
            )
        return info

    # ---- signing out --------------------------------------------------------------------
    def end_session_url(
        self, id_token_hint: str | None, post_logout_redirect: str | None
    ) -> str | None:
        """Where to send the browser to sign out at the provider too; None if it cannot."""
        if self._metadata is None or self._metadata.end_session_endpoint is None:
            return None
        params = {"client_id": self.spec.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        if post_logout_redirect:
            params["post_logout_redirect_uri"] = post_logout_redirect
        return _with_query(self._metadata.end_session_endpoint, params)
