"""The ``latentatlas`` command line.

Each area registers its own sub-commands (``register(subparsers)`` in its ``cli`` module; ``demo``
in :mod:`latentatlas.demo`, ``atlas`` in :mod:`latentatlas.atlas`, ``info`` in :mod:`latentatlas.info`), so this file only dispatches: a
sub-command's ``func(args) -> int`` does the work. User errors (ValueError, TypeError, OSError and friends) and a
missing optional package (:class:`latentatlas._optional.MissingOptionalDependency`: "<feature> needs <pkg>: pip install
'latentatlas[extra]'") become a one-line message and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from ._optional import MissingOptionalDependency
from .atlas import register as _register_atlas
from .demo import register as _register_demo
from .info import register as _register_info
from .personas.cli import register as _register_personas
from .sae.cli import register as _register_sae
from .search_cli import register as _register_search

# Each adds its sub-commands to the main parser, in the order --help lists them.
_REGISTER: tuple[Callable[[Any], None], ...] = (
    _register_demo,  # demo
    _register_atlas,  # atlas (the linked atlas: minima, SAE latents, persona store)
    _register_sae,  # sae train | evaluate | explain | steer
    _register_personas,  # personas analyze | extract
    _register_search,  # search build | query
    _register_info,  # info
)


class CLIError(Exception):
    """A user-facing error with a ready message (exit status 1, no traceback)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="latentatlas",
        description="Map the latent spaces of machine-learning models.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for register in _REGISTER:
        register(sub)
    # A command group called without its sub-command (``latentatlas sae``) prints its own help.
    for group in sub.choices.values():
        if group._subparsers is not None:
            group.set_defaults(func=_usage_error(group))
    return p


def _usage_error(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A command's ``func`` when a sub-command is missing: the help on stderr, exit status 2 (usage error)."""

    def show(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        return _usage_error(parser)(args)
    try:
        return int(args.func(args) or 0)
    except (CLIError, MissingOptionalDependency, ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        if args.debug:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"latentatlas {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
