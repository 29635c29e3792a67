"""Countermeasure metrics with the official ASVspoof definitions.

Convention (as in ASVspoof): a higher score means *more bonafide*. A trial is
rejected as spoof when ``score <= threshold``.

``compute_det_curve``/``compute_eer`` are the official ASVspoof 2019/2021/5 definitions, bit for
bit: one operating point per trial after a stable sort of the scores (bonafide first), so a run of
tied scores is split between bonafide and spoof (the order inside a tie is fixed by the sort, not
by the file). ``merge_ties=True`` gives the curve with one point per distinct score instead (a
threshold cannot split a tie); it differs from the official EER only on tied scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xlsr_helpers.core.errors import XlsrError


class MetricError(XlsrError, ValueError):
    """Raised for inputs on which a metric is undefined (empty, NaN, one class)."""


def _as_scores(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size == 0:
        raise MetricError(f"{name} is empty: EER/t-DCF need at least one score per class")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise MetricError(f"{name} contains {int(bad.sum())} NaN/Inf score(s) (first at index {int(np.argmax(bad))})")
    return arr


def compute_det_curve(bonafide_scores, spoof_scores, merge_ties: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss rate (bonafide rejected), false-alarm rate (spoof accepted) and thresholds.

    Point 0 is "accept everything" (threshold below the lowest score); point k rejects the k
    lowest trials (official), or every score ``<= thresholds[k]`` with ``merge_ties``.
    """
    bona = _as_scores(bonafide_scores, "bonafide scores")
    spoof = _as_scores(spoof_scores, "spoof scores")
    scores = np.concatenate([bona, spoof])
    is_bona = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    order = np.argsort(scores, kind="mergesort")
    scores, is_bona = scores[order], is_bona[order]
    bona_rejected = np.cumsum(is_bona)
    spoof_rejected = np.arange(1, scores.size + 1) - bona_rejected
    # official: every trial is a point; merge_ties: only the last of each run of tied scores
    last_of_tie = np.append(scores[1:] != scores[:-1], True) if merge_ties else np.ones(scores.size, dtype=bool)
    miss = np.concatenate([[0.0], bona_rejected[last_of_tie] / bona.size])
    fa = np.concatenate([[1.0], (spoof.size - spoof_rejected[last_of_tie]) / spoof.size])
    thresholds = np.concatenate([[scores[0] - 0.001], scores[last_of_tie]])
    return miss, fa, thresholds


def compute_eer(bonafide_scores, spoof_scores, merge_ties: bool = False) -> tuple[float, float]:
    """Equal error rate and its threshold, as the official ``compute_eer`` (``np.mean`` of the pair)."""
    miss, fa, thresholds = compute_det_curve(bonafide_scores, spoof_scores, merge_ties)
    i = int(np.argmin(np.abs(miss - fa)))
    return float(np.mean((miss[i], fa[i]))), float(thresholds[i])


def roc_points(bonafide_scores, spoof_scores) -> pd.DataFrame:
    """ROC/DET operating points as a table (threshold, miss, fa, tpr)."""
    miss, fa, thr = compute_det_curve(bonafide_scores, spoof_scores)
    return pd.DataFrame({"threshold": thr, "miss_rate": miss, "fa_rate": fa, "tpr": 1 - miss})


# --------------------------------------------------------------------------- t-DCF

@dataclass(frozen=True)
class CostModel:
    """t-DCF cost model of the ASVspoof 2019 evaluation plan (also used by 2021)."""

    p_spoof: float = 0.05
    p_tar_given_human: float = 0.99
    c_miss_asv: float = 1.0
    c_fa_asv: float = 10.0
    c_miss_cm: float = 1.0
    c_fa_cm: float = 10.0

    @property
    def p_tar(self) -> float:
        return (1 - self.p_spoof) * self.p_tar_given_human

    @property
    def p_non(self) -> float:
        return (1 - self.p_spoof) * (1 - self.p_tar_given_human)


