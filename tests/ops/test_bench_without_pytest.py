"""Issue 16, shown: `python -m bench` runs from the production install (scripts/run.sh's venv: no pytest,
no dev packages). Every bench module, and every tests.* module any of them imports (at the top or inside a
function), is imported in a subprocess where `import pytest` (and every other dev-only package) fails."""
from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT, scout_env

BLOCK_PYTEST = """
import importlib, importlib.abc, sys
# requirements-dev.txt less requirements.txt: what the production install does not have.
DEV_ONLY = ("pytest", "_pytest", "pytest_timeout", "hypothesis", "jsonschema", "certstream", "compose")
class NoDev(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in DEV_ONLY:
            raise ModuleNotFoundError(f"No module named {name!r} (production install)")
sys.meta_path.insert(0, NoDev())
for name in sys.argv[1:]:
    importlib.import_module(name)
print("imported", len(sys.argv) - 1)
"""


def modules_bench_needs() -> list[str]:
    names = sorted(f"bench.{p.stem}" for p in (ROOT / "bench").glob("*.py") if p.stem != "__main__")
    needed = set()
    for path in (ROOT / "bench").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
                needed.add(node.module)
            elif isinstance(node, ast.Import):
                needed.update(a.name for a in node.names if a.name.startswith("tests"))
    return names + sorted(needed)


def test_every_bench_module_imports_without_pytest():
    names = modules_bench_needs()
    assert "bench.run" in names and "bench.soak" in names and "bench.sizing" in names
    r = subprocess.run([sys.executable, "-c", BLOCK_PYTEST, *names], env=scout_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == f"imported {len(names)}"


def test_the_blocker_blocks():
    """The check can fail: tests.conftest needs pytest, and is refused here."""
    r = subprocess.run([sys.executable, "-c", BLOCK_PYTEST, "tests.conftest"], env=scout_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "production install" in r.stderr
