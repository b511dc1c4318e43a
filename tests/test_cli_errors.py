"""Careless command lines: each is a one-line error (or the help) on stderr with a usage status, never a traceback."""

from __future__ import annotations

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
    assert __import__("re").search(match, capsys.readouterr().err)


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
