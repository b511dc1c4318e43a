"""The floors of the house (README, Layout) hold on the import graph of the package.

Every import counts: module level and function level (lazy), ``from . import x``, ``from ..x import y``,
``import latentatlas.x`` and ``from latentatlas.x import y``. The rules, bottom up:

- the ground floor imports only the ground floor (and the Rust extension ``_core``);
- the shared floor imports no area and nothing on the top floor;
- an area imports no other area and nothing on the top floor; ``lm/`` (shared) imports no area;
- inside the package there are no import circles;
- only ``kernels`` (one typed wrapper per kernel) calls the Rust extension ``_core``; ``CORE_READERS``
  names the two modules that read its constants, each with its reason.

Imports under ``if TYPE_CHECKING:`` are not counted: they never run, so they can neither cross a floor
at run time nor close a circle (they exist for annotations only).

The exceptions are the short list ``ALLOWED``, each with its reason. ``test_each_rule_catches_a_plant``
copies the package, plants one violation of each kind and checks that the rules report it.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import latentatlas

ROOT = Path(latentatlas.__file__).parent

GROUND = {
    "_core",
    "kernels",
    "_validate",
    "_io",
    "_optional",
    "_progress",
    "_display",
    "_estimator",
    "_plotting",
    "chunked",
    "reference",
}
SHARED = {"__init__", "report", "spectral", "search", "search_cli", "metrics", "lm", "datasets", "info", "linalg"}
AREAS = {"minima", "sae", "personas"}
TOP = {"cli", "demo", "atlas", "__main__"}

#: (importer, imported) module edges that break a rule on purpose, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    # persona-vectors keeps run_saved_activation_analysis in its analysis module; a drop-in must offer it
    # there, but it writes the report, which itself uses the analysis: one lazy edge closes that circle.
    ("latentatlas.personas.analysis", "latentatlas.personas.report"): "persona-vectors' name in its own module",
}


#: Modules besides ``kernels`` that import ``_core``, each with its reason (none calls a kernel).
CORE_READERS: dict[str, str] = {
    "latentatlas._validate": "check_threads reads _core.MAX_THREADS (kernels itself uses check_threads)",
    "latentatlas.info": "reports the build: SIMD path, rayon threads, build profile",
}


def floor(module: str) -> str:
    """The floor of ``latentatlas.<part>...``: ground, shared, area or top."""
    part = module.split(".")[1] if "." in module else "__init__"
    for name, members in (("ground", GROUND), ("shared", SHARED), ("area", AREAS), ("top", TOP)):
        if part in members:
            return name
    raise AssertionError(f"{module}: its floor is not named in tests/test_layers.py (add it to one floor)")


def module_name(root: Path, f: Path) -> str:
    rel = f.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["latentatlas", *parts])


def imports(root: Path, f: Path) -> set[str]:
    """Every latentatlas module ``f`` imports, anywhere in the file, as dotted names."""
    pkg = ["latentatlas", *f.parent.relative_to(root).parts]
    out: set[str] = set()

    def add(name: str) -> None:
        # ``from . import x`` may name a module or an attribute; keep the deepest that is a module
        parts = name.split(".")
        while len(parts) > 1 and not _exists(root, parts):
            parts.pop()
        out.add(".".join(parts))

    for node in _runtime_nodes(ast.parse(f.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "latentatlas":
                mod = node.module or ""
            else:
                continue
            for a in node.names:
                add(f"{mod}.{a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "latentatlas":
                    add(a.name)
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def _exists(root: Path, parts: list[str]) -> bool:
    rel = Path(*parts[1:])
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file() or parts[-1] == "_core"


def graph(root: Path) -> dict[str, set[str]]:
    """Module -> the latentatlas modules it imports (a package's ``__init__`` is the package's name)."""
    return {module_name(root, f): imports(root, f) for f in sorted(root.rglob("*.py"))}


def area_of(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def violations(root: Path) -> list[str]:
    """Every edge that crosses a floor the wrong way, and every import circle."""
    g = graph(root)
    bad = []
    for src, targets in g.items():
        for dst in sorted(targets):
            if (src, dst) in ALLOWED or dst == "latentatlas" and src != "latentatlas":
                # ``from latentatlas import __version__`` reads the package's metadata only
                if dst == "latentatlas" and floor(src) == "ground":
                    bad.append(f"ground floor {src} imports the package top {dst}")
                continue
            fs, fd = floor(src), floor(dst)
            if fs == "ground" and fd != "ground":
                bad.append(f"ground floor {src} imports {fd} floor {dst}")
            elif fs == "shared" and fd in ("area", "top"):
                bad.append(f"shared floor {src} imports {fd} floor {dst}")
            elif fs == "area" and fd == "top":
                bad.append(f"area {src} imports the top floor {dst}")
            elif fs == "area" and fd == "area" and area_of(src) != area_of(dst):
                bad.append(f"area {src} imports another area {dst}")
    for src, targets in g.items():
        if "latentatlas._core" in targets and src not in ("latentatlas.kernels", *CORE_READERS):
            bad.append(f"{src} imports _core: call latentatlas.kernels instead")
    bad += [f"import circle: {' -> '.join(c)}" for c in circles(g)]
    return bad


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of the import graph (allowed edges removed)."""
    edges = {s: {d for d in ds if d in g and d != s and (s, d) not in ALLOWED} for s, ds in g.items()}
    # a package's __init__ re-exports its modules; an edge module -> its own package's __init__ is
    # the same circle Python resolves by importing the package first, so it is not counted twice
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in out if not _package_reexport(c, edges)]


