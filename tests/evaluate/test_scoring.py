"""Scoring mechanics, with a detector whose head is random (``untrained_detector``): what the folder's
settings decide, each file's score as the aggregate of its own windows, thresholds, chunking, error
rows and the manifest's columns. Every expected value is computed here from the windows themselves."""
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import UNTRAINED_SETTINGS
from conftest import tone_wavs as wavs

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.audio import SEGMENT_SAMPLES, load_audio
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig, resolve_scoring

SETTINGS = {"segment_samples": 32000, "scoring": {"window": 24000, "hop": 6000, "aggregation": "max"},
            "dev": {"threshold": 1.5}}


def fields(cfg):
    return cfg.window, cfg.hop, cfg.aggregation, cfg.threshold


def test_unset_fields_come_from_the_detector_and_given_ones_win():
    assert fields(resolve_scoring(ScoringConfig(), SETTINGS)) == (24000, 6000, "max", 1.5)
    # a window of one's own: the detector's hop was for its window, so half the given one
    assert fields(resolve_scoring(ScoringConfig(window=10000), SETTINGS)) == (10000, 5000, "max", 1.5)
    given = ScoringConfig(window=10000, hop=3000, aggregation="min", threshold=0.0)  # 0.0 is a given threshold
    assert fields(resolve_scoring(given, SETTINGS)) == (10000, 3000, "min", 0.0)
    assert fields(resolve_scoring(ScoringConfig(hop=7000), SETTINGS)) == (24000, 7000, "max", 1.5)
    # an older folder with only its training segment
    assert fields(resolve_scoring(ScoringConfig(), {"segment_samples": 32000})) == (32000, 16000, "mean", 0.0)


def test_a_folder_without_settings_scores_with_the_defaults_and_says_so(logged):
    with logged("xlsr_helpers.evaluate.scoring") as records:
        assert fields(resolve_scoring(ScoringConfig(), {})) == (SEGMENT_SAMPLES, SEGMENT_SAMPLES // 2, "mean", 0.0)
    assert [r.getMessage() for r in records] == [
        f"the detector folder has no xlsr_detector.json: scoring with {SEGMENT_SAMPLES}-sample windows and threshold 0"]
    with logged("xlsr_helpers.evaluate.scoring") as records:
        assert fields(resolve_scoring(ScoringConfig(window=16000), {})) == (16000, 8000, "mean", 0.0)
    assert len(records) == 1  # the threshold was guessed
    with logged("xlsr_helpers.evaluate.scoring") as records:
        resolve_scoring(ScoringConfig(window=16000, threshold=0.5), {})
    assert records == []  # nothing was guessed


def window_scores(scorer, path, window, hop):
    """Each window scored on its own, the windows cut here: starts 0, hop, ... and one flush with the end."""
    wave = load_audio(path)
    starts = [0] if wave.size <= window else list(range(0, wave.size - window + 1, hop))
    if wave.size > window and starts[-1] + window < wave.size:
        starts.append(wave.size - window)
    return np.array([scorer.score_windows([wave[s:s + window]])[0] for s in starts])


@pytest.mark.parametrize("aggregation", ["mean", "max", "min", "median"])
def test_each_file_scores_the_aggregate_of_its_own_windows(untrained_detector, tmp_path, aggregation):
    lengths = [16000, 41000, 9000, 56000, 24000]
    files = wavs(tmp_path, lengths)
    scorer = Scorer(untrained_detector, ScoringConfig(aggregation=aggregation, chunk_files=2, batch_size=3,
                                                      device="cpu"))
    window, hop = UNTRAINED_SETTINGS["scoring"]["window"], UNTRAINED_SETTINGS["scoring"]["hop"]
    assert (scorer.cfg.window, scorer.cfg.hop, scorer.cfg.threshold) == (window, hop, 0.25)
    out = scorer.score_files(files, progress=False)
    per_file = [window_scores(scorer, f, window, hop) for f in files]
    assert out.n_windows.tolist() == [len(w) for w in per_file] == [1, 5, 1, 6, 2] and out.n_windows.dtype.kind == "i"
    assert np.ptp(per_file[3]) > 1e-3  # the windows of a file differ: the aggregation matters
    reduce = {"mean": np.mean, "max": np.max, "min": np.min, "median": np.median}[aggregation]
    np.testing.assert_allclose(out.score, [reduce(w) for w in per_file], rtol=0, atol=1e-5)
    assert out.label_pred.tolist() == ["bonafide" if s > 0.25 else "spoof" for s in out.score]
    assert out.utt_id.tolist() == [f.stem for f in files] and out.path.tolist() == [str(f) for f in files]
    assert (out.error == "").all() and out.llr.isna().all() and out.p_spoof.isna().all()  # no calibration


def test_threshold_splits_the_labels_and_chunking_changes_nothing(untrained_detector, tmp_path):
    files = wavs(tmp_path, [16000, 30000, 20000, 48000, 12000, 33000], seed=1)
    base = Scorer(untrained_detector, ScoringConfig(device="cpu")).score_files(files, progress=False)
    middle = float(np.median(base.score))
    cfg = ScoringConfig(threshold=middle, chunk_files=1, batch_size=1, load_workers=1, device="cpu")
    out = Scorer(untrained_detector, cfg).score_files(files, progress=False)
    np.testing.assert_allclose(out.score, base.score, rtol=0, atol=1e-5)
    assert out.n_windows.tolist() == base.n_windows.tolist()
    assert out.label_pred.tolist() == np.where(out.score > middle, "bonafide", "spoof").tolist()
    assert out.label_pred.tolist().count("bonafide") == 3


def test_unusable_files_get_error_rows_and_the_others_their_scores(untrained_detector, tmp_path):
    good, later = wavs(tmp_path, [20000, 16000])
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(399, dtype=np.float32), 16000)
    known = tmp_path / "not-there.wav"
    scorer = Scorer(untrained_detector, ScoringConfig(device="cpu"))
    out = scorer.score_files([good, short, known, later], ids=["g", "s", "k", "l"], progress=False,
                             known_errors={2: "folder holds no audio files"})
    assert out.utt_id.tolist() == ["g", "s", "k", "l"]
    assert out.error.tolist() == ["", "too short: 399 samples at 16 kHz (< 400, the encoder's 25 ms receptive field)",
                                  "folder holds no audio files", ""]  # the known error is kept, the file never read
    assert out.n_windows.tolist() == [2, 0, 0, 1] and out.label_pred.tolist()[1:3] == ["", ""]
    assert out.score[1:3].isna().all() and not np.isnan(out.score[3])  # files after an error row still score
    assert out.score[0] == pytest.approx(window_scores(scorer, good, 16000, 8000).mean(), abs=1e-5)


