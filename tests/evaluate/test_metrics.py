import numpy as np
import pandas as pd
import pytest
from reference_metrics import brute_force_eer, official_eer

from xlsr_helpers.evaluate.metrics import (
    AsvRates,
    MetricError,
    compute_det_curve,
    compute_eer,
    min_tdcf,
    per_attack_eer,
    tdcf_curve_2019,
)


@pytest.mark.parametrize("seed", range(5))
def test_eer_matches_official_on_continuous_scores(seed):
    rng = np.random.default_rng(seed)
    bona, spoof = rng.normal(1, 1, 300), rng.normal(-1, 1.3, 2000)
    eer, thr = compute_eer(bona, spoof)
    ref_eer, ref_thr = official_eer(bona, spoof)
    assert eer == pytest.approx(ref_eer) and thr == pytest.approx(ref_thr)
    assert 0.05 < eer < 0.4


@pytest.mark.parametrize("seed", range(5))
def test_eer_is_bit_for_bit_official_on_tie_heavy_scores(seed):
    rng = np.random.default_rng(seed)
    for bona, spoof in [(rng.normal(0.5, 1, 97), rng.normal(0, 1, 211)),
                        (rng.integers(0, 6, 150).astype(float), rng.integers(0, 4, 400).astype(float)),
                        (np.round(rng.normal(1, 1, 300), 1), np.round(rng.normal(-1, 1.3, 2000), 1))]:
        assert compute_eer(bona, spoof) == official_eer(bona, spoof)  # exact, not approx


@pytest.mark.parametrize("seed", range(5))
def test_merged_ties_match_the_brute_force_sweep(seed):
    rng = np.random.default_rng(seed)
    for bona, spoof in [(rng.normal(0.5, 1, 97), rng.normal(0, 1, 211)),
                        (rng.integers(0, 6, 150).astype(float), rng.integers(0, 4, 400).astype(float))]:
        eer, thr = compute_eer(bona, spoof, merge_ties=True)
        ref = brute_force_eer(bona, spoof)
        assert eer == pytest.approx(ref[0]) and thr == pytest.approx(ref[1])


