"""WHOIS/RDAP lookups: plain blocking functions, bounded against hostile servers, bindable to a
source address; every server an answer names (links, redirects, referrals) is checked by
scout.whois.targets before a connection. The Celery layer (rate limits, queues per source IP, caches)
lives elsewhere.

    lookup_domain(root, settings, source_ip=None) -> {"raw": str, "parsed": {...}}
    lookup_ip(ip, settings, source_ip=None)       -> {"raw": str, "info": {...}, "cover": cidr}
    is_reserved(ip) -> bool
    RateLimited(server, retry_after)              -> the only exception a lookup raises
"""
from .bootstrap import get_bootstrap, refresh_bootstrap
from .domain import lookup_domain
from .errors import RateLimited
from .ip import is_reserved, lookup_ip

__all__ = ["lookup_domain", "lookup_ip", "is_reserved", "RateLimited", "get_bootstrap", "refresh_bootstrap"]
