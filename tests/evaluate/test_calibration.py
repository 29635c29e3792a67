"""Calibration: prior-weighted logistic regression recovers a known LLR; p_spoof follows a stated prior."""

import numpy as np
import pytest

from xlsr_helpers.evaluate.calibration import Calibration, fit_calibration, reliability_table
from xlsr_helpers.evaluate.metrics import MetricError, act_dcf, cllr


def gaussian_scores(rng, n_bona=4000, n_spoof=12000, scale=3.0, shift=-2.0):
    """Scores that are an affine map of a true LLR: bona ~ N(1, 1), spoof ~ N(-1, 1) in 'true' units,
    whose LLR is exactly 2 * x. The detector reports scale * x + shift."""
    x_b, x_s = rng.normal(1, 1, n_bona), rng.normal(-1, 1, n_spoof)
    return scale * x_b + shift, scale * x_s + shift, x_b, x_s


def test_fit_recovers_the_true_llr_whatever_the_class_ratio():
    rng = np.random.default_rng(0)
    s_b, s_s, _, _ = gaussian_scores(rng)
    cal = fit_calibration(s_b, s_s)
    # true LLR = 2x = 2 (s - shift) / scale = (2/3) s + 4/3
    assert cal.scale == pytest.approx(2 / 3, rel=0.05) and cal.offset == pytest.approx(4 / 3, abs=0.08)
    other = fit_calibration(s_b[:500], s_s)  # a 1:24 class ratio gives the same map
    assert other.scale == pytest.approx(cal.scale, rel=0.1) and other.offset == pytest.approx(cal.offset, abs=0.15)


def test_calibration_lowers_cllr_and_act_dcf_of_miscalibrated_scores():
    rng = np.random.default_rng(1)
    s_b, s_s, _, _ = gaussian_scores(rng)
    cal = fit_calibration(s_b, s_s)
    t_b, t_s, _, _ = gaussian_scores(rng)  # held-out trials
    assert cllr(cal.llr(t_b), cal.llr(t_s)) < 0.75 * cllr(t_b, t_s)
    assert act_dcf(cal.llr(t_b), cal.llr(t_s))[0] < act_dcf(t_b, t_s)[0]


def test_p_spoof_at_a_stated_prior():
    cal = Calibration(scale=1.0, offset=0.0, prior_spoof=0.5, fitted_on="dev", n_bonafide=1, n_spoof=1)
    # LLR 0 says nothing: the posterior is the prior
    assert cal.p_spoof(np.array([0.0]), 0.05)[0] == pytest.approx(0.05)
    # LLR log(3) for bona at an even prior: p_bona 3/4
    assert cal.p_spoof(np.array([np.log(3)]), 0.5)[0] == pytest.approx(0.25)
    assert Calibration.from_dict(cal.as_dict()) == cal


def test_reliability_table_counts_every_trial():
    p = np.array([0.05, 0.15, 0.12, 0.95, 0.97, 0.5])
    y = np.array([0, 0, 1, 1, 1, 0])
    t = reliability_table(p, y, bins=10)
    assert t.trials.sum() == 6 and t.trials[1] == 2 and t.spoof_rate[1] == 0.5 and t.spoof_rate[9] == 1.0


def _weighted_logistic_fit(bona, spoof, prior_spoof):
    """The calibration worked out without scikit-learn: the (scale, offset) that minimise the
    prior-weighted cross-entropy of ``llr = scale * s + offset`` at ``prior_spoof`` (Brümmer's Cllr
    objective): each class weighs its prior, whatever its count."""
    from scipy.optimize import minimize
    logit_bona = np.log((1 - prior_spoof) / prior_spoof)

    def cost(ab):
        a, b = ab
        return ((1 - prior_spoof) * np.mean(np.logaddexp(0, -(a * bona + b + logit_bona)))
                + prior_spoof * np.mean(np.logaddexp(0, a * spoof + b + logit_bona)))
    return minimize(cost, x0=[1.0, 0.0], method="BFGS", options={"gtol": 1e-12}).x


