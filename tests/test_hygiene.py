"""Tests read only what the repository holds: a fresh clone with nothing beside it runs them all."""
from __future__ import annotations

import re

from tests.conftest import ROOT

# A path that leaves the checkout: the sibling shared folder, an absolute /work path, or parents[n] > 1.
OUTSIDE = re.compile(r"""(["'/]\.\./shared|["']/work/|\bshared["']\s*/|parents\[[2-9]\]|ROOT\.parent)""")


def test_no_test_reads_a_path_outside_the_checkout():
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name == "test_hygiene.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "tests must read only the repository:\n" + "\n".join(offenders)


def test_the_check_catches_a_path_to_the_shared_folder():
    assert OUTSIDE.search('FIXTURE = ROOT.parent / "shared" / "fixtures"')
    assert OUTSIDE.search('Path("/work/shared/fixtures/x.jsonl")')
    assert OUTSIDE.search('Path(__file__).resolve().parents[2] / "shared"')
    assert not OUTSIDE.search('ROOT / "tests" / "data" / "certstream-sample.jsonl"')
