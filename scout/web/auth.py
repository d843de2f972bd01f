"""WEB_BASIC_AUTH: HTTP Basic authentication for every page and API call, and the rule that decides when
it is required (the same as Flower's in docker-compose.yml: a page reachable from other machines shows
every domain, WHOIS contact and score the store holds, so it never goes out without a password)."""
from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets

from scout.config import ConfigError

LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; false for 0.0.0.0, :: and every other address or name."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def check_bind(host: str, basic_auth: str) -> None:
    """Refuse (ConfigError, exit 2) to serve beyond loopback without WEB_BASIC_AUTH."""
    if not basic_auth and not is_loopback(host):
        raise ConfigError(f"WEB_BASIC_AUTH: set user:password to serve on {host!r}; without it `scout web` "
                          "binds only to loopback (127.0.0.1, ::1, localhost)")


def credentials_match(header: str | None, expected: str) -> bool:
    """Does an `Authorization: Basic ...` header carry `expected` (user:password)? Constant-time compare."""
    if not header or not header[:6].lower() == "basic ":
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return secrets.compare_digest(given, expected.encode("utf-8"))


class BasicAuthMiddleware:
    """ASGI middleware: every HTTP request needs the credentials, or it gets 401 with a Basic challenge."""

    def __init__(self, app, credentials: str, realm: str = "certstream-scout"):
        self.app = app
        self.credentials = credentials
        self.realm = realm

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if credentials_match(header, self.credentials):
            return await self.app(scope, receive, send)
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"www-authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'.encode()),
                                (b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"401 Unauthorized: WEB_BASIC_AUTH credentials needed\n"})
