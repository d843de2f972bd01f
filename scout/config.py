"""All configuration in one place: read from the environment (and an optional `.env`), validated up front.

A bad value stops the program before it connects anywhere: `ConfigError` names the variable and the
accepted form, and the CLI turns it into exit code 2.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class ConfigError(ValueError):
    """A configuration value that cannot be used. The message names the variable."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(name: str, text: str) -> float:
    """'500ms', '1s', '5m', '24h', '7d' -> seconds."""
    m = _DURATION.match(text or "")
    if not m:
        raise ConfigError(f"{name}={text!r}: expected a duration such as 500ms, 1s, 5m, 24h or 168h")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def parse_int(name: str, text: str, minimum: int = 0) -> int:
    try:
        value = int(text.strip())
    except (ValueError, AttributeError):
        raise ConfigError(f"{name}={text!r}: expected a whole number >= {minimum}") from None
    if value < minimum:
        raise ConfigError(f"{name}={text!r}: expected a whole number >= {minimum}")
    return value


def parse_bool(name: str, text: str) -> bool:
    t = (text or "").strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={text!r}: expected true or false")


def parse_hostport(name: str, text: str, default_port: int) -> tuple[str, int]:
    """'1.1.1.1', '1.1.1.1:53', '[2606:4700::1111]:53', '::1', 'localhost:5353' -> (host, port)."""
    t = (text or "").strip()
    host, port = t, str(default_port)
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ConfigError(f"{name}={text!r}: expected host or host:port ([v6]:port for IPv6)")
        host, rest = t[1:end], t[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"{name}={text!r}: expected host or host:port ([v6]:port for IPv6)")
            port = rest[1:]
    elif t.count(":") == 1:
        host, port = t.split(":")
    elif t.count(":") > 1:
        host = t  # a bare IPv6 address, no port
    try:
        port_n = int(port)
    except ValueError:
        port_n = -1
    if not host or not (0 < port_n < 65536):
        raise ConfigError(f"{name}={text!r}: expected host or host:port ([v6]:port for IPv6)")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: {host!r} is not an IPv6 address") from None
    elif not re.fullmatch(r"[A-Za-z0-9.\-_]+", host):
        raise ConfigError(f"{name}={text!r}: {host!r} is not a host name or address")
    return host, port_n


def parse_dns_servers(name: str, text: str) -> list[tuple[str, int]]:
    """A comma-separated list of DNS servers; names are not allowed (we would need DNS to find DNS)."""
    servers = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        host, port = parse_hostport(name, part, 53)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: {host!r} must be an IP address (ip or ip:port)") from None
        servers.append((host, port))
    if not servers:
        raise ConfigError(f"{name}={text!r}: expected ip[:port][,ip[:port]...]")
    return servers


def _parse_each(name: str, text: str, parse, what: str) -> list:
    """Comma-separated values of setting `name`, each through `parse`; a bad one is a ConfigError."""
    out = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(parse(part))
        except ValueError:
            raise ConfigError(f"{name}={text!r}: {part!r} is not {what}") from None
    return out


def parse_ip_list(name: str, text: str) -> list[str]:
    return _parse_each(name, text, lambda p: str(ipaddress.ip_address(p)), "an IP address")


def parse_networks(name: str, text: str) -> tuple:
    """'127.0.0.0/8, 10.1.0.0/16, 2001:db8::/32' -> (ip_network, ...); a bare address is a /32 or /128."""
    return tuple(_parse_each(name, text, lambda p: ipaddress.ip_network(p, strict=False),
                             "a network (CIDR such as 127.0.0.0/8)"))


def parse_choice(name: str, text: str, choices: tuple[str, ...]) -> str:
    t = (text or "").strip().lower()
    if t not in choices:
        raise ConfigError(f"{name}={text!r}: expected one of {', '.join(choices)}")
    return t


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; '#' comments, optional quotes. Values already in the environment win."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:]
        if "=" not in line:
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE")
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# name -> (default, parser). The parser gets (name, text). Order is the order of .env.example.
def _dur(n, t):
    return parse_duration(n, t)


def _pos(n, t):
    return parse_int(n, t, 1)


def _nonneg(n, t):
    return parse_int(n, t, 0)


