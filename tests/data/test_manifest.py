import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from xlsr_helpers.data.manifest import BASE_COLUMNS, ManifestError, build_manifest, find_root, read_manifest

# Verbatim lines of the official ASVspoof 2019 LA CM protocols.
TRAIN_LINES = """LA_0079 LA_T_1138215 - - bonafide
LA_0079 LA_T_1271820 - - bonafide
LA_0079 LA_T_1004644 - A01 spoof
LA_0079 LA_T_1025525 - A02 spoof
"""
DEV_LINES = "LA_0069 LA_D_1047731 - - bonafide\nLA_0069 LA_D_1002910 - A05 spoof\n"
EVAL_LINES = "LA_0039 LA_E_2834763 - A11 spoof\nLA_0030 LA_E_5849185 - - bonafide\nLA_0040 LA_E_6828287 - A16 spoof\n"


def write_audio(path, seconds=0.2):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(0).normal(0, 0.1, int(16000 * seconds)).astype(np.float32), 16000)


def make_2019(root, train=TRAIN_LINES, dev=DEV_LINES, ev=EVAL_LINES, skip_audio=()):
    proto = root / "ASVspoof2019_LA_cm_protocols"
    proto.mkdir(parents=True)
    for split, text, name in [("train", train, "train.trn"), ("dev", dev, "dev.trl"), ("eval", ev, "eval.trl")]:
        (proto / f"ASVspoof2019.LA.cm.{name}.txt").write_text(text)
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[1] not in skip_audio:
                write_audio(root / f"ASVspoof2019_LA_{split}" / "flac" / f"{parts[1]}.flac")
    return root


def test_2019_protocol_excerpts(tmp_path):
    res = build_manifest("asvspoof2019-la", make_2019(tmp_path))
    train = res.splits["train"]
    assert list(train.columns[:8]) == BASE_COLUMNS and set(train.corpus) == {"asvspoof2019-la"}
    assert train.label.tolist() == ["bonafide", "bonafide", "spoof", "spoof"]
    assert train.attack.tolist() == ["-", "-", "A01", "A02"]
    assert train.speaker.unique().tolist() == ["LA_0079"]
    assert train.path[0].endswith("ASVspoof2019_LA_train/flac/LA_T_1138215.flac")
    counts = res.counts()
    assert counts.lines.sum() == 9 and counts.kept.sum() == 9
    assert set(counts[counts.split == "eval"].attack) == {"-", "A11", "A16"}


def test_written_manifest_round_trips(tmp_path):
    res = build_manifest("asvspoof2019-la", make_2019(tmp_path / "LA"))
    res.write(tmp_path / "out")
    df = read_manifest(tmp_path / "out" / "dev.csv")
    pd.testing.assert_frame_equal(df, res.splits["dev"].astype(str))
    assert (tmp_path / "out" / "validation.yaml").exists()


def test_malformed_line_names_file_and_line(tmp_path):
    bad = TRAIN_LINES + "LA_0079 LA_T_9999999 - A01\n"
    with pytest.raises(ManifestError, match=r"train\.trn\.txt:5: expected 5 columns, found 4"):
        build_manifest("asvspoof2019-la", make_2019(tmp_path, train=bad))


def test_unknown_label_names_file_and_line(tmp_path):
    bad = TRAIN_LINES.replace("A02 spoof", "A02 fake")
    with pytest.raises(ManifestError, match=r"train\.trn\.txt:4: unknown label 'fake'"):
        build_manifest("asvspoof2019-la", make_2019(tmp_path, train=bad))


def test_duplicate_id_names_both_lines(tmp_path):
    bad = TRAIN_LINES + "LA_0079 LA_T_1138215 - - bonafide\n"
    with pytest.raises(ManifestError, match=r"train\.trn\.txt:5: duplicate id LA_T_1138215 \(first on line 1\)"):
        build_manifest("asvspoof2019-la", make_2019(tmp_path, train=bad))


def test_missing_audio_is_an_error_unless_allowed(tmp_path):
    root = make_2019(tmp_path / "LA", skip_audio={"LA_T_1004644"})
    with pytest.raises(ManifestError, match="1 of 4 audio files .* missing"):
        build_manifest("asvspoof2019-la", root)
    res = build_manifest("asvspoof2019-la", root, allow_missing=True)
    rep = res.reports["train"]
    assert (rep.lines, rep.kept, rep.missing_skipped) == (4, 3, 1)
    assert "LA_T_1004644" not in res.splits["train"].utt_id.tolist()
    res.write(tmp_path / "out")
    skipped = pd.read_csv(tmp_path / "out" / "skipped_missing_train.csv")
    assert skipped.utt_id.tolist() == ["LA_T_1004644"]
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    row = counts[(counts.split == "train") & (counts.attack == "A01")].iloc[0]
    assert (row.lines, row.missing, row.kept) == (1, 1, 0)


def _2021_eval(root, track, key_lines):
    """A 2021 keys package and its eval audio, built into a manifest."""
    keys = root / f"keys/{track}/CM/trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("\n".join(key_lines) + "\n")
    for line in key_lines:
        write_audio(root / f"ASVspoof2021_{track}_eval/flac" / f"{line.split()[1]}.flac")
    return build_manifest(f"asvspoof2021-{track.lower()}", root).splits["eval"]


