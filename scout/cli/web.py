"""`scout web`: the web page and JSON API over the SQL store (scout/web)."""
from __future__ import annotations

from pathlib import Path

from scout.cli.common import settings_from
from scout.config import NO_STORE, ConfigError, store_url_of
from scout.db import StoreError
from scout.web.app import serve
from scout.web.auth import check_bind


def store_url(s) -> str:
    """STORE_URL; when empty, the embedded store `scout run` writes (OUTPUT_DIR/scout.db) if it exists:
    the page only reads, so it never creates an empty store of its own."""
    if s.store_url == NO_STORE:
        raise ConfigError("STORE_URL=none: `scout web` shows the SQL store; set STORE_URL to one")
    url = store_url_of(s)
    if url:
        return url
    path = Path(s.output_dir).resolve() / "scout.db"
    if path.exists():
        return f"sqlite:///{path}"
    raise ConfigError(f"STORE_URL: no store configured and {path} does not exist; set STORE_URL "
                      "(sqlite:///PATH or postgresql://user:pass@host/db) or run `scout run` first")


def cmd_web(args) -> int:
    s = settings_from(args)
    host = args.host or s.web_host
    port = args.port or s.web_port
    check_bind(host, s.web_basic_auth)   # before the store opens: a refused start changes nothing
    try:
        return serve(s, host, port, store_url(s))
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
