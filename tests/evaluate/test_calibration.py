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
