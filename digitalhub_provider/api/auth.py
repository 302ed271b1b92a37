"""Who may call the standalone server: a bearer token, a user and password, or nobody but loopback.

The official SDK sends ``DHCORE_ACCESS_TOKEN`` as ``Authorization: Bearer ...`` and
``DHCORE_USER`` / ``DHCORE_PASSWORD`` as HTTP Basic. A server with neither configured
serves anonymous requests, and :func:`check_bind` lets it do so only on a loopback address.
Credentials are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass

from digitalhub_provider.api.errors import ApiError


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    user: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the secrets
        return f"Credentials(token={'***' if self.token else None}, user={self.user!r})"

    @property
    def anonymous(self) -> bool:
        return not self.token and not self.user

    def check(self, authorization: str | None) -> None:
        """Raise a 401 :class:`ApiError` unless ``authorization`` (the header) carries valid credentials."""
        if self.anonymous:
            return
        scheme, _, value = (authorization or "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.token and _same(value.strip(), self.token):
            return
        if scheme == "basic" and self.user and self.password is not None:
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ApiError(401, "malformed Basic credentials") from None
            if _same(user, self.user) and _same(password, self.password):
                return
        if not authorization:
            raise ApiError(401, "authentication required: a bearer token or a user and password")
        raise ApiError(401, "invalid credentials")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, credentials: Credentials) -> None:
    """Refuse to serve anonymous requests on an address other hosts can reach."""
    if credentials.anonymous and not is_loopback(host):
        raise SystemExit(
            f"refusing to serve {host} without authentication: give --token (or DIGITALHUB_API_TOKEN), or "
            "--user and --password (DIGITALHUB_API_USER, DIGITALHUB_API_PASSWORD); without them the API "
            "binds only to a loopback address such as 127.0.0.1"
        )
    if credentials.user and not credentials.password:
        raise SystemExit("--user needs --password (or DIGITALHUB_API_PASSWORD)")
