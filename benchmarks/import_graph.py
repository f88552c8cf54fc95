"""The package's import graph, function-local imports included: cycles, layers, sizes.

Usage: ``python benchmarks/import_graph.py [--dot FILE]``. Prints every cycle between modules
(strongly connected components of more than one module), the modules over 300 lines, and whether
``cxr_model`` imports streamlit or a page imports torch. Exit status 1 when a cycle exists.

The parser reads source with :mod:`ast` (nothing is imported), so an import hidden inside a
function counts the same as one at the top of the file.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "cxr_model"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, current: str, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_pkg else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """Modules of ``modules`` that ``path`` imports, anywhere in the file."""
    current = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def add(name: str) -> None:
        # "from cxr_model.imaging import io" names the module cxr_model.imaging.io when it exists.
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != current:
            found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, current, path.name == "__init__.py")
            for alias in node.names:
                full = f"{target}.{alias.name}"
                add(full if full in modules else target)
    return found


def external_imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (``torch``, ``streamlit``, ...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def build_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = sorted((root / PACKAGE).rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    # A package's __init__ is a module too; parents of modules count as modules for resolution.
    return {module_name(f, root): imports_of(f, modules, root) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def package_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between subpackages (``cxr_model.imaging`` <-> ``cxr_model.evaluation``)."""
    def pkg(m: str) -> str:
        parts = m.split(".")
        return ".".join(parts[:2]) if len(parts) > 2 else m

    folded: dict[str, set[str]] = {}
    for m, deps in graph.items():
        folded.setdefault(pkg(m), set()).update(pkg(d) for d in deps if pkg(d) != pkg(m))
    return cycles(folded)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dot", help="write the graph in Graphviz dot format to this file")
    args = ap.parse_args(argv)
    graph = build_graph()
    edges = sum(len(v) for v in graph.values())
    print(f"{len(graph)} modules, {edges} import edges (function-local imports included)")
    mod_cycles, pkg_cycles = cycles(graph), package_cycles(graph)
    print(f"module cycles: {len(mod_cycles)}")
    for c in mod_cycles:
        print("  " + " <-> ".join(c))
    print(f"subpackage cycles: {len(pkg_cycles)}")
    for c in pkg_cycles:
        print("  " + " <-> ".join(c))
    long = [(f, n) for f in sorted((ROOT / PACKAGE).rglob("*.py"))
            if (n := len(f.read_text(encoding="utf-8").splitlines())) > 300]
    print(f"modules over 300 lines: {len(long)}")
    for f, n in long:
        print(f"  {f.relative_to(ROOT)}: {n}")
    st = [module_name(f) for f in (ROOT / PACKAGE).rglob("*.py") if "streamlit" in external_imports(f)]
    print(f"cxr_model modules importing streamlit: {st or 'none'}")
    torch_pages = [p.name for p in sorted((ROOT / "pages").glob("*.py")) if "torch" in external_imports(p)]
    print(f"pages importing torch: {torch_pages or 'none'}")
    if args.dot:
        with open(args.dot, "w", encoding="utf-8") as fh:
            fh.write("digraph imports {\n")
            for m, deps in sorted(graph.items()):
                for d in sorted(deps):
                    fh.write(f'  "{m}" -> "{d}";\n')
            fh.write("}\n")
    return 1 if mod_cycles or pkg_cycles else 0


if __name__ == "__main__":
    raise SystemExit(main())
