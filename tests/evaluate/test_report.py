"""The evaluation report: ROC AUC, confusion at a threshold, bootstrap interval, worst errors."""

import numpy as np
import pandas as pd
import pytest

from xlsr_helpers.evaluate import report
from xlsr_helpers.evaluate.metrics import compute_eer


def frame(bona, spoof):
    return pd.DataFrame({"utt_id": [f"b{i}" for i in range(len(bona))] + [f"s{i}" for i in range(len(spoof))],
                         "path": "x.flac", "score": np.concatenate([bona, spoof]),
                         "label": ["bonafide"] * len(bona) + ["spoof"] * len(spoof), "attack": "A01"})


def test_roc_auc_is_the_share_of_correctly_ordered_pairs():
    df = frame([3.0, 1.0], [2.0, 0.0, -1.0])
    # pairs (bona > spoof): 3 beats all 3, 1 beats 0 and -1: 5 of 6
    assert report.roc_auc(df) == pytest.approx(5 / 6)


def test_confusion_counts_decisions_at_the_threshold():
    df = frame([3.0, 1.0, 0.5], [2.0, 0.0, -1.0, 0.5])
    t = report.confusion_at(df, 0.5)  # score > 0.5 -> bonafide
    assert t.loc["bonafide", "bonafide"] == 2 and t.loc["bonafide", "spoof"] == 1
    assert t.loc["spoof", "bonafide"] == 1 and t.loc["spoof", "spoof"] == 3


def test_bootstrap_interval_is_seeded_and_holds_the_eer():
    rng = np.random.default_rng(0)
    df = frame(rng.normal(1, 1, 300), rng.normal(-1, 1, 900))
    a = report.bootstrap_eer(df, n=200, seed=3)
    assert a == report.bootstrap_eer(df, n=200, seed=3)  # reproducible
    eer = compute_eer(df.score[df.label == "bonafide"], df.score[df.label == "spoof"])[0]
    assert a["low"] < eer < a["high"] and a["high"] - a["low"] < 0.1
    assert report.bootstrap_eer(df, n=200, seed=4) != a


def test_worst_errors_are_the_most_confident_mistakes():
    df = frame([3.0, -2.0, 0.1, -0.5], [2.0, 0.0, 1.5, -1.0])
    w = report.worst_errors(df, threshold=0.2, k=2)
    assert w.error.tolist() == ["false accept", "false accept", "false reject", "false reject"]
    assert w.score.tolist() == [2.0, 1.5, -2.0, -0.5]


def test_bootstrap_resamples_each_class_with_replacement_to_its_own_size(monkeypatch):
    """Every resample draws bona fide trials only from the bona fide scores and spoofs only from the
    spoofs, each to its class's own size (the class ratio kept), with replacement; the interval is the
    percentile interval of those resamples' EERs at the stated level."""
    rng = np.random.default_rng(1)
    bona, spoof = rng.normal(1, 1, 40), rng.normal(-1, 1, 160)  # 1:4, disjoint values
    seen = []

    def recording_eer(b, s):
        seen.append((np.asarray(b), np.asarray(s)))
        return compute_eer(b, s)
    monkeypatch.setattr(report, "compute_eer", recording_eer)
    ci = report.bootstrap_eer(frame(bona, spoof), n=50, seed=7, level=0.8)
    assert len(seen) == 50
    for b, s in seen:
        assert b.size == 40 and s.size == 160
        assert np.isin(b, bona).all() and np.isin(s, spoof).all()
    assert any(len(np.unique(b)) < b.size for b, _ in seen)  # with replacement
    assert len({b.tobytes() for b, _ in seen}) == 50  # a new draw every time
    eers = [compute_eer(b, s)[0] for b, s in seen]
    assert ci["low"] == pytest.approx(np.percentile(eers, 10)) and ci["high"] == pytest.approx(np.percentile(eers, 90))
    assert (ci["level"], ci["resamples"], ci["seed"]) == (0.8, 50, 7)


def test_bootstrap_interval_of_a_small_class_is_wide():
    """Ten bona fide trials against 1000 spoofs: the EER is uncertain to about one trial in ten, so the
    interval spans well over 10 points; a thousand of each: a few points at most."""
    rng = np.random.default_rng(2)
    small = report.bootstrap_eer(frame(rng.normal(1, 1, 10), rng.normal(-1, 1, 1000)), n=300, seed=0)
    large = report.bootstrap_eer(frame(rng.normal(1, 1, 1000), rng.normal(-1, 1, 1000)), n=300, seed=0)
    assert small["high"] - small["low"] > 0.1 and large["high"] - large["low"] < 0.05