def _str(n, t):
    return (t or "").strip()


def _bool(n, t):
    return parse_bool(n, t)


def _port(n, t):
    value = parse_int(n, t, 1)
    if value > 65535:
        raise ConfigError(f"{n}={t!r}: expected a TCP port, 1 to 65535")
    return value


def _opt_dur(n, t):
    return parse_duration(n, t) if (t or "").strip() else 0.0


@dataclass(frozen=True)
class Settings:
    certstream_url: str = ""
    source: str = ""                    # certstream | ct; empty: certstream when CERTSTREAM_URL is set, else ct
    sink: str = "celery"                # celery | nats
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = "CERTSTREAM"
    nats_subject: str = "certstream.domains"
    nats_max_age: float = 7 * 86400.0
    nats_max_bytes: int = 1 << 30
    nats_buffer: int = 10000
    nats_ack_wait: float = 60.0
    dns_server: str = "1.1.1.1:53"
    dns_servers: tuple = (("1.1.1.1", 53),)
    dns_timeout: float = 2.0
    dns_retries: int = 2
    dns_workers: int = 50
    whois_workers: int = 50
    domain_whois_rate: float = 1.0
    ip_whois_rate: float = 1.0
    whois_cache_ttl: float = 168 * 3600.0
    whois_timeout: float = 10.0
    whois_max_bytes: int = 1 << 20
    whois_max_backlog: int = 10000
    whois_referral_server: str = "whois.iana.org:43"
    whois_ips: tuple = ()
    whois_allow_networks: tuple = ()    # non-global networks that targets learned from answers may be in
    ip_whois_aaaa: bool = False
    rdap_bootstrap_dir: str = ""
    output_dir: str = "ctlog_data"
    output_raw_whois: bool = True       # false: documents keep the parsed WHOIS only (0.7x the disk)
    save_fsync: bool = False
    # The SQL store (scout/db): sqlite:///PATH or postgresql://...; empty: `scout run` uses
    # sqlite:///<OUTPUT_DIR>/scout.db, fleet workers write files only; `none`: no store at all.
    store_url: str = ""
    output_files: bool = True           # the JSON document files (the store can replace them)
    cache_ttl: float = 24 * 3600.0
    strip_www: bool = True
    broker_url: str = ""
    redis_url: str = ""
    cache_redis_url: str = ""           # WHOIS caches and seen keys in a Redis that may evict; empty: REDIS_URL
    batch_size: int = 100
    batch_linger: float = 0.2
    max_backlog: int = 200000
    frame_buffer: int = 20000
    task_max_retries: int = 5
    retry_base_delay: float = 5.0       # first retry countdown; doubles per attempt (capped)
    visibility_timeout: float = 7200.0  # Redis: an unacked message of a vanished worker comes back after this
    ledger_timeout: float = 3600.0      # a domain neither saved nor failed this long after enqueue is sent again
    worker_lease: float = 30.0          # a worker silent this long is dead: the batches it ran are sent again
    worker_stall_timeout: float = 120.0  # a worker that started no task this long while its queue waits restarts
    failed_max_entries: int = 10000     # the failed store keeps at most this many tasks (the oldest go first)
    failed_max_bytes: int = 100 << 20   # ... and at most this many bytes of them
    failed_ttl: float = 7 * 86400.0     # ... each for at most this long
    log_level: str = "INFO"
    stats_interval: float = 60.0
    watchlist_file: str = ""
    enrich: str = "all"                 # all | watchlist
    whois_min_score: int = 0
    # Calibrated on the bundled watchlist (bench/RESULTS.md): flags <= 1 % of benign registered domains and
    # <= 2 % of benign hostnames on the dev lists. 0 turns alerts off.
    alert_min_score: int = 50
    alert_file: str = ""
    alert_webhook_url: str = ""
    ct_log_list_url: str = "https://www.gstatic.com/ct/log_list/v3/log_list.json"
    ct_logs: str = ""
    ct_state_file: str = ""
    ct_lag_alert: float = 600.0         # a CT log this far behind logs a warning (once) and shows lagging; 0 = off
    ct_stall_alert: float = 3600.0      # a CT log whose tree head has not grown this long: warning, stalled; 0 = off
    ct_skip_after: int = 10             # failures in a row fetching one position (log up) before it is a gap
    ct_dedup_keys: int = 1_000_000      # keys remembered for precert/cert de-duplication (~80 MB max)
    flower_basic_auth: str = ""
    web_basic_auth: str = ""            # user:password for `scout web`; required unless it binds to loopback
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    metrics_port: int | None = None     # None: no /metrics
    metrics_address: str = "0.0.0.0"   # compose scrapes over its network; 127.0.0.1 keeps it on the host
    canary_interval: float | None = None  # None: the producer sends no canary
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def embedded_broker(self) -> bool:
        return not self.broker_url

    @property
    def whois_queues(self) -> list[str]:
        """One WHOIS lookup queue per source address; `whois.default` when none is configured."""
        if not self.whois_ips:
            return ["whois.default"]
        return [f"whois.{ip}" for ip in self.whois_ips]


