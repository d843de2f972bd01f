"""`scout web`: a small web page over the SQL store, server-rendered (Starlette + Jinja2 templates, run by
uvicorn; no build step, no JavaScript needed).

app.py builds the application (routes, templates, the Basic-auth middleware); auth.py holds WEB_BASIC_AUTH
and the rule that a page bound beyond loopback must have it; pages.py the HTML pages (overview, search,
domain), api.py the JSON API under /api/; overview.py gathers the live figures (domains/s, queue depths,
WHOIS backlog, last hour's watchlist hits); views.py shapes a document for its page (sections, related
links). Every value reaches HTML through Jinja2's autoescaping: domain names and WHOIS texts are hostile.

May import: config, db, ops, store.
"""