def test_a_manifest_keeps_its_own_columns_after_the_scores(untrained_detector, tmp_path):
    files = wavs(tmp_path, [16000, 20000])
    manifest = pd.DataFrame({"utt_id": ["b", "a"], "path": [str(f) for f in files], "label": ["bonafide", "spoof"],
                             "attack": ["-", "A01"], "speaker": ["S1", "S2"]}, index=[7, 3])
    out = Scorer(untrained_detector, ScoringConfig(device="cpu")).score_manifest(manifest, progress=False)
    assert out.columns.tolist() == ["utt_id", "path", "score", "llr", "p_spoof", "label_pred", "n_windows", "error",
                                    "label", "attack", "speaker"]
    assert out.utt_id.tolist() == ["b", "a"] and out.label.tolist() == ["bonafide", "spoof"]
    assert out.attack.tolist() == ["-", "A01"] and out.index.tolist() == [0, 1]
    assert (out.error == "").all() and out.n_windows.tolist() == [1, 2]  # scored from the manifest's paths


def test_scoring_config_names_every_bad_value():
    with pytest.raises(ConfigError) as err:
        ScoringConfig(window=100, hop=0, aggregation="sum", prior_spoof=1.0, threshold=float("inf"), batch_size=True)
    assert str(err.value) == ("invalid scoring parameter(s): window=100 (expected an integer in [400, 960000] or None); "
                              "hop=0 (expected an integer in [1, 960000] or None); batch_size=True (expected an integer "
                              "in [1, 4096]); threshold=inf (expected a number or None); prior_spoof=1.0 (expected a "
                              "number in (0, 1)); aggregation='sum' (expected one of ['mean', 'max', 'min', 'median'] or None)")
    with pytest.raises(ConfigError, match=r"window=960001 \(expected an integer in \[400, 960000\] or None\)"):
        ScoringConfig(window=60 * 16000 + 1)  # a minute of audio per window at the most
    assert dataclasses.replace(ScoringConfig(), window=400).window == 400


