"""Password hashes: scrypt (RFC 7914) from the standard library, self-describing strings.

    scrypt$<log2 N>$<r>$<p>$<salt, base64>$<key, base64>

The cost is stored with each hash, so raising it later keeps old hashes valid.
Verification is constant-time; hashing takes about 0.1 s on purpose, so callers
on an event loop run it in a thread.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

LOG2_N, R, P = 15, 8, 1
KEY_BYTES, SALT_BYTES = 32, 16
PREFIX = "scrypt"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + 1024 * 1024,
        dklen=KEY_BYTES,
    )


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, LOG2_N, R, P)
    return f"{PREFIX}${LOG2_N}${R}${P}${_b64(salt)}${_b64(key)}"


def check_hash(encoded: str) -> str | None:
    """None if `encoded` is a hash this module can verify, else what is wrong with it."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        return "not a scrypt$... hash: make one with `dagfleet user add NAME`"
    try:
        log2_n, r, p = (int(x) for x in parts[1:4])
        _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return "a damaged scrypt$... hash: set the password again with `dagfleet user add NAME`"
    if not (10 <= log2_n <= 22 and 1 <= r <= 32 and 1 <= p <= 16):
        return f"scrypt cost out of range (N=2^{log2_n}, r={r}, p={p})"
    return None


def verify_password(password: str, encoded: str) -> bool:
    if check_hash(encoded) is not None:
        return False
    _, log2_n, r, p, salt, key = encoded.split("$")
    given = _derive(password, _unb64(salt), int(log2_n), int(r), int(p))
    return hmac.compare_digest(given, _unb64(key))


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password: checking an unknown user costs what checking a known
    one does, so response times do not tell which user names exist."""
    return hash_password(secrets.token_urlsafe(16))
