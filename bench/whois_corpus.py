"""The real-answer WHOIS corpus (tests/data/whois-corpus/) and the rules for comparing a parser with it.

Used by bench/whois_accuracy.py and by tests/test_whois_corpus.py, so both count agreement the same way
(the corpus README's rules):
- only the fields a sample's `asserted` lists, among registrar, creation_date, expiration_date,
  updated_date and name_servers;
- dates by day: the parser's UTC day is the expected day as the registry wrote it or in UTC (registries
  print local times); where the source says its dates were rendered in another local zone, +-1 day;
- name servers as lower-case sets without trailing dots;
- registrars by a case-insensitive prefix (either way round: "MarkMonitor" and "MarkMonitor Inc.");
- the status: `domain/` answers are registered ("ok"), `notfound/` ones "not_found", `throttled/` ones
  "rate_limited".

A parser here is `parse(name, text) -> (fields, status)` with scout's field names (registrar, created,
expires, updated: ISO 8601 strings; nameservers: list) and status "ok" | "not_found" | "rate_limited" |
"no_data" (nothing to read: scout reports it as an error).
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "whois-corpus"

# expected-file key -> scout's field name
FIELDS = {"registrar": "registrar", "creation_date": "created", "expiration_date": "expires",
          "updated_date": "updated", "name_servers": "nameservers"}
STATUS_OF_KIND = {"domain": "ok", "notfound": "not_found", "throttled": "rate_limited"}


@dataclass
class Sample:
    kind: str            # domain | notfound | throttled
    name: str            # file stem, e.g. "google.fr" or "whois.eu__response_throttled"
    domain: str          # the name to parse the answer for
    text: str
    expected: dict
    asserted: list = field(default_factory=list)   # of FIELDS' keys

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def want_status(self) -> str:
        return STATUS_OF_KIND[self.kind]

    @property
    def tld(self) -> str:
        return self.domain.rsplit(".", 1)[-1].lower()


def _domain_of(kind: str, exp: dict, stem: str) -> str:
    d = (exp.get("domain") or "").strip().lower()
    d = d.split()[0] if d else ""        # "register.bg (register.bg)"
    if not d and kind == "throttled":    # a refusal names no domain: any name under the server's TLD
        server = exp.get("whois_server") or stem.split("__")[0]
        d = "example." + server.rsplit(".", 1)[-1]
    return d.rstrip(".") or stem.split("__")[0]


def unpaired(root: Path = CORPUS) -> list[str]:
    """Answers without an expected file and expected files without an answer (left out of the counts)."""
    out = []
    for kind in STATUS_OF_KIND:
        folder = Path(root) / kind
        texts = {p.stem for p in folder.glob("*.txt")}
        exps = {p.stem for p in (folder / "expected").glob("*.json")}
        out += [f"{kind}/{s}.txt" for s in sorted(texts - exps)]
        out += [f"{kind}/expected/{s}.json" for s in sorted(exps - texts)]
    return out


def load_corpus(root: Path = CORPUS) -> list[Sample]:
    """Every paired sample of the corpus, in a stable order. FileNotFoundError when the corpus is absent."""
    out = []
    for kind in STATUS_OF_KIND:
        folder = Path(root) / kind
        if not folder.is_dir():
            raise FileNotFoundError(folder)
        for txt in sorted(folder.glob("*.txt")):
            exp_file = folder / "expected" / f"{txt.stem}.json"
            if not exp_file.is_file():
                continue
            exp = json.loads(exp_file.read_text(encoding="utf-8"))
            text = txt.read_bytes().decode("utf-8", errors="replace")
            asserted = [k for k in exp.get("asserted", []) if k in FIELDS]
            out.append(Sample(kind, txt.stem, _domain_of(kind, exp, txt.stem), text, exp, asserted))
    return out


# ---------------------------------------------------------------- comparison


_LOOSE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


def _to_dt(value) -> datetime | None:
    """An expected date: ISO 8601, or as the source left it when it could not read it ("19961206 #24302",
    "2008-05-23 (YYYY-MM-DD)"): then its year-month-day digits."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        m = _LOOSE.search(value)
        try:
            return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
        except ValueError:
            return None


def _days(value) -> set[date]:
    """The days a date may stand for: as written, and in UTC when it carries a zone. A list (a source
    that kept every date under the key) stands for any of its dates."""
    if isinstance(value, list):
        return set().union(*(_days(v) for v in value)) if value else set()
    dt = _to_dt(value)
    if dt is None:
        return set()
    days = {dt.date()}
    if dt.tzinfo is not None:
        days.add(dt.astimezone(timezone.utc).date())
    return days


def same_day(got, want, slack_days: int = 0) -> bool:
    got_days, want_days = _days(got), _days(want)
    return any(abs((g - w).days) <= slack_days for g in got_days for w in want_days)


def _host(v) -> str:
    return str(v).strip().split()[0].lower().rstrip(".") if str(v).strip() else ""


def same_nameservers(got, want) -> bool:
    return {_host(v) for v in got or [] if _host(v)} == {_host(v) for v in want or [] if _host(v)}


def _norm_registrar(v) -> str:
    return re.sub(r"\s+", " ", str(v or "")).strip().lower()


def same_registrar(got, want) -> bool:
    g, w = _norm_registrar(got), _norm_registrar(want)
    return bool(g and w) and (g.startswith(w) or w.startswith(g))


def _slack(sample: Sample) -> int:
    notes = str(sample.expected.get("notes", "")).lower()
    return 1 if "+-1 day" in notes or "local zone" in notes else 0


