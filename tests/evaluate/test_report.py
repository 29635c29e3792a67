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