# env var -> (Settings field, parser). Defaults come from the dataclass.
_VARS = {
    "CERTSTREAM_URL": ("certstream_url", _str),
    "SOURCE": ("source", lambda n, t: parse_choice(n, t, ("certstream", "ct", "file"))),
    "SINK": ("sink", lambda n, t: parse_choice(n, t, ("celery", "nats"))),
    "NATS_URL": ("nats_url", _str),
    "NATS_STREAM": ("nats_stream", _str),
    "NATS_SUBJECT": ("nats_subject", _str),
    "NATS_MAX_AGE": ("nats_max_age", _dur),
    "NATS_MAX_BYTES": ("nats_max_bytes", _pos),
    "NATS_BUFFER": ("nats_buffer", _pos),
    "NATS_ACK_WAIT": ("nats_ack_wait", _dur),
    "DNS_SERVER": ("dns_server", _str),
    "DNS_TIMEOUT": ("dns_timeout", _dur),
    "DNS_RETRIES": ("dns_retries", _nonneg),
    "DNS_WORKERS": ("dns_workers", _pos),
    "WHOIS_WORKERS": ("whois_workers", _pos),
    "DOMAIN_WHOIS_RATE": ("domain_whois_rate", _dur),
    "IP_WHOIS_RATE": ("ip_whois_rate", _dur),
    "WHOIS_CACHE_TTL": ("whois_cache_ttl", _dur),
    "WHOIS_TIMEOUT": ("whois_timeout", _dur),
    "WHOIS_MAX_BYTES": ("whois_max_bytes", _pos),
    "WHOIS_MAX_BACKLOG": ("whois_max_backlog", _nonneg),
    "WHOIS_REFERRAL_SERVER": ("whois_referral_server", _str),
    "WHOIS_IPS": ("whois_ips", lambda n, t: tuple(parse_ip_list(n, t))),
    "WHOIS_ALLOW_NETWORKS": ("whois_allow_networks", parse_networks),
    "IP_WHOIS_AAAA": ("ip_whois_aaaa", _bool),
    "RDAP_BOOTSTRAP_DIR": ("rdap_bootstrap_dir", _str),
    "OUTPUT_DIR": ("output_dir", _str),
    "OUTPUT_RAW_WHOIS": ("output_raw_whois", _bool),
    "SAVE_FSYNC": ("save_fsync", _bool),
    "STORE_URL": ("store_url", _str),
    "OUTPUT_FILES": ("output_files", _bool),
    "CACHE_TTL": ("cache_ttl", _dur),
    "STRIP_WWW": ("strip_www", _bool),
    "BROKER_URL": ("broker_url", _str),
    "REDIS_URL": ("redis_url", _str),
    "CACHE_REDIS_URL": ("cache_redis_url", _str),
    "BATCH_SIZE": ("batch_size", _pos),
    "BATCH_LINGER": ("batch_linger", _dur),
    "MAX_BACKLOG": ("max_backlog", _pos),
    "FRAME_BUFFER": ("frame_buffer", _pos),
    "TASK_MAX_RETRIES": ("task_max_retries", _nonneg),
    "RETRY_BASE_DELAY": ("retry_base_delay", _dur),
    "VISIBILITY_TIMEOUT": ("visibility_timeout", _dur),
    "LEDGER_TIMEOUT": ("ledger_timeout", _dur),
    "WORKER_LEASE": ("worker_lease", _dur),
    "WORKER_STALL_TIMEOUT": ("worker_stall_timeout", _dur),
    "FAILED_MAX_ENTRIES": ("failed_max_entries", _nonneg),
    "FAILED_MAX_BYTES": ("failed_max_bytes", _nonneg),
    "FAILED_TTL": ("failed_ttl", _dur),
    "LOG_LEVEL": ("log_level", lambda n, t: parse_choice(n, t, ("debug", "info", "warning", "error", "critical")).upper()),
    "STATS_INTERVAL": ("stats_interval", _dur),
    "WATCHLIST_FILE": ("watchlist_file", _str),
    "ENRICH": ("enrich", lambda n, t: parse_choice(n, t, ("all", "watchlist"))),
    "WHOIS_MIN_SCORE": ("whois_min_score", _nonneg),
    "ALERT_MIN_SCORE": ("alert_min_score", _nonneg),
    "ALERT_FILE": ("alert_file", _str),
    "ALERT_WEBHOOK_URL": ("alert_webhook_url", _str),
    "CT_LOG_LIST_URL": ("ct_log_list_url", _str),
    "CT_LOGS": ("ct_logs", _str),
    "CT_STATE_FILE": ("ct_state_file", _str),
    "CT_LAG_ALERT": ("ct_lag_alert", _dur),
    "CT_STALL_ALERT": ("ct_stall_alert", _dur),
    "CT_SKIP_AFTER": ("ct_skip_after", _pos),
    "CT_DEDUP_KEYS": ("ct_dedup_keys", _nonneg),
    "FLOWER_BASIC_AUTH": ("flower_basic_auth", _str),
    "WEB_BASIC_AUTH": ("web_basic_auth", _str),
    "WEB_HOST": ("web_host", _str),
    "WEB_PORT": ("web_port", _pos),
    "METRICS_PORT": ("metrics_port", _port),
    "METRICS_ADDRESS": ("metrics_address", _str),
    "CANARY_INTERVAL": ("canary_interval", _dur),
}

