"""The architecture holds: imports point down, no loops, short modules, pages only lay out.

Floors, lowest first (``benchmarks/import_graph.py`` reads the imports from source, function-local
ones included):

0. ``settings``, ``files``, ``metrics/`` (pure compute on arrays), ``access`` (roles), ``db`` (base,
   audit table, engines, migrations runner)
1. ``registry`` (generic bundle I/O), ``review_store``, ``audit``
2. ``imaging/`` and ``vitals/`` (side by side: neither imports the other)
3. ``cli`` and ``migrations/`` (Alembic's env.py imports every module with a table) (``__main__`` above)
then ``dashboard/`` (the only ``st.cache_resource`` loaders, UI glue) and ``pages/`` above the package.
A module may import its own subpackage or any lower floor, never a higher floor or a sibling.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import import_graph as G  # noqa: E402  (benchmarks/ is not a package)

MAX_LINES = 300
FLOOR = {
    "cxr_model.settings": 0, "cxr_model.files": 0, "cxr_model.metrics": 0, "cxr_model.access": 0,
    "cxr_model.db": 0,
    "cxr_model.registry": 1, "cxr_model.review_store": 1, "cxr_model.audit": 1,
    "cxr_model.imaging": 2, "cxr_model.vitals": 2,
    "cxr_model.cli": 3, "cxr_model.migrations": 3, "cxr_model.__main__": 4, "cxr_model": 4,
}
UI = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "dashboard").glob("*.py")])
PACKAGE = sorted((ROOT / "cxr_model").rglob("*.py"))


def unit(module: str) -> str:
    """``cxr_model.imaging.report.html`` -> ``cxr_model.imaging`` (the floor's unit)."""
    return ".".join(module.split(".")[:2])


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return G.build_graph(ROOT)


def test_the_graph_sees_function_local_imports(tmp_path):
    pkg = tmp_path / "cxr_model"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cxr_model.b import g\n    return g\n")
    (pkg / "b.py").write_text("from cxr_model import a\n\ndef g():\n    return a\n")
    g = G.build_graph(tmp_path)
    assert g["cxr_model.a"] == {"cxr_model.b"} and g["cxr_model.b"] == {"cxr_model.a"}
    assert G.cycles(g) == [["cxr_model.a", "cxr_model.b"]]  # the check below can fail


def test_no_import_cycle_between_modules_or_subpackages(graph):
    assert G.cycles(graph) == []
    assert G.package_cycles(graph) == []


def test_every_module_is_under_300_lines():
    long = {str(f.relative_to(ROOT)): n for f in [*PACKAGE, *UI]
            if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_import_points_down_or_stays_in_its_subpackage(graph):
    assert set(map(unit, graph)) <= set(FLOOR), "a new subpackage needs its floor in FLOOR"
    wrong = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                   if unit(d) != unit(m) and FLOOR[unit(d)] >= FLOOR[unit(m)])
    assert wrong == []


def test_metrics_import_nothing_of_ours_and_registry_knows_no_model(graph):
    assert {d for m, deps in graph.items() if unit(m) == "cxr_model.metrics" for d in deps
            if unit(d) != "cxr_model.metrics"} == set()
    low = {d for m in ("cxr_model.registry", "cxr_model.settings", "cxr_model.files") for d in graph.get(m, ())}
    assert not {d for d in low if unit(d) in ("cxr_model.imaging", "cxr_model.vitals")}


def test_the_package_never_imports_streamlit_or_the_ui():
    found = {str(f.relative_to(ROOT)): names for f in PACKAGE
             if (names := G.external_imports(f) & {"streamlit", "dashboard", "pages"})}
    assert found == {}


def test_pages_and_dashboard_never_import_torch():
    found = {str(f.relative_to(ROOT)): names for f in UI
             if (names := G.external_imports(f) & {"torch", "torchvision", "pytorch_grad_cam"})}
    assert found == {}


def test_models_are_cached_in_one_place():
    """One loader per bundle per process: ``st.cache_resource`` only in dashboard/resources.py."""
    assert [str(f.relative_to(ROOT)) for f in UI if "cache_resource" in f.read_text(encoding="utf-8")] == [
        "dashboard/resources.py"]


def test_imports_are_at_the_top_except_in_the_command_line():
    """A function-local import hides an edge from a reader (and hid every loop the package had)."""
    hidden = []
    for f in PACKAGE:
        if f.name == "cli.py":  # lazy imports keep `cxr-model --help` fast
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("cxr_model"):
                        hidden.append(f"{f.relative_to(ROOT)}:{inner.lineno} {inner.module}")
    assert hidden == []
