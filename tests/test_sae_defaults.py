"""Out-of-the-box training: TopKSAE(d, n, k).fit(X) recovers planted dictionaries (issue 15).

The data come from :class:`latentatlas.sae.synthetic.SyntheticModel` (known features), the SAE uses
every default of ``fit``, and the checks are the issue's: fraction of variance explained >= 0.9 and
>= 80 % of the planted atoms recovered at cosine > 0.9. The old defaults (retrieval KL on, 10 epochs
of batch 512 at lr 1e-3) fail the FVE check on the same data.
"""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from latentatlas._progress import PROGRESS_UPDATES, progress_bar
from latentatlas.sae import TopKSAE
from latentatlas.sae.synthetic import SyntheticModel


def _planted(n_features: int, d: int, l0: int, n: int = 4000):
    p = l0 / n_features
    m = SyntheticModel(n_features, d, max_prob=p, min_prob=p, exponent=0.0, std_magnitude=0.2, seed=0)
    X, _ = m.sample(n, seed=1)
    return m, X


def _recovered(features: np.ndarray, W_dec: np.ndarray) -> float:
    # independent of latentatlas.sae.synthetic: plain cosines of unit rows
    F = features / np.linalg.norm(features, axis=1, keepdims=True)
    W = W_dec / np.linalg.norm(W_dec, axis=1, keepdims=True)
    return float(((W @ F.T).max(axis=0) > 0.9).mean())


@pytest.mark.parametrize(("n_features", "d", "l0", "k"), [(128, 64, 4, 6), (256, 128, 4, 6)])
def test_defaults_recover_planted_dictionaries(n_features, d, l0, k):
    m, X = _planted(n_features, d, l0)
    sae = TopKSAE(d, n_features, k, seed=0).fit(X, progress=False)
    h = sae.health(X)
    assert h["fve"] >= 0.9, h["fve"]
    assert _recovered(m.features, sae.W_dec) >= 0.8
    assert all(rec["kl"] == 0.0 for rec in sae.history_)  # plain reconstruction unless asked


def test_old_defaults_fail_the_same_check():
    """The check can fail: the retrieval-KL defaults of before stay below 0.9 FVE on this data."""
    _, X = _planted(128, 64, 4)
    sae = TopKSAE(64, 128, 6, seed=0).fit(X, epochs=10, batch_size=512, lr=1e-3, kl_weight=1.0, progress=False)
    assert sae.health(X)["fve"] < 0.9


def test_default_epochs_follow_the_step_budget():
    from latentatlas.sae.train import DEFAULT_STEPS, MAX_EPOCHS

    _, X = _planted(64, 16, 2, n=600)
    sae = TopKSAE(16, 64, 3).fit(X, batch_size=100, progress=False)
    assert len(sae.history_) == min(MAX_EPOCHS, -(-DEFAULT_STEPS // 6))


def test_progress_is_bounded_when_not_a_terminal(monkeypatch):
    err = io.StringIO()  # not a tty: the log-file case
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress_bar(5000, "x")
    for _ in range(5000):
        bar.update(1)
        bar.set_postfix(loss=1.0, refresh=False)
    bar.close()
    redraws = err.getvalue().count("\r")
    assert redraws <= PROGRESS_UPDATES + 3, redraws
    assert progress_bar(10, "x", enabled=False).disable


def test_batch_topk_trains_and_runs_as_jumprelu():
    """BatchTopK keeps rows·k activations per batch; its inference form is JumpReLU at the learnt cutoff."""
    from latentatlas.sae import ThresholdSAE

    m, X = _planted(128, 64, 4)
    sae = TopKSAE(64, 128, 6, seed=0).fit(X, batch_topk=True, progress=False)
    jr = ThresholdSAE.from_batch_topk(sae)
    assert jr.architecture == "batchtopk" and sae.batch_topk_threshold_ > 0
    np.testing.assert_allclose(jr.threshold, sae.batch_topk_threshold_, rtol=1e-6)
    h = jr.health(X)
    assert abs(h["l0"] - 6) < 1.0  # the batch-level L0 carries over to the threshold
    assert h["fve"] >= 0.9
    assert _recovered(m.features, jr.W_dec) >= 0.8
    with pytest.raises(ValueError, match="threshold"):
        ThresholdSAE.from_batch_topk(TopKSAE(64, 128, 6))
