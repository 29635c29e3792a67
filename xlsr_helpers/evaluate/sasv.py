"""ASVspoof 5 track 2 (SASV): min a-DCF, min t-DCF and t-EER as the organisers' evaluation package
computes them (asvspoof-challenge/asvspoof5, ``evaluation-package/``: ``calculate_aDCF_tdcf_tEER``).

Higher scores mean *accept* (target bona fide). Like the package, every curve has one point per
trial after a stable sort of the scores (classes concatenated target, nontarget, spoof), so a run of
tied scores is split as the package splits it, and the values equal the package's bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xlsr_helpers.evaluate.metrics import MetricError, _as_scores, compute_det_curve


@dataclass(frozen=True)
class SasvCosts:
    """The costs and priors ``calculate_aDCF_tdcf_tEER`` passes (not ``a_dcf.CostModel``'s defaults,
    Ptrg 0.9, Pnontrg 0.05, Cfa_cm 20, which the evaluation never uses)."""

    p_spoof: float = 0.05
    target_share: float = 0.99  # of the bona fide trials; the package multiplies both shares, never 1 - 0.99
    nontarget_share: float = 0.01
    c_miss: float = 1.0  # target rejected
    c_fa_asv: float = 10.0  # nontarget accepted
    c_fa_cm: float = 10.0  # spoof accepted

    @property
    def p_tar(self) -> float:
        return (1 - self.p_spoof) * self.target_share

    @property
    def p_non(self) -> float:
        return (1 - self.p_spoof) * self.nontarget_share


@dataclass(frozen=True)
class FixedAsvRates:
    """ASV error rates behind the track-2 min t-DCF: the package's organisers' ASV, pooled over all
    conditions; ``evaluation.py`` always uses these, whatever ASV scores a submission holds."""

    p_fa_non: float = 0.01881016557566423
    p_miss: float = 0.01880141010575793
    p_fa_spoof: float = 0.4607082907604729


def _three(target, nontarget, spoof, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (_as_scores(target, f"{what} target scores"), _as_scores(nontarget, f"{what} nontarget scores"),
            _as_scores(spoof, f"{what} spoof scores"))


def a_det_curve(target, nontarget, spoof) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nontargets accepted, spoofs accepted, targets rejected and thresholds (``compute_a_det_curve``):
    point 0 accepts everything, point k rejects the k lowest trials."""
    tar, non, spf = _three(target, nontarget, spoof, "SASV")
    scores = np.concatenate([tar, non, spf])
    labels = np.concatenate([np.ones(tar.size), np.zeros(non.size), np.full(spf.size, 2.0)])
    order = np.argsort(scores, kind="mergesort")
    labels = labels[order]
    far_asv = np.concatenate([[1.0], (non.size - np.cumsum(labels == 0)) / non.size])
    far_cm = np.concatenate([[1.0], (spf.size - np.cumsum(labels == 2)) / spf.size])
    frr = np.concatenate([[0.0], np.cumsum(labels == 1) / tar.size])
    thresholds = np.concatenate([[float(scores[order[0]]) - 1e-8], scores[order]])
    return far_asv, far_cm, frr, thresholds


def min_a_dcf(target, nontarget, spoof, costs: SasvCosts = SasvCosts()) -> tuple[float, float]:
    """Minimum normalised a-DCF of SASV scores and its threshold (``a_dcf._calculate_a_dcf``)."""
    far_asv, far_cm, frr, thr = a_det_curve(target, nontarget, spoof)
    curve = (costs.c_miss * costs.p_tar) * frr + (costs.c_fa_asv * costs.p_non) * far_asv \
        + (costs.c_fa_cm * costs.p_spoof) * far_cm
    curve = curve / min(costs.c_fa_asv * costs.p_non + costs.c_fa_cm * costs.p_spoof, costs.c_miss * costs.p_tar)
    i = int(np.argmin(curve))
    return float(curve[i]), float(thr[i])


