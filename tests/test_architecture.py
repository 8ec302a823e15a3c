"""The tree shows its architecture: layers import one way, nothing imports in a cycle, the domain knows
nothing of Slack, and modules stay readable in one sitting (README, "Architecture")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kpi", "bot")

# kpi's layers, lowest first: a module may import its own layer and the ones before it
LAYERS = [
    {"kpi.errors", "kpi.i18n", "kpi.refs", "kpi.settings", "kpi.db", "kpi.db_clickhouse", "kpi.db_duckdb", "kpi.db_writing",
     "kpi.shops"},
    {"kpi.data"},
    {"kpi.metrics"},
    {"kpi.state"},
    {"kpi.goals", "kpi.alerts"},
    {"kpi.digests"},
    {"kpi.services", "kpi.seed", "kpi.cli", "kpi.cli_import"},
]
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = modules()


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """The project modules ``path`` imports (relative imports resolved; ``from x import y`` counts y when
    y is a module). Imports under ``if TYPE_CHECKING:`` are not run and do not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                if top or not top_level_only:
                    found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if top or not top_level_only:
                    base = child.module or ""
                    if child.level:
                        parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                        base = ".".join(parent + ([base] if base else []))
                    found.add(base)
                    found.update(f"{base}.{a.name}" for a in child.names)
            visit(child, top and not nested and not isinstance(child, ast.ClassDef))

    visit(tree, True)
    return {m for m in found if m in MODULES}


def layer_of(module: str) -> int | None:
    for i, layer in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in layer):
            return i
    return None


def test_every_kpi_module_has_a_layer():
    assert [m for m in MODULES if m.startswith("kpi.") and layer_of(m) is None] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("kpi")))
def test_kpi_imports_only_lower_layers_and_never_slack(module):
    path = MODULES[module]
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    third_party = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    third_party |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
    assert not third_party & {"slack_bolt", "slack_sdk", "bot"}, f"{module} imports the Slack layer"
    own = layer_of(module)
    if own is None:
        return
    upward = sorted(m for m in imports(path) if m.startswith("kpi.") and (layer_of(m) or 0) > own)
    assert upward == [], f"{module} (layer {own}) imports higher layers: {upward}"


def test_features_do_not_reach_into_each_other_sideways():
    """goals and alerts are siblings: neither imports the other."""
    for module, path in MODULES.items():
        for pkg, other in (("kpi.goals", "kpi.alerts"), ("kpi.alerts", "kpi.goals")):
            if module.startswith(pkg):
                assert not [m for m in imports(path) if m.startswith(other)], module


def test_no_import_cycle_anywhere():
    """Module-level imports form no cycle (a cycle breaks at import time, depending on the entry point)."""
    graph = {m: {i for i in imports(p, top_level_only=True) if i != m} for m, p in MODULES.items()}
    # importing a package's submodule runs the package first: ``a.b`` depends on ``a``
    for m in list(graph):
        parent = m.rpartition(".")[0]
        if parent in graph:
            graph[m].add(parent)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                # a package importing its own submodules (re-exports) is not a cycle of meaning
                if not all(c == cycle[0] or c.startswith(cycle[0] + ".") for c in cycle):
                    cycles.append(cycle)
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    assert cycles == []


def test_listeners_are_module_level_functions_registered_in_one_place():
    listeners = ROOT / "bot" / "listeners"
    assert {p.stem for p in listeners.glob("*.py")} >= {"__init__", "commands", "actions", "views", "events"}
    registered = (listeners / "__init__.py").read_text(encoding="utf-8")
    for kind in ("commands", "actions", "views", "events"):
        tree = ast.parse((listeners / f"{kind}.py").read_text(encoding="utf-8"))
        functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert functions, kind
        for fn in tree.body:  # no listener defines listeners inside itself
            if isinstance(fn, ast.FunctionDef):
                assert not [n for n in ast.walk(fn) if isinstance(n, ast.FunctionDef) and n is not fn
                            and n.name not in ("tell",)], f"{kind}.{fn.name} nests functions"
        assert f"{kind}." in registered


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable_in_one_sitting(module):
    """Past MAX_LINES, a module says at its top why it is one piece."""
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines > MAX_LINES:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert "One module" in doc, f"{module}: {lines} lines and no reason at its top"
