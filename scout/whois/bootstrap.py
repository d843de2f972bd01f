"""IANA RDAP bootstrap registries (RFC 9224): which RDAP server answers for a TLD or an address.

Files: `dns.json`, `ipv4.json`, `ipv6.json`, each `{"version", "publication", "description",
"services": [[[entries...], [base URLs...]], ...]}`.

Where they come from, first match wins:
1. `settings.rdap_bootstrap_dir` (RDAP_BOOTSTRAP_DIR) when set: only that directory, never fetched;
2. the refresh cache (`refresh_bootstrap()` writes it, at most once a day) when it holds valid files;
3. the snapshot shipped in `scout/data/rdap/`.

A file that is missing or malformed in (1)/(2) falls back to the shipped one for that file alone.
Lookups: the longest matching label suffix for names, the longest matching prefix for addresses.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import idna

log = logging.getLogger(__name__)

FILES = ("dns.json", "ipv4.json", "ipv6.json")
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "rdap"
IANA_BASE_URL = "https://data.iana.org/rdap/"
REFRESH_INTERVAL = 86400.0
_MAX_BOOTSTRAP_BYTES = 8 << 20


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "certstream-scout" / "rdap"


def _pick_url(urls: list) -> str | None:
    """Prefer https (RFC 9224 §5), keep the registry's order otherwise; always end with '/'."""
    clean = [u.strip() for u in urls if isinstance(u, str) and u.strip().lower().startswith(("http://", "https://"))]
    if not clean:
        return None
    https = [u for u in clean if u.lower().startswith("https://")]
    url = (https or clean)[0]
    return url if url.endswith("/") else url + "/"


def validate(doc) -> list:
    """The services list of a bootstrap document; ValueError when it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), list):
        raise ValueError("not an RDAP bootstrap document (no services list)")
    for svc in doc["services"]:
        if not (isinstance(svc, list) and len(svc) >= 2 and isinstance(svc[0], list) and isinstance(svc[1], list)):
            raise ValueError("malformed service entry")
    return doc["services"]


def to_alabel(name: str) -> str:
    """Lower-case A-label form of a domain name ('Bücher.de.' -> 'xn--bcher-kva.de')."""
    name = (name or "").strip().rstrip(".").lower()
    if not name:
        raise ValueError("empty name")
    if name.isascii():
        return name
    labels = []
    for label in name.split("."):
        if label.isascii():
            labels.append(label)
            continue
        try:   # IDNA2008 / UTS #46 non-transitional, as scout.names encodes names ('straße' stays 'ß')
            labels.append(idna.alabel(idna.uts46_remap(label, std3_rules=False)).decode())
        except idna.IDNAError:   # a registry's odd U-label: its plain punycode, as before
            labels.append("xn--" + label.encode("punycode").decode("ascii"))
    return ".".join(labels)


@dataclass
class Bootstrap:
    dns: dict            # label suffix ('com', 'co.uk') -> base URL
    nets: list           # [(ip_network, base URL)], longest prefix first
    sources: dict        # file name -> path it was read from
    publication: dict    # file name -> publication string

    def domain_base(self, name: str) -> str | None:
        """RDAP base URL for a domain name (longest matching label suffix), None when none."""
        try:
            labels = to_alabel(name).split(".")
        except (ValueError, UnicodeError):
            return None
        for i in range(len(labels)):
            url = self.dns.get(".".join(labels[i:]))
            if url:
                return url
        return None

    def ip_base(self, ip: str) -> str | None:
        """RDAP base URL for an address (longest matching prefix), None when none."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for net, url in self.nets:
            if net.version == addr.version and addr in net:
                return url
        return None


def _read(path: Path) -> dict:
    with open(path, "rb") as f:
        data = f.read(_MAX_BOOTSTRAP_BYTES + 1)
    if len(data) > _MAX_BOOTSTRAP_BYTES:
        raise ValueError("file too large")
    doc = json.loads(data)
    validate(doc)
    return doc


