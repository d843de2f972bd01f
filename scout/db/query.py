"""The read side: search, count, one document, its neighbours, and the overview.

Each filter is one indexed condition (see schema.py and migrations.py for the indexes): a glob is a
LIKE (a trigram index on PostgreSQL serves a leading `*`), an address or CIDR a range of `ip_key`, the
ASN and name server a lookup in their child table, a registrar substring on PostgreSQL the names of
`registrars` that contain it (SQLite: its trigram index).
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, column, func, literal_column, select, table, text

from scout.db.engine import SqlStore
from scout.db.filters import Filters
from scout.db.migrations import FTS_TABLE
from scout.db.schema import addresses, documents, domains, nameservers, network_range, registrars, utcnow
from scout.names import root_domain

RELATED_LIMIT = 100
FEW = 10_000   # see _few
SAMPLE = 2_000  # see _dense_registrar
ESTIMATE_ABOVE = 200_000   # overview: PostgreSQL's estimate of the row count above this many rows
OVERVIEW_CAP = 10_000      # overview: the pending count stops here


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def glob_condition(column, glob: str):
    """`*.example.com`, `paypal*`, `a?c.com` -> LIKE on lower(column) (what the trigram index of
    PostgreSQL covers); a name without wildcards -> equality (the primary key)."""
    glob = glob.lower()
    if "*" not in glob and "?" not in glob:
        return column == glob
    pattern = _like_escape(glob).replace("*", "%").replace("?", "_")
    return func.lower(column).like(pattern, escape="\\")


def suffix_root(glob: str) -> str | None:
    """`*.a.example.com` -> example.com: every name it matches has that root domain (an indexed
    condition beside the LIKE, so SQLite does not read every row); None when the glob is not a plain
    suffix or the suffix is a public suffix (`*.co.uk`: many roots)."""
    suffix = glob[2:] if glob.startswith("*.") else ""
    if not suffix or "*" in suffix or "?" in suffix:
        return None
    root = root_domain("x." + suffix)
    return root if suffix == root or suffix.endswith("." + root) else None


def _fts_prefilter(name: str, like_pattern: str):
    """SQLite: the rows whose column `name` may match, from the trigram index; the exact LIKE beside
    it decides."""
    fts = table(FTS_TABLE, column("rowid"), column(name))
    return literal_column("domains.rowid").in_(select(fts.c.rowid).where(fts.c[name].like(like_pattern)))


def _substring_pattern(text: str, glob: bool) -> str:
    """A LIKE pattern for the trigram index: a glob's * and ? become % and _, a substring is wrapped in
    %; the text's own % and _ become _ (any one character: a superset, never a miss)."""
    t = text.lower().replace("%", "_")
    return t.replace("*", "%").replace("?", "_") if glob else "%" + t + "%"


def _ip_lookup(f: Filters):
    lo, hi = network_range(f.ip)
    return select(addresses.c.domain).where(addresses.c.ip_key.between(lo, hi))


def child_lookups(f: Filters, ip: bool = True) -> list:
    """The address (unless not `ip`), ASN and name-server filters: each the domains its child table names."""
    out = []
    if f.ip is not None and ip:
        out.append(_ip_lookup(f))
    if f.asn is not None:
        out.append(select(addresses.c.domain).where(addresses.c.asn == f.asn))
    if f.ns:
        out.append(select(nameservers.c.domain).where(nameservers.c.ns == f.ns))
    return out


def _capped_count(conn, sub) -> int:
    return conn.execute(select(func.count()).select_from(sub.limit(FEW).subquery())).scalar_one()


def _few_addresses(conn, f: Filters) -> bool:
    """PostgreSQL: does the address filter name fewer than FEW domains? Then a page is the newest of
    them, ordered by the first_seen their address rows carry (index entries), joined to `domains` one by
    one until the page is full: an address range of 4,000 domains no longer reads 4,000 `domains` rows
    to sort them (70 ms p95 on a million). SQLite's planner joins every match before the LIMIT in that
    form (slower than its lookup of the matches, 26 ms)."""
    return f.ip is not None and conn.dialect.name == "postgresql" and _capped_count(conn, _ip_lookup(f)) < FEW


def _ip_page_source(f: Filters):
    """The domains of the address filter with their first_seen, each once (two addresses in a range),
    newest first: sorted here, the join to `domains` can stop when the page is full (the planner sorted
    after joining every match otherwise)."""
    lo, hi = network_range(f.ip)
    c = addresses.c
    return (select(c.domain, c.first_seen).where(c.ip_key.between(lo, hi)).group_by(c.domain, c.first_seen)
            .order_by(c.first_seen.desc(), c.domain).subquery())


