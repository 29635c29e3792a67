"""Figures that follow the data they are given: one bar group per corpus and split, one curve per corpus."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from xlsr_helpers.evaluate import plots  # noqa: E402


def test_class_balance_has_a_bar_group_per_corpus_and_split():
    counts = pd.DataFrame({"corpus": ["a", "a", "a", "b"], "split": ["train", "train", "dev", "train"],
                           "label": ["bonafide", "spoof", "spoof", "spoof"], "attack": ["-", "A01", "A02", "A01"],
                           "kept": [3, 5, 7, 11]})
    ax = plots.class_balance(counts).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a\ntrain", "a\ndev", "b\ntrain"]
    heights = sorted(round(p.get_height()) for p in ax.patches if p.get_height() > 0)
    assert heights == [3, 5, 7, 11]
    one = plots.class_balance(counts[counts.corpus == "a"]).axes[0]  # one corpus: splits alone, as before
    assert [t.get_text() for t in one.get_xticklabels()] == ["train", "dev"]


def test_training_curves_draw_each_corpus_beside_the_pooled_eer():
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [0.7, 0.5], "dev_loss": [0.7, 0.6], "dev_eer": [0.3, 0.2],
                            "dev_eer_a": [0.25, 0.1], "dev_eer_b": [0.4, 0.35], "lr": [1e-3, 5e-4], "seconds": [1, 2]})
    eer_axis = plots.training_curves(history).axes[1]
    assert [line.get_label() for line in eer_axis.get_lines()] == ["pooled", "a", "b"]
    assert list(eer_axis.get_lines()[1].get_ydata()) == [25.0, 10.0]
