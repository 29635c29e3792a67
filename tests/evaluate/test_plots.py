"""Figures: what is drawn is the data given (read back from the Figure's artists)."""

import pandas as pd
from matplotlib.figure import Figure

from xlsr_helpers.evaluate import plots


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
