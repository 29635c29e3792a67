"""Figures follow the data they are given (read back from the Figure's artists): one bar group per corpus
and split, one curve per corpus, each error file's window scores over time."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

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


def test_window_scores_draw_each_errors_windows_over_time_and_the_threshold():
    windows = pd.DataFrame({"utt_id": ["a", "a", "a", "b", "z"], "path": "x", "window": [0, 1, 2, 0, 0],
                            "start": [0.0, 0.5, 1.0, 0.0, 0.0], "end": [1.0, 1.5, 2.0, 0.6, 1.0],
                            "score": [3.0, -1.0, 2.0, -2.0, 9.0]})
    errors = pd.DataFrame({"error": ["false accept", "false reject", "false reject"], "utt_id": ["a", "b", "c"],
                           "path": "x", "score": [1.3, -2.0, -4.0], "label": ["spoof", "bonafide", "bonafide"],
                           "attack": ["A07", "-", "-"]})
    fig = plots.window_scores(windows, errors, threshold=0.5)
    assert isinstance(fig, Figure) and len(fig.axes) == 3  # one per error file; "z" is not an error
    a, b, c = fig.axes
    line = a.lines[0]  # window middles and scores, in time order
    assert line.get_xdata().tolist() == [0.5, 1.0, 1.5] and line.get_ydata().tolist() == [3.0, -1.0, 2.0]
    segments = a.collections[0].get_segments()  # each window from its start to its end at its score
    assert [s.tolist() for s in segments] == [[[0.0, 3.0], [1.0, 3.0]], [[0.5, -1.0], [1.5, -1.0]],
                                              [[1.0, 2.0], [2.0, 2.0]]]
    assert all(list(ax.lines[-1].get_ydata()) == [0.5, 0.5] for ax in fig.axes)  # the threshold, dashed
    assert "a (spoof, A07)" in a.get_title() and "b (bonafide)" in b.get_title()
    assert b.lines[0].get_xdata().tolist() == [0.3]
    assert [t.get_text() for t in c.texts] == ["no window scores for this file"]
    empty = plots.window_scores(windows, errors.iloc[:0], threshold=0.5)
    assert len(empty.axes) == 1 and "no errors" in empty.axes[0].texts[0].get_text()
