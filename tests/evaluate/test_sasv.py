"""ASVspoof 5 track 2: min a-DCF, min t-DCF and t-EER equal to line-by-line ports of the organisers'
evaluation package (tests/reference_sasv.py) on tie-heavy random scores, for exact equality, and a
few values worked by hand."""

import numpy as np
import pandas as pd
import pytest
import reference_sasv as ref

from xlsr_helpers.evaluate.metrics import MetricError, compute_det_curve
from xlsr_helpers.evaluate.sasv import (
    FixedAsvRates,
    SasvCosts,
    asv_curves,
    evaluate_sasv,
    min_a_dcf,
    min_tdcf_sasv,
    t_eer,
)

# the cost model calculate_aDCF_tdcf_tEER builds for a-DCF (not a_dcf.CostModel's defaults)
OFFICIAL_ADCF_COSTS = ref.CostModel(Ptrg=(1 - 0.05) * 0.99, Pnontrg=(1 - 0.05) * 0.01, Pspf=0.05, Cmiss=1,
                                    Cfa_asv=10, Cfa_cm=10)


def trials(seed: int, n: tuple[int, int, int], ties: bool) -> pd.DataFrame:
    """Random track-2 trials: CM, ASV and SASV scores; rounded to one decimal (or integers) for ties."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["target", "nontarget", "spoof"], n)
    rng.shuffle(labels)
    cm = np.where(labels == "spoof", rng.normal(-1, 1.5, labels.size), rng.normal(1.5, 1.5, labels.size))
    asv = np.where(labels == "target", rng.normal(2, 1, labels.size),
                   np.where(labels == "spoof", rng.normal(1, 1.5, labels.size), rng.normal(-1, 1, labels.size)))
    sasv = cm + asv + rng.normal(0, 0.5, labels.size)
    if ties:
        decimals = 0 if seed % 2 else 1
        cm, asv, sasv = (np.round(x, decimals) for x in (cm, asv, sasv))
    return pd.DataFrame({"cm_score": cm, "asv_score": asv, "sasv_score": sasv,
                         "cm_label": np.where(labels == "spoof", "spoof", "bonafide"), "asv_label": labels})


def official(df: pd.DataFrame):
    return ref.calculate_aDCF_tdcf_tEER(df.cm_score.to_numpy(), df.asv_score.to_numpy(), df.sasv_score.to_numpy(),
                                        df.cm_label.to_numpy(), df.asv_label.to_numpy())


def classes(df, column):
    return [df[column].to_numpy()[df.asv_label.to_numpy() == k] for k in ("target", "nontarget", "spoof")]


@pytest.mark.parametrize("seed,ties", [(0, True), (1, True), (2, True), (3, False), (4, True), (5, True)])
def test_track2_metrics_equal_the_evaluation_package(seed, ties):
    df = trials(seed, (90, 50, 160), ties)
    adcf, tdcf, teer = official(df)
    got = evaluate_sasv(df)
    assert got["min_a_dcf"] == adcf
    assert got["min_tdcf"] == tdcf
    assert 100 * got["t_eer"] == teer  # the package returns per cent
    assert (got["n_target"], got["n_nontarget"], got["n_spoof"]) == (90, 50, 160)


@pytest.mark.parametrize("seed", [6, 7])
def test_t_eer_takes_the_packages_coarse_then_fine_search(seed):
    """Above 3000 operating points the package searches every 2nd point, then +-1600 around the best:
    6,500 trials, so both searches run as in an ASVspoof 5 evaluation."""
    df = trials(seed, (2600, 1300, 2600), ties=True)
    cm, asv = classes(df, "cm_score"), classes(df, "asv_score")
    miss_a, fa_n, fa_s, tau_a = ref.compute_Pmiss_Pfa_Pspoof_curves(*asv)
    miss_c, fa_c, tau_c = ref.compute_det_curve(np.concatenate(cm[:2]), cm[2])
    assert tau_a.size // 3000 == 2  # decimated by 2
    assert 100 * t_eer(*cm, *asv)[0] == ref.compute_teer_accelerated(miss_c, fa_c, tau_c, miss_a, fa_n, fa_s, tau_a)


@pytest.mark.parametrize("seed,size,width", [(0, 60, 2), (1, 40, 3), (2, 40, 3)])
def test_t_eer_decimation_and_window_as_the_package(seed, size, width):
    """Small decimation sizes and windows, chosen where the coarse-then-fine search ends elsewhere than
    the search over every point: the package's figure, not the exhaustive one."""
    df = trials(seed, (120, 60, 150), ties=True)
    cm, asv = classes(df, "cm_score"), classes(df, "asv_score")
    miss_a, fa_n, fa_s, tau_a = ref.compute_Pmiss_Pfa_Pspoof_curves(*asv)
    miss_c, fa_c, tau_c = ref.compute_det_curve(np.concatenate(cm[:2]), cm[2])
    expected = ref.compute_teer_accelerated(miss_c, fa_c, tau_c, miss_a, fa_n, fa_s, tau_a, size, width)
    assert expected != ref.compute_teer(miss_c, fa_c, tau_c, miss_a, fa_n, fa_s, tau_a)
    assert 100 * t_eer(*cm, *asv, size_decimated=size, bin_width=width)[0] == expected