@pytest.mark.parametrize("prior_spoof", [0.05, 0.3, 0.9])
def test_fit_at_another_prior_minimises_that_priors_cross_entropy(prior_spoof):
    """Away from 0.5 the prior's log-odds are not zero: a missing or inverted prior term, or class
    weights swapped between the classes, moves scale/offset away from the objective's minimum."""
    rng = np.random.default_rng(5)
    bona, spoof = rng.normal(1.0, 1.5, 300), rng.normal(-0.5, 0.8, 700)  # unequal spreads: the prior matters
    cal = fit_calibration(bona, spoof, prior_spoof=prior_spoof)
    scale, offset = _weighted_logistic_fit(bona, spoof, prior_spoof)
    assert cal.scale == pytest.approx(scale, rel=1e-4) and cal.offset == pytest.approx(offset, abs=1e-4)
    assert cal.prior_spoof == prior_spoof and (cal.n_bonafide, cal.n_spoof) == (300, 700)


def test_the_llr_of_well_behaved_scores_does_not_depend_on_the_prior_fitted_at():
    """Scores that are an affine map of a true LLR: every prior recovers the same LLR (2/3 s + 4/3)."""
    s_b, s_s, _, _ = gaussian_scores(np.random.default_rng(2))
    for prior in (0.1, 0.5, 0.95):
        cal = fit_calibration(s_b, s_s, prior_spoof=prior)
        assert cal.scale == pytest.approx(2 / 3, rel=0.05) and cal.offset == pytest.approx(4 / 3, abs=0.1)


def test_p_spoof_combines_the_llr_with_a_prior_other_than_one_half():
    cal = Calibration(scale=2.0, offset=-1.0, prior_spoof=0.5, fitted_on="dev", n_bonafide=1, n_spoof=1)
    # score 1 -> LLR 1; posterior odds bona:spoof = e^1 * (0.8 / 0.2) = 4e, so p_spoof = 1 / (1 + 4e)
    assert cal.p_spoof(np.array([1.0]), 0.2)[0] == pytest.approx(1 / (1 + 4 * np.e))
    # score 0 -> LLR -1 at prior 0.9: odds bona = e^-1 / 9
    assert cal.p_spoof(np.array([0.0]), 0.9)[0] == pytest.approx(1 / (1 + np.exp(-1) / 9))
    assert cal.llr([0.0, 1.0, 2.5]).tolist() == pytest.approx([-1.0, 1.0, 4.0])


def test_fit_refuses_a_prior_outside_the_open_interval():
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(MetricError, match="prior_spoof must be in"):
            fit_calibration([1.0, 2.0], [0.0, -1.0], prior_spoof=bad)


