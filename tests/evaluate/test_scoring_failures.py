"""One bad file never costs the others: whatever one file raises (reading it or in the model) is its
own error row, and the rows a run finished are on disk before it ends, however it ends. Expected
scores are those of the same files scored in a run without the failure."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from xlsr_helpers.evaluate import scoring
from xlsr_helpers.evaluate.score_output import ScoreJob, score_into, write_scores
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig


def noise_files(folder, lengths, seed=0):
    rng, files = np.random.default_rng(seed), []
    for i, n in enumerate(lengths):
        files.append(folder / f"f{i}.wav")
        sf.write(files[-1], rng.normal(0, 0.1, n).astype(np.float32), 16000)
    return files


@pytest.fixture
def scorer(untrained_detector):
    return Scorer(untrained_detector, ScoringConfig(device="cpu", window=16000, hop=8000, chunk_files=3))


def test_an_unexpected_error_reading_one_file_is_its_row(scorer, tmp_path, monkeypatch):
    files = noise_files(tmp_path, [16000, 12000, 20000])
    clean = scorer.score_files(files, progress=False)
    real = scoring.load_audio

    def flaky(path):
        if path == files[1]:
            raise MemoryError("cannot allocate\n 5 GiB")  # not an AudioError: a bug or the machine
        return real(path)
    monkeypatch.setattr(scoring, "load_audio", flaky)
    out = scorer.score_files(files, progress=False)
    assert out.error.tolist() == ["", "unexpected MemoryError: cannot allocate 5 GiB", ""]
    assert out.n_windows.tolist() == [1, 0, 2] and out.label_pred[1] == "" and np.isnan(out.score[1])
    np.testing.assert_allclose(out.score[[0, 2]], clean.score[[0, 2]], rtol=0, atol=1e-6)


def test_a_file_that_fails_in_the_model_costs_only_its_own_row(scorer, tmp_path, monkeypatch):
    """The chunk fails together; each file is then scored alone and only the one failing alone errs."""
    files = noise_files(tmp_path, [16000, 12345, 20000, 9000])
    clean = scorer.score_files(files, progress=False)
    real = Scorer.score_windows

    def fails_on_12345(self, windows):
        if any(w.size == 12345 for w in windows):
            raise RuntimeError("CUDA error: an illegal memory access\nwas encountered")
        return real(self, windows)
    monkeypatch.setattr(Scorer, "score_windows", fails_on_12345)
    out = scorer.score_files(files, progress=False)
    assert out.error.tolist() == ["", "scoring failed: unexpected RuntimeError: CUDA error: an illegal memory access "
                                      "was encountered", "", ""]
    assert out.n_windows.tolist() == [1, 0, 2, 1] and np.isnan(out.score[1]) and out.label_pred[1] == ""
    np.testing.assert_allclose(out.score[[0, 2, 3]], clean.score[[0, 2, 3]], rtol=0, atol=1e-6)
    alone = scorer.score_files(files[1:2], progress=False)  # a chunk of one failing file: its row, no retry needed
    assert alone.error[0].startswith("scoring failed: unexpected RuntimeError")


def test_when_every_file_fails_alone_too_the_model_is_at_fault_and_it_is_raised(scorer, tmp_path, monkeypatch):
    files = noise_files(tmp_path, [16000, 12000])

    def broken(self, windows):
        raise RuntimeError("the device is gone")
    monkeypatch.setattr(Scorer, "score_windows", broken)
    with pytest.raises(RuntimeError, match="the device is gone"):
        scorer.score_files(files, progress=False)


def manifest_of(files):
    return pd.DataFrame({"utt_id": [f"u{i}" for i in range(len(files))], "path": [str(f) for f in files],
                         "label": ["bonafide", "spoof"] * (len(files) // 2) + ["spoof"] * (len(files) % 2)})


def test_rows_are_on_disk_as_chunks_finish_and_a_stopped_run_keeps_them(untrained_detector, tmp_path, monkeypatch):
    """Chunks of 2: the second chunk stops the run. The first chunk's rows were on disk before that
    (a killed process keeps them); every other file gets a row saying it was not scored; an older
    run's rows are gone; the ASVspoof file holds the scored rows only."""
    scorer = Scorer(untrained_detector, ScoringConfig(device="cpu", window=16000, hop=8000, chunk_files=2))
    files = noise_files(tmp_path, [16000, 20000, 12000, 16000, 9000])
    manifest = manifest_of(files)
    clean = scorer.score_manifest(manifest, progress=False)
    csv, asv = tmp_path / "out" / "scores.csv", tmp_path / "out" / "scores.txt"
    csv.parent.mkdir()
    csv.write_text("utt_id,score\nold_run,9.0\n")
    seen_on_disk, real = [], Scorer._score_chunk

    def stops_at_the_second_chunk(self, loaded, scores, errors):
        seen_on_disk.append(pd.read_csv(csv, keep_default_na=False).utt_id.tolist())
        if len(seen_on_disk) == 2:
            raise KeyboardInterrupt
        return real(self, loaded, scores, errors)
    monkeypatch.setattr(Scorer, "_score_chunk", stops_at_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        score_into(scorer, [ScoreJob.from_manifest(manifest)], csv, asv, progress=False)
    assert seen_on_disk == [[], ["u0", "u1"]]
    out, nums = pd.read_csv(csv, keep_default_na=False), pd.read_csv(csv)
    assert out.utt_id.tolist() == ["u0", "u1", "u2", "u3", "u4"]  # every input has its row
    assert out.label.tolist() == manifest.label.tolist()  # the manifest's columns, for unscored rows too
    assert out.error.tolist() == [""] * 2 + ["not scored: scoring stopped before this file (interrupted)"] * 3
    np.testing.assert_allclose(nums.score[:2], clean.score[:2], rtol=0, atol=1e-6)
    assert nums.score[2:].isna().all() and out.label_pred[2:].eq("").all() and out.n_windows.tolist() == [1, 2, 0, 0, 0]
    assert asv.read_text() == "".join(f"u{i} {clean.score[i]:.6f}\n" for i in range(2))


def test_a_finished_run_writes_what_write_scores_writes(untrained_detector, tmp_path):
    """Two jobs (a manifest, then files with a known error): the incremental files end up exactly
    as the whole table written at once, columns the union of both jobs'."""
    scorer = Scorer(untrained_detector, ScoringConfig(device="cpu", window=16000, hop=8000, chunk_files=2))
    files = noise_files(tmp_path, [16000, 20000, 12000, 9000, 30000])
    manifest = manifest_of(files[:3])
    jobs = [ScoreJob.from_manifest(manifest), ScoreJob(files[3:], ["x", "y"], {1: "folder holds no audio files"})]
    df = score_into(scorer, jobs, tmp_path / "a.csv", tmp_path / "a.txt", progress=False)
    whole = pd.concat([scorer.score_manifest(manifest, progress=False),
                       scorer.score_files(files[3:], ["x", "y"], False, {1: "folder holds no audio files"})],
                      ignore_index=True)
    write_scores(whole, tmp_path / "b.csv", tmp_path / "b.txt")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()
    assert df.utt_id.tolist() == ["u0", "u1", "u2", "x", "y"] and df.error[4] == "folder holds no audio files"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".csv", ".txt", ".partial")) == [
        "a.csv", "a.txt", "b.csv", "b.txt"]  # nothing left aside


