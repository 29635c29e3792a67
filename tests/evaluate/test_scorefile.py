"""Score files, keys and ASV score files: every bad line named with its file and line, all of them
(not just the first), and the exact columns kept."""

import numpy as np
import pandas as pd
import pytest

from xlsr_helpers.data.manifest import ManifestError
from xlsr_helpers.evaluate.metrics import AsvRates, DcfCosts, MetricError, act_dcf, min_tdcf, per_attack_eer, per_condition_eer
from xlsr_helpers.evaluate.scorefile import (
    ScoreFileError,
    join_scores,
    read_asv_scores,
    read_protocol,
    read_score_file,
    select_phase,
)

BAD_LINES = [  # (reader, file name, content, first line of the message, every problem, by line)
    (read_score_file, "s.txt", "a 1.0\n\nlonely\nb x\nc nan\nd -inf\na 2.0\ne 0.5\nf extra 3.0\n",
     "5 bad line(s) in score file s.txt:",
     ["3: expected 'utt_id score', found 'lonely'", "4: score 'x' is not a number", "5: score is nan (NaN/Inf)",
      "6: score is -inf (NaN/Inf)", "7: duplicate id a (first on line 1)"]),
    (read_asv_scores, "asv.txt",
     "LA_1 A01 target 1.0\nLA_1 x\nLA_1 A01 maybe 2.0\nLA_1 A01 spoof abc\nLA_1 bonafide nontarget -1\n",
     "3 bad line(s) in ASV score file asv.txt:",
     ["2: expected '[speaker] source target|nontarget|spoof score'", "3: expected", "4: score 'abc' is not a number"]),
]


@pytest.mark.parametrize("reader,name,content,header,problems", BAD_LINES, ids=["score file", "ASV scores"])
def test_every_bad_line_is_listed(reader, name, content, header, problems, tmp_path):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(ScoreFileError) as info:
        reader(f)
    msg = str(info.value)
    assert msg.startswith(header)
    for expected in problems:
        assert f"{f}:{expected}" in msg


def test_good_score_lines_keep_the_last_column(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("a 1.5\nb - bonafide 2.5\n\nc -0.25\n")
    df = read_score_file(f)
    assert df.utt_id.tolist() == ["a", "b", "c"] and df.score.tolist() == [1.5, 2.5, -0.25]
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ScoreFileError, match=r"empty.txt: no scores found"):
        read_score_file(tmp_path / "empty.txt")


def test_asv_rates_from_a_file(tmp_path):
    f = tmp_path / "asv.txt"
    f.write_text("A target 2\nA target 3\nA nontarget -1\nA nontarget 0\nA01 spoof 2.5\nA02 spoof -3\n")
    r = read_asv_scores(f)
    # sorted -1n 0n 2t 3t: rejecting the two non-targets is the EER point, threshold = the 2nd score, 0;
    # non-targets accepted are those >= 0 (one of two), spoofs rejected those < 0 (one of two)
    assert (r.threshold, r.p_miss, r.p_fa, r.p_miss_spoof) == (0.0, 0.0, 0.5, 0.5)


def test_key_files_keep_their_metadata_columns(tmp_path):
    k = tmp_path / "k.txt"
    k.write_text("LA_1 LA_E_1 alaw ita_tx A07 spoof notrim eval\nLA_1 LA_E_2 none - - bonafide notrim progress\n")
    df = read_protocol(k)
    assert list(df.columns) == ["utt_id", "label", "attack", "phase", "codec", "transmission"]
    df5 = tmp_path / "k5.txt"
    df5.write_text("T_1 T_0 F C01 3 - AC1 A05 spoof -\nT_1 T_1 M - - - - bonafide bonafide -\n")
    assert list(read_protocol(df5).columns) == ["utt_id", "label", "attack", "codec", "codec_q"]
    dfk = tmp_path / "df.txt"
    dfk.write_text("LA_0043 DF_E_1 mp3m4a asvspoof A09 spoof notrim eval traditional_vocoder - - - -\n")
    assert list(read_protocol(dfk).columns) == ["utt_id", "label", "attack", "phase", "codec", "source", "vocoder"]