def test_t_eer_in_chunks_equals_one_pass(monkeypatch):
    """The grid is searched a few ASV thresholds at a time: the first of equal criteria still wins."""
    import xlsr_helpers.evaluate.sasv as sasv
    df = trials(11, (80, 40, 100), ties=True)
    whole = t_eer(*classes(df, "cm_score"), *classes(df, "asv_score"))
    monkeypatch.setattr(sasv, "_CELLS", 3)  # one ASV threshold per chunk
    assert t_eer(*classes(df, "cm_score"), *classes(df, "asv_score")) == whole


def test_a_dcf_uses_the_evaluation_costs_not_the_module_defaults():
    df = trials(12, (60, 40, 80), ties=True)
    tar, non, spf = classes(df, "sasv_score")
    assert min_a_dcf(tar, non, spf)[0] == ref._calculate_a_dcf(tar, non, spf, OFFICIAL_ADCF_COSTS)["min_a_dcf"]
    assert min_a_dcf(tar, non, spf)[1] == ref._calculate_a_dcf(tar, non, spf, OFFICIAL_ADCF_COSTS)["min_a_dcf_thresh"]
    a_dcf_py = SasvCosts(p_spoof=0.05, target_share=0.9 / 0.95, nontarget_share=0.05 / 0.95, c_fa_cm=20)
    module_default = ref._calculate_a_dcf(tar, non, spf)["min_a_dcf"]
    assert min_a_dcf(tar, non, spf, a_dcf_py)[0] == pytest.approx(module_default)
    assert module_default != min_a_dcf(tar, non, spf)[0]


def test_a_dcf_by_hand():
    costs = SasvCosts()
    # priors 0.9405 / 0.0095 / 0.05: accepting all costs 10 * 0.0095 + 10 * 0.05 = 0.595, rejecting all 0.9405;
    # the normaliser is the smaller, 0.595
    assert costs.p_tar == pytest.approx(0.9405) and costs.p_non == pytest.approx(0.0095)
    # sorted: 0 target, 1 nontarget, 2 target, 3 spoof. Rejecting nothing: 0.595 / 0.595 = 1; rejecting the
    # lowest target adds 0.9405 / 2; rejecting up to 2 keeps the spoof: 0.9405 + 0.5. Accept-all is best.
    assert min_a_dcf([2.0, 0.0], [1.0], [3.0]) == (pytest.approx(1.0), pytest.approx(-1e-8))
    # nontargets and spoofs all below the targets: rejecting them costs nothing
    assert min_a_dcf([5.0, 4.0], [1.0], [0.0])[0] == 0.0
    assert min_a_dcf([5.0], [1.0, 0.5], [3.0, 2.0])[0] == 0.0
    # a spoof above the target: rejecting the nontarget only leaves the spoof's 0.5, i.e. 0.5 / 0.595
    assert min_a_dcf([5.0], [1.0], [6.0])[0] == pytest.approx(0.5 / 0.595)