def _registrar_names(conn, f: Filters) -> list[str] | None:
    """PostgreSQL: the registrar names containing the substring (from the small `registrars` table), to
    be looked up in the (registrar, first_seen) index; a trigram index of a million rows intersected
    long lists for names that share most trigrams (90 ms p95). None: not asked, or SQLite (its trigram
    index, see conditions)."""
    if not f.registrar or conn.dialect.name != "postgresql":
        return None
    like = func.lower(registrars.c.name).like("%" + _like_escape(f.registrar.lower()) + "%", escape="\\")
    return list(conn.execute(select(registrars.c.name).where(like)).scalars())


def _few(conn, f: Filters) -> bool:
    """Does a child-table filter (or the score) name fewer than FEW domains? Then the page is best
    found by looking them up and sorting them; otherwise by reading the newest domains first until the
    page is full (matches are dense). Both engines pick the second whenever an ORDER BY first_seen
    LIMIT allows it, and walked a million rows for an address range of 4,000 domains (6 s). An
    index-only count, capped."""
    subs = child_lookups(f)
    if f.min_score is not None:
        subs.append(select(domains.c.domain).where(domains.c.score >= f.min_score))
    return any(_capped_count(conn, sub) < FEW for sub in subs)


def _prefix_range(column_, glob: str) -> list:
    """SQLite: a glob's literal start as a range of the primary key (LIKE on lower(domain) cannot use
    it; SQLite compares bytes, and names are lower-case ASCII). PostgreSQL's trigram index serves it."""
    cut = min([i for i in (glob.find("*"), glob.find("?")) if i >= 0], default=len(glob))
    prefix = glob[:cut].lower()
    if not prefix:
        return []
    return [column_ >= prefix, column_ < prefix[:-1] + chr(ord(prefix[-1]) + 1)]


def _dense_registrar(conn, f: Filters) -> bool:
    """SQLite: does the registrar substring name at least 10 of the newest SAMPLE domains? Then reading
    the newest domains fills a page at once, where the trigram index would list every match first
    (GoDaddy: a fifth of all domains, 0.6 s on a million)."""
    newest = select(domains.c.registrar).order_by(domains.c.first_seen.desc()).limit(SAMPLE).subquery()
    like = func.lower(newest.c.registrar).like("%" + _like_escape(f.registrar.lower()) + "%", escape="\\")
    return conn.execute(select(func.count()).select_from(newest).where(like)).scalar_one() >= 10


def conditions(f: Filters, fts: bool = False, fts_registrar: bool | None = None, sqlite: bool = False,
               registrar_names: list[str] | None = None, ip: bool = True) -> list:
    """The SQL of every filter set. fts: SQLite's trigram index serves substring searches (the
    registrar's unless fts_registrar is False); sqlite: a glob's literal start is a key range;
    registrar_names: the registrar is one of these (the names that contain the substring); not `ip`:
    the caller joins the address filter itself."""
    fts_registrar = fts if fts_registrar is None else fts_registrar
    c = domains.c
    out = []
    if f.domain:
        out.append(glob_condition(c.domain, f.domain))
        root = suffix_root(f.domain.lower())
        if root:
            out.append(c.root_domain == root)
        elif fts and f.domain.startswith(("*", "?")):
            out.append(_fts_prefilter("domain", _substring_pattern(f.domain, glob=True)))
        elif sqlite:
            out.extend(_prefix_range(c.domain, f.domain))
    if f.root:
        out.append(c.root_domain == f.root)
    out.extend(c.domain.in_(sub) for sub in child_lookups(f, ip))
    if f.registrar and registrar_names is not None:
        out.append(c.registrar.in_(registrar_names))
    elif f.registrar:
        out.append(func.lower(c.registrar).like("%" + _like_escape(f.registrar.lower()) + "%", escape="\\"))
        if fts_registrar:
            out.append(_fts_prefilter("registrar", _substring_pattern(f.registrar, glob=False)))
    if f.since is not None:
        out.append(c.first_seen >= f.since)
    if f.until is not None:
        out.append(c.first_seen < f.until)
    if f.min_score is not None:
        out.append(c.score >= f.min_score)
    if f.registered_within is not None:
        # SQLite: `+ 0` keeps its planner off the age index, whose range (a few % of all rows) it then
        # sorted (0.1 s on a million); reading the newest domains fills a page sooner
        age = c.registration_age + 0 if sqlite else c.registration_age
        out.append(age.between(0, int(f.registered_within.total_seconds())))
    if f.whois_status:
        out.append(c.whois_status == f.whois_status)
    return out


