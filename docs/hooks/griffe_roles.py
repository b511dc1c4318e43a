"""Griffe extension: the docstrings' Sphinx roles (``:func:`x```, ``:mod:`.x```, ...) become links.

The package's numpydoc docstrings cross-reference with Sphinx roles. mkdocstrings writes Markdown, so each
role is rewritten before rendering: to a cross-reference ``[`x`][full.path]`` when the target resolves to a
documented object (one of the API pages' names, a module, or a public member of a documented class), else
to plain code ``x`` — never to a broken link, which ``mkdocs build --strict`` would refuse.
"""

from __future__ import annotations

import re
import sys
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apiref  # noqa: E402

ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):`~?(?P<target>[^`]+)`")


@lru_cache(maxsize=1)
def documented() -> frozenset[str]:
    pages = apiref.scan()
    names = set(pages)
    for mod, page in pages.items():
        names.update(f"{mod}.{n}" for n in page.defined)
    return frozenset(names)


def _module_of(obj: Any) -> str:
    return obj.module.path if hasattr(obj, "module") else obj.path


def resolve(target: str, module: str, cls: str | None) -> str | None:
    """The full path of ``target`` as seen from ``module`` (and ``cls``), if it is documented."""
    target = target.strip().rstrip("()")
    docs = documented()
    cands: list[str] = []
    if target.startswith("."):
        pkg = module.split(".")
        up = len(target) - len(target.lstrip("."))
        base = pkg[: len(pkg) - up + (1 if module in docs and _is_package(module) else 0)]
        cands.append(".".join([*base, target.lstrip(".")]))
    else:
        if cls:
            cands.append(f"{cls}.{target}")
        cands += [target, f"{module}.{target}", f"{apiref.PACKAGE}.{target}"]
        parts = module.split(".")
        cands += [".".join([*parts[:i], target]) for i in range(len(parts) - 1, 0, -1)]
    for c in cands:
        if c in docs:
            return c
        parent, _, last = c.rpartition(".")
        if parent in docs and parent not in documented_modules() and _own_member(parent, last):
            return c  # a method or class attribute, rendered under its class
    return None


@lru_cache(maxsize=1)
def documented_modules() -> frozenset[str]:
    return frozenset(apiref.scan())


@cache
def _own_member(cls_path: str, name: str) -> bool:
    """Whether the class defines ``name`` itself (inherited members are not rendered under it)."""
    import importlib

    module, _, cls_name = cls_path.rpartition(".")
    cls = getattr(importlib.import_module(module), cls_name, None)
    return not name.startswith("_") and isinstance(cls, type) and name in vars(cls)


@cache
def _is_package(module: str) -> bool:
    import importlib

    return hasattr(importlib.import_module(module), "__path__")


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is None or ":" not in obj.docstring.value:
            return
        module = _module_of(obj)
        cls = (
            obj.path
            if obj.kind is griffe.Kind.CLASS
            else (obj.parent.path if obj.parent and obj.parent.kind is griffe.Kind.CLASS else None)
        )

        def repl(m: re.Match[str]) -> str:
            target = m["target"]
            full = resolve(target, module, cls)
            return f"[`{target}`][{full}]" if full else f"`{target}`"

        obj.docstring.value = ROLE.sub(repl, obj.docstring.value)
