"""What kind of answer a WHOIS text is: registration data, "no match", or "slow down".

Registries word "no match" and "slow down" in their own ways; the patterns below are grouped by wording,
each seen in real answers of several registries (see tests/data/whois-corpus/). Both only decide when
the answer carries no registration data: a registered domain's answer often quotes them in its terms
of use ("... if the query rate is exceeded ...", "... no match for ...").
"""
from __future__ import annotations

import re

NOT_FOUND = re.compile(
    r"|".join((
        # "No match for X", "No match!!", "NO MATCH: x", "Nincs találat / No match"
        r"\bno match(?:es)?\b",
        # "Not found", "% nothing found", "domain "x" not found.", "Object "x" NOT FOUND.",
        # "The domain x was not found!", "freeNOT FOUND", "Key not found"
        r"^[\s%#*:>-]*(?:not found|nothing found)\b", r"\b(?:domain|object|key|name|entry)\b[^\n]{0,80}?\b"
        r"(?:was |is )?not found\b", r"not found[.!]*\s*$", r"\bdomain not found\b",
        # "No entries found", "No data found", "No Objects Found", "No records found for object X",
        # "No domain records were found", "No information available", "There is no information ..."
        r"\bno (?:such )?(?:domain |matching |domain name )?(?:entries|entry|data|objects?|records?|"
        r"information|match(?:ing)? record)s?\b[^\n]{0,40}?\b(?:found|available|exists?)\b",
        r"\bno (?:domain )?records? (?:were |was )?found\b", r"\bno such domain\b",
        r"\bthere is no information\b", r"\bno object found\b", r"\bno found\b",
        r"\bobject does not exist\b", r"\bdoes not have\W+any data\b", r"\breturned 0 objects\b",
        r"\bno matching record\b",
        # "is not registered", "has not been registered", "Not Registered - ...", "Domain is not registered"
        r"\b(?:is )?not (?:been )?registered\b", r"\bis not a registered\b", r"\bnot registered here\b",
        # "is available for registration", "X is available.", "Available" alone, "220 Available",
        # "Not available for second level registration" (a shared .name)
        r"\bis available(?: for (?:registration|purchase))?\s*[.!]?\s*$", r"^\s*available\s*$",
        r"\b(?:query_status|status)\s*:\s*(?:\d{3}\s+)?(?:available|free|not registered|no object found)\s*$",
        r"\bnot available for (?:second level )?registration\b",
        # "domain name not known in Dot TK Domain Registry", "not available in our whois database"
        r"\bdomain name not known\b", r"\bnot available in (?:our|the) whois database\b",
        # Spanish: "no existe", "no se encuentra registrado"; Freenom registries (.ga .ml .cf .gq .tk)
        # answer an unregistered name with "can temporarily not be answered"
        r"\bno existe\b", r"\bno se encuentra registrad[oa]\b", r"\bcan temporarily not be answered\b",
        # NIC Mexico "Object_Not_Found"; "x.nl is free"; "Domain x - Available"; "does not exist in database"
        # (.bg .my); SWITCH "We do not have an entry in our database matching your query."
        r"\bobject_not_found\b", r"\bis free\s*[.!]?\s*$", r"\b(?:domain|name)\b[^\n]{0,80}?\s[-:]\s*available\s*[.!]?\s*$",
        r"\bdoes not exist in (?:our |the )?(?:whois )?database\b", r"\bdo not have an entry in our database\b",
        # a registrar asked about a name it does not hold (Tucows/OpenSRS)
        r"\bcan'?t get information on non-local domain\b",
    )),
    re.IGNORECASE | re.MULTILINE,
)

# Worded as the state we are in, not as the terms of use describe it ("Access to the whois service is
# rate limited.", "If too many queries are received from a single IP ...", "... for excessive querying").
RATE = re.compile(
    r"|".join((
        r"limit (?:has been |was )?(?:exceeded|reached)", r"quota (?:exceeded|reached)",
        r"\b(?:queries|requests|lookups) (?:has been |have been )?exceeded\b", r"\bhas been (?:temporarily )?blocked\b",
        r"requests of this client are not permitted", r"exceeded (?:the |your )?"
        r"(?:maximum|query|request|allowed|quota)", r"try again later", r"(?<!if )too many (?:queries|requests|"
        r"connections)(?! are)", r"rate limit exceeded", r"query rate (?:exceeded|reached)", r"maximum query rate",
        r"please wait", r"maximum (?:number of )?queries per \w+ reached", r"grace period(?: of \d|, wait)",
        r"in grace period", r"ip address (?:has been )?blocked", r"only \d+ (?:request|quer)[a-z]* per \w+ allowed",
        r"access control limit", r"please slow down", r"temporarily (?:blocked|denied|banned)",
        r"before starting another (?:enquiry|query|request)", r"\breached (?:the |its |your |a )?(?:rate |query |"
        r"request |lookup )?limit\b", r"\brate is too high\b", r"\b(?:has been|are being|is being) rate[- ]limited\b",
        r"\bdisabled due to excessive\b",
    )),
    re.IGNORECASE,
)
_RATE_WAIT = re.compile(r"(?:in|after|wait|of)\s+(\d{1,9})\s*(seconds?|secs?|s\b|minutes?|mins?|hours?)",
                        re.IGNORECASE)
MAX_RATE_WAIT = 86400.0   # a server asking for more than a day is asked again tomorrow


def rate_wait(text: str) -> float | None:
    """Seconds a "slow down" answer asks us to wait ("wait 60 seconds", "grace period of 2 seconds")."""
    m = _RATE_WAIT.search(text)
    if not m:
        return None
    n, unit = float(m.group(1)), m.group(2).lower()
    return min(MAX_RATE_WAIT, n * (3600 if unit.startswith("h") else 60 if unit.startswith("m") else 1))


def says_rate_limited(text: str) -> bool:
    return RATE.search(text) is not None


def says_not_found(text: str) -> bool:
    return NOT_FOUND.search(text) is not None
