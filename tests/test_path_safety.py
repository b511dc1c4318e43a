"""Names from users or files never reach outside their root (the non-persona entry points; the persona
store has its own test). A file is planted outside each root; every entry point that turns a name into a
path is tried with ``..``, absolute paths, separators and glob characters and must refuse, naming the name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentatlas._io import inside, safe_name
from latentatlas.sae import TopKSAE
from latentatlas.sae.io import load

ESCAPES = ["..", "../secret", "../../secret", "/etc", "a/../../secret", "sub/../../secret"]
BAD_NAMES = [*ESCAPES, ".", ".hidden", "a/b", "x?", "x*", "[ab]", "", "a\x00b", "é" * 200]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_safe_name_rejects(name):
    with pytest.raises(ValueError, match="not a safe file name"):
        safe_name(name, "model")


def test_safe_name_and_inside_accept_ordinary_names(tmp_path):
    for ok in ("layer-6", "sae_v2.1", "persona+a=b@c,d", "A" * 255):
        assert safe_name(ok, "x") == ok
    assert inside(tmp_path, "a", "b") == tmp_path.resolve() / "a" / "b"
    with pytest.raises(TypeError, match="model must be a string"):
        safe_name(3, "model")


def test_inside_follows_symlinks(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        inside(root, "link", "secret")


def _planted(tmp_path):
    """A complete SAE planted outside the root; the root holds its own model."""
    secret = TopKSAE(4, 8, 2, seed=99)
    secret.save(tmp_path / "secret")
    root = tmp_path / "models" / "root"
    TopKSAE(4, 8, 2, seed=1).save(root)
    return secret, root


@pytest.mark.parametrize("hookpoint", ESCAPES[:-1] + ["../../secret"])
def test_sae_hookpoint_stays_inside(tmp_path, hookpoint):
    _, root = _planted(tmp_path)
    with pytest.raises(ValueError, match="outside"):
        load(root, hookpoint=hookpoint)


def test_sae_hookpoint_symlink_out_is_refused(tmp_path):
    _, root = _planted(tmp_path)
    (root / "hook").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError, match="outside"):
        load(root, hookpoint="hook")


@pytest.mark.parametrize("weights", ["../../secret/" + "x", "/etc/passwd", "..", "sae-*.safetensors"])
def test_cfg_weights_name_from_the_file_is_checked(tmp_path, weights):
    secret, root = _planted(tmp_path)
    cfg = json.loads((root / "cfg.json").read_text())
    # point the config at the planted model's weights through every kind of escape
    real = json.loads((tmp_path / "secret" / "cfg.json").read_text())["weights"]
    cfg["weights"] = weights.replace("x", real)
    cfg["sha256"] = real_sha = json.loads((tmp_path / "secret" / "cfg.json").read_text())["sha256"]
    assert real_sha
    (root / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="not a safe file name"):
        load(root)
    # nothing was read from outside, nothing outside was touched
    back = load(tmp_path / "secret")
    np.testing.assert_array_equal(back.W_dec, secret.W_dec)