def test_tdcf_by_hand():
    # C0 = 0.9405 * Pmiss_asv + 0.095 * Pfa_asv; C1 = 0.9405 - C0; C2 = 0.5 * Pfa_spoof_asv
    rates = FixedAsvRates()
    c0 = 0.9405 * rates.p_miss + 0.095 * rates.p_fa_non
    c2 = 0.5 * rates.p_fa_spoof
    # a perfect CM (every bonafide above every spoof) costs C0 alone: the floor an error-free CM reaches
    assert min_tdcf_sasv([3.0, 2.0, 4.0], [0.0, -1.0])[0] == pytest.approx(c0 / (c0 + c2))
    # a CM whose scores say the opposite: best is to accept everything, Pfa_cm 1 -> (C0 + C2) / (C0 + C2) = 1
    assert min_tdcf_sasv([0.0, -1.0], [3.0, 2.0, 4.0])[0] == pytest.approx(1.0)
    with pytest.raises(MetricError, match="soft CM scores"):
        min_tdcf_sasv([1.0, 1.0], [0.0, 0.0])


def test_t_eer_of_perfect_systems_is_zero():
    # ASV: targets above nontargets; CM: every bona fide above every spoof. At the ASV threshold between
    # nontargets and targets and the CM threshold below the bona fide, nothing wrong passes and nothing right stops
    teer, tau_asv, tau_cm = t_eer([5.0, 6.0], [1.0, 2.0], [-3.0, -2.0], [5.0, 6.0], [0.0, 1.0], [3.0, 4.0])
    assert teer == 0.0


def test_asv_curves_by_hand():
    miss, fa_non, fa_spf, thr = asv_curves([3.0], [1.0], [2.0, 2.0])
    # sorted 1 (nontarget), 2, 2 (spoofs), 3 (target)
    assert miss.tolist() == [0, 0, 0, 0, 1] and fa_non.tolist() == [1, 0, 0, 0, 0]
    assert fa_spf.tolist() == [1, 1, 0.5, 0, 0] and thr[0] == pytest.approx(0.999)


def test_without_cm_or_asv_scores_only_what_the_package_reports():
    df = trials(13, (30, 20, 40), ties=True)
    single = ref.calculate_aDCF_tdcf_tEER(None, None, df.sasv_score.to_numpy(), None, df.asv_label.to_numpy())
    got = evaluate_sasv(df.assign(cm_score=np.nan, asv_score=np.nan))
    assert got["min_a_dcf"] == single and "min_tdcf" not in got and "t_eer" not in got
    # CM scores alone: the min t-DCF needs no ASV scores (the fixed ASV rates), the t-EER does
    cm_only = evaluate_sasv(df.assign(asv_score=np.nan))
    assert cm_only["min_tdcf"] == official(df)[1] and "t_eer" not in cm_only


def test_an_empty_class_is_refused():
    df = trials(14, (30, 20, 40), ties=False)
    with pytest.raises(MetricError, match="SASV nontarget scores is empty"):
        evaluate_sasv(df[df.asv_label != "nontarget"])


def test_cm_curve_is_the_track1_curve():
    """t-EER's CM side is calculate_modules.compute_det_curve, the one track 1 uses."""
    df = trials(15, (50, 30, 60), ties=True)
    cm = classes(df, "cm_score")
    ours, theirs = compute_det_curve(np.concatenate(cm[:2]), cm[2]), ref.compute_det_curve(np.concatenate(cm[:2]), cm[2])
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