def test_ids_are_whitespace_free_and_unique(tmp_path):
    from xlsr_helpers.evaluate.scoring import safe_id, unique_ids
    assert safe_id("  my clip\t2 ") == "my_clip_2" and safe_id("   ") == "_" and safe_id("a\nb") == "a_b"
    a, b = tmp_path / "x" / "0001.flac", tmp_path / "y" / "0001.flac"
    other = tmp_path / "x" / "0002.flac"
    assert unique_ids(["0001", "0002", "0001"], [a, other, b]) == ["x/0001", "0002", "y/0001"]  # colliding: by path
    assert unique_ids(["0002", "0002"], [other, other]) == ["0002", "0002~2"]  # the same file twice


def test_folders_expand_to_their_audio_and_say_what_they_skip(tmp_path):
    from xlsr_helpers.evaluate.scoring import expand_inputs
    for rel in ("in/spoof/b.WAV", "in/bonafide/a.flac", "in/notes.txt", "in/deep/er/c.mp3", "loose clip.ogg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    got = expand_inputs([tmp_path / "in", tmp_path / "empty", tmp_path / "loose clip.ogg"])
    assert got.paths == [tmp_path / "in/bonafide/a.flac", tmp_path / "in/deep/er/c.mp3", tmp_path / "in/spoof/b.WAV",
                         tmp_path / "empty", tmp_path / "loose clip.ogg"]
    assert got.ids == ["bonafide/a", "deep/er/c", "spoof/b", "empty", "loose_clip"]
    assert got.errors == {3: "folder holds no audio files (.flac, .wav, .ogg, .mp3)"}
    assert got.skipped == [tmp_path / "in/notes.txt"]
    twice = expand_inputs([tmp_path / "in/bonafide/a.flac", tmp_path / "a.flac"])  # the same name in two folders
    assert twice.ids == ["in/bonafide/a", "a"]  # told apart by their paths


def test_written_scores_hold_every_row_and_the_asvspoof_file_the_scored_ones(tmp_path):
    from xlsr_helpers.core.errors import ConfigError
    from xlsr_helpers.evaluate.scoring import check_output_file, write_scores
    df = pd.DataFrame({"utt_id": ["a", "b", "c"], "score": [1.23456789, np.nan, -2.0], "error": ["", "cannot decode", ""]})
    write_scores(df, tmp_path / "out" / "deeper" / "s.csv", tmp_path / "asv" / "deeper" / "s.txt")
    back = pd.read_csv(tmp_path / "out" / "deeper" / "s.csv", keep_default_na=False)
    assert back.columns.tolist() == ["utt_id", "score", "error"]  # no index column
    assert back.utt_id.tolist() == ["a", "b", "c"] and back.error.tolist() == ["", "cannot decode", ""]
    assert (tmp_path / "asv" / "deeper" / "s.txt").read_text() == "a 1.234568\nc -2.000000\n"
    write_scores(df, tmp_path / "only.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["asv", "only.csv", "out"]
    spaced = pd.DataFrame({"utt_id": [f"id {i}" for i in range(7)], "score": [0.0] * 7, "error": [""] * 7})
    with pytest.raises(ConfigError) as err:
        write_scores(spaced, tmp_path / "x.csv", tmp_path / "x.txt")
    assert str(err.value) == (f"ids with whitespace cannot go into the ASVspoof file {tmp_path / 'x.txt'}: "
                              "['id 0', 'id 1', 'id 2', 'id 3', 'id 4']")  # the first five
    check_output_file(None, "--out")
    check_output_file(tmp_path / "new" / "deeper" / "s.csv", "--out")  # folders to be made: fine
    (tmp_path / "afile").write_text("")
    with pytest.raises(ConfigError, match=r"^--out .*afile/s.csv: .*afile is a file, not a folder$"):
        check_output_file(tmp_path / "afile" / "s.csv", "--out")
    with pytest.raises(ConfigError, match=r"^--asvspoof-out .*out is a folder; give a file name, e.g. .*out/scores.csv$"):
        check_output_file(tmp_path / "out", "--asvspoof-out")


def test_a_calibrated_detector_gives_llr_and_p_spoof_from_its_own_map(untrained_detector, tmp_path):
    import json
    import math
    import shutil
    folder = shutil.copytree(untrained_detector, tmp_path / "calibrated")
    settings = json.loads((folder / "xlsr_detector.json").read_text())
    settings["calibration"] = {"scale": 2.0, "offset": -0.5, "prior_spoof": 0.5, "fitted_on": "dev",
                               "n_bonafide": 10, "n_spoof": 90}
    (folder / "xlsr_detector.json").write_text(json.dumps(settings))
    files = wavs(tmp_path, [16000, 30000, 399])
    out = Scorer(folder, ScoringConfig(prior_spoof=0.2, device="cpu")).score_files(files, progress=False)
    for s, llr, p in zip(out.score[:2], out.llr[:2], out.p_spoof[:2], strict=True):
        assert llr == pytest.approx(2.0 * s - 0.5)
        assert p == pytest.approx(1 / (1 + math.exp(2.0 * s - 0.5 + math.log(0.8 / 0.2))))  # posterior of spoof
    assert math.isnan(out.llr[2]) and math.isnan(out.p_spoof[2])  # the too-short file has no score


def test_boundaries_the_shortest_file_and_a_score_at_the_threshold(untrained_detector, tmp_path):
    files = wavs(tmp_path, [400, 16000])
    out = Scorer(untrained_detector, ScoringConfig(device="cpu")).score_files(files, progress=False)
    assert out.error[0] == "" and out.n_windows[0] == 1  # 400 samples: the CNN's one frame
    alone = Scorer(untrained_detector, ScoringConfig(device="cpu")).score_files(files[1:], progress=False).score[0]
    at = Scorer(untrained_detector, ScoringConfig(threshold=float(alone), device="cpu"))
    assert at.score_files(files[1:], progress=False).label_pred[0] == "spoof"  # bonafide only above it
    with pytest.raises(ConfigError, match=r"prior_spoof=0 \(expected a number in \(0, 1\)\)"):
        ScoringConfig(prior_spoof=0)
    with pytest.raises(ConfigError) as err:
        ScoringConfig(precision="fp8")
    assert str(err.value) == "invalid scoring parameter(s): precision='fp8' (expected one of ['auto', 'fp32', 'fp16', 'bf16'])"
    refused = r"^invalid scoring parameter\(s\): device='gpu' \(expected one of \['auto', 'cuda', 'cpu'\]\)$"
    with pytest.raises(ConfigError, match=refused):
        ScoringConfig(device="gpu")


# ----------------------------------------------------------------------------- scoring windows and error rows

def expected_windows(n: int, window: int, hop: int) -> int:
    """Windows covering n samples: starts 0, hop, ... while a full window fits, plus one flush with the end."""
    if n <= window:
        return 1
    full = (n - window) // hop + 1
    return full + (1 if (n - window) % hop else 0)


@pytest.mark.parametrize("hop", [4000, 6000, 16000])
def test_n_windows_follows_the_hop(untrained_detector, tmp_path, hop):
    from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
    lengths = [8000, 16000, 16001, 30000, 47000]
    files = []
    rng = np.random.default_rng(0)
    for n in lengths:
        files.append(tmp_path / f"{n}.wav")
        sf.write(files[-1], rng.normal(0, 0.1, n).astype(np.float32), 16000)
    out = Scorer(untrained_detector, ScoringConfig(window=16000, hop=hop)).score_files(files, progress=False)
    assert out.n_windows.tolist() == [expected_windows(n, 16000, hop) for n in lengths]
    assert expected_windows(47000, 16000, 6000) == 7 and expected_windows(30000, 16000, 16000) == 2  # by hand


def test_an_unreadable_file_gets_exactly_an_error_row(untrained_detector, tmp_path):
    from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"junk")
    row = Scorer(untrained_detector, ScoringConfig()).score_files([bad], progress=False).iloc[0]
    assert row.utt_id == "bad" and row.path == str(bad) and row.n_windows == 0 and row.label_pred == ""
    assert math.isnan(row.score) and math.isnan(row.llr) and math.isnan(row.p_spoof)
    assert row.error.startswith("cannot decode")
