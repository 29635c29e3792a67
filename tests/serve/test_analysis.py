"""The demo's page-independent part (no gradio): an upload's verdict, p_spoof and window scores agree with
``xlsr score``'s row for the same file, and unusable uploads are refused in one line before decoding."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from xlsr_helpers.evaluate.scoring import Scorer
from xlsr_helpers.serve import analysis
from xlsr_helpers.serve.analysis import UploadError, analyse, check_upload, detector_facts


def stereo_clip(path, seconds=2.5, rate=44_100, seed=0):
    """Noise with a different signal per channel, at a rate the detector does not take."""
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal((int(seconds * rate), 2))).astype("float32"), rate)
    return path


def test_the_analysis_is_the_score_row_of_the_same_file(calibrated_detector, tmp_path):
    clip = stereo_clip(tmp_path / "clip.wav")
    scorer = Scorer(calibrated_detector)
    a = analyse(scorer, clip, prior_spoof=0.2)
    row = scorer.score_files([clip], progress=False).iloc[0]
    assert a.score == pytest.approx(row.score, abs=1e-9) and a.verdict == row.label_pred
    assert a.verdict == ("bonafide" if a.score > 0.25 else "spoof") and a.threshold == 0.25
    # p_spoof at prior 0.2 from the LLR by hand: posterior log-odds of bona fide = llr + log(0.8 / 0.2)
    llr = 2.0 * a.score - 0.5
    assert a.p_spoof == pytest.approx(1 / (1 + math.exp(llr + math.log(0.8 / 0.2))), rel=1e-12)
    # 2.5 s at 16 kHz = 40,000 samples; 1 s windows every 0.5 s: starts 0..1.5 s, the last flush with the end
    assert a.window_starts_s == [0.0, 0.5, 1.0, 1.5] and a.window_ends_s == [1.0, 1.5, 2.0, 2.5]
    assert a.score == pytest.approx(np.mean(a.window_scores), abs=1e-12)  # the detector's aggregation: mean
    assert row.n_windows == len(a.window_scores) and (a.source_rate, a.channels, a.duration_s) == (44_100, 2, 2.5)
    assert a.spoofed_windows == [(s, e) for s, e, v in zip(a.window_starts_s, a.window_ends_s, a.window_scores,
                                                          strict=True) if v <= 0.25]


def test_an_uncalibrated_detector_gives_no_p_spoof(untrained_detector, tmp_path):
    a = analyse(Scorer(untrained_detector), stereo_clip(tmp_path / "c.flac", seconds=0.5, rate=8_000))
    assert a.p_spoof is None and len(a.window_scores) == 1 and a.duration_s == 0.5  # shorter than a window: whole
    assert json.loads(json.dumps(a.as_dict()))["p_spoof"] is None  # what the page's API returns


def test_facts_come_from_the_folder(calibrated_detector):
    facts = detector_facts(Scorer(calibrated_detector), calibrated_detector)
    assert facts["base model"] == "facebook/wav2vec2-xls-r-300m" and facts["training data"] == "asvspoof2019-la"
    assert facts["dev EER"] == "4.250 %" and facts["threshold (dev EER)"] == "0.25"
    assert facts["windows"] == "1 s every 0.5 s, combined by mean" and facts["head, stage"] == "linear, stage 2"
    assert facts["licence"] == "facebook/wav2vec2-xls-r-300m: Apache-2.0; asvspoof2019-la: ODC-By 1.0"
    assert facts["calibration"].endswith("fitted on dev")


def test_uploads_are_refused_from_their_size_and_header_before_decoding(untrained_detector, tmp_path, monkeypatch):
    def no_decoding(*a, **k):
        raise AssertionError("decoded")
    monkeypatch.setattr(analysis, "load_audio", no_decoding)
    scorer = Scorer(untrained_detector)
    long = stereo_clip(tmp_path / "long.wav", seconds=3.0, rate=8_000)
    with pytest.raises(UploadError, match=r"^long.wav lasts 3.0 s; the demo takes up to 2 s"):
        analyse(scorer, long, max_seconds=2)
    with pytest.raises(UploadError, match=r"^long.wav is 93.8 KiB; the demo takes files up to 1.0 KiB"):
        analyse(scorer, long, max_bytes=1024)  # 3 s x 8000 x 2 channels x 4 bytes + header = 96,058 bytes
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really")
    with pytest.raises(UploadError, match=r"^junk.wav: not audio this demo can read") as err:
        check_upload(junk)
    assert str(tmp_path) not in str(err.value)  # the name, not the (temporary) folder
    with pytest.raises(UploadError, match=r"no such file"):
        check_upload(tmp_path / "gone.wav")


def test_short_silent_or_broken_audio_is_one_line(untrained_detector, tmp_path):
    scorer = Scorer(untrained_detector)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, dtype="float32"), 16_000)
    with pytest.raises(UploadError, match=r"^short.wav is too short: 100 samples at 16 kHz \(at least 400"):
        analyse(scorer, short)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(800, np.nan, dtype="float32"), 16_000, subtype="FLOAT")
    with pytest.raises(UploadError, match=r"^nan.wav: all samples are NaN/Inf$"):
        analyse(scorer, nan)
    with pytest.raises(Exception, match=r"prior_spoof=1.0 \(expected a number in \(0, 1\)\)"):
        analyse(scorer, short, prior_spoof=1.0)
