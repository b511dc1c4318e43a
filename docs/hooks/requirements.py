"""Print the ``docs`` extra of pyproject.toml, one requirement a line (``make docs`` installs them with pip).

The docs tools are installed on their own rather than with ``pip install -e .[docs]``, which would rebuild
the extension that ``make build`` already built.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pip vendors tomli
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

extra = sys.argv[1] if len(sys.argv) > 1 else "docs"
project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
print("\n".join(project["project"]["optional-dependencies"][extra]))