def test_ties_official_split_versus_merged():
    bona = np.array([1.0, 1.0, 1.0, 2.0])
    spoof = np.array([1.0, 1.0, 0.0, 0.0])
    # official: the stable sort puts the three bonafide 1.0s before the two spoof 1.0s, and every trial
    # is a point: rejecting [0, 0, 1b] gives miss 1/4, fa 2/4 ... the EER pair is (0.5, 0.5) at 1.0
    miss, fa, thr = compute_det_curve(bona, spoof)
    assert list(thr) == [-0.001, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    assert list(miss) == [0, 0, 0, 0.25, 0.5, 0.75, 0.75, 0.75, 1.0]
    assert list(fa) == [1, 0.75, 0.5, 0.5, 0.5, 0.5, 0.25, 0.0, 0.0]
    assert compute_eer(bona, spoof) == (0.5, 1.0)
    assert compute_eer(bona, spoof) == compute_eer(bona[::-1], spoof[::-1])  # order inside a tie is fixed
    # merged: a threshold cannot split the tie at 1.0
    miss, fa, thr = compute_det_curve(bona, spoof, merge_ties=True)
    assert list(thr) == pytest.approx([-0.001, 0.0, 1.0, 2.0])
    assert compute_eer(bona, spoof, merge_ties=True) == (0.25, 0.0)  # best point: reject both spoof 0s


def test_perfect_separation_gives_zero_eer():
    eer, thr = compute_eer([3, 4, 5], [0, 1, 2])
    assert eer == 0.0 and 2 <= thr < 3


@pytest.mark.parametrize("bona,spoof,match", [([], [1.0], "empty"), ([1.0], [], "empty"),
                                               ([1.0, np.nan], [0.0], "NaN"), ([1.0], [np.inf], "NaN")])
def test_bad_scores_raise(bona, spoof, match):
    with pytest.raises(MetricError, match=match):
        compute_eer(bona, spoof)


def test_min_tdcf_hand_checked():
    asv = AsvRates(threshold=0.0, p_fa=0.1, p_miss=0.05, p_miss_spoof=0.4)
    bona, spoof = [1.0, 2.0], [0.0, 1.5]
    # 2019: C1 = .9405*(1-.05) - .0095*10*.1 = .883975, C2 = 10*.05*(1-.4) = .3; best point miss 0, fa .5
    assert min_tdcf(bona, spoof, asv, "2019") == pytest.approx((0.15 / 0.3, 0.0))
    # 2021: C0 = .9405*.05 + .0095*10*.1 = .056525, C1 = .9405 - C0, C2 = .3, default = C0 + .3
    assert min_tdcf(bona, spoof, asv, "2021")[0] == pytest.approx((0.056525 + 0.15) / 0.356525)
    curve, _ = tdcf_curve_2019(bona, spoof, asv)
    assert curve[0] == pytest.approx(1.0)  # accept-all CM costs exactly the normaliser


def test_asv_rates_use_asv_eer_threshold():
    rates = AsvRates.from_scores([2.0, 3.0, 4.0], [-1.0, 0.0, 1.0], [0.5, 2.5, 3.5])
    assert rates.threshold == pytest.approx(1.0)
    assert rates.p_miss == 0.0 and rates.p_fa == pytest.approx(1 / 3) and rates.p_miss_spoof == pytest.approx(1 / 3)


def test_tdcf_rejects_degenerate_asv():
    asv = AsvRates(threshold=0.0, p_fa=0.0, p_miss=0.0, p_miss_spoof=1.0)  # ASV rejects every spoof
    with pytest.raises(MetricError, match="normaliser"):
        min_tdcf([1.0], [0.0], asv, "2019")
    with pytest.raises(MetricError, match="version"):
        min_tdcf([1.0], [0.0], asv, "2020")


def test_per_attack_eer_uses_all_bonafide():
    df = pd.DataFrame({"score": [5, 6, 7, 0, 1, 6.5, 8],
                       "label": ["bonafide"] * 3 + ["spoof"] * 4,
                       "attack": ["-"] * 3 + ["A01", "A01", "A02", "A02"]})
    table = per_attack_eer(df).set_index("attack")
    assert table.loc["A01", "eer"] == 0.0
    assert table.loc["A02", "eer"] > 0.3
    assert (table["n_bonafide"] == 3).all()
    assert table.loc["pooled", "n_spoof"] == 4


def test_single_class_or_unknown_label_raises():
    df = pd.DataFrame({"score": [1.0, 2.0], "label": ["bonafide", "bonafide"], "attack": ["-", "-"]})
    with pytest.raises(MetricError, match="empty"):
        per_attack_eer(df)
    df.loc[1, "label"] = "fake"
    with pytest.raises(MetricError, match="unknown label"):
        per_attack_eer(df)


def test_roc_points_table():
    from xlsr_helpers.evaluate.metrics import roc_points
    t = roc_points([2.0, 3.0], [0.0, 1.0])
    assert list(t.columns) == ["threshold", "miss_rate", "fa_rate", "tpr"]
    assert t.miss_rate.is_monotonic_increasing and t.fa_rate.is_monotonic_decreasing
    assert (t.iloc[0].miss_rate, t.iloc[0].fa_rate) == (0.0, 1.0) and (t.tpr == 1 - t.miss_rate).all()


def test_per_condition_eer_restricts_both_classes():
    from xlsr_helpers.evaluate.metrics import per_condition_eer
    df = pd.DataFrame({"score": [5, 6, 0, 1, 1, 2, 1.5, 0.5, 9],
                       "label": ["bonafide", "bonafide", "spoof", "spoof", "bonafide", "bonafide", "spoof", "spoof",
                                 "bonafide"],
                       "codec": ["none"] * 4 + ["alaw"] * 4 + ["gsm"]})
    t = per_condition_eer(df, "codec").set_index("codec")
    assert t.loc["none", "eer"] == 0.0 and t.loc["alaw", "eer"] == pytest.approx(0.5)
    assert np.isnan(t.loc["gsm", "eer"]) and t.loc["gsm", "n_bonafide"] == 1  # reported, not dropped
    assert t.n_bonafide.sum() + t.n_spoof.sum() == len(df)


def test_condition_tables_follow_the_metadata_columns():
    from xlsr_helpers.evaluate.results import condition_tables
    df = pd.DataFrame({"score": [1.0, 0.0], "label": ["bonafide", "spoof"], "attack": ["-", "A07"],
                       "codec": ["alaw", "alaw"], "transmission": ["ita_tx", "ita_tx"]})
    assert set(condition_tables(df)) == {"codec", "transmission"}
    assert condition_tables(df.drop(columns=["codec", "transmission"])) == {}


def test_notebook_metrics_on_2021_style_scores_use_the_eval_phase():
    from xlsr_helpers.evaluate.results import accuracy_at, condition_tables, evaluate_scores
    scored = pd.DataFrame({
        "utt_id": list("abcdef"), "path": list("abcdef"), "error": [""] * 6,
        "score": [2.0, -1.0, 1.5, -2.0, -5.0, 5.0],
        "label": ["bonafide", "spoof", "bonafide", "spoof", "bonafide", "spoof"],
        "attack": ["-", "A07", "-", "A08", "-", "A08"],
        "codec": ["alaw", "alaw", "gsm", "gsm", "gsm", "gsm"],
        "phase": ["eval", "eval", "eval", "eval", "progress", "progress"]})
    res = evaluate_scores(scored, None)
    assert res["eer"] == 0.0 and res["n_bonafide"] == 2 and "4 of 6" in res["trials"]
    assert evaluate_scores(scored, None, phase="all")["eer"] > 0
    assert accuracy_at(scored, 0.0) == 1.0 and accuracy_at(scored, 0.0, phase="all") < 1.0
    codec = condition_tables(scored)["codec"].set_index("codec")
    assert codec.loc["gsm", "n_bonafide"] == 1  # the progress-phase trial is not counted
    bad = scored.assign(error=["", "", "", "", "", "cannot decode"])
    with pytest.raises(Exception, match="could not be scored"):
        evaluate_scores(bad, None)