def search(store: SqlStore, f: Filters) -> list[dict]:
    """Full documents matching every filter, newest first_seen first, `f.limit` from `f.offset`."""
    with store.engine.connect() as conn:
        by_address = _few_addresses(conn, f)
        fts_registrar = store.fts and bool(f.registrar) and not _dense_registrar(conn, f)
        where = and_(True, *conditions(f, store.fts, fts_registrar, sqlite=store.dialect == "sqlite",
                                       registrar_names=_registrar_names(conn, f), ip=not by_address))
        if by_address:
            src = _ip_page_source(f)
            page = (select(domains.c.domain, domains.c.first_seen)
                    .join_from(src, domains, domains.c.domain == src.c.domain)
                    .where(where).order_by(src.c.first_seen.desc(), src.c.domain))
        else:
            # coalesce(x, x) is first_seen itself, but no index orders it: the matches are sorted
            newest = func.coalesce(domains.c.first_seen, domains.c.first_seen) if _few(conn, f) else domains.c.first_seen
            page = select(domains.c.domain, domains.c.first_seen).where(where).order_by(newest.desc(), domains.c.domain)
        page = page.limit(f.limit).offset(f.offset).subquery()
        q = (select(documents.c.document).join_from(page, documents, documents.c.domain == page.c.domain)
             .order_by(page.c.first_seen.desc(), page.c.domain))
        return [row[0] for row in conn.execute(q)]


def count(store: SqlStore, f: Filters) -> int:
    with store.engine.connect() as conn:
        where = conditions(f, store.fts, sqlite=store.dialect == "sqlite", registrar_names=_registrar_names(conn, f))
        return conn.execute(select(func.count()).select_from(domains).where(and_(True, *where))).scalar_one()


def get_document(store: SqlStore, domain: str) -> dict | None:
    with store.engine.connect() as conn:
        return conn.execute(select(documents.c.document).where(documents.c.domain == domain.lower())).scalar()


def related(store: SqlStore, domain: str, limit: int = RELATED_LIMIT) -> dict:
    """Other domains on the same addresses, the same name servers and the same registered domain:
    {"ip": {ip: [domain, ...]}, "ns": {ns: [...]}, "registered_domain": [...]} (each list sorted, at
    most `limit` long)."""
    domain = domain.lower()
    out: dict = {"ip": {}, "ns": {}, "registered_domain": []}
    with store.engine.connect() as conn:
        for ip in conn.execute(select(addresses.c.ip).where(addresses.c.domain == domain)).scalars():
            out["ip"][ip] = list(conn.execute(
                select(addresses.c.domain).where(addresses.c.ip == ip, addresses.c.domain != domain)
                .order_by(addresses.c.domain).limit(limit)).scalars())
        for ns in conn.execute(select(nameservers.c.ns).where(nameservers.c.domain == domain)).scalars():
            out["ns"][ns] = list(conn.execute(
                select(nameservers.c.domain).where(nameservers.c.ns == ns, nameservers.c.domain != domain)
                .order_by(nameservers.c.domain).limit(limit)).scalars())
        row = conn.execute(select(domains.c.registered_domain, domains.c.root_domain)
                           .where(domains.c.domain == domain)).first()
        if row is not None:
            col, value = ((domains.c.registered_domain, row[0]) if row[0] else (domains.c.root_domain, row[1]))
            out["registered_domain"] = list(conn.execute(
                select(domains.c.domain).where(col == value, domains.c.domain != domain)
                .order_by(domains.c.domain).limit(limit)).scalars())
    return out


def _count_all(conn) -> tuple[int, bool]:
    """(domains, estimated): PostgreSQL's own row estimate once the table is large (counting a
    million rows takes most of a second), else the exact count."""
    if conn.dialect.name == "postgresql":
        estimate = conn.execute(text("SELECT reltuples::bigint FROM pg_class WHERE oid = 'domains'::regclass")).scalar()
        if estimate and estimate >= ESTIMATE_ABOVE:
            return int(estimate), True
    return conn.execute(select(func.count()).select_from(domains)).scalar_one(), False


def overview(store: SqlStore, min_score: int = 50, hits_limit: int = 50) -> dict:
    """Counts (all, first seen in the last hour, WHOIS pending) and the last hour's watchlist hits
    (score >= min_score), newest first. Each count is its own indexed query; `domains` is PostgreSQL's
    estimate above ESTIMATE_ABOVE (`domains_estimated`), `whois_pending` stops at OVERVIEW_CAP
    (`whois_pending_capped`)."""
    hour_ago = utcnow() - timedelta(hours=1)
    c = domains.c
    with store.engine.connect() as conn:
        total, estimated = _count_all(conn)
        last_hour = conn.execute(select(func.count()).where(c.first_seen >= hour_ago)).scalar_one()
        waiting = select(c.domain).where(c.whois_status.in_(("pending", "skipped_backlog"))).limit(OVERVIEW_CAP)
        pending = conn.execute(select(func.count()).select_from(waiting.subquery())).scalar_one()
    hits = search(store, Filters(since=hour_ago, min_score=min_score, limit=hits_limit))
    return {"domains": total, "domains_estimated": estimated, "last_hour": last_hour, "whois_pending": pending,
            "whois_pending_capped": pending >= OVERVIEW_CAP, "hits": hits}
