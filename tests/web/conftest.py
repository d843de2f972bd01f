"""The web tests share one pipeline run (module scope is per file; the run is per session: it takes a
while on a loaded machine) and one `scout web` over its store."""
from __future__ import annotations

import pytest

from tests.support.web import WebServer, fill_store, rdap_answers


@pytest.fixture(scope="session")
def filled_store(tmp_path_factory, dns_server):
    """(STORE_URL, OUTPUT_DIR, documents) of a real `scout run --source` with nsd and local RDAP."""
    from tests.servers.rdap import RdapServer, rdap_bootstrap

    tmp = tmp_path_factory.mktemp("web-run")
    server = RdapServer().start()
    try:
        rdap_answers(server)
        yield fill_store(tmp, dns_server, rdap_bootstrap(tmp, server.base))
    finally:
        server.stop()


@pytest.fixture(scope="session")
def web(filled_store, tmp_path_factory):
    """`scout web` on loopback, no auth, over the filled store."""
    url, out, _ = filled_store
    server = WebServer(tmp_path_factory.mktemp("web"), url, OUTPUT_DIR=out).start()
    yield server
    server.stop()
