"""Shared fixtures: real Redis, a real DNS server (nsd) with the fixture's zones, real Celery workers.

Services the suite needs but does not start itself (Redis, NATS, RabbitMQ) are started by
scripts/test.sh when they are not running. Under CI a missing service fails the test, never skips it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.processes import ProcessGroup
# Shared with bench/ (which must run without pytest): defined in tests/support/env.py.
from tests.support.env import free_port, port_open, scout_env, wait_for  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
# Tests read only what the repository holds (tests/test_hygiene.py checks it).
FIXTURE = ROOT / "tests" / "data" / "certstream-sample.jsonl"
# The domains FIXTURE yields, written out once and checked by hand (not computed by the code under test).
FIXTURE_DOMAINS = ROOT / "tests" / "data" / "certstream-sample.domains.json"


def fixture_domains(only_certificates: bool = False) -> set[str]:
    """What FIXTURE must give: every domain, or those of its certificate frames (what /full-stream carries)."""
    return set(json.loads(FIXTURE_DOMAINS.read_text())["certificates" if only_certificates else "all"])


def fixture_roots() -> set[str]:
    """The registrable domains of FIXTURE's domains (one WHOIS lookup each)."""
    return set(json.loads(FIXTURE_DOMAINS.read_text())["roots"])

# Every test run has a redis-server of its own (started in pytest_configure, on a free port): two runs at
# once, or a developer's own data on 6379, never see each other's keys. Test areas use database numbers
# of it (redis_db(n)).
_RUN_REDIS = None


def redis_db(n: int) -> str:
    """URL of database `n` of this test run's own redis-server."""
    return f"redis://127.0.0.1:{os.environ['SCOUT_TEST_REDIS_PORT']}/{n}"


def pytest_configure(config):
    global _RUN_REDIS
    _forget_the_developers_settings()
    if os.environ.get("SCOUT_TEST_REDIS_PORT"):
        return
    import tempfile

    from bench.services import PrivateRedis

    _RUN_REDIS = PrivateRedis(Path(tempfile.mkdtemp(prefix="scout-test-redis-"))).start()
    os.environ["SCOUT_TEST_REDIS_PORT"] = str(_RUN_REDIS.port)


def _forget_the_developers_settings() -> None:
    """The test process itself runs without the developer's scout settings: no exported variable that
    scout/config.py reads, no .env (code under test calling get_settings() sees the defaults)."""
    from scout.config import ENV_VARS

    for var in ENV_VARS:
        os.environ.pop(var, None)
    os.environ["SCOUT_ENV_FILE"] = ""


def pytest_unconfigure(config):
    if _RUN_REDIS is not None:
        _RUN_REDIS.stop()
        os.environ.pop("SCOUT_TEST_REDIS_PORT", None)


SCHEMA = ROOT / "scout" / "data" / "document.schema.json"


def need_service(name: str, port: int) -> None:
    if not port_open("127.0.0.1", port):
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not running on 127.0.0.1:{port} (scripts/test.sh starts it)")
        pytest.skip(f"{name} not running on 127.0.0.1:{port}")


def emptied_redis(url: str):
    """For a fixture (`yield from`): the Redis database `url`, emptied before and after the test. Each
    test area has its own database number."""
    import redis

    r = redis.Redis.from_url(url)
    r.flushdb()
    yield url
    r.flushdb()


@pytest.fixture
def redis_url():
    """A Redis database emptied before and after the test."""
    yield from emptied_redis(redis_db(13))


def need_nsd() -> None:
    """Skip the test when nsd is not installed (fail under CI: scripts/setup.sh installs it)."""
    from tests.servers.dns_nsd import find_nsd

    if not find_nsd():
        if os.environ.get("CI"):
            pytest.fail("nsd is not installed (scripts/setup.sh installs it)")
        pytest.skip("nsd not installed (apt-get install nsd)")


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory):
    """nsd on loopback serving tests/support/zones.py; -> 'host:port' for DNS_SERVER."""
    from tests.servers.dns_nsd import nsd_server
    from tests.support.zones import zone_texts

    need_nsd()
    with nsd_server(zone_texts(), tmp_path_factory.mktemp("nsd")) as port:
        yield f"127.0.0.1:{port}"


@pytest.fixture
def rdap(tmp_path):
    """A local RDAP server behind bootstrap files for every TLD the tests use; its `env` attribute holds
    the WHOIS settings that point scout at it (loopback only). Unrouted names: not_found."""
    from tests.servers.rdap import RdapServer, rdap_bootstrap

    server = RdapServer().start()
    server.env = rdap_bootstrap(tmp_path, server.base)
    yield server
    server.stop()


@pytest.fixture
def fixture_path() -> Path:
    return FIXTURE


def worker_command(env: dict, stage: str, label: str, ip: str | None = None,
                   concurrency: int | None = None) -> list[str]:
    """The command line `scout worker STAGE [--ip IP]` runs, under `env`'s settings, with a node name
    unique to this test run (`label`) so that workers of two runs never answer each other."""
    from scout.cli.worker import worker_argv
    from scout.config import load_settings

    extra = ["-c", str(concurrency)] if concurrency else []
    argv = worker_argv(load_settings(env, None), stage, ip, extra)
    return [a.replace("%h", f"{label}-{os.getpid()}") if "%h" in a else a for a in argv]


class Workers(ProcessGroup):
    """Real `celery worker` processes, one per stage, started with `scout worker`'s command lines."""

    def __init__(self, env: dict, tmp: Path):
        super().__init__(env, tmp, log_prefix="worker-")

    def start(self, stage: str, ip: str | None = None, concurrency: int | None = None, name: str | None = None):
        label = name or f"{stage}{'-' + ip if ip else ''}"
        return self.start_argv(worker_command(self.env, stage, label, ip, concurrency), label)

    def start_all_stages(self):
        for stage in ("dns", "whois", "save"):
            self.start(stage)
        from scout.config import load_settings

        s = load_settings(self.env, None)
        for ip in s.whois_ips or [None]:
            self.start("lookup", ip)


@pytest.fixture
def workers(tmp_path):
    made = []

    def make(env):
        w = Workers(env, tmp_path)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def run_scout(args: list[str], env: dict, timeout: float = 180, cwd=None) -> subprocess.CompletedProcess:
    """`scout ARGS` in a subprocess; by default in an empty temp folder (relative paths such as the
    default ./ctlog_data land there, not in the checkout)."""
    if cwd is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="scout-run-") as tmp:
            return run_scout(args, env, timeout, cwd=tmp)
    return subprocess.run([sys.executable, "-m", "scout", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def read_documents(output_dir: Path) -> dict[str, dict]:
    docs = {}
    for path in Path(output_dir).rglob("*.json"):
        if path.name.startswith(".tmp-") or path.name == "alerts.jsonl":
            continue
        doc = json.loads(path.read_text())
        docs[doc["domain"]] = doc
    return docs


def validate_documents(docs: dict[str, dict]) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for name, doc in docs.items():
        errors = list(validator.iter_errors(doc))
        assert not errors, f"{name}: {errors[0].message} at {list(errors[0].path)}"
