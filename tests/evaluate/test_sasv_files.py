"""ASVspoof 5 track-2 score and key files: the columns by their header names, every bad line named with
its file and line, trials matched by (spk, filename)."""

import pytest

from xlsr_helpers.evaluate.sasv_files import is_sasv_score_file, join_sasv, read_sasv_keys, read_sasv_scores
from xlsr_helpers.evaluate.scorefile import ScoreFileError


def test_columns_by_name_tabs_or_spaces_and_dashes(tmp_path):
    f = tmp_path / "s.tsv"
    # columns in another order, spaces and double tabs (the package's README aligns with them)
    f.write_text("filename spk sasv-score cm-score asv-score\nE_1\tA\t\t0.5\t-\t-\n\nE_1 B 1e-2 - -\n")
    df = read_sasv_scores(f)
    assert df.columns.tolist() == ["spk", "filename", "cm_score", "asv_score", "sasv_score"]
    assert df.spk.tolist() == ["A", "B"] and df.filename.tolist() == ["E_1", "E_1"]
    assert df.sasv_score.tolist() == [0.5, 0.01] and df.cm_score.isna().all() and df.asv_score.isna().all()


def test_detected_by_the_header(tmp_path):
    cases = {"spk filename cm-score asv-score sasv-score\n": True, "tar_spk_anon x\n": True,
             "a b sasv-score\n": True, "E_1 0.5\n": False, "filename cm-score\nE_1 0.5\n": False, "\n\n": False}
    for i, (text, track2) in enumerate(cases.items()):
        (tmp_path / f"{i}.txt").write_text(text)
        assert is_sasv_score_file(tmp_path / f"{i}.txt") is track2, text


def test_every_bad_score_line_is_listed(tmp_path):
    f = tmp_path / "s.tsv"
    f.write_text("spk filename cm-score asv-score sasv-score\nA 1 0.1 - 1\nA 2 x - 2\nA 3 0.3 - 1,5\n"
                 "A 1 0.4 - 4\nA 5 0.5 -\n")
    with pytest.raises(ScoreFileError) as info:
        read_sasv_scores(f)
    msg = str(info.value)
    assert msg.startswith("4 bad line(s) in track-2 score file s.tsv:")
    for line in ("3: cm-score: score 'x' is not a number", "4: sasv-score: score '1,5' is not a number",
                 "5: duplicate trial A 1 (first on line 2)", "6: 4 columns; the header names 5"):
        assert f"{f}:{line}" in msg


def test_header_problems(tmp_path):
    f = tmp_path / "s.tsv"
    for head, words in (("spk filename cm-score asv-score sasv-score extra", "unknown ['extra']"),
                        ("spk spk filename cm-score asv-score sasv-score", "given twice ['spk']"),
                        ("spk filename asv-score sasv-score", "missing ['cm-score']")):
        f.write_text(head + "\n")
        with pytest.raises(ScoreFileError, match=r"s.tsv:1: header .*" + words.replace("[", r"\[")):
            read_sasv_scores(f)
    f.write_text("spk filename cm-score asv-score sasv-score\n")
    with pytest.raises(ScoreFileError, match="no trials after the header"):
        read_sasv_scores(f)


def test_keys_and_join(tmp_path):
    k, s = tmp_path / "k.tsv", tmp_path / "s.tsv"
    k.write_text("tar_spk_anon trial_anon cm-label asv-label attack_anon\nA 1 bonafide target -\n"
                 "B 1 bonafide nontarget -\nA 2 spoof spoof A17\n")
    s.write_text("spk filename cm-score asv-score sasv-score\nA 2 -1 0.5 -2\nB 1 1 -1 0\nA 1 2 3 4\n")
    df = join_sasv(read_sasv_scores(s), read_sasv_keys(k))
    by_trial = {(r.spk, r.filename): (r.asv_label, r.sasv_score) for r in df.itertuples()}
    assert by_trial == {("A", "1"): ("target", 4.0), ("B", "1"): ("nontarget", 0.0), ("A", "2"): ("spoof", -2.0)}
    s.write_text("spk filename cm-score asv-score sasv-score\nA 2 -1 0.5 -2\nC 1 1 -1 0\n")
    with pytest.raises(ScoreFileError) as info:
        join_sasv(read_sasv_scores(s), read_sasv_keys(k), "s.tsv", "k.tsv")
    assert "1 trial(s) in the s.tsv are not in the k.tsv: ['C 1']" in str(info.value)
    assert "2 trial(s) of the k.tsv have no score in the s.tsv: ['A 1', 'B 1']" in str(info.value)


def test_bad_key_lines(tmp_path):
    k = tmp_path / "k.tsv"
    k.write_text("spk filename cm-label asv-label\nA 1 bonafide target\nA 2 bona target\nA 3 spoof nontarget\n"
                 "A 4 bonafide spoof\n")
    with pytest.raises(ScoreFileError) as info:
        read_sasv_keys(k)
    msg = str(info.value)
    assert f"{k}:3: unknown cm-label 'bona' (expected bonafide or spoof)" in msg
    assert f"{k}:4: cm-label spoof with asv-label nontarget" in msg and f"{k}:5: cm-label bonafide with" in msg