def test_key_file_problems_are_named(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a b c\n")
    with pytest.raises(ManifestError, match=r"bad.txt:1: 3 columns; expected an ASVspoof key file with \[5, 8, 10, 13\]"):
        read_protocol(bad)
    labels = tmp_path / "labels.txt"
    labels.write_text("LA_1 LA_T_1 - - bonafide\nLA_1 LA_T_2 - A01 fake\nLA_1 LA_T_3 - A01 real\n")
    with pytest.raises(ManifestError) as info:
        read_protocol(labels)
    assert "2 malformed line(s) in labels.txt" in str(info.value)
    assert f"{labels}:2: unknown label 'fake'" in str(info.value) and f"{labels}:3: unknown label 'real'" in str(info.value)
    dup = tmp_path / "dup.txt"
    dup.write_text("".join(f"LA_1 LA_T_{i % 5} - - bonafide\n" for i in range(10)))
    with pytest.raises(ManifestError, match=r"5 duplicate id\(s\), e.g. \['LA_T_0', 'LA_T_1', 'LA_T_2'\]$"):
        read_protocol(dup)
    (tmp_path / "blank.txt").write_text("\n")
    with pytest.raises(ManifestError, match="0 columns"):
        read_protocol(tmp_path / "blank.txt")


def test_join_lists_both_kinds_of_mismatch():
    proto = pd.DataFrame({"utt_id": [f"t{i}" for i in range(8)], "label": "spoof", "attack": "A01"})
    scores = pd.DataFrame({"utt_id": [f"t{i}" for i in range(1, 8)] + [f"x{i}" for i in range(7)], "score": 0.0})
    with pytest.raises(ScoreFileError) as info:
        join_scores(scores, proto)
    assert str(info.value) == ("7 id(s) in the score file are not in the protocol: ['x0', 'x1', 'x2', 'x3', 'x4']; "
                               "1 trial(s) of the protocol have no score: ['t0']")
    ok = join_scores(scores[scores.utt_id.str.startswith("t")].assign(score=1.0), proto.iloc[1:])
    assert len(ok) == 7 and "_merge" not in ok and (ok.score == 1.0).all()


def test_phase_selection_says_what_it_kept():
    df = pd.DataFrame({"phase": ["eval", "eval", "progress"], "score": [1, 2, 3]})
    sub, said = select_phase(df)
    assert len(sub) == 2 and said == "phase 'eval': 2 of 3 trials (all phases: {'eval': 2, 'progress': 1})"
    assert select_phase(df.drop(columns="phase"))[1] == "all 3 trials"


# ----------------------------------------------------------------------------- metrics corner cases

def test_metric_inputs_are_named_when_empty():
    with pytest.raises(MetricError, match="^ASV target scores is empty"):
        AsvRates.from_scores([], [0.0], [0.0])
    with pytest.raises(MetricError, match="^ASV non-target scores is empty"):
        AsvRates.from_scores([1.0], [], [0.0])
    with pytest.raises(MetricError, match="^ASV spoof scores is empty"):
        AsvRates.from_scores([1.0], [0.0], [])
    with pytest.raises(MetricError, match="^bonafide scores is empty"):
        act_dcf([], [0.0])
    with pytest.raises(MetricError, match="^spoof scores is empty"):
        act_dcf([1.0], [])


def test_boundaries_at_the_thresholds():
    # a spoof exactly at the ASV threshold is accepted by the ASV (not a miss)
    assert AsvRates.from_scores([2.0, 3.0], [0.0, 1.0], [2.0, 0.5]).p_miss_spoof == 0.5
    thr = DcfCosts().bayes_threshold
    # a bonafide exactly at the Bayes threshold is accepted, a spoof exactly there is accepted too
    assert act_dcf([thr, 5.0], [thr, -5.0])[0] == pytest.approx((10 * 0.05 * 0.5) / 0.5)
    # other costs: normaliser min(Cfa Pspoof, Cmiss (1-Pspoof)) = min(0.3, 1.4) = 0.3, threshold -log(1.4/0.3)
    costs = DcfCosts(p_spoof=0.3, c_miss=2.0, c_fa=1.0)
    assert costs.bayes_threshold == pytest.approx(-np.log(1.4 / 0.3))
    assert act_dcf([-10.0, 5.0], [5.0, -10.0], costs)[0] == pytest.approx((1.4 * 0.5 + 0.3 * 0.5) / 0.3)


def test_tdcf_weights_and_defaults():
    asv = AsvRates(threshold=0.0, p_fa=0.1, p_miss=0.05, p_miss_spoof=0.4)
    assert min_tdcf([1.0, 2.0], [0.0, 1.5], asv) == min_tdcf([1.0, 2.0], [0.0, 1.5], asv, "2019")
    # an ASV that misses every target and accepts every non-target: C1 < 0 (2019) and C0 > Ptar (2021)
    broken = AsvRates(threshold=0.0, p_fa=1.0, p_miss=1.0, p_miss_spoof=0.0)
    with pytest.raises(MetricError, match=r"^t-DCF weights are negative \(C1=-0.095, C2=0.5\): check the ASV scores$"):
        min_tdcf([1.0], [0.0], broken, "2019")
    with pytest.raises(MetricError, match=r"^t-DCF weights are negative \(C0=1.036, C1=-0.095, C2=0.5\)$"):
        min_tdcf([1.0], [0.0], broken, "2021")
    with pytest.raises(MetricError, match="^t-DCF normaliser is zero: the ASV accepts no spoofs or rejects every target$"):
        min_tdcf([1.0], [0.0], AsvRates(threshold=0.0, p_fa=0.0, p_miss=0.0, p_miss_spoof=1.0), "2019")
    # 2021 is defined where 2019 is not: C2 = 0 (no spoof passes the ASV) as long as C0 > 0 ...
    no_spoof_passes = AsvRates(threshold=0.0, p_fa=0.0, p_miss=0.1, p_miss_spoof=1.0)
    assert min_tdcf([1.0], [0.0], no_spoof_passes, "2021")[0] == 1.0
    with pytest.raises(MetricError, match="^t-DCF normaliser is zero: a perfect ASV"):  # ... and C0 = 0 with it is not
        min_tdcf([1.0], [0.0], AsvRates(threshold=0.0, p_fa=0.0, p_miss=0.0, p_miss_spoof=1.0), "2021")
    perfect = AsvRates(threshold=0.0, p_fa=0.0, p_miss=0.0, p_miss_spoof=0.0)
    assert min_tdcf([1.0, 2.0], [0.0, 1.5], perfect, "2021")[0] == pytest.approx(0.5 * 0.5 / 0.5)


def test_tdcf_2021_with_other_asv_costs():
    from xlsr_helpers.evaluate.metrics import CostModel, tdcf_curve_2021
    cost = CostModel(c_miss_asv=2.0, c_fa_asv=5.0)
    asv = AsvRates(threshold=0.0, p_fa=0.1, p_miss=0.2, p_miss_spoof=0.4)
    curve, _ = tdcf_curve_2021([1.0], [0.0], asv, cost)
    ptar, pnon = 0.95 * 0.99, 0.95 * 0.01
    c0 = ptar * 2.0 * 0.2 + pnon * 5.0 * 0.1
    c1, c2 = ptar * 2.0 - c0, 0.05 * 10 * 0.6
    assert curve[0] == pytest.approx((c0 + c2) / (c0 + min(c1, c2)))  # accept all: every spoof passes
    assert curve[1] == pytest.approx(c0 / (c0 + min(c1, c2)))  # the spoof rejected, the bonafide kept


def test_tables_are_sorted_and_named():
    df = pd.DataFrame({"score": [5, 6, 0, 1, 2, 0.5], "label": ["bonafide"] * 2 + ["spoof"] * 4,
                       "attack": ["-", "-", "A10", "A02", "A10", "A02"], "codec": ["z", "a", "z", "a", "z", "a"]})
    t = per_attack_eer(df)
    assert list(t.columns) == ["attack", "n_spoof", "n_bonafide", "eer", "threshold"]
    assert t.attack.tolist() == ["A02", "A10", "pooled"] and t.threshold.notna().all()
    c = per_condition_eer(df, "codec")
    assert c.codec.tolist() == ["a", "z"] and list(c.columns) == ["codec", "n_bonafide", "n_spoof", "eer", "threshold"]
    with pytest.raises(MetricError) as info:
        per_attack_eer(df.assign(label=[f"x{i}" for i in range(6)]))
    assert "['x0', 'x1', 'x2', 'x3', 'x4']" in str(info.value) and "x5" not in str(info.value)


def test_later_bad_lines_are_still_reported(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("a 1\na 2\ng A01 x\nh - nan\n\nq\n")
    msg = str(pytest.raises(ScoreFileError, read_score_file, f).value)
    assert f"{f}:2: duplicate id a" in msg and f"{f}:3: score 'x' is not a number" in msg
    assert f"{f}:4: score is nan (NaN/Inf)" in msg and f"{f}:6: expected 'utt_id score'" in msg
    asv = tmp_path / "asv.txt"
    asv.write_text("\nA x target\nA y\nA target 1\n\nA nontarget z\nA nontarget 2\n")
    msg = str(pytest.raises(ScoreFileError, read_asv_scores, asv).value)
    assert msg.startswith("3 bad line(s)") and f"{asv}:2: score 'target' is not a number" not in msg
    assert f"{asv}:2: expected" in msg and f"{asv}:3: expected" in msg and f"{asv}:6: score 'z' is not a number" in msg


def test_2021_asv_keys_errors_and_default_phase(tmp_path):
    from xlsr_helpers.evaluate.scorefile import read_asv_2021
    keys, scores = tmp_path / "k.txt", tmp_path / "s.txt"
    good = ["LA_1 T1 - - - target notrim eval", "LA_1 T2 - - - nontarget notrim eval",
            "LA_1 T3 - - A07 spoof notrim eval", "LA_1 T4 - - - target notrim progress"]
    keys.write_text("\n".join(good) + "\n")
    scores.write_text("LA_1 T1 3.0\nLA_1 T2 -1.0\nLA_1 T3 0.5\nLA_1 T4 -9.0\n")
    r = read_asv_2021(keys, scores)  # phase eval by default: T4 (progress, -9) does not count
    # sorted -1n 3t: the EER point rejects the non-target, threshold -1; the package's rates count
    # non-targets >= threshold as accepted (all of them) and spoofs < threshold as rejected (none)
    assert (r.threshold, r.p_miss, r.p_fa, r.p_miss_spoof) == (-1.0, 0.0, 1.0, 0.0)
    with pytest.raises(MetricError, match="ASV non-target scores is empty"):  # progress holds one target only
        read_asv_2021(keys, scores, "progress")
    keys.write_text("\n".join(good[:1] + ["LA_1 T2 - - - maybe notrim eval", "LA_1 T3 - - A07 spoof eval"] + good[3:]))
    msg = str(pytest.raises(ScoreFileError, read_asv_2021, keys, scores).value)
    assert msg.startswith("2 problem(s) with the 2021 ASV keys/scores:")
    assert f"{keys}:2: expected 8 columns" in msg and f"{keys}:3: expected 8 columns" in msg and "found 7" in msg
    keys.write_text("\n".join(good) + "\n")
    scores.write_text("LA_1 T1 3.0\n")
    with pytest.raises(ScoreFileError, match=r"s.txt: 1 scores for 4 ASV trials in .*k.txt"):
        read_asv_2021(keys, scores)
    scores.write_text("LA_1 T1 3.0\nT2\nLA_1 T3 0.5\nLA_1 T4 -9.0\n")
    with pytest.raises(ScoreFileError, match=r"s.txt:2: expected 'speaker T2 score' \(line 2 of .*\), found 'T2'"):
        read_asv_2021(keys, scores)
    scores.write_text("LA_1 T1 3.0\nLA_1 T2 -1.0\nLA_1 T3 0.5\nLA_1 T4 -9.0\n")
    with pytest.raises(ScoreFileError, match=r"k.txt: no ASV trials of phase 'hidden_track'$"):
        read_asv_2021(keys, scores, "hidden_track")


def test_evaluate_reports_the_official_t_dcf_and_the_dcf_values():
    from xlsr_helpers.evaluate.metrics import min_dcf
    from xlsr_helpers.evaluate.scorefile import evaluate
    df = pd.DataFrame({"score": [2.0, 1.0, 0.5, -1.0, 0.0, 1.5], "label": ["bonafide"] * 3 + ["spoof"] * 3,
                       "attack": ["-"] * 3 + ["A01"] * 3})
    asv = AsvRates(threshold=0.0, p_fa=0.1, p_miss=0.05, p_miss_spoof=0.4)
    out = evaluate(df, asv)
    bona, spoof = np.array([2.0, 1.0, 0.5]), np.array([-1.0, 0.0, 1.5])
    assert out["act_dcf"] == act_dcf(bona, spoof)[0] and out["min_dcf"] == min_dcf(bona, spoof)[0]
    assert out["min_tdcf"] == out["min_tdcf_2019"] == min_tdcf(bona, spoof, asv, "2019")[0]
    only_2021 = evaluate(df, asv, ("2021",))
    assert only_2021["min_tdcf"] == min_tdcf(bona, spoof, asv, "2021")[0] and "min_tdcf_2019" not in only_2021


def test_metric_messages_name_the_input_and_the_first_bad_index():
    from xlsr_helpers.evaluate.metrics import cllr, compute_eer
    with pytest.raises(MetricError, match=r"^bonafide scores is empty"):
        compute_eer([], [1.0])
    with pytest.raises(MetricError, match=r"^spoof scores is empty"):
        compute_eer([1.0], [])
    with pytest.raises(MetricError, match=r"^spoof scores contains 2 NaN/Inf score\(s\) \(first at index 1\)$"):
        compute_eer([1.0], [0.0, np.nan, np.inf])
    with pytest.raises(MetricError, match=r"^bonafide scores is empty"):
        cllr([], [1.0])
    with pytest.raises(MetricError, match=r"^spoof scores contains 1 NaN/Inf"):
        cllr([1.0], [np.nan])


def test_first_operating_point_and_normalisers_under_other_costs():
    from xlsr_helpers.evaluate.metrics import min_dcf, roc_points
    assert roc_points([2.0, 3.0], [0.5, 1.0]).threshold.iloc[0] == 0.5 - 0.001  # below the lowest score
    # the spoof at the ASV threshold (1.0, the EER point of targets [2, 3] vs non-targets [0, 1]) is accepted
    assert AsvRates.from_scores([2.0, 3.0], [0.0, 1.0], [1.0, 0.5]).p_miss_spoof == 0.5
    # Pspoof 0.5, Cmiss 1, Cfa 10: normaliser min(Cmiss (1-Pspoof), Cfa Pspoof) = 0.5 from the miss side
    costs = DcfCosts(p_spoof=0.5, c_miss=1.0, c_fa=10.0)
    bona, spoof = np.array([-5.0, 1.0, 2.0, 3.0]), np.array([-4.0, -3.0])
    assert min_dcf(bona, spoof, costs)[0] == pytest.approx(1.0 * 0.25 * 0.5 / 0.5)  # reject -5 and both spoofs
    # Bayes threshold -log(0.5 / 5) = 2.303: bona -5, 1, 2 missed (3 of 4), no spoof accepted
    assert act_dcf(bona, spoof, costs)[0] == pytest.approx(0.5 * 0.75 / 0.5)


def test_the_last_survivors(tmp_path):
    asv = tmp_path / "asv.txt"
    asv.write_text("A target x\nA nontarget y\n")  # a bad score, then another: both named
    msg = str(pytest.raises(ScoreFileError, read_asv_scores, asv).value)
    assert f"{asv}:1: score 'x'" in msg and f"{asv}:2: score 'y'" in msg
    proto = pd.DataFrame({"utt_id": [f"t{i}" for i in range(7)], "label": "spoof", "attack": "A01"})
    msg = str(pytest.raises(ScoreFileError, join_scores, pd.DataFrame({"utt_id": ["t0"], "score": [0.0]}), proto).value)
    assert msg == "6 trial(s) of the protocol have no score: ['t1', 't2', 't3', 't4', 't5']"
    from xlsr_helpers.evaluate.scorefile import read_asv_2021
    keys, scores = tmp_path / "k.txt", tmp_path / "s.txt"
    keys.write_text("LA_1 T1 - - - target notrim eval\nLA_1 T2 - - - nontarget notrim eval\n")
    scores.write_text("LA_1 T1 1.0\nLA_1 T2\n")  # two fields: the trial is named, the missing score too
    with pytest.raises(ScoreFileError, match=r"s.txt:2: expected 'speaker T2 score' \(line 2 of .*k.txt\), found 'LA_1 T2'"):
        read_asv_2021(keys, scores)


# ----------------------------------------------------------------------------- strict reading

AMBIGUOUS = [  # a line with two numbers after the id: which one is the score is not guessed
    "a 0.9 1", "a 1 0.9", "a A01 0.25 -3", "a 0.5 spoof 1", "a 1_0 2", "a nan 0.5", "a 2 3 4"]


@pytest.mark.parametrize("line", AMBIGUOUS)
def test_a_second_numeric_column_is_refused_not_guessed(line, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text(f"b 0.5\n{line}\n")
    msg = str(pytest.raises(ScoreFileError, read_score_file, f).value)
    assert f"{f}:2: " in msg and "numeric columns" in msg and "ambiguous" in msg
    assert msg.startswith("1 bad line(s)")  # line 1 is fine


@pytest.mark.parametrize("line,last", [("a 0.5 spoof", "spoof"), ("a -1 A07 x", "x")])
def test_a_score_before_text_columns_is_named(line, last, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text(line + "\n")
    msg = str(pytest.raises(ScoreFileError, read_score_file, f).value)
    assert f"{f}:1: the score must be the last column; found {last!r}" in msg


NON_STANDARD = ["1_000", "0_5", "\u0661\u0662", "\uff11.\uff15", "1.5\u0663", "\u00b2"]  # float() takes the first five


@pytest.mark.parametrize("text", NON_STANDARD)
def test_non_standard_number_syntax_is_refused(text, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text(f"a 1.0\nb {text}\n")
    msg = str(pytest.raises(ScoreFileError, read_score_file, f).value)
    assert f"{f}:2: score {text!r} is not" in msg


@pytest.mark.parametrize("text,value", [("+.5", 0.5), ("5.", 5.0), ("-1E+2", -100.0), ("3e-4", 0.0003),
                                        ("-0", 0.0), ("007", 7.0)])
def test_plain_decimal_numbers_are_read(text, value, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text(f"a {text}\nb A07 spoof {text}\n")
    assert read_score_file(f).score.tolist() == [value, value]


@pytest.mark.parametrize("text,words", [("1e999", "score 1e999 overflows a 64-bit float"),
                                        ("1,5", "score '1,5' is not a number (a decimal comma? write 1.5)")])
def test_overflow_and_decimal_comma_are_named(text, words, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text(f"a {text}\n")
    assert f"{f}:1: {words}" in str(pytest.raises(ScoreFileError, read_score_file, f).value)


def test_a_csv_given_as_a_score_file_is_recognised(tmp_path):
    f = tmp_path / "scores.csv"
    f.write_text("utt_id,path,score\na,a.flac,0.5\n")
    msg = str(pytest.raises(ScoreFileError, read_score_file, f).value)
    assert f"{f}:2: expected 'utt_id score', found 'a,a.flac,0.5' (a CSV? give the --asvspoof-out file" in msg


@pytest.mark.parametrize("text", ["nan", "inf", "1_0", "\u0661"])
def test_asv_score_files_read_numbers_as_strictly(text, tmp_path):
    asv = tmp_path / "asv.txt"
    asv.write_text(f"A target 1\nA target {text}\nA nontarget 0\nA01 spoof 0.5\n")
    msg = str(pytest.raises(ScoreFileError, read_asv_scores, asv).value)
    assert msg.startswith("1 bad line(s) in ASV score file") and f"{asv}:2: score" in msg


def _keys_2021(tmp_path, score_lines, keys_lines=None):
    keys, scores = tmp_path / "k.txt", tmp_path / "s.txt"
    keys.write_text(keys_lines or ("LA_1 T1 - - - target notrim eval\nLA_1 T2 - - - nontarget notrim eval\n"
                                   "LA_1 T3 - - A07 spoof notrim progress\n"))
    scores.write_text(score_lines)
    return keys, scores


@pytest.mark.parametrize("bad", ["x", "nan", "1_0"])
def test_2021_asv_scores_are_checked_and_named(bad, tmp_path):
    from xlsr_helpers.evaluate.scorefile import read_asv_2021
    keys, scores = _keys_2021(tmp_path, f"LA_1 T1 3.0\nLA_1 T2 {bad}\nLA_1 T3 0.5\n")
    msg = str(pytest.raises(ScoreFileError, read_asv_2021, keys, scores).value)
    assert msg.startswith("1 problem(s)") and f"{scores}:2: score" in msg


def test_2021_asv_lines_are_numbered_as_in_the_file(tmp_path):
    from xlsr_helpers.evaluate.scorefile import read_asv_2021
    keys, scores = _keys_2021(tmp_path, "\nLA_1 T1 3.0\n\nLA_1 TX -1.0\nLA_1 T3 x\n",
                              "LA_1 T1 - - - target notrim eval\n\n\nLA_1 T2 - - - nontarget notrim eval\n"
                              "LA_1 T3 - - A07 spoof notrim eval\n")
    msg = str(pytest.raises(ScoreFileError, read_asv_2021, keys, scores).value)
    # the second trial is on line 4 of both files, the third on line 5: blank lines count
    assert f"{scores}:4: expected 'speaker T2 score' (line 4 of {keys}), found 'LA_1 TX -1.0'" in msg
    assert f"{scores}:5: score 'x' is not a number" in msg


def test_2021_asv_phase_all_keeps_every_trial(tmp_path):
    from xlsr_helpers.evaluate.scorefile import read_asv_2021
    keys, scores = _keys_2021(tmp_path, "LA_1 T1 3.0\nLA_1 T2 -1.0\nLA_1 T3 0.5\n")
    # every phase: target 3, non-target -1, spoof 0.5 (progress); EER point at -1 as in the test above,
    # and the spoof (0.5 >= -1) is accepted: no spoof missed
    r = read_asv_2021(keys, scores, "all")
    assert (r.threshold, r.p_miss, r.p_fa, r.p_miss_spoof) == (-1.0, 0.0, 1.0, 0.0)
    with pytest.raises(MetricError, match="ASV spoof scores is empty"):  # eval alone has no spoof trial
        read_asv_2021(keys, scores, "eval")
    with pytest.raises(ScoreFileError, match=r"^--phase 'evaluation': expected one of \['eval', 'progress', "):
        read_asv_2021(keys, scores, "evaluation")


@pytest.mark.parametrize("phase", ["bogus", "Eval", "", "hidden"])
def test_unknown_phase_is_refused_with_or_without_a_phase_column(phase):
    df = pd.DataFrame({"phase": ["eval", "progress"], "score": [1, 2]})
    for frame in (df, df.drop(columns="phase")):
        with pytest.raises(ScoreFileError, match=rf"^--phase {phase!r}: expected one of"):
            select_phase(frame, phase)


@pytest.mark.parametrize("phase", ["eval", "progress", "hidden_track"])
def test_an_explicit_phase_on_keys_without_phases_is_refused(phase):
    df = pd.DataFrame({"score": [1.0, 2.0, 3.0]})
    assert select_phase(df, phase)[1] == "all 3 trials"  # the default (notebook 04 on 2019 keys): every trial
    with pytest.raises(ScoreFileError, match=rf"^--phase {phase}: these keys have no phase column"):
        select_phase(df, phase, explicit=True)
    sub, said = select_phase(df, "all", explicit=True)
    assert len(sub) == 3 and said == "all 3 trials"
    phased = df.assign(phase=["eval", "progress", "eval"])
    sub, said = select_phase(phased, "all", explicit=True)
    assert sub.score.tolist() == [1.0, 2.0, 3.0] and said == "all 3 trials"