ENV_VARS = tuple(_VARS)


def env_file() -> str:
    """The .env file to read: SCOUT_ENV_FILE when set (empty: none), else .env in the working directory.
    The test suite sets it empty, so a developer's .env never reaches the processes a test starts."""
    return os.environ.get("SCOUT_ENV_FILE", ".env")


_ENV_FILE = "<SCOUT_ENV_FILE, else .env>"


def load_settings(env: dict[str, str] | None = None, dotenv: str | Path | None = _ENV_FILE) -> Settings:
    """Build Settings from `env` (default: os.environ) over an optional .env file (default: env_file()).
    Raises ConfigError."""
    if dotenv == _ENV_FILE:
        dotenv = env_file()
    merged: dict[str, str] = {}
    if dotenv:
        merged.update(read_dotenv(Path(dotenv)))
    merged.update(os.environ if env is None else env)
    values: dict = {}
    for var, (attr, parser) in _VARS.items():
        text = merged.get(var)
        if text is None or (text.strip() == "" and attr not in ("certstream_url", "broker_url", "redis_url", "cache_redis_url",
                                                              "whois_ips", "watchlist_file", "alert_file",
                                                              "alert_webhook_url", "ct_logs", "ct_state_file",
                                                              "rdap_bootstrap_dir", "flower_basic_auth",
                                                              "store_url", "web_basic_auth")):
            continue
        values[attr] = parser(var, text)
    s = Settings(**values)
    # Derived and cross-field checks.
    derived: dict = {"dns_servers": tuple(parse_dns_servers("DNS_SERVER", s.dns_server))}
    if "SOURCE" not in merged or not merged["SOURCE"].strip():
        derived["source"] = "certstream" if s.certstream_url else "ct"
    if not s.redis_url and s.broker_url.startswith(("redis://", "rediss://")):
        derived["redis_url"] = s.broker_url
    for url_var, url in (("BROKER_URL", s.broker_url), ("REDIS_URL", derived.get("redis_url", s.redis_url)),
                         ("CACHE_REDIS_URL", s.cache_redis_url)):
        if url and "://" not in url:
            raise ConfigError(f"{url_var}={url!r}: expected a URL such as redis://127.0.0.1:6379/0")
    if s.broker_url and not derived.get("redis_url", s.redis_url):
        # Without a shared store every process keeps its own in memory: no de-duplication across the
        # fleet, WHOIS answers that never reach documents written by another worker, an empty failed list.
        raise ConfigError(f"REDIS_URL: BROKER_URL={redact_url(s.broker_url)} is not Redis, so set REDIS_URL "
                          "(e.g. redis://127.0.0.1:6379/0) for the state the workers and the producer share")
    if s.certstream_url and not s.certstream_url.startswith(("ws://", "wss://")):
        raise ConfigError(f"CERTSTREAM_URL={s.certstream_url!r}: expected a ws:// or wss:// URL")
    if s.flower_basic_auth and ":" not in s.flower_basic_auth:
        raise ConfigError("FLOWER_BASIC_AUTH: expected user:password")
    if s.web_basic_auth and ":" not in s.web_basic_auth:
        raise ConfigError("WEB_BASIC_AUTH: expected user:password")
    parse_hostport("WHOIS_REFERRAL_SERVER", s.whois_referral_server, 43)
    _check_store_url(s.store_url)
    return _replace(s, **derived)