def min_tdcf_sasv(bonafide_cm, spoof_cm, asv: FixedAsvRates = FixedAsvRates(),
                  costs: SasvCosts = SasvCosts()) -> tuple[float, float]:
    """Minimum normalised t-DCF of CM scores at fixed ASV error rates and its CM threshold
    (``calculate_modules.compute_tDCF``: C0 + C1 Pmiss_cm + C2 Pfa_cm over C0 + min(C1, C2))."""
    bona, spoof = _as_scores(bonafide_cm, "CM bonafide scores"), _as_scores(spoof_cm, "CM spoof scores")
    if np.unique(np.concatenate([bona, spoof])).size < 3:  # the package stops here too
        raise MetricError("min t-DCF needs soft CM scores: the cm-score column holds fewer than 3 distinct values")
    miss_cm, fa_cm, thr = compute_det_curve(bona, spoof)
    c0 = costs.p_tar * costs.c_miss * asv.p_miss + costs.p_non * costs.c_fa_asv * asv.p_fa_non
    c1 = costs.p_tar * costs.c_miss - (costs.p_tar * costs.c_miss * asv.p_miss
                                       + costs.p_non * costs.c_fa_asv * asv.p_fa_non)
    c2 = costs.p_spoof * costs.c_fa_cm * asv.p_fa_spoof
    if c0 < 0 or c1 < 0 or c2 < 0:
        raise MetricError(f"t-DCF weights are negative (C0={c0:.4g}, C1={c1:.4g}, C2={c2:.4g})")
    curve = (c0 + c1 * miss_cm + c2 * fa_cm) / (c0 + np.minimum(c1, c2))
    i = int(np.argmin(curve))
    return float(curve[i]), float(thr[i])


