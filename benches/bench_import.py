"""Import time of latentatlas beyond NumPy + SciPy (target: < 0.3 s), and no optional dependency.

    python benches/bench_import.py [--python PATH] [--repeats 15]
    pytest benches/bench_import.py -s          # the same, as a test against the target

Each repeat is a fresh interpreter that imports ``numpy, scipy, scipy.sparse`` first (the baseline
any latentatlas user pays) and then times ``import latentatlas`` alone with ``time.perf_counter``.
The minimum over repeats is the figure (least disturbed by other load on the machine); the median
is printed too. One extra run with ``-X importtime`` lists the packages that make up the rest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TARGET_S = 0.3
OPTIONAL = ("umap", "pyarrow", "onnxruntime", "tokenizers", "gguf", "dask", "distributed", "torch", "pandas")

_PROBE = f"""
import sys, time, json
t0 = time.perf_counter()
import numpy, scipy, scipy.sparse
t1 = time.perf_counter()
import latentatlas
t2 = time.perf_counter()
print(json.dumps({{"base": t1 - t0, "latentatlas": t2 - t1,
                  "optional": sorted(m for m in {OPTIONAL!r} if m in sys.modules)}}))
"""


def measure(python: str = sys.executable, repeats: int = 15) -> dict:
    """Times (s) of ``import latentatlas`` after numpy+scipy over ``repeats`` fresh interpreters."""
    runs = []
    for _ in range(repeats):
        r = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True)
        runs.append(json.loads(r.stdout))
    own = [r["latentatlas"] for r in runs]
    base = [r["base"] for r in runs]
    return {
        "python": python,
        "repeats": repeats,
        "min": min(own),
        "median": statistics.median(own),
        "base_min": min(base),
        "base_median": statistics.median(base),
        "optional_loaded": sorted({m for r in runs for m in r["optional"]}),
    }


def breakdown(python: str = sys.executable, top: int = 8) -> list[tuple[str, float]]:
    """Top-level packages imported by ``import latentatlas`` after numpy+scipy, by cumulative time (s)."""
    code = "import numpy, scipy, scipy.sparse, sys; sys.stderr.write('--mark--\\n'); import latentatlas"
    r = subprocess.run([python, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    lines = r.stderr.split("--mark--\n", 1)[-1].splitlines()
    per_pkg: dict[str, float] = {}
    for line in lines:
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        try:
            self_us = float(parts[0])
        except (ValueError, IndexError):
            continue  # the header line
        pkg = parts[-1].strip().split(".")[0]
        per_pkg[pkg] = per_pkg.get(pkg, 0.0) + self_us / 1e6
    return sorted(per_pkg.items(), key=lambda kv: -kv[1])[:top]


def report(python: str = sys.executable, repeats: int = 15) -> dict:
    m = measure(python, repeats)
    print(
        f"import latentatlas beyond numpy+scipy: min {m['min']:.3f} s, median {m['median']:.3f} s over {repeats} fresh "
        f"interpreters (target < {TARGET_S} s); numpy+scipy themselves: min {m['base_min']:.3f} s"
    )
    print("  of which (self time per top-level package, one -X importtime run):")
    for pkg, s in breakdown(python):
        print(f"    {pkg:<16} {s:.3f} s")
    print(f"  optional dependencies loaded: {m['optional_loaded'] or 'none'}")
    return m


def test_import_time() -> None:
    m = report(repeats=9)
    assert not m["optional_loaded"], f"import latentatlas loaded optional dependencies: {m['optional_loaded']}"
    assert m["min"] < TARGET_S, f"import latentatlas takes {m['min']:.3f} s beyond numpy+scipy (target < {TARGET_S} s)"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter with latentatlas installed")
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    res = report(a.python, a.repeats)
    sys.exit(0 if res["min"] < TARGET_S and not res["optional_loaded"] else 1)
