"""The JSON API under /api/: the same filters as `scout query` and the search form.

    GET /api/domains?ip=192.0.2.0/24&since=1h&limit=100&offset=0
        -> {"count": total, "limit", "offset", "next": URL or null, "domains": [full documents]}
    GET /api/domains/<name>          -> the document (404 {"error": ...} when unknown)
    GET /api/domains/<name>/related  -> {"ip": {ip: [domains]}, "ns": {...}, "registered_domain": [...]}
    GET /api/overview                -> the overview page's figures

A bad filter is 400 with {"error": "<filter>=...: expected ..."}.
"""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from scout import db


def domains(request: Request):
    query = dict(request.query_params)
    try:
        filters = db.Filters.from_query(query)
    except db.FilterError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    store = request.app.state.store
    total = db.count(store, filters)
    found = db.search(store, filters)
    nxt = None
    if filters.offset + len(found) < total:
        nxt = "/api/domains?" + urlencode({**filters.to_query(), "offset": filters.offset + filters.limit,
                                           "limit": filters.limit})
    return JSONResponse({"count": total, "limit": filters.limit, "offset": filters.offset, "next": nxt,
                         "domains": found})


def domain(request: Request):
    name = request.path_params["name"]
    doc = db.get_document(request.app.state.store, name)
    if doc is None:
        return JSONResponse({"error": f"{name!r} is not in the store"}, status_code=404)
    return JSONResponse(doc)


def related(request: Request):
    name = request.path_params["name"]
    store = request.app.state.store
    if db.get_document(store, name) is None:
        return JSONResponse({"error": f"{name!r} is not in the store"}, status_code=404)
    return JSONResponse(db.related(store, name))


def overview(request: Request):
    return JSONResponse(request.app.state.overview.collect())