def test_calibration_report_uses_the_stated_prior():
    from xlsr_helpers.evaluate.calibration import Calibration
    cal = Calibration(scale=0.5, offset=0.25, prior_spoof=0.5, fitted_on="dev", n_bonafide=3, n_spoof=3)
    df = frame([2.0, 1.0, 4.0], [-1.0, 0.0, -3.0])
    rep = report.calibration_report(df, cal, prior_spoof=0.2)
    llr = 0.5 * df.score.to_numpy() + 0.25
    p = 1 / (1 + np.exp(llr) * 0.8 / 0.2)  # posterior odds bona = LLR ratio x prior odds 4:1
    table = rep["reliability"]
    assert table.trials.sum() == 6
    assert np.nansum(table.mean_p_spoof * table.trials) == pytest.approx(p.sum())
    assert rep["calibrated"]["prior_spoof"] == 0.2 and rep["calibrated"]["fitted_on"] == "dev"
    assert report.calibration_report(df, None)["calibrated"] is None


def test_the_decision_threshold_comes_from_dev_whenever_dev_was_scored():
    from xlsr_helpers.evaluate.results import decision_threshold, headline_split
    dev, ev, all_ = {"threshold": 0.3}, {"threshold": 0.9}, {"threshold": -0.4}
    assert decision_threshold({"dev": dev, "eval": ev}) == (0.3, "dev")  # the normal chain
    assert decision_threshold({"eval": ev, "dev": dev, "all": all_}) == (0.3, "dev")
    assert decision_threshold({"eval": ev}) == (0.9, "eval")  # an eval-only corpus (In-the-Wild)
    assert decision_threshold({"all": all_}) == (-0.4, "all")
    assert headline_split({"dev": dev, "eval": ev, "all": all_}) == "eval"
    assert headline_split({"dev": dev, "all": all_}) == "all" and headline_split({"dev": dev}) == "dev"


def test_the_report_decides_at_the_threshold_it_is_given():
    from xlsr_helpers.evaluate.results import evaluation_report, metrics_record
    df = frame([3.0, 1.0, 0.5], [2.0, 0.0, -1.0, 0.5]).assign(error="")
    rep = evaluation_report(df, threshold=0.25, calibration=None, bootstrap=0)
    conf = rep["confusion"]  # > 0.25: bona 3, 1, 0.5 accepted; spoofs 2 and 0.5 accepted
    assert (conf.loc["bonafide", "bonafide"], conf.loc["spoof", "bonafide"], conf.loc["spoof", "spoof"]) == (3, 2, 2)
    assert rep["eer_ci"] is None and rep["worst"].score.tolist() == [2.0, 0.5]
    per_attack = pd.DataFrame({"attack": ["A01"], "eer": [0.25]})
    results = {"dev": {"eer": 0.1, "threshold": 0.25, "per_attack": per_attack},
               "eval": {"eer": 0.2, "threshold": 0.7, "per_attack": per_attack}}
    rec = metrics_record(results, 0.25, "dev", "det", "asvspoof2019-la", "/data", t_start=0.0)
    assert (rec["split"], rec["eer"], rec["threshold"], rec["threshold_from"]) == ("eval", 0.2, 0.25, "dev")
    assert rec["dev"]["per_attack_eer"] == {"A01": 0.25} and "per_attack" not in rec["eval"]


def test_confident_errors_take_the_labels_from_the_manifest():
    """A score CSV as `xlsr score` writes it (no labels, an error row, read back with NaN for empty
    text) and its manifest: the most confident mistakes at the threshold, each with its label."""
    scores = pd.DataFrame({"utt_id": ["a", "b", "c", "d", "e", "f"], "path": [f"{u}.flac" for u in "abcdef"],
                           "score": [2.5, -3.0, 1.0, np.nan, -0.5, 0.9], "error": [np.nan] * 3 + ["unreadable"] + [np.nan] * 2})
    manifest = pd.DataFrame({"utt_id": list("fedcba"), "label": ["spoof", "bonafide", "spoof", "spoof", "bonafide",
                                                                 "spoof"], "attack": ["A02", "-", "A03", "A01", "-", "A01"]})
    got = report.confident_errors(scores, manifest, threshold=0.0, k=1)
    # spoofs above 0: a (2.5), c (1.0), f (0.9); bonafide at or below 0: b (-3.0), e (-0.5); d is an error row
    assert got[["error", "utt_id", "score", "label", "attack"]].values.tolist() == [
        ["false accept", "a", 2.5, "spoof", "A01"], ["false reject", "b", -3.0, "bonafide", "-"]]
    assert report.confident_errors(scores, manifest, threshold=0.0, k=5).utt_id.tolist() == ["a", "c", "f", "b", "e"]
    from xlsr_helpers.evaluate.scorefile import ScoreFileError
    with pytest.raises(ScoreFileError, match=r"1 scored id\(s\) are not in the manifest: \['a'\]"):
        report.confident_errors(scores, manifest[manifest.utt_id != "a"], threshold=0.0)