def test_2021_la_and_df_keys_keep_metadata(tmp_path):
    m = _2021_eval(tmp_path / "la", "LA", ["LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
                                           "LA_0013 LA_E_7294390 none - - bonafide notrim progress"])
    assert m.label.tolist() == ["spoof", "bonafide"]
    assert m.codec.tolist() == ["alaw", "none"] and m.phase.tolist() == ["eval", "progress"]
    m = _2021_eval(tmp_path / "df", "DF", [
        "LA_0043 DF_E_2000026 mp3m4a asvspoof A09 spoof notrim eval traditional_vocoder - - - -",
        "VCC2SF3 DF_E_2000011 nocodec vcc2018 bonafide bonafide notrim progress bonafide - - - -"])
    assert m.label.tolist() == ["spoof", "bonafide"]
    assert m.source.tolist() == ["asvspoof", "vcc2018"] and m.vocoder[0] == "traditional_vocoder"


def test_in_the_wild_meta_csv(tmp_path):
    (tmp_path / "meta.csv").write_text("file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n")
    for f in ("0.wav", "1.wav"):
        write_audio(tmp_path / f)
    m = build_manifest("in-the-wild", tmp_path).splits["eval"]
    assert m.utt_id.tolist() == ["0", "1"] and m.label.tolist() == ["spoof", "bonafide"]
    assert m.speaker[0] == "Alec Guinness"
    (tmp_path / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,B,maybe\n")
    with pytest.raises(ManifestError, match=r"meta\.csv:3: unknown label 'maybe'"):
        build_manifest("in-the-wild", tmp_path)


def test_own_data_folders_and_csv(tmp_path):
    write_audio(tmp_path / "real" / "spk1" / "a.wav")
    write_audio(tmp_path / "fake" / "b.flac")
    (tmp_path / "fake" / "notes.txt").write_text("ignored: not audio")
    m = build_manifest("folder", tmp_path).splits["all"]
    assert sorted(zip(m.utt_id, m.label, strict=True)) == [("fake/b", "spoof"), ("real/spk1/a", "bonafide")]
    (tmp_path / "labels.csv").write_text("path,label\nreal/spk1/a.wav,bonafide\nfake/b.flac,spoof\n")
    m = build_manifest("folder", tmp_path).splits["all"]
    assert m.label.tolist() == ["bonafide", "spoof"]


def test_demo_corpus_is_readable_by_the_2019_builder(demo_root):
    res = build_manifest("asvspoof2019-la", demo_root)
    s = res.summary().set_index("split")
    assert (s.missing_skipped == 0).all() and (s.lines == s.kept).all()
    train_attacks = set(res.splits["train"].attack) - {"-"}
    eval_attacks = set(res.splits["eval"].attack) - {"-"}
    assert train_attacks and eval_attacks and not train_attacks & eval_attacks


def test_root_errors(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        find_root("asvspoof2019-la", tmp_path / "nope")
    with pytest.raises(ManifestError, match="unknown dataset"):
        build_manifest("asvspoof2030", tmp_path)
    with pytest.raises(ManifestError, match="protocol: none of these files exist"):
        build_manifest("asvspoof2019-la", tmp_path)


def test_pivot_orders_splits_like_the_corpus(demo_root):
    table = build_manifest("asvspoof2019-la", demo_root).pivot()
    assert list(table.columns) == ["train", "dev", "eval"]
    assert table.loc[("spoof", "A07"), "train"] == 0 and table.loc[("spoof", "A07"), "eval"] > 0


def test_csv_rows_with_a_wrong_field_count_are_refused(tmp_path):
    (tmp_path / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,B\n2.wav,C,bona-fide,extra\n")
    for f in ("0.wav", "1.wav", "2.wav"):
        (tmp_path / f).write_bytes(b"")
    with pytest.raises(ManifestError, match=r"(?s)2 malformed line\(s\).*meta.csv:3: wrong number of fields.*meta.csv:4"):
        build_manifest("in-the-wild", tmp_path)


def test_manifest_with_an_unknown_label_is_refused(tmp_path):
    path = tmp_path / "train.csv"
    pd.DataFrame({"utt_id": ["a", "b"], "path": ["/x/a", "/x/b"], "label": ["bonafide", "fake"], "attack": "-",
                  "speaker": "-", "split": "train", "dataset": "x"}).to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"train.csv:3: unknown label 'fake'"):
        read_manifest(path)


def test_validation_yaml_holds_the_counts(demo_root, tmp_path):
    import yaml
    res = build_manifest("asvspoof2019-la", demo_root)
    res.write(tmp_path)
    report = yaml.safe_load((tmp_path / "validation.yaml").read_text())
    for split, df in res.splits.items():
        r = report["splits"][split]
        assert r["kept"] == len(df) == len(read_manifest(tmp_path / f"{split}.csv"))
        assert r["lines"] == r["kept"] + r["missing_skipped"] and r["missing_skipped"] == 0
