"""Window scores (``Scorer.score_files(on_windows=...)``, ``score_into(windows=...)``, ``xlsr score
--windows``): one row per scoring window with its seconds, cut and scored here independently of
the Scorer, files of one window included, error rows without any."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import tone_wavs as tones

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.audio import load_audio
from xlsr_helpers.evaluate.score_output import WINDOW_COLUMNS, ScoreJob, score_into, windows_path
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig

WINDOW, HOP = 16000, 6000


def expected_windows(scorer, path):
    """(start, end) in seconds and the score of each window, cut here: every HOP samples, and one flush
    with the end when the hops do not reach it; a file up to one window long is that one window."""
    wave = load_audio(path)
    n = wave.size
    starts = [0] if n <= WINDOW else list(range(0, n - WINDOW + 1, HOP))
    if n > WINDOW and starts[-1] + WINDOW < n:
        starts.append(n - WINDOW)
    bounds = [(s / 16000, min(s + WINDOW, n) / 16000) for s in starts]
    return bounds, np.array([scorer.score_windows([wave[s:s + WINDOW]])[0] for s in starts])


@pytest.fixture
def scorer(untrained_detector):
    return Scorer(untrained_detector, ScoringConfig(device="cpu", window=WINDOW, hop=HOP, chunk_files=2, batch_size=3))


def test_one_row_per_window_with_its_seconds_and_score(scorer, tmp_path):
    # 41000 samples: starts 0, 6000, ..., 24000 and 25000 (flush with the end); 9000: one window, 0 to 0.5625 s
    files = tones(tmp_path, [41000, 9000, 16000, 28000])
    chunks = []
    out = scorer.score_files(files, ["a", "b", "c", "d"], progress=False, on_windows=chunks.append)
    assert [len(c) for c in chunks] == [6 + 1, 1 + 3]  # one table per chunk of two files
    win = pd.concat(chunks, ignore_index=True)
    assert win.columns.tolist() == WINDOW_COLUMNS
    for utt, path in zip("abcd", files, strict=True):
        rows = win[win.utt_id == utt]
        bounds, scores = expected_windows(scorer, path)
        assert list(zip(rows.start, rows.end, strict=True)) == bounds and rows.window.tolist() == list(range(len(bounds)))
        assert (rows.path == str(path)).all()
        np.testing.assert_allclose(rows.score, scores, rtol=0, atol=1e-5)
        # the file's score is the mean of exactly these rows, and its window count is theirs
        assert out.score[out.utt_id == utt].item() == pytest.approx(rows.score.mean(), abs=1e-12)
        assert out.n_windows[out.utt_id == utt].item() == len(rows)
    assert win[win.utt_id == "a"].start.tolist()[-2:] == [24000 / 16000, 25000 / 16000]
    assert win[win.utt_id == "b"][["start", "end"]].values.tolist() == [[0.0, 9000 / 16000]]


def test_error_rows_have_no_windows(scorer, tmp_path):
    good, = tones(tmp_path, [20000])
    short, broken = tmp_path / "short.wav", tmp_path / "broken.wav"
    sf.write(short, np.zeros(399, dtype=np.float32), 16000)
    broken.write_bytes(b"not audio")
    chunks = []
    out = scorer.score_files([short, good, broken, tmp_path / "folder"], ["s", "g", "x", "k"], progress=False,
                             known_errors={3: "folder holds no audio files"}, on_windows=chunks.append)
    assert (out.error != "").tolist() == [True, False, True, True]
    win = pd.concat(chunks, ignore_index=True)
    assert win.utt_id.tolist() == ["g", "g"] and len(win) == out.n_windows.sum()


def test_score_into_writes_the_windows_as_chunks_finish(scorer, tmp_path, monkeypatch):
    files = tones(tmp_path, [30000, 16000, 20000, 12000, 8000])
    whole = []
    scorer.score_files(files, [f"u{i}" for i in range(5)], progress=False, on_windows=whole.append)
    whole = pd.concat(whole, ignore_index=True)
    csv = tmp_path / "out" / "scores.csv"
    win = windows_path(csv)
    score_into(scorer, [ScoreJob(files, [f"u{i}" for i in range(5)])], csv, None, progress=False, windows=win)
    got = pd.read_csv(win)
    assert win == tmp_path / "out" / "scores.windows.csv" and got.utt_id.tolist() == whole.utt_id.tolist()
    np.testing.assert_allclose(got[["start", "end", "score"]], whole[["start", "end", "score"]], rtol=0, atol=1e-9)
    # a run stopped in its second chunk keeps the first chunk's windows (its rows: see test_scoring_failures)
    real, calls = Scorer._score_chunk, []

    def stops_second(self, loaded, scores, errors):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, loaded, scores, errors)
    monkeypatch.setattr(Scorer, "_score_chunk", stops_second)
    with pytest.raises(KeyboardInterrupt):
        score_into(scorer, [ScoreJob(files, [f"u{i}" for i in range(5)])], csv, None, progress=False, windows=win)
    assert pd.read_csv(win).utt_id.tolist() == whole.utt_id[whole.utt_id.isin(["u0", "u1"])].tolist()


def test_windows_beside_the_score_file():
    assert windows_path("runs/x/scores.csv").as_posix() == "runs/x/scores.windows.csv"
    assert windows_path("out").as_posix() == "out.windows.csv"
    assert windows_path("s.txt").as_posix() == "s.txt.windows.csv"


def test_xlsr_score_windows(untrained_detector, tmp_path, capsys, monkeypatch):
    from xlsr_helpers.cli.main import main
    files = tones(tmp_path, [30000, 9000])
    out = tmp_path / "s.csv"
    assert main(["score", str(untrained_detector), *map(str, files), "--out", str(out), "--windows",
                 "--window", str(WINDOW), "--hop", str(HOP)]) == 0
    assert f"windows -> {tmp_path / 's.windows.csv'}" in capsys.readouterr().out
    scores, win = pd.read_csv(out), pd.read_csv(tmp_path / "s.windows.csv")
    assert win.groupby("utt_id").size().to_dict() == dict(zip(scores.utt_id, scores.n_windows, strict=True)) \
        == {"f0": 4, "f1": 1}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["score", str(untrained_detector), str(files[0]), "--out", str(out), "--windows"]) == 2
    assert "--windows under torchrun" in capsys.readouterr().err


def test_windows_under_torchrun_are_refused_before_scoring(scorer, tmp_path, monkeypatch):
    from xlsr_helpers.evaluate import scoring
    monkeypatch.setattr(scoring, "_rank_world", lambda: (0, 2))
    with pytest.raises(ConfigError, match="one process only"):
        scorer.score_files(tones(tmp_path, [16000]), progress=False, on_windows=lambda df: None)


def test_windows_of_a_few_files_for_the_report(scorer, tmp_path):
    from xlsr_helpers.evaluate.score_output import windows_of
    files = tones(tmp_path, [30000, 12000])
    win = windows_of(scorer, [str(f) for f in files], ["x", "y"])
    for utt, path in zip("xy", files, strict=True):
        bounds, scores = expected_windows(scorer, path)
        rows = win[win.utt_id == utt]
        assert list(zip(rows.start, rows.end, strict=True)) == bounds
        np.testing.assert_allclose(rows.score, scores, rtol=0, atol=1e-5)
    assert windows_of(scorer, [], []).columns.tolist() == WINDOW_COLUMNS
