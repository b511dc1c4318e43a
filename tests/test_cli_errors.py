"""Careless command lines: each is a one-line error (or the help) on stderr with a usage status, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from latentatlas.cli import main


@pytest.mark.parametrize("argv", [[], ["sae"], ["personas"]])
def test_missing_subcommand_prints_help_on_stderr(argv, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: latentatlas") and "positional arguments" in err


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["sae", "explain", "--model", "m", "--top", "0"],
            "argument --top: expected an integer in \\[1, inf\\], got 0",
        ),
        (["sae", "explain", "--model", "m", "--top", "-3"], "argument --top"),
        (["sae", "evaluate", "--model", "m", "--top", "0"], "argument --top"),
        (["sae", "train", "--out", "o", "--latents", "0"], "argument --latents"),
        (["sae", "train", "--out", "o", "--seed", "-1"], "argument --seed"),
        (
            ["atlas", "x.npy", "--seed", str(2**64)],
            "argument --seed: expected an integer in \\[0, 18446744073709551615\\]",
        ),
        (["atlas", "x.npy", "--seed", "1.5"], "argument --seed: expected an integer"),
    ],
)
def test_nonsense_options_are_usage_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert re.search(match, capsys.readouterr().err)


def test_sae_train_input_errors(tmp_path, capsys):
    one_d = tmp_path / "v.npy"
    np.save(one_d, np.ones(5, np.float32))
    docs = tmp_path / "d.npy"
    np.save(docs, np.ones((20, 4), np.float32))
    out = str(tmp_path / "sae")
    assert main(["sae", "train", "--docs", str(one_d), "--out", out, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "--docs" in err and "must hold a 2-D array" in err
    assert main(["sae", "train", "--docs", str(docs), "--use-queries", "--out", out, "--quiet"]) == 1
    assert "--use-queries needs --queries" in capsys.readouterr().err
    assert not (tmp_path / "sae").exists()


# ------------------------------------------------------------------------------ a missing optional package

#: Hides the packages named in $LATENTATLAS_TEST_HIDE from the child: ``import x`` raises ModuleNotFoundError.
_HIDER = """
import os, sys
for _name in filter(None, os.environ.get("LATENTATLAS_TEST_HIDE", "").split(",")):
    sys.modules[_name] = None
"""


def _run_without(package: str, argv: list[str], tmp_path) -> tuple[int, str]:
    """``latentatlas argv`` in a child process where ``package`` cannot be imported: (status, stderr)."""
    hider = tmp_path / "hider"
    hider.mkdir(exist_ok=True)
    (hider / "sitecustomize.py").write_text(_HIDER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hider), os.environ.get("PYTHONPATH", "")])}
    env["LATENTATLAS_TEST_HIDE"] = package
    r = subprocess.run(
        [sys.executable, "-m", "latentatlas", *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    return r.returncode, r.stderr


def _persona_store(root) -> list[str]:
    from latentatlas.personas.attributes import synthetic_persona_dataset, synthetic_persona_vectors
    from latentatlas.personas.store import PersonaVectorStore

    table = synthetic_persona_dataset(6, seed=3)
    vecs = synthetic_persona_vectors(table, num_layers=4, hidden_size=8, seed=3)
    st = PersonaVectorStore("m", root, variants=None, array_type="numpy")
    for pid, name, v in zip(table.persona_ids, table.names(), vecs):
        st.save("bio", pid, name, v)
    return sorted(table.persona_ids)


@pytest.mark.parametrize(
    "package, extra, command, setup",
    [
        ("faiss", "minima", "atlas", "atlas"),
        ("pyarrow", "parquet", "personas", "parquet"),
        ("gguf", "llm", "personas", "steer"),
        ("gguf", "llm", "personas", "generate"),
        ("gguf", "llm", "sae", "train-lm"),
        ("onnxruntime", "text", "sae", "train"),
    ],
)
def test_a_missing_extra_is_one_line_not_a_traceback(package, extra, command, setup, tmp_path):
    """Each sub-command whose extra is missing: one line naming the feature, the package and the pip
    command, exit status 1 (before: a ModuleNotFoundError traceback)."""
    if setup == "atlas":
        np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((60, 16)).astype(np.float32))
        argv = ["atlas", "x.npy", "--knn", "approx", "--out", "a.html"]
    elif setup == "parquet":
        (tmp_path / "pq" / "m__answer_mean").mkdir(parents=True)
        (tmp_path / "pq" / "m__answer_mean" / "v-00000-of-00001.parquet").write_bytes(b"PAR1")
        argv = ["personas", "analyze", "--parquet", "pq", "--model", "m", "--variant", "v", "--out", "out"]
    elif setup == "steer":
        ids = _persona_store(tmp_path / "store")
        argv = ["personas", "steer", "--store", "store", "--model", "m", "--variant", "bio", "--out", "cv.gguf"]
        argv += ["--positive", *ids[:2], "--negative", *ids[2:4]]
    elif setup == "generate":
        argv = ["personas", "generate", "--prompt", "hi"]
    elif setup == "train-lm":
        argv = ["sae", "train-lm", "--out", "sae", "--quiet"]
    else:
        argv = ["sae", "train", "--dataset", "rotten-tomatoes", "--out", "sae", "--quiet"]
    rc, err = _run_without(package, argv, tmp_path)
    assert "Traceback" not in err, err
    assert rc == 1, err
    last = err.strip().splitlines()[-1]
    want = rf"^latentatlas {command}: error: .+ needs {package}: pip install 'latentatlas\[{extra}\]'$"
    assert re.match(want, last), err