NO_STORE = "none"


def _check_store_url(url: str) -> None:
    if url and url != NO_STORE and not url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        raise ConfigError(f"STORE_URL={redact_url(url)!r}: expected sqlite:///PATH, "
                          "postgresql://user:pass@host/db, none, or empty")


def store_url_of(s: Settings, embedded: bool = False) -> str:
    """The store a process writes and reads: STORE_URL; when empty, `scout run`'s embedded default
    sqlite:///<OUTPUT_DIR>/scout.db (embedded=True), else none (files only). '' means no store."""
    if s.store_url == NO_STORE:
        return ""
    if s.store_url:
        return s.store_url
    return f"sqlite:///{Path(s.output_dir).resolve() / 'scout.db'}" if embedded else ""


def check_outputs(s: Settings, store_url: str) -> None:
    """Documents must go somewhere: OUTPUT_FILES=false needs a store."""
    if not s.output_files and not store_url:
        raise ConfigError("OUTPUT_FILES=false needs STORE_URL (sqlite:///PATH or postgresql://...): "
                          "documents would be written nowhere")


def _replace(s: Settings, **changes) -> Settings:
    kw = {f.name: getattr(s, f.name) for f in fields(s)}
    kw.update(changes)
    return Settings(**kw)


def redact_url(url: str, keep_path: bool = True) -> str:
    """A URL fit for a log line: user:password replaced by ***, the query (tokens) by ***, the fragment
    dropped, and the path too unless `keep_path` (webhook paths often are the secret: Slack, Discord)."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        return "<unreadable url>"
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    if "@" in parts.netloc:
        netloc = "***@" + netloc
    path = parts.path if keep_path or parts.path in ("", "/") else "/***"
    return urlunsplit((parts.scheme, netloc, path, "***" if parts.query else "", ""))


# Operator-set URLs that carry data over the network; plain http is worth a warning at start.
_OUTBOUND_HTTP = (("ALERT_WEBHOOK_URL", "alert_webhook_url", "alerts are posted"),
                  ("CT_LOG_LIST_URL", "ct_log_list_url", "the list of CT logs to read is fetched"))


def outbound_url_warnings(s: Settings) -> list[str]:
    """Warnings for operator-set outbound URLs in plain http (loopback excepted), credentials redacted."""
    out = []
    for var, attr, what in _OUTBOUND_HTTP:
        url = (getattr(s, attr, "") or "").strip()
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.scheme.lower() != "http" or _is_loopback(parts.hostname or ""):
            continue
        out.append(f"{var}={redact_url(url, keep_path=False)}: {what} over plain http, readable and "
                   f"changeable by anyone on the path; https is recommended")
    return out


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


def set_settings(s: Settings) -> None:
    """Used by the CLI (after applying flags) and by tests."""
    global _current
    _current = s