def field_agrees(sample: Sample, key: str, fields: dict) -> bool:
    want = sample.expected.get(key)
    got = fields.get(FIELDS[key])
    if key == "registrar":
        return same_registrar(got, want)
    if key == "name_servers":
        return same_nameservers(got, want)
    return same_day(got, want, _slack(sample))


def check(sample: Sample, fields: dict, status: str) -> dict:
    """{"status_ok": bool, "fields": {key: bool}} for one parser result."""
    # a registered answer must not be read as "no match" or "slow down"; one without data to read
    # ("no_data": scout's "error: no registration data") is not either
    ok = status in ("ok", "no_data") if sample.kind == "domain" else status == sample.want_status
    res = {"status_ok": ok, "fields": {}}
    if sample.kind == "domain":
        for key in sample.asserted:
            res["fields"][key] = field_agrees(sample, key, fields or {})
    return res


# ---------------------------------------------------------------- families

_REGIONS = {
    "Europe": "ad al at ax ba be bg by ch cy cz de dk ee es eu fi fo fr gb gg gi gr hr hu ie im is it je li lt lu "
              "lv mc md me mk mt nl no pl pt ro rs ru se si sk sm su ua uk va xk",
    "Americas": "ag ai ar aw bb bm bo br bs bz ca cl co cr cu cw dm do ec fk gd gf gl gp gs gt gy hn ht jm kn ky "
                "lc mq ms mx ni pa pe pm pr py sr sv sx tc tt us uy vc ve vg vi",
    "Asia-Pacific": "af am as au az bd bn bt cc ck cn cx fj fm ge gu hk hm id in io jp kg kh ki kr kz la lk mh mm "
                    "mn mo mp mv my nc nf np nr nu nz pf pg ph pk pn pw sb sg th tj tk tl tm to tv tw uz vn vu "
                    "wf ws",
    "Africa & Middle East": "ac ae ao bf bh bi bj bw cd cf cg ci cm cv dj dz eg er et ga gh gm gn gq gw il iq "
                            "ir jo ke km kw lb lr ls ly ma mg ml mr mu mw mz na ne ng om ps qa re rw sa sc sd sh sl "
                            "sn so ss st sy sz td tf tg tn tr tz ug yt ye za zm zw",
}
CC_REGION = {tld: region for region, tlds in _REGIONS.items() for tld in tlds.split()}
# Internationalised country codes seen in the corpus (others fall back to "ccTLD, other")
CC_REGION.update({"xn--p1ai": "Europe", "рф": "Europe", "xn--fiqs8s": "Asia-Pacific", "中国": "Asia-Pacific",
                  "xn--kpry57d": "Asia-Pacific", "台灣": "Asia-Pacific", "xn--mgba3a4f16a": "Africa & Middle East",
                  "ایران": "Africa & Middle East"})
LEGACY_GTLDS = {"com", "net", "org", "info", "biz", "name", "pro", "mobi", "asia", "tel", "travel", "jobs", "aero",
                "coop", "museum", "cat", "xxx", "post", "int", "edu", "gov", "mil"}


def family(sample: Sample) -> str:
    tld = sample.tld
    if tld in LEGACY_GTLDS:
        return "gTLD, legacy"
    if tld in CC_REGION:
        return f"ccTLD, {CC_REGION[tld]}"
    if len(tld) == 2:
        return "ccTLD, other"
    return "gTLD, new"


# ---------------------------------------------------------------- scoring


def score(samples: list[Sample], parse) -> dict:
    """Run `parse` over the samples; counts overall and by family, plus the disagreeing samples."""
    def bucket():
        return {"fields": 0, "fields_ok": 0, "by_field": defaultdict(lambda: [0, 0]), "notfound": 0,
                "notfound_ok": 0, "throttled": 0, "throttled_ok": 0, "registered": 0,
                "registered_as_notfound": 0, "registered_as_throttled": 0, "notfound_as_throttled": 0}

    total, fams, misses = bucket(), defaultdict(bucket), []
    for s in samples:
        try:
            fields, status = parse(s.domain, s.text)
        except Exception as e:  # noqa: BLE001 - a candidate parser failing counts as disagreement
            fields, status = {}, f"crash: {type(e).__name__}"
        r = check(s, fields, status)
        for b in (total, fams[family(s)]):
            _count(b, s, r, status)
        bad = [k for k, ok in r["fields"].items() if not ok]
        if bad or not r["status_ok"]:
            misses.append((s.id, status, bad))
    return {"total": _finish(total), "families": {k: _finish(v) for k, v in sorted(fams.items())}, "misses": misses}


def _count(b: dict, s: Sample, r: dict, status: str) -> None:
    if s.kind == "domain":
        b["registered"] += 1
        b["registered_as_notfound"] += status == "not_found"
        b["registered_as_throttled"] += status == "rate_limited"
        for k, ok in r["fields"].items():
            b["fields"] += 1
            b["fields_ok"] += ok
            b["by_field"][k][0] += ok
            b["by_field"][k][1] += 1
    elif s.kind == "notfound":
        b["notfound"] += 1
        b["notfound_ok"] += r["status_ok"]
        b["notfound_as_throttled"] += status == "rate_limited"
    else:
        b["throttled"] += 1
        b["throttled_ok"] += r["status_ok"]


def _pct(a: int, n: int):
    return round(100.0 * a / n, 1) if n else None


def _finish(b: dict) -> dict:
    b["by_field"] = {k: v for k, v in sorted(b["by_field"].items())}
    b["field_pct"] = _pct(b["fields_ok"], b["fields"])
    b["notfound_pct"] = _pct(b["notfound_ok"], b["notfound"])
    b["throttled_pct"] = _pct(b["throttled_ok"], b["throttled"])
    return b
