"""Names as certificates carry them (issue 14): IDNA2008 / UTS #46 non-transitional, bad labels as counted
skips, and the two registrable domains (root_domain with the PSL's private section, registered_domain
with its ICANN section only)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scout.names import BAD_IDNA, is_private_suffix, normalise_domain, registered_domain, root_domain, to_ascii
from tests.conftest import ROOT


@pytest.mark.parametrize("raw, expected", [
    ("straße.de", "xn--strae-oqa.de"),            # IDNA2003 would say strasse.de: another domain
    ("*.Straße.DE.", "xn--strae-oqa.de"),
    ("βόλος.com", "xn--nxasmm1c.com"),            # final sigma kept (IDNA2003: xn--nxasmq6b.com)
    ("ﬁ.com", "fi.com"),                          # UTS #46 mapping: compatibility ligature
    ("例え。テスト", "xn--r8jz45g.xn--zckzah"),     # ideographic full stop separates labels
    ("bücher.example", "xn--bcher-kva.example"),
    ("xn--strae-oqa.de", "xn--strae-oqa.de"),      # already an A-label: as it is
    ("_dmarc.example.com", "_dmarc.example.com"),  # ASCII labels are not IDNA's business
])
def test_idna2008_non_transitional(raw, expected):
    assert normalise_domain(raw) == (expected, None)
    assert normalise_domain(expected) == (expected, None)      # idempotent


@pytest.mark.parametrize("raw", ["😀.com",                 # emoji: IDNA2003 accepted them, IDNA2008 not
                                 "ex\u200dample.com",       # a zero-width joiner out of context
                                 "\u0300ab.com",            # a label starting with a combining mark
                                 "bad\u2028label.com"])     # a line separator
def test_bad_labels_are_a_counted_reason_not_a_crash(raw):
    name, reason = normalise_domain(raw)
    assert name is None and reason == BAD_IDNA
    assert to_ascii(raw) is None


@pytest.mark.parametrize("name, root, registered", [
    ("a1.github.io", "a1.github.io", "github.io"),
    ("deep.a1.github.io", "a1.github.io", "github.io"),
    ("shop.herokuapp.com", "shop.herokuapp.com", "herokuapp.com"),
    ("x.vercel.app", "x.vercel.app", "vercel.app"),
    ("store.myshopify.com", "store.myshopify.com", "myshopify.com"),
    ("a.b.example.co.uk", "example.co.uk", "example.co.uk"),
    ("www2.example.com", "example.com", "example.com"),
    ("github.io", "github.io", "github.io"),
    ("co.uk", "co.uk", "co.uk"),                     # a bare suffix is its own
    ("xn--strae-oqa.de", "xn--strae-oqa.de", "xn--strae-oqa.de"),
])
def test_root_domain_keeps_private_section_registered_domain_is_icann(name, root, registered):
    assert root_domain(name) == root
    assert registered_domain(name) == registered


def test_private_suffix_test_and_the_watchlist_share_the_names_module():
    from scout.watchlist import features

    assert is_private_suffix("github.io") and is_private_suffix("herokuapp.com")
    assert not is_private_suffix("co.uk") and not is_private_suffix("com")
    assert features.private_suffix("github.io") and not features.private_suffix("co.uk")
    source = (ROOT / "scout" / "watchlist" / "features.py").read_text()
    assert "PublicSuffixList" not in source        # one list object per process: scout.names's


def test_suffix_list_is_offline():
    """Both views come from the bundled list: a process with no network route computes them."""
    code = ("import socket\n"
            "def no(*a, **k): raise OSError('network used')\n"
            "socket.socket.connect = no; socket.create_connection = no; socket.getaddrinfo = no\n"
            "from scout.names import registered_domain, root_domain\n"
            "import json; print(json.dumps([root_domain('a1.github.io'), registered_domain('a1.github.io')]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["a1.github.io", "github.io"]


def test_watchlist_entries_and_score_cli_encode_by_idna2008(tmp_path):
    from scout.cli.score import normalise
    from scout.watchlist.rules import _domain

    assert normalise("Straße.de") == "xn--strae-oqa.de"
    assert _domain("test", "straße.de") == "xn--strae-oqa.de"