def test_p_spoof_of_extreme_scores_is_exact_and_silent():
    """LLRs far beyond float range give (about) 0 or 1, without an overflow warning (np.exp is clipped)."""
    import warnings
    cal = Calibration(scale=1.0, offset=0.0, prior_spoof=0.5, fitted_on="dev", n_bonafide=1, n_spoof=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = cal.p_spoof(np.array([1e4, -1e4]), 0.5)
    assert 0 < p[0] < 1e-200 and p[1] == 1.0


def test_reliability_table_columns_and_bin_edges():
    p = np.array([0.0, 0.24, 0.26, 1.0])
    t = reliability_table(p, np.array([0, 1, 1, 1]), bins=4)
    assert list(t.columns) == ["mean_p_spoof", "spoof_rate", "trials", "bin_low", "bin_high"]
    assert t.bin_low.tolist() == [0, 0.25, 0.5, 0.75] and t.bin_high.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert t.trials.tolist()[0] == 2 and np.isnan(t.trials[2]) and t.trials[3] == 1  # p = 1 falls in the last bin
    assert t.mean_p_spoof[0] == pytest.approx(0.12) and t.spoof_rate[0] == 0.5


def test_04s_calibration_steps_change_nothing_they_are_not_named_for(tmp_path):
    """Looking the calibration up fits it without touching the scorer or the tables; applying it makes
    new tables; only ``write_split_scores`` writes, once per file, and lists what it wrote."""
    from types import SimpleNamespace

    import pandas as pd

    from xlsr_helpers.core.written import written
    from xlsr_helpers.evaluate.results import split_calibration, with_calibration, write_split_scores
    rng = np.random.default_rng(3)

    def table(n):
        label = np.where(np.arange(n) % 2 == 0, "bonafide", "spoof")
        score = rng.normal(0, 1, n) + 2.0 * (label == "bonafide")
        return pd.DataFrame({"utt_id": [f"u{i}" for i in range(n)], "score": score, "llr": np.nan, "p_spoof": np.nan,
                             "label": label, "error": ""})
    scored = {"dev": table(40), "eval": table(30)}
    before = {s: df.copy() for s, df in scored.items()}
    scorer = SimpleNamespace(calibration=None)
    cal = split_calibration(scorer, scored)
    dev = scored["dev"]
    expected = fit_calibration(dev.score[dev.label == "bonafide"], dev.score[dev.label == "spoof"], fitted_on="dev (04)")
    assert (cal.scale, cal.offset) == pytest.approx((expected.scale, expected.offset))
    assert (cal.fitted_on, cal.n_bonafide, cal.n_spoof, scorer.calibration) == ("dev (04)", 20, 20, None)
    for s in scored:
        pd.testing.assert_frame_equal(scored[s], before[s])
    applied = with_calibration(scored, cal, prior_spoof=0.2)
    for s, df in applied.items():
        assert df.llr.to_numpy() == pytest.approx(cal.llr(before[s].score))
        assert df.p_spoof.to_numpy() == pytest.approx(cal.p_spoof(before[s].score, 0.2))
        pd.testing.assert_frame_equal(scored[s], before[s])  # the tables it was given are as they were
    assert with_calibration(scored, None) is scored
    own = Calibration(2.0, -1.0, 0.5, "the detector's dev", 20, 20)
    assert split_calibration(SimpleNamespace(calibration=own), scored) is own  # the detector's own wins
    assert split_calibration(scorer, {"eval": scored["eval"]}) is None  # nothing to fit on
    paths = write_split_scores(applied, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == \
        ["scores/dev.csv", "scores/dev.txt", "scores/eval.csv", "scores/eval.txt"]
    assert written(tmp_path) == {"scores/", *(p.relative_to(tmp_path).as_posix() for p in paths)}
    assert pd.read_csv(tmp_path / "scores" / "eval.csv").llr.to_numpy() == pytest.approx(applied["eval"].llr)


def test_defaults_an_even_prior_fitted_on_dev_and_ten_bins():
    """Called without the optional arguments: the fit is weighted to prior 0.5 and says it was fitted on
    dev, p_spoof uses prior 0.5 and the reliability table has ten bins of width 0.1."""
    bona, spoof = [2.0, 1.0, 0.5, -0.2], [-1.0, 0.3, -2.0]
    cal = fit_calibration(bona, spoof)
    even = fit_calibration(bona, spoof, prior_spoof=0.5, fitted_on="dev")
    assert (cal.prior_spoof, cal.fitted_on) == (0.5, "dev")
    assert (cal.scale, cal.offset) == pytest.approx((even.scale, even.offset))
    c = Calibration(scale=1.0, offset=0.0, prior_spoof=0.5, fitted_on="dev", n_bonafide=1, n_spoof=1)
    assert c.p_spoof(np.array([np.log(3)]))[0] == pytest.approx(0.25)  # odds bona 3:1 at an even prior
    t = reliability_table(np.array([0.05, 0.95]), np.array([0, 1]))
    assert len(t) == 10 and t.bin_high.tolist() == pytest.approx([0.1 * (i + 1) for i in range(10)])


def test_fit_names_the_class_whose_scores_are_unusable():
    for bona, spoof, which in (([], [0.0], "bonafide scores"), ([1.0, np.nan], [0.0], "bonafide scores"),
                               ([1.0], [], "spoof scores"), ([1.0], [np.inf], "spoof scores")):
        with pytest.raises(MetricError, match=f"^{which} "):
            fit_calibration(bona, spoof)


def test_llr_is_float64_whatever_the_scores_type():
    """float32 scores (what a detector emits) become float64 LLRs: no precision lost to the offset."""
    cal = Calibration(scale=1.0, offset=1e4, prior_spoof=0.5, fitted_on="dev", n_bonafide=1, n_spoof=1)
    llr = cal.llr(np.array([1e-3], dtype=np.float32))
    assert llr.dtype == np.float64 and llr[0] == pytest.approx(1e4 + 1e-3, abs=1e-7)