@dataclass(frozen=True)
class AsvRates:
    """ASV error rates at the ASV threshold (the ASV EER threshold by default)."""

    threshold: float
    p_fa: float  # non-targets accepted
    p_miss: float  # targets rejected
    p_miss_spoof: float  # spoofs rejected by the ASV

    @classmethod
    def from_scores(cls, target, nontarget, spoof, threshold: float | None = None) -> AsvRates:
        tar = _as_scores(target, "ASV target scores")
        non = _as_scores(nontarget, "ASV non-target scores")
        spf = _as_scores(spoof, "ASV spoof scores")
        if threshold is None:
            threshold = compute_eer(tar, non)[1]
        return cls(
            threshold=float(threshold),
            p_fa=float(np.mean(non >= threshold)),
            p_miss=float(np.mean(tar < threshold)),
            p_miss_spoof=float(np.mean(spf < threshold)),
        )


def tdcf_curve_2019(bonafide_scores, spoof_scores, asv: AsvRates, cost: CostModel = CostModel()):
    """Normalised legacy t-DCF (ASVspoof 2019) for every CM threshold."""
    miss_cm, fa_cm, thr = compute_det_curve(bonafide_scores, spoof_scores)
    c1 = cost.p_tar * (cost.c_miss_cm - cost.c_miss_asv * asv.p_miss) - cost.p_non * cost.c_fa_asv * asv.p_fa
    c2 = cost.c_fa_cm * cost.p_spoof * (1 - asv.p_miss_spoof)
    if c1 < 0 or c2 < 0:
        raise MetricError(f"t-DCF weights are negative (C1={c1:.4g}, C2={c2:.4g}): check the ASV scores")
    if min(c1, c2) == 0:
        raise MetricError("t-DCF normaliser is zero: the ASV accepts no spoofs or rejects every target")
    return (c1 * miss_cm + c2 * fa_cm) / min(c1, c2), thr


def tdcf_curve_2021(bonafide_scores, spoof_scores, asv: AsvRates, cost: CostModel = CostModel()):
    """Normalised revised t-DCF (ASVspoof 2021) for every CM threshold."""
    miss_cm, fa_cm, thr = compute_det_curve(bonafide_scores, spoof_scores)
    c0 = cost.p_tar * cost.c_miss_asv * asv.p_miss + cost.p_non * cost.c_fa_asv * asv.p_fa
    c1 = cost.p_tar * cost.c_miss_asv - c0
    c2 = cost.p_spoof * cost.c_fa_cm * (1 - asv.p_miss_spoof)
    if c0 < 0 or c1 < 0 or c2 < 0:
        raise MetricError(f"t-DCF weights are negative (C0={c0:.4g}, C1={c1:.4g}, C2={c2:.4g})")
    default = c0 + min(c1, c2)
    if default == 0:
        raise MetricError("t-DCF normaliser is zero: a perfect ASV that also rejects every spoof leaves nothing to weigh")
    return (c0 + c1 * miss_cm + c2 * fa_cm) / default, thr


def min_tdcf(bonafide_scores, spoof_scores, asv: AsvRates, version: str = "2019") -> tuple[float, float]:
    """Minimum normalised t-DCF and the CM threshold where it is reached."""
    fn = {"2019": tdcf_curve_2019, "2021": tdcf_curve_2021}.get(str(version))
    if fn is None:
        raise MetricError(f"unknown t-DCF version {version!r}: use '2019' or '2021'")
    curve, thr = fn(bonafide_scores, spoof_scores, asv)
    i = int(np.argmin(curve))
    return float(curve[i]), float(thr[i])


# --------------------------------------------------------------------------- ASVspoof 5 (track 1)

@dataclass(frozen=True)
class DcfCosts:
    """The ASVspoof 5 DCF: Pspoof 0.05, Cmiss 1 (bonafide rejected), Cfa 10 (spoof accepted)."""

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0

    @property
    def bayes_threshold(self) -> float:
        """The Bayes decision threshold for LLR scores: -log(beta)."""
        return float(-np.log(self.c_miss * (1 - self.p_spoof) / (self.c_fa * self.p_spoof)))


def min_dcf(bonafide_scores, spoof_scores, costs: DcfCosts = DcfCosts()) -> tuple[float, float]:
    """Minimum normalised DCF over the official DET points, and its threshold (``compute_mindcf``)."""
    miss, fa, thr = compute_det_curve(bonafide_scores, spoof_scores)
    p_target = 1 - costs.p_spoof  # the package writes the normaliser with 1 - p_target, not p_spoof (last bit)
    c_det = costs.c_miss * miss * p_target + costs.c_fa * fa * (1 - p_target)
    i = int(np.argmin(c_det))
    return float(c_det[i] / min(costs.c_miss * p_target, costs.c_fa * (1 - p_target))), float(thr[i])


