"""The application: routes, templates, security headers and, with WEB_BASIC_AUTH, Basic auth on every
request (bar /healthz, which says only "ok"); `serve()` runs it under uvicorn."""
from __future__ import annotations

import logging
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from scout import db
from scout.web import api, pages, views
from scout.web.auth import BasicAuthMiddleware, check_bind
from scout.web.overview import Overview

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent

# No script runs on these pages and nothing loads from elsewhere: even a name or WHOIS text that got past
# escaping could not execute or phone home.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    env.globals.update(domain_url=views.domain_url, search_url=views.search_url)
    env.filters.update(pretty=views.pretty, text=views.text, when=views.when)
    return Jinja2Templates(env=env)


def healthz(request):
    return PlainTextResponse("ok\n")


def create_app(settings, store: db.SqlStore) -> Starlette:
    routes = [
        Route("/", pages.overview_page),
        Route("/search", pages.search_page),
        Route("/domain/{name}", pages.domain_page),
        Route("/api/domains", api.domains),
        Route("/api/domains/{name}", api.domain),
        Route("/api/domains/{name}/related", api.related),
        Route("/api/overview", api.overview),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.settings = settings
    app.state.store = store
    app.state.templates = templates()
    app.state.overview = Overview(settings, store)
    wrapped = SecurityHeaders(app)
    if settings.web_basic_auth:
        wrapped = _auth_except_health(wrapped, settings.web_basic_auth)
    return wrapped


def _auth_except_health(app, credentials: str):
    guarded = BasicAuthMiddleware(app, credentials)

    async def route(scope, receive, send):
        if scope["type"] == "http" and scope.get("path") == "/healthz":
            return await app(scope, receive, send)
        return await guarded(scope, receive, send)

    return route


def serve(settings, host: str, port: int, store_url: str) -> int:
    """Open the store and serve until a signal. Raises ConfigError (no auth beyond loopback) and
    StoreError (a store that cannot be opened)."""
    import uvicorn

    check_bind(host, settings.web_basic_auth)
    store = db.open_store(store_url)
    log.info("scout web on http://%s:%d/ (%s, store %s)", host if ":" not in host else f"[{host}]", port,
             "Basic auth" if settings.web_basic_auth else "no auth: loopback only", store.dialect)
    try:
        uvicorn.run(create_app(settings, store), host=host, port=port, log_level="warning",
                    proxy_headers=False, server_header=False)
    finally:
        store.close()
    return 0
