"""Score calibration: detector scores -> log-likelihood ratios that mean what they say.

A class-weighted detector's ``logit[bonafide] - logit[spoof]`` ranks trials well (EER, min DCF) but
is not a log-likelihood ratio, so ``sigmoid`` of it is not a probability. ``fit_calibration``
fits an affine map ``llr = scale * score + offset`` by prior-weighted logistic regression on dev
scores (scikit-learn; the classes weighted as ``prior_spoof`` : ``1 - prior_spoof``, so the
result does not depend on dev's class ratio). A probability then needs a stated prior:
``p_spoof(scores, prior_spoof)``. Act DCF and Cllr judge the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from xlsr_helpers.evaluate.metrics import MetricError, _as_scores


@dataclass(frozen=True)
class Calibration:
    scale: float
    offset: float
    prior_spoof: float  # the prior the logistic regression was weighted to (taken out of the LLR)
    fitted_on: str
    n_bonafide: int
    n_spoof: int
    method: str = "prior-weighted logistic regression (scikit-learn)"

    def llr(self, scores) -> np.ndarray:
        """log p(score | bonafide) / p(score | spoof)."""
        return self.scale * np.asarray(scores, dtype=np.float64) + self.offset

    def p_spoof(self, scores, prior_spoof: float = 0.5) -> np.ndarray:
        """Posterior probability of spoof at the stated prior probability of spoof."""
        log_odds_bona = self.llr(scores) + np.log((1 - prior_spoof) / prior_spoof)
        return 1 / (1 + np.exp(np.clip(log_odds_bona, -500, 500)))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(**d)


def fit_calibration(bonafide_scores, spoof_scores, prior_spoof: float = 0.5, fitted_on: str = "dev") -> Calibration:
    """Fit ``llr = scale * score + offset`` on labelled scores (bonafide = positive class)."""
    if not 0 < prior_spoof < 1:
        raise MetricError(f"prior_spoof must be in (0, 1), got {prior_spoof}")
    bona = _as_scores(bonafide_scores, "bonafide scores")
    spoof = _as_scores(spoof_scores, "spoof scores")
    x = np.concatenate([bona, spoof])[:, None]
    y = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    # each class weighs its prior in total, whatever its count
    w = np.concatenate([np.full(bona.size, (1 - prior_spoof) / bona.size), np.full(spoof.size, prior_spoof / spoof.size)])
    lr = LogisticRegression(C=1e6, max_iter=1000, tol=1e-10).fit(x, y, sample_weight=w * y.size)
    # the fitted log-odds include the training prior's log-odds; the LLR does not
    offset = float(lr.intercept_[0]) - float(np.log((1 - prior_spoof) / prior_spoof))
    return Calibration(scale=float(lr.coef_[0, 0]), offset=offset, prior_spoof=prior_spoof, fitted_on=fitted_on,
                       n_bonafide=int(bona.size), n_spoof=int(spoof.size))


def reliability_table(p_spoof: np.ndarray, is_spoof: np.ndarray, bins: int = 10):
    """Mean predicted p_spoof vs observed spoof rate per probability bin (for a reliability diagram)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p_spoof, edges[1:-1]), 0, bins - 1)
    df = pd.DataFrame({"bin": which, "p": p_spoof, "spoof": is_spoof.astype(float)})
    table = df.groupby("bin").agg(mean_p_spoof=("p", "mean"), spoof_rate=("spoof", "mean"), trials=("p", "size"))
    return table.reindex(range(bins)).assign(bin_low=edges[:-1], bin_high=edges[1:]).reset_index(drop=True)