def test_under_torchrun_a_process_that_does_not_write_leaves_no_file(scorer, tmp_path):
    files = noise_files(tmp_path, [16000])
    df = score_into(scorer, [ScoreJob(files, ["a"])], tmp_path / "s.csv", tmp_path / "s.txt", write=False,
                    progress=False)
    assert df.utt_id.tolist() == ["a"] and not (tmp_path / "s.csv").exists() and not (tmp_path / "s.txt").exists()


def test_xlsr_score_that_fails_later_keeps_the_rows_it_finished(untrained_detector, tmp_path, monkeypatch, capsys):
    """A manifest, then files: the files' scoring fails. The manifest's rows are in --out, the files'
    say they were not scored, and the command says how many finished rows it kept and where."""
    from xlsr_helpers.cli.main import main
    files = noise_files(tmp_path, [16000, 20000, 12000])
    manifest_of(files[:2]).assign(attack="-", speaker="S", split="eval", dataset="own").to_csv(tmp_path / "m.csv",
                                                                                                index=False)
    calls, real = [], Scorer._score_chunk

    def fails_second(self, loaded, scores, errors):
        calls.append(len(loaded))
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(self, loaded, scores, errors)
    monkeypatch.setattr(Scorer, "_score_chunk", fails_second)
    out = tmp_path / "s.csv"
    with pytest.raises(RuntimeError, match="out of memory"):
        main(["score", str(untrained_detector), str(tmp_path / "m.csv"), str(files[2]), "--out", str(out)])
    df = pd.read_csv(out, keep_default_na=False)
    assert df.utt_id.tolist() == ["u0", "u1", "f2"] and df.label.tolist() == ["bonafide", "spoof", ""]
    assert df.error.tolist() == ["", "", "not scored: scoring stopped before this file (unexpected RuntimeError: "
                                         "out of memory)"]
    assert f"scoring stopped (unexpected RuntimeError: out of memory): 2 finished row(s) kept in {out}" \
        in capsys.readouterr().err