def _package_reexport(comp: list[str], edges: dict[str, set[str]]) -> bool:
    """A component that is a package's ``__init__`` plus modules it re-exports, none of which imports
    another of them: only the edges module -> its package (``from . import x`` in a sibling would
    show up as module -> module)."""
    pkgs = [m for m in comp if any(o.startswith(m + ".") for o in comp)]
    if len(pkgs) != 1:
        return False
    rest = [m for m in comp if m != pkgs[0]]
    return all(not (edges[m] & set(rest)) for m in rest)


def test_every_module_has_a_floor():
    for m in graph(ROOT):
        floor(m)


def test_floors_point_down_and_no_circles():
    assert violations(ROOT) == []


def test_allowed_edges_still_exist():
    """An exception nobody needs any more is removed from the list."""
    g = graph(ROOT)
    for src, dst in ALLOWED:
        assert dst in g.get(src, set()), f"ALLOWED lists {src} -> {dst}, which no longer exists"


PLANTS = [
    ("_validate.py", "from .spectral import feature_graph\n", "ground floor latentatlas._validate imports shared"),
    ("chunked.py", "def f():\n    import latentatlas.sae.model\n", "ground floor latentatlas.chunked imports area"),
    ("report.py", "def f():\n    from .minima import compare\n", "shared floor latentatlas.report imports area"),
    (
        "lm/chat.py",
        "def f():\n    from ..personas.store import PersonaVectorStore\n",
        "shared floor latentatlas.lm.chat",
    ),
    ("metrics.py", "def f():\n    from latentatlas import atlas\n", "shared floor latentatlas.metrics imports top"),
    ("minima/kde.py", "def f():\n    from ..sae import TopKSAE\n", "area latentatlas.minima.kde imports another area"),
    ("sae/io.py", "def f():\n    from .. import demo\n", "area latentatlas.sae.io imports the top floor"),
    ("sae/plots.py", "def f():\n    from .report import demo_chapter\n", "import circle"),
    ("minima/kde.py", "def f():\n    from .. import _core\n", "latentatlas.minima.kde imports _core"),
    ("search.py", "def f():\n    import latentatlas._core\n", "latentatlas.search imports _core"),
]


@pytest.mark.parametrize("path, code, expected", PLANTS, ids=[p[0] for p in PLANTS])
def test_each_rule_catches_a_plant(tmp_path, path, code, expected):
    root = tmp_path / "latentatlas"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    assert violations(root) == []
    with open(root / path, "a", encoding="utf-8") as fh:
        fh.write("\n\n" + code)
    found = violations(root)
    assert any(expected in v for v in found), found