def act_dcf(bonafide_scores, spoof_scores, costs: DcfCosts = DcfCosts()) -> tuple[float, float]:
    """Normalised DCF at the Bayes threshold for LLR scores (``compute_actDCF``): needs calibrated scores."""
    bona = _as_scores(bonafide_scores, "bonafide scores")
    spoof = _as_scores(spoof_scores, "spoof scores")
    thr = costs.bayes_threshold
    miss = np.sum(bona < thr) / bona.size
    fa = np.sum(spoof >= thr) / spoof.size
    dcf = costs.c_miss * (1 - costs.p_spoof) * miss + costs.c_fa * costs.p_spoof * fa
    return float(dcf / np.min([costs.c_fa * costs.p_spoof, costs.c_miss * (1 - costs.p_spoof)])), thr


def cllr(bonafide_scores, spoof_scores) -> float:
    """Log-likelihood-ratio cost in bits (``calculate_CLLR``): 1 for a detector that says nothing,
    0 for a perfect, calibrated one, above 1 for badly calibrated scores."""
    bona = _as_scores(bonafide_scores, "bonafide scores")
    spoof = _as_scores(spoof_scores, "spoof scores")
    with np.errstate(over="ignore"):  # exp overflows to inf exactly where the official code does
        return float(0.5 * (np.mean(np.log1p(np.exp(-bona))) + np.mean(np.log1p(np.exp(spoof)))) / np.log(2))


# --------------------------------------------------------------------------- tables

def _check_labels(labels: np.ndarray) -> None:
    unknown = sorted(set(labels) - {"bonafide", "spoof"})
    if unknown:
        raise MetricError(f"unknown label(s) {unknown[:5]}: expected 'bonafide' or 'spoof'")


def eer_from_frame(df: pd.DataFrame, score_col: str = "score", label_col: str = "label") -> tuple[float, float]:
    """EER of a table with a score column and a bonafide/spoof label column."""
    labels = df[label_col].to_numpy()
    _check_labels(labels)
    scores = df[score_col].to_numpy()
    return compute_eer(scores[labels == "bonafide"], scores[labels == "spoof"])


def per_attack_eer(df: pd.DataFrame, score_col: str = "score", label_col: str = "label",
                   attack_col: str = "attack") -> pd.DataFrame:
    """EER of each attack's spoofs against *all* bonafide trials (ASVspoof convention)."""
    labels = df[label_col].to_numpy()
    _check_labels(labels)
    bona = df.loc[labels == "bonafide", score_col].to_numpy()
    rows = []
    for attack, group in df[labels == "spoof"].groupby(attack_col, sort=True):
        eer, thr = compute_eer(bona, group[score_col].to_numpy())
        rows.append({"attack": attack, "n_spoof": len(group), "eer": eer, "threshold": thr})
    pooled, thr = compute_eer(bona, df.loc[labels == "spoof", score_col].to_numpy())
    rows.append({"attack": "pooled", "n_spoof": int((labels == "spoof").sum()), "eer": pooled, "threshold": thr})
    out = pd.DataFrame(rows)
    out.insert(2, "n_bonafide", len(bona))
    return out


def per_condition_eer(df: pd.DataFrame, condition_col: str, score_col: str = "score",
                      label_col: str = "label") -> pd.DataFrame:
    """EER within each value of a condition shared by both classes (ASVspoof 2021 codec and
    transmission conditions): bonafide and spoof trials of that condition only."""
    _check_labels(df[label_col].to_numpy())
    rows = []
    for value, g in df.groupby(condition_col, sort=True):
        bona, spoof = g.loc[g[label_col] == "bonafide", score_col], g.loc[g[label_col] == "spoof", score_col]
        if len(bona) and len(spoof):
            eer, thr = compute_eer(bona.to_numpy(), spoof.to_numpy())
        else:  # a condition with one class has no EER; say so instead of dropping the row
            eer, thr = float("nan"), float("nan")
        rows.append({condition_col: value, "n_bonafide": len(bona), "n_spoof": len(spoof), "eer": eer,
                     "threshold": thr})
    return pd.DataFrame(rows)
