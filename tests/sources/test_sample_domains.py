"""The certstream fixture gives the domains written down in tests/data/certstream-sample.domains.json
(checked by hand): frame parsing and name normalisation against a list they did not compute."""
from __future__ import annotations

from scout.names import normalise_domain, root_domain
from scout.sources.frames import parse_frame
from tests.conftest import FIXTURE, fixture_domains, fixture_roots


def names_of(lines: list[str]) -> set[str]:
    out = set()
    for line in lines:
        for raw in parse_frame(line).names:
            name, _ = normalise_domain(raw)
            if name:
                out.add(name)
    return out


def test_the_fixture_gives_the_domains_written_down():
    lines = FIXTURE.read_text(errors="replace").splitlines()
    assert names_of(lines) == fixture_domains()
    assert names_of([ln for ln in lines if '"certificate_update"' in ln]) == fixture_domains(only_certificates=True)


def test_the_written_down_list_is_what_the_documents_expect():
    everything, certificates = fixture_domains(), fixture_domains(only_certificates=True)
    assert len(everything) == 56 and len(certificates) == 45 and certificates < everything
    assert "router.home.example" in everything - certificates            # from a /domains-only frame
    assert "shop-example-login.example" in certificates                  # www. and *. folded in
    assert not any(n.startswith(("www.", "*.")) or n != n.lower() or n.endswith(".") for n in everything)
    assert "203.0.113.7" not in everything                               # an IP in a SAN is no domain


def test_the_roots_written_down_are_the_registrable_domains():
    assert {root_domain(n) for n in fixture_domains()} == fixture_roots()
    assert len(fixture_roots()) == 22
    assert {"example.com", "example.net", "example.org", "preview-pages.example"} <= fixture_roots()
    assert not fixture_roots() & {"saas.example.com", "cdn.example.net", "example", "test"}
