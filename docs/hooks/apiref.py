"""The API and CLI reference pages, generated at build time from the package itself.

API: one page per public module of ``latentatlas`` (a module is public when no part of its dotted name
starts with an underscore; ``latentatlas._core`` is the exception, documented from its ``.pyi`` stub). A
page renders, with mkdocstrings, the names of the module's ``__all__`` that the module itself defines (or,
without ``__all__``, every public name it defines); names it only re-exports are listed with a link to the
page that documents them, so each object is documented exactly once and every link is checked by
``mkdocs build --strict``.

CLI: one section per sub-command of ``latentatlas.cli.build_parser()``, each with its ``--help``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "latentatlas"
API_DIR = "reference/api"


def _is_public(name: str) -> bool:
    parts = name.split(".")[1:]
    if name == f"{PACKAGE}._core":
        return True
    return not any(p.startswith("_") for p in parts)


def public_modules() -> list[str]:
    """Every public module of the package, the package first, then in dotted-name order."""
    pkg = importlib.import_module(PACKAGE)
    names = [PACKAGE] + [m.name for m in pkgutil.walk_packages(pkg.__path__, f"{PACKAGE}.")]
    return sorted((n for n in names if _is_public(n)), key=lambda n: (n != PACKAGE, n))


def _source_of(module: object) -> str:
    f = getattr(module, "__file__", None) or ""
    stub = Path(f).with_name(Path(f).name.split(".")[0] + ".pyi") if f else None
    if f.endswith((".so", ".pyd")) and stub is not None and stub.exists():
        return stub.read_text(encoding="utf-8")
    return Path(f).read_text(encoding="utf-8") if f.endswith((".py", ".pyi")) else ""


def defined_names(source: str) -> set[str]:
    """Names bound at the top level of a module's source: defs, classes, assignments (not imports)."""
    out: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out.add(t.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return out


@dataclass
class ModulePage:
    name: str
    defined: list[str] = field(default_factory=list)  # rendered here
    reexported: list[str] = field(default_factory=list)  # documented elsewhere

    @property
    def path(self) -> str:
        return f"{API_DIR}/{self.name}.md"


def scan() -> dict[str, ModulePage]:
    """The pages, and for every name the module that documents it (its home)."""
    pages: dict[str, ModulePage] = {}
    for name in public_modules():
        mod = importlib.import_module(name)
        own = defined_names(_source_of(mod))
        exported = list(getattr(mod, "__all__", None) or sorted(n for n in own if not n.startswith("_")))
        page = ModulePage(name)
        for n in exported:
            if n == "__version__" and name != f"{PACKAGE}._core":
                page.reexported.append(n)
            elif n in own:
                page.defined.append(n)
            else:
                page.reexported.append(n)
        pages[name] = page
    return pages


def home_of(pages: dict[str, ModulePage], module: str, name: str) -> str | None:
    """The module whose page documents ``module.name``: follow the object to where it is defined."""
    obj = getattr(importlib.import_module(module), name, None)
    where = getattr(obj, "__module__", None) if (inspect.isclass(obj) or inspect.isfunction(obj)) else None
    if where in pages and name in pages[where].defined:
        return where
    for cand, page in pages.items():  # constants: the public module that defines it and exports it
        if name in page.defined and getattr(importlib.import_module(cand), name, object()) is obj:
            return cand
    return None


_OPTIONS = """    options:
      members:
{members}"""


def render_module(pages: dict[str, ModulePage], page: ModulePage) -> str:
    lines = [f"# `{page.name}`", ""]
    if page.defined:
        members = "\n".join(f"        - {n}" for n in page.defined)
        lines += [f"::: {page.name}", _OPTIONS.format(members=members), ""]
    else:
        lines += [f"::: {page.name}", "    options:", "      members: false", ""]
    if page.reexported:
        lines += ["## Re-exported here", "", "| name | documented in |", "|---|---|"]
        for n in page.reexported:
            home = home_of(pages, page.name, n)
            if n == "__version__":
                lines.append("| `__version__` | the installed distribution's version (`importlib.metadata`) |")
            elif home is None:
                lines.append(f"| `{n}` | (no public home) |")
            else:
                lines.append(f"| [`{n}`][{home}.{n}] | [`{home}`][{home}] |")
        lines.append("")
    return "\n".join(lines)


def render_index(pages: dict[str, ModulePage]) -> str:
    lines = [
        "# API reference",
        "",
        "Generated at build time from the docstrings (numpydoc style) and, for the Rust extension, from",
        "`python/latentatlas/_core.pyi`. One page per public module; each page documents the names of the",
        "module's `__all__` that it defines and links the names it re-exports to their page.",
        "",
        "| module | names |",
        "|---|---:|",
    ]
    for name, page in pages.items():
        lines.append(f"| [`{name}`]({name}.md) | {len(page.defined)} |")
    return "\n".join(lines) + "\n"


def api_nav(pages: dict[str, ModulePage]) -> list:
    """Nested nav entries: the package and its top-level modules, then one group per sub-package."""
    top: list = [{"Overview": f"{API_DIR}/index.md"}]
    groups: dict[str, list] = {}
    for name, page in pages.items():
        parts = name.split(".")
        if name == PACKAGE or (len(parts) == 2 and not any(n.startswith(name + ".") for n in pages)):
            top.append({name: page.path})
        else:
            groups.setdefault(".".join(parts[:2]), []).append({name: page.path})
    for group, entries in groups.items():
        top.append({group: entries})
    return top


# ----------------------------------------------------------------------------------------- CLI


def _walk(parser: argparse.ArgumentParser, path: list[str]):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, [*path, name])


def render_cli() -> str:
    from latentatlas.cli import build_parser

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width: fix it so the page is stable
    try:
        helps = [(path, sub.format_help().rstrip()) for path, sub in _walk(build_parser(), ["latentatlas"])]
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    lines = [
        "# CLI reference",
        "",
        "Generated at build time from `latentatlas.cli.build_parser()`: every sub-command's `--help`.",
        "Each area registers its own sub-commands; errors in use are one-line messages with exit status 1",
        "(a missing sub-command prints the help with exit status 2).",
        "",
    ]
    for path, text in helps:
        lines += [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```text", text, "```", ""]
    return "\n".join(lines)