def test_calibration_report_figures_per_class_raw_and_calibrated():
    """Every figure of the report against the metric computed on the right class's scores: raw scores
    and the LLRs of the calibration, and the reliability table's spoof rate from the spoof labels."""
    from xlsr_helpers.evaluate.calibration import Calibration, reliability_table
    from xlsr_helpers.evaluate.metrics import act_dcf, cllr
    cal = Calibration(scale=0.5, offset=0.25, prior_spoof=0.5, fitted_on="dev", n_bonafide=4, n_spoof=3)
    bona, spoof = np.array([2.0, 1.0, 4.0, -0.5]), np.array([-1.0, 0.0, -3.0])  # unequal sizes, one error each
    rep = report.calibration_report(frame(bona, spoof), cal, prior_spoof=0.3)
    assert set(rep) == {"raw", "calibrated", "reliability"}
    assert rep["raw"] == {"cllr": pytest.approx(cllr(bona, spoof)), "act_dcf": pytest.approx(act_dcf(bona, spoof)[0])}
    lb, ls = 0.5 * bona + 0.25, 0.5 * spoof + 0.25
    assert rep["calibrated"] == {"cllr": pytest.approx(cllr(lb, ls)), "act_dcf": pytest.approx(act_dcf(lb, ls)[0]),
                                 "fitted_on": "dev", "prior_spoof": 0.3}
    p = 1 / (1 + np.exp(np.concatenate([lb, ls])) * 0.7 / 0.3)
    expected = reliability_table(p, np.array([0, 0, 0, 0, 1, 1, 1]))
    pd.testing.assert_frame_equal(rep["reliability"], expected)
    assert np.nansum(rep["reliability"].spoof_rate * rep["reliability"].trials) == 3  # the three spoofs
    assert report.calibration_report(frame(bona, spoof), cal)["calibrated"]["prior_spoof"] == 0.5  # the default
    assert report.calibration_report(frame(bona, spoof), None) == {
        "raw": rep["raw"], "calibrated": None, "reliability": None}


def test_confusion_keeps_both_classes_and_names_its_axes():
    """Every score above the threshold: no trial is decided spoof, yet the table keeps that column (zeros),
    rows are the true label and columns the decision, named so."""
    t = report.confusion_at(frame([3.0, 2.0], [1.0]), -5.0)
    assert t.index.tolist() == ["bonafide", "spoof"] and t.columns.tolist() == ["bonafide", "spoof"]
    assert (t.index.name, t.columns.name) == ("true", "decided")
    assert t.to_numpy().tolist() == [[2, 0], [1, 0]]


def test_worst_errors_at_a_score_equal_to_the_threshold():
    """score > threshold is accepted: a spoof exactly at it is no false accept, a bona fide trial exactly
    at it is a false reject. The rows are numbered afresh and keep the attack column."""
    w = report.worst_errors(frame([0.5, 2.0], [0.5, 0.9]), threshold=0.5, k=5)
    assert w.error.tolist() == ["false accept", "false reject"] and w.score.tolist() == [0.9, 0.5]
    assert w.utt_id.tolist() == ["s1", "b0"] and w.index.tolist() == [0, 1]
    assert w.columns.tolist() == ["error", "utt_id", "path", "score", "label", "attack"]


def test_confusion_of_one_class_only_still_has_both_rows():
    t = report.confusion_at(frame([1.0, -1.0], []), 0.0)
    assert t.index.tolist() == ["bonafide", "spoof"] and t.to_numpy().tolist() == [[1, 1], [0, 0]]


def test_worst_errors_default_to_five_of_each():
    w = report.worst_errors(frame([-1.0 * i for i in range(1, 8)], [float(i) for i in range(1, 8)]), threshold=0.0)
    assert w.error.tolist() == ["false accept"] * 5 + ["false reject"] * 5
    assert w.score.tolist() == [7.0, 6.0, 5.0, 4.0, 3.0, -7.0, -6.0, -5.0, -4.0, -3.0]


def test_bootstrap_interval_is_the_central_level_of_the_resampled_eers(monkeypatch):
    """With resampled EERs 0, 0.01, ..., 0.99 (linear interpolation between order statistics) the central
    80 % interval is [0.099, 0.891]; defaults: 1000 resamples, seed 0, level 0.95."""
    calls = iter(range(10_000))
    monkeypatch.setattr(report, "compute_eer", lambda b, s: (next(calls) / 100, 0.0))
    ci = report.bootstrap_eer(frame([1.0, 2.0], [0.0]), n=100, level=0.8)
    assert ci["low"] == pytest.approx(0.099) and ci["high"] == pytest.approx(0.891)
    df = frame([1.0, 2.0, 0.2], [0.0, 0.5])
    monkeypatch.setattr(report, "compute_eer", compute_eer)
    d = report.bootstrap_eer(df)
    assert (d["resamples"], d["seed"], d["level"]) == (1000, 0, 0.95)
    assert d == report.bootstrap_eer(df, n=1000, seed=0, level=0.95)