def _build(docs: dict, sources: dict) -> Bootstrap:
    dns: dict = {}
    for entries, urls, *_ in validate(docs["dns.json"]):
        url = _pick_url(urls)
        if not url:
            continue
        for e in entries:
            if isinstance(e, str) and e.strip():
                try:
                    dns.setdefault(to_alabel(e), url)
                except (ValueError, UnicodeError):
                    continue
    nets = []
    for fname in ("ipv4.json", "ipv6.json"):
        for entries, urls, *_ in validate(docs[fname]):
            url = _pick_url(urls)
            if not url:
                continue
            for e in entries:
                if not isinstance(e, str):
                    continue
                text = e.strip()
                if fname == "ipv4.json" and text.isdigit():
                    text = f"{int(text)}.0.0.0/8"   # some v4 registries write a /8 as just "8"
                try:
                    nets.append((ipaddress.ip_network(text, strict=False), url))
                except ValueError:
                    continue
    nets.sort(key=lambda nu: nu[0].prefixlen, reverse=True)
    publication = {k: str(v.get("publication", "")) for k, v in docs.items()}
    return Bootstrap(dns=dns, nets=nets, sources=sources, publication=publication)


def _dirs(settings) -> list[Path]:
    configured = getattr(settings, "rdap_bootstrap_dir", "") or ""
    if configured:
        return [Path(configured), SHIPPED_DIR]
    return [default_cache_dir(), SHIPPED_DIR]


_cache_lock = threading.Lock()
_cache: dict = {}


def _stamp(dirs: list[Path]) -> tuple:
    out = []
    for d in dirs:
        for f in FILES:
            try:
                st = (d / f).stat()
                out.append((str(d / f), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(d / f), None, None))
    return tuple(out)


def get_bootstrap(settings) -> Bootstrap:
    """The bootstrap registries for `settings`; re-read only when a file changed (mtime/size)."""
    dirs = _dirs(settings)
    key = _stamp(dirs)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
    docs, sources = {}, {}
    for fname in FILES:
        for d in dirs:
            path = d / fname
            if not path.is_file():
                continue
            try:
                docs[fname] = _read(path)
                sources[fname] = str(path)
                break
            except (OSError, ValueError) as e:
                log.warning("RDAP bootstrap %s unusable (%s); trying the next source", path, e)
        if fname not in docs:
            raise RuntimeError(f"no usable RDAP bootstrap {fname} (shipped copy missing?)")
    boot = _build(docs, sources)
    with _cache_lock:
        _cache.clear()
        _cache[key] = boot
    return boot


def refresh_bootstrap(settings, cache_dir: str | Path | None = None, *, force: bool = False,
                      base_url: str = IANA_BASE_URL, source_ip: str | None = None) -> bool:
    """Fetch dns.json, ipv4.json, ipv6.json from IANA into the cache dir, at most once a day.

    Does nothing (returns False) when RDAP_BOOTSTRAP_DIR is set, or when the cached files are younger
    than a day (unless `force`). Files are validated and replaced atomically; a failed fetch leaves the
    old files in place. Returns True when at least one file was replaced. Never raises on network errors.
    """
    from .errors import LookupFailed
    from .http import http_get
    from .targets import Guard

    if getattr(settings, "rdap_bootstrap_dir", ""):
        return False
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    stamp = target / ".fetched"
    if not force:
        try:
            if time.time() - stamp.stat().st_mtime < REFRESH_INTERVAL:
                return False
        except OSError:
            pass
    target.mkdir(parents=True, exist_ok=True)
    stamp.touch()  # even a failed attempt waits a day: IANA asks clients not to poll
    replaced = False
    timeout = max(float(getattr(settings, "whois_timeout", 10.0)), 10.0)
    for fname in FILES:
        try:
            resp = http_get(base_url + fname, guard=Guard(settings, source_ip), timeout=timeout,
                            max_bytes=_MAX_BOOTSTRAP_BYTES, accept="application/json")
            if resp.status != 200:
                log.warning("RDAP bootstrap refresh: %s answered HTTP %s", fname, resp.status)
                continue
            doc = json.loads(resp.body)
            validate(doc)
        except (LookupFailed, ValueError) as e:
            log.warning("RDAP bootstrap refresh of %s failed: %s", fname, e)
            continue
        tmp = target / (fname + ".tmp")
        tmp.write_bytes(resp.body)
        os.replace(tmp, target / fname)
        replaced = True
    return replaced
