"""The house rules of toolkit/ (issue 20), checked mechanically on the source with ``ast``.

- no module over ``MAX_MODULE_LINES`` lines;
- no function over ``MAX_FUNCTION_LINES`` lines. A function is measured from its ``def`` to
  its last line; in ``toolkit/cli/`` the parameter list is not counted, because a Typer
  command declares its options there (one ``Annotated[..., typer.Option(...)]`` each), and
  that list is as long as the command has options;
- no import cycle among toolkit modules: every ``import``/``from ... import`` counts, at
  module level, inside functions and under ``if TYPE_CHECKING`` alike (a file that imports
  one that imports it back, directly or through a chain). ``from pkg import name`` is an
  edge to the module ``pkg.name`` when that is a module, else to ``pkg`` itself; importing
  ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, but those implicit parent imports
  are not edges (a package whose ``__init__`` imports its own modules would otherwise be a
  cycle with every one of them);
- every public function, class and method (a name without a leading ``_``, in a module whose
  name has none either, methods of public classes included) has a docstring.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "toolkit"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
CLI = PACKAGE / "cli"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ----------------------------------------------------------------------------- sizes

def long_modules() -> list[str]:
    out = []
    for path in modules().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{_rel(path)}: {n} lines")
    return out


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, *, in_cli: bool) -> int:
    """Lines of a function; in cli/ from its first statement on (options are declarations)."""
    end = node.end_lineno or node.lineno
    start = node.body[0].lineno if in_cli else node.lineno
    return end - start + 1


def long_functions() -> list[str]:
    out = []
    for path in modules().values():
        in_cli = CLI in path.parents
        for name, node in _functions(_tree(path)):
            n = function_lines(node, in_cli=in_cli)
            if n > MAX_FUNCTION_LINES:
                out.append(f"{_rel(path)}:{node.lineno} {name}: {n} lines")
    return out


# ----------------------------------------------------------------------------- imports

@dataclass(frozen=True)
class Edge:
    """One import statement of a toolkit module naming another toolkit module."""

    source: str
    target: str
    line: int


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(name: str, path: Path, known: dict[str, Path]) -> list[Edge]:
    """Every toolkit module that ``name`` imports, wherever the import statement is."""
    edges = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            edges += [Edge(name, a.name, node.lineno) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = _package_of(name, path).split(".")
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    edges.append(Edge(name, sub, node.lineno))
                elif base in known:
                    edges.append(Edge(name, base, node.lineno))
    return [e for e in edges if e.target != name]


def import_graph() -> dict[str, list[Edge]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def import_cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    graph = {k: sorted({e.target for e in v}) for k, v in import_graph().items()}
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def describe_cycle(comp: list[str]) -> str:
    graph = import_graph()
    inside = set(comp)
    ties = sorted({f"{e.source} -> {e.target} (line {e.line})" for m in comp for e in graph[m] if e.target in inside})
    return "cycle: " + ", ".join(comp) + "\n    " + "\n    ".join(ties)


# ----------------------------------------------------------------------------- docstrings

def _public(name: str) -> bool:
    return not name.startswith("_")


def undocumented() -> list[str]:
    out = []
    for mod, path in modules().items():
        if not all(_public(part) for part in mod.split(".")):
            continue
        tree = _tree(path)
        for node in tree.body:
            out += _undocumented(node, path, "")
    return out


def _undocumented(node: ast.stmt, path: Path, prefix: str) -> list[str]:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not _public(node.name):
        return []
    out = []
    if ast.get_docstring(node) is None:
        kind = "class" if isinstance(node, ast.ClassDef) else "function"
        out.append(f"{_rel(path)}:{node.lineno} {kind} {prefix}{node.name}")
    if isinstance(node, ast.ClassDef):
        for child in node.body:
            out += _undocumented(child, path, prefix + node.name + ".")
    return out


# ----------------------------------------------------------------------------- the tests

def test_no_module_over_the_limit():
    assert long_modules() == []


def test_no_function_over_the_limit():
    assert long_functions() == []


def test_no_import_cycle():
    cycles = import_cycles()
    assert not cycles, "\n".join(describe_cycle(c) for c in cycles)


def test_public_functions_and_classes_have_docstrings():
    assert undocumented() == []


def test_the_checker_resolves_imports_and_measures_cli_bodies(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from . import model\nfrom toolkit.report import render\nimport toolkit.errors\n"
                 "def g():\n    from toolkit.dns import query\n")
    known = modules() | {"toolkit.x": f}
    assert {e.target for e in imports("toolkit.x", f, known)} == {
        "toolkit.model", "toolkit.report", "toolkit.errors", "toolkit.dns.query"}
    cmd = ast.parse("def cmd(\n    a: int = 1,\n    b: int = 2,\n) -> None:\n    pass\n").body[0]
    assert isinstance(cmd, ast.FunctionDef)
    assert function_lines(cmd, in_cli=True) == 1 and function_lines(cmd, in_cli=False) == 5
