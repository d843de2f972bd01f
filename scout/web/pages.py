"""The HTML pages: the live overview, the search form with paged results, and a domain's page.

Endpoints are plain functions (Starlette runs them in its thread pool: the store and the broker are
blocking clients). Every value goes through the templates' autoescaping."""
from __future__ import annotations

from starlette.requests import Request

from scout import db
from scout.db.query import RELATED_LIMIT
from scout.web import views

PAGE_SIZE_CHOICES = (20, 50, 100, 500)
RELATED_SHOWN = 20   # neighbours listed per address / name server on a domain page; the rest via a search


def overview_page(request: Request):
    state = request.app.state
    return render(request, "overview.html", {"o": state.overview.collect()})


def search_page(request: Request):
    query = dict(request.query_params)
    context = {"query": query, "fields": views.SEARCH_FIELDS, "sizes": PAGE_SIZE_CHOICES,
               "asked": any(query.get(k) for k in views.SEARCH_FIELDS)}
    try:
        filters = db.Filters.from_query(query)
        page = max(1, int(query.get("page") or 1))
    except (db.FilterError, ValueError) as exc:
        context["error"] = str(exc) if isinstance(exc, db.FilterError) else f"page={query.get('page')!r}: expected a number"
        return render(request, "search.html", context, status_code=400)
    filters.offset = (page - 1) * filters.limit
    store = request.app.state.store
    total = db.count(store, filters)
    pages = max(1, -(-total // filters.limit))
    base = {k: v for k, v in query.items() if k in views.SEARCH_FIELDS and v}
    context.update(results=db.search(store, filters), total=total, page=page, pages=pages,
                   first=filters.offset + 1, prev_url=views.search_url(**base, page=page - 1) if page > 1 else None,
                   next_url=views.search_url(**base, page=page + 1) if page < pages else None,
                   api_url="/api/domains?" + views.search_url(**base).partition("?")[2])
    return render(request, "search.html", context)


def domain_page(request: Request):
    name = request.path_params["name"]
    store = request.app.state.store
    doc = db.get_document(store, name)
    if doc is None:
        return render(request, "missing.html", {"name": name}, status_code=404)
    related = db.related(store, doc.get("domain", name))
    return render(request, "domain.html", {
        "doc": doc, "summary": views.summary_rows(doc), "certificate": views.certificate_rows(doc),
        "dns": views.dns_rows(doc), "whois": views.whois_rows(doc), "addresses": views.address_rows(doc),
        "groups": views.related_groups(doc, related), "matches": doc.get("matches") or [],
        "raw_whois": doc.get("domain_whois") or "", "ip_whois": doc.get("ip_whois") or {},
        "related_shown": RELATED_SHOWN, "related_limit": RELATED_LIMIT})


def render(request: Request, template: str, context: dict, status_code: int = 200):
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)