def asv_curves(target, nontarget, spoof) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ASV miss, nontarget and spoof false-accept rates and thresholds (``compute_Pmiss_Pfa_Pspoof_curves``)."""
    tar, non, spf = _three(target, nontarget, spoof, "ASV")
    scores = np.concatenate([tar, non, spf])
    labels = np.concatenate([np.ones(tar.size), np.zeros(non.size), -np.ones(spf.size)])
    order = np.argsort(scores, kind="mergesort")
    labels = labels[order]
    miss = np.concatenate([[0.0], np.cumsum(labels == 1) / tar.size])
    fa_non = np.concatenate([[1.0], 1 - np.cumsum(labels == 0) / non.size])
    fa_spoof = np.concatenate([[1.0], 1 - np.cumsum(labels == -1) / spf.size])
    thresholds = np.concatenate([[float(scores[order[0]]) - 0.001], scores[order]])
    return miss, fa_non, fa_spoof, thresholds


# ASV thresholds handled together in the t-EER search: bounds memory (rows x CM points floats)
_CELLS = 1 << 21


def _xpoint(cm: tuple[np.ndarray, ...], asv: tuple[np.ndarray, ...]) -> tuple[float, int, int] | None:
    """``compute_teer`` (rho 0.5) on the grid of CM x ASV operating points, all ASV thresholds at once:
    at each ASV threshold the CM point where tandem miss and false alarm meet, among ASV thresholds
    that miss fewer targets than they let through, the one nearest the point where both ratios agree
    (the first of equals). Returns (t-EER, ASV index, CM index) or None where no point qualifies."""
    miss_cm, fa_cm = cm
    miss_asv, fa_non, fa_spf = asv
    bona_passed, spoof_passed = 0.5 * (1 - miss_cm), 0.5 * fa_cm  # the package's (1 - rho) and rho products
    best: tuple[float, int, int] | None = None
    rows = max(1, _CELLS // miss_cm.size)
    with np.errstate(divide="ignore", invalid="ignore"):  # x/0 is inf, 0/0 NaN: neither is ever chosen, as there
        for lo in range(0, miss_asv.size, rows):
            a = slice(lo, lo + rows)
            miss_tdm = miss_cm[None, :] + (1 - miss_cm)[None, :] * miss_asv[a, None]
            fa_tdm = bona_passed[None, :] * fa_non[a, None] + spoof_passed[None, :] * fa_spf[a, None]
            j = np.argmin(np.abs(miss_tdm - fa_tdm), axis=1)
            allowed = miss_asv[a] < (1 - 0.5) * fa_non[a] + 0.5 * fa_spf[a]
            crit = np.abs(fa_non[a] / fa_spf[a] - fa_cm[j] / (1 - miss_cm[j]))
            crit = np.where(allowed & (crit < np.inf), crit, np.inf)
            k = int(np.argmin(crit))
            if crit[k] < (best[0] if best else np.inf):
                best = (float(crit[k]), lo + k, int(j[k]))
    if best is None:
        return None
    _, i, j = best
    return float(fa_spf[i] * fa_cm[j]), i, j


def t_eer(cm_target, cm_nontarget, cm_spoof, asv_target, asv_nontarget, asv_spoof,
          size_decimated: int = 3000, bin_width: int = 1600) -> tuple[float, float, float]:
    """Concurrent t-EER (Kinnunen et al., TPAMI 2023) as ``compute_teer_accelerated`` finds it, as a
    fraction (the package prints it in %), with its ASV and CM thresholds. Above ``size_decimated``
    operating points on both sides the package searches every n-th point first, then the points within
    ``bin_width`` of the best; so does this, as its figure is the official one."""
    miss_asv, fa_non, fa_spf, tau_asv = asv_curves(asv_target, asv_nontarget, asv_spoof)
    miss_cm, fa_cm, tau_cm = compute_det_curve(np.concatenate([_as_scores(cm_target, "CM target scores"),
                                                               _as_scores(cm_nontarget, "CM nontarget scores")]),
                                               cm_spoof)
    asv, cm = (miss_asv, fa_non, fa_spf), (miss_cm, fa_cm)
    ds_asv, ds_cm = tau_asv.size // size_decimated, tau_cm.size // size_decimated
    a, c = slice(None), slice(None)
    if ds_asv > 0 and ds_cm > 0:
        coarse = _xpoint(tuple(x[::ds_cm] for x in cm), tuple(x[::ds_asv] for x in asv))
        if coarse is None:
            raise MetricError("t-EER is undefined for these scores: no ASV threshold misses fewer targets than it "
                              "accepts nontargets and spoofs (the evaluation package fails here too)")
        ca, cc = coarse[1] * ds_asv, coarse[2] * ds_cm
        a = slice(max(ca - bin_width, 0), min(ca + bin_width, tau_asv.size))
        c = slice(max(cc - bin_width, 0), min(cc + bin_width, tau_cm.size))
    found = _xpoint(tuple(x[c] for x in cm), tuple(x[a] for x in asv))
    if found is None:
        raise MetricError("t-EER is undefined for these scores: no ASV threshold misses fewer targets than it "
                          "accepts nontargets and spoofs (the evaluation package fails here too)")
    teer, i, j = found
    return teer, float(tau_asv[a][i]), float(tau_cm[c][j])


def _split(df: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores, labels = df[column].to_numpy(dtype=np.float64), df["asv_label"].to_numpy()
    return tuple(scores[labels == k] for k in ("target", "nontarget", "spoof"))


def evaluate_sasv(df: pd.DataFrame, costs: SasvCosts = SasvCosts(), asv: FixedAsvRates = FixedAsvRates()) -> dict:
    """Track-2 metrics of a joined table (``cm_score``, ``asv_score``, ``sasv_score``, ``cm_label``,
    ``asv_label``; a score column of NaN stands for the package's ``-``): min a-DCF always; min t-DCF
    with CM scores; t-EER with CM and ASV scores (the package's ``t2_tandem`` needs both)."""
    counts = df["asv_label"].value_counts()
    out = {f"n_{k}": int(counts.get(k, 0)) for k in ("target", "nontarget", "spoof")}
    out["min_a_dcf"], out["a_dcf_threshold"] = min_a_dcf(*_split(df, "sasv_score"), costs)
    has_cm, has_asv = bool(df["cm_score"].notna().all()), bool(df["asv_score"].notna().all())
    if has_cm:
        cm = df["cm_score"].to_numpy(dtype=np.float64)
        out["min_tdcf"], out["tdcf_threshold"] = min_tdcf_sasv(cm[df.cm_label == "bonafide"], cm[df.cm_label == "spoof"],
                                                               asv, costs)
    if has_cm and has_asv:
        out["t_eer"], out["t_eer_asv_threshold"], out["t_eer_cm_threshold"] = t_eer(*_split(df, "cm_score"),
                                                                                   *_split(df, "asv_score"))
    return out
