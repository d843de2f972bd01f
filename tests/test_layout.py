"""The shape of the house (issue 13): no import cycles between modules, every import within the rules the
folders write down ("May import:" lines in their __init__ docstrings, and in scout/__init__.py for the
parts without a folder of their own), and no function over 60 lines.

Imports are read with `ast` from the source, function-level ones included: a cycle hidden inside a
function is still a cycle.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scout"
MAX_FUNCTION_LINES = 60

# Functions allowed to be longer, each with the reason. Keep this short: split a long function instead.
LONG_FUNCTIONS_ALLOWED: set = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    """scout.stages.whois -> stages; scout.config -> config; scout -> scout."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The scout modules `module` imports, anywhere in its source (function bodies included)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from package import module` imports that module; `from module import name`, the module.
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != module and name != "scout":
                out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


RULE = re.compile(r"^\s*(?:(?P<who>[\w, ]+):\s*)?May import:\s*(?P<what>[^.]*)\.", re.M)


def parse_rules(text: str, default_who: str | None) -> dict[str, set[str]]:
    rules = {}
    for m in RULE.finditer(text):
        who = [w.strip() for w in m.group("who").split(",")] if m.group("who") else [default_who]
        what = {w.strip().split(" ")[0] for w in m.group("what").split(",") if w.strip()}
        for w in who:
            rules[w] = what
    return rules


def folder_rules() -> dict[str, set[str]]:
    """part -> parts it may import ("everything", "nothing", or part names), from the docstrings."""
    rules = parse_rules(ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())) or "", None)
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        rules.update(parse_rules(doc, init.parent.name))
    return rules


def test_parsing_finds_cycles_and_function_level_imports(tmp_path):
    """The checker itself: a cycle through a function-level import is seen; a chain without one is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    src = tmp_path / "scout" / "stages"
    src.mkdir(parents=True)
    (src / "x.py").write_text("def f():\n    from scout.producer import ledger\n    from . import y\n")
    known = {"scout.producer.ledger", "scout.stages.y", "scout.stages.x", "scout.producer", "scout.stages"}
    assert imports_of("scout.stages.x", src / "x.py", known) == {"scout.producer.ledger", "scout.stages.y"}
    assert parse_rules("Owns x.\n\nMay import: config, store.\n", "stages") == {"stages": {"config", "store"}}


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40 and graph["scout.stages.tasks"], "the checker read the package"
    assert cycles(graph) == []


def test_every_import_keeps_to_the_folder_rules():
    rules = folder_rules()
    parts = {part_of(m) for m in modules()} - {"scout"}
    assert parts <= set(rules), f"parts without a written rule: {sorted(parts - set(rules))}"
    broken = []
    for module, targets in import_graph().items():
        mine = part_of(module)
        allowed = rules.get(mine, {"everything"})
        for target in targets:
            theirs = part_of(target)
            if theirs != mine and "everything" not in allowed and theirs not in allowed:
                broken.append(f"{module} imports {target} ({mine} may import: {', '.join(sorted(allowed))})")
    assert broken == []


def test_nothing_but_the_cli_imports_the_tasks_module_or_the_cli():
    """Chains are built from task names; the CLI is the top of the house."""
    for module, targets in import_graph().items():
        if module not in ("scout.stages.tasks", "scout.__main__") and not module.startswith("scout.cli"):
            assert "scout.stages.tasks" not in targets and not any(t.startswith("scout.cli") for t in targets), module


def functions(tree: ast.AST):
    """(qualified name, node) of every function, methods as Class.method."""
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield prefix + child.name, child
                yield from walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)
    yield from walk(tree, "")


def test_no_function_over_60_lines():
    long = []
    for module, path in modules().items():
        part = part_of(module)
        if (part, "*") in LONG_FUNCTIONS_ALLOWED:
            continue
        for name, node in functions(ast.parse(path.read_text())):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES and (part, name) not in LONG_FUNCTIONS_ALLOWED:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {name} ({lines} lines)")
    assert long == []


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_every_folder_opens_with_what_it_owns(folder):
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text()))
    assert doc and len(doc) > 80, f"scout/{folder}/__init__.py: no docstring saying what it owns"
