"""Manifest tables checked cell by cell: summary, counts, pivot, own-folder rows, audio check."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from xlsr_helpers.data.descriptor import available_datasets
from xlsr_helpers.data.manifest import ManifestError, build_manifest, check_audio

TRAIN = "S1 T1 - - bonafide\nS1 T2 - A01 spoof\nS2 T3 - A01 spoof\nS2 T4 - A02 spoof\n"
DEV = "S3 D1 - - bonafide\nS3 D2 - - bonafide\nS3 D3 - A01 spoof\n"


def lay(root, missing=()):
    proto = root / "ASVspoof2019_LA_cm_protocols"
    proto.mkdir(parents=True)
    for split, text, name in (("train", TRAIN, "train.trn"), ("dev", DEV, "dev.trl"), ("eval", DEV, "eval.trl")):
        (proto / f"ASVspoof2019.LA.cm.{name}.txt").write_text(text)
        for line in text.splitlines():
            utt = line.split()[1]
            if utt not in missing:
                f = root / f"ASVspoof2019_LA_{split}" / "flac" / f"{utt}.flac"
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(b"")
    return root


def test_summary_counts_and_pivot(tmp_path):
    res = build_manifest("asvspoof2019-la", lay(tmp_path, missing={"T4"}), allow_missing=True)
    s = res.summary().set_index("split")
    assert list(res.summary().columns) == ["split", "lines", "bonafide", "spoof", "missing_skipped", "kept",
                                         "ignored_files", "protocol"]
    assert (s.loc["train", "lines"], s.loc["train", "bonafide"], s.loc["train", "spoof"]) == (4, 1, 3)
    assert (s.loc["train", "missing_skipped"], s.loc["train", "kept"]) == (1, 3)
    assert (s.loc["dev", "bonafide"], s.loc["dev", "spoof"]) == (2, 1)
    counts = res.counts()
    row = counts[(counts.split == "train") & (counts.attack == "A02")].iloc[0]
    assert (row.lines, row.missing, row.kept) == (1, 1, 0)
    assert counts.split.tolist()[:3] == ["train", "train", "train"] and counts.split.tolist()[-1] == "eval"
    pivot = res.pivot()
    assert list(pivot.columns) == ["train", "dev", "eval"]
    assert pivot.loc[("bonafide", "-"), "dev"] == 2 and pivot.loc[("spoof", "A01"), "train"] == 2
    assert pivot.loc[("spoof", "A02"), "train"] == 0  # the missing file is not kept
    assert pivot.values.sum() == 3 + 3 + 3


def test_own_folder_rows_exactly(tmp_path):
    for rel in ("real/spk1/a.wav", "real/b.FLAC", "fake/c.ogg", "fake/d.mp3", "fake/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    df = build_manifest("folder", tmp_path).splits["all"]
    assert df[["utt_id", "label"]].values.tolist() == [
        ["fake/c", "spoof"], ["fake/d", "spoof"], ["real/b", "bonafide"], ["real/spk1/a", "bonafide"]]
    assert df.path.tolist()[2] == str(tmp_path / "real" / "b.FLAC")
    (tmp_path / "labels.csv").write_text("path,label\nreal/b.FLAC,genuine\nfake/c.ogg,fake\n")
    df = build_manifest("folder", tmp_path).splits["all"]
    assert df[["utt_id", "label"]].values.tolist() == [["real/b", "bonafide"], ["fake/c", "spoof"]]
    (tmp_path / "labels.csv").write_text("path,label\nreal/b.FLAC,maybe\n")
    with pytest.raises(ManifestError, match=r"labels.csv:2: unknown label 'maybe'"):
        build_manifest("folder", tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\nreal/b.FLAC,real\n")
    with pytest.raises(ManifestError, match=r"labels.csv:1: header \['file', 'label'\] lacks column\(s\) \['path'\]"):
        build_manifest("folder", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ManifestError, match=r"empty: no labels.csv and no label folders \(\['bona-fide', 'bonafide'"):
        build_manifest("folder", empty)


def test_audio_check_lists_flagged_files_with_their_ids(tmp_path):
    ok, short, silent = tmp_path / "ok.wav", tmp_path / "short.wav", tmp_path / "silent.wav"
    rng = np.random.default_rng(0)
    sf.write(ok, rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
    sf.write(short, rng.normal(0, 0.1, 1600).astype(np.float32), 16000)
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    df = pd.DataFrame({"utt_id": ["u_ok", "u_short", "u_silent"], "path": [str(ok), str(short), str(silent)]})
    summary = check_audio({"dev": df}, tmp_path, min_seconds=0.5).iloc[0]
    assert (summary.files, summary.short, summary.silent, summary.unreadable, summary.clipped) == (3, 1, 1, 0, 0)
    flagged = pd.read_csv(tmp_path / "audio_check_dev.csv")
    assert flagged.utt_id.tolist() == ["u_short", "u_silent"] and "Unnamed: 0" not in flagged.columns
    assert check_audio({"dev": df}, tmp_path, min_seconds=0.05).iloc[0].short == 0  # the threshold is used
    # every count distinct, so that no count can stand in for another
    silent2, clipped = tmp_path / "silent2.wav", tmp_path / "clipped.wav"
    silent3 = tmp_path / "silent3.wav"
    sf.write(silent2, np.zeros(24000, np.float32), 16000)
    sf.write(silent3, np.zeros(16000, np.float32), 16000)
    sf.write(clipped, np.clip(rng.normal(0, 2, 16000), -1, 1).astype(np.float32), 16000)
    df = pd.DataFrame({"utt_id": ["a", "b", "c", "d", "e", "f"],
                       "path": [str(p) for p in (ok, short, silent, silent2, silent3, clipped)]})
    assert check_audio({"dev": df}, tmp_path).to_dict("records") == [
        {"split": "dev", "files": 6, "unreadable": 0, "silent": 3, "short": 1, "clipped": 1, "median_s": 1.0}]


def test_every_descriptor_is_listed():
    assert available_datasets() == ["asvspoof2019-la", "asvspoof2021-df", "asvspoof2021-la", "asvspoof5", "folder",
                                    "in-the-wild"]


def test_written_folder_exactly(tmp_path):
    """Every file `write` produces, cell by cell: manifests without an index column, the skipped list
    with the missing trial only, counts.csv as `counts()`, validation.yaml with every split's figures."""
    import yaml
    res = build_manifest("asvspoof2019-la", lay(tmp_path / "c", missing={"T4"}), allow_missing=True)
    out = tmp_path / "run" / "manifests"  # its parent does not exist yet either
    written = res.write(out)
    assert [p.name for p in written] == ["train.csv", "skipped_missing_train.csv", "dev.csv", "eval.csv",
                                         "counts.csv", "validation.yaml"]
    train = pd.read_csv(out / "train.csv", keep_default_na=False)
    assert list(train.columns) == list(res.splits["train"].columns) and train.utt_id.tolist() == ["T1", "T2", "T3"]
    skipped = pd.read_csv(out / "skipped_missing_train.csv", keep_default_na=False)
    assert skipped.utt_id.tolist() == ["T4"] and skipped.attack.tolist() == ["A02"]
    assert list(skipped.columns) == list(res.protocol_rows["train"].columns)  # no index column
    pd.testing.assert_frame_equal(pd.read_csv(out / "counts.csv", keep_default_na=False), res.counts(),
                                  check_dtype=False)
    report = yaml.safe_load((out / "validation.yaml").read_text())
    assert report["dataset"] == "asvspoof2019-la" and report["root"] == str(tmp_path / "c")
    assert report["splits"]["train"] == {"protocol": res.reports["train"].protocol, "lines": 4, "kept": 3,
                                         "missing_skipped": 1, "ignored_files": 0}
    assert report["splits"]["dev"] == {"protocol": res.reports["dev"].protocol, "lines": 3, "kept": 3,
                                       "missing_skipped": 0, "ignored_files": 0}
    assert list(report["splits"]) == ["train", "dev", "eval"]


def test_counts_are_sorted_by_split_label_attack_whatever_the_protocol_order():
    """Rows in corpus split order, then label, then attack (not the order lines appear in); integer
    columns; nothing but the six named columns."""
    from xlsr_helpers.data.manifest import ManifestResult, SplitReport
    rows = {"train": pd.DataFrame({"utt_id": ["a", "b", "c", "d"], "split": "train",
                                   "label": ["spoof", "spoof", "bonafide", "spoof"], "attack": ["A02", "A01", "-", "A01"]}),
            "dev": pd.DataFrame({"utt_id": ["e", "f"], "split": "dev", "label": ["spoof", "bonafide"],
                                 "attack": ["A03", "-"]})}
    reports = {"dev": SplitReport("dev", "p2", 2, 2), "train": SplitReport("train", "p1", 4, 3, missing=["b"])}
    res = ManifestResult("x", Path("/x"), {}, reports, {"dev": rows["dev"], "train": rows["train"]})
    counts = res.counts()
    assert list(counts.columns) == ["split", "label", "attack", "lines", "missing", "kept"]
    assert counts[["split", "label", "attack"]].values.tolist() == [
        ["train", "bonafide", "-"], ["train", "spoof", "A01"], ["train", "spoof", "A02"],
        ["dev", "bonafide", "-"], ["dev", "spoof", "A03"]]
    assert counts[["lines", "missing", "kept"]].values.tolist() == [[1, 0, 1], [2, 1, 1], [1, 0, 1], [1, 0, 1],
                                                                    [1, 0, 1]]
    assert all(str(t) == "int64" for t in counts[["lines", "missing", "kept"]].dtypes)
    pivot = res.pivot()
    assert list(pivot.columns) == ["dev", "train"]  # the reports' order
    assert all(str(t) == "int64" for t in pivot.dtypes) and pivot.loc[("spoof", "A01"), "train"] == 1


def test_read_manifest_keeps_every_field_as_written(tmp_path):
    from xlsr_helpers.data.manifest import read_manifest
    path = tmp_path / "m.csv"
    path.write_text("utt_id,path,label,attack,speaker,split,dataset\n0001,/a/0001.flac,bonafide,-,NA,train,x\n"
                    "NA,/a/NA.flac,spoof,A01,,train,x\n")
    df = read_manifest(path)
    assert df.utt_id.tolist() == ["0001", "NA"] and df.speaker.tolist() == ["NA", ""]  # no numbers, no NaN
    path.write_text("utt_id,path,label,attack,speaker,split,dataset\n0001,/a/1.flac,bonafide,-,7,train,x\n")
    assert read_manifest(path).loc[0, ["utt_id", "speaker"]].tolist() == ["0001", "7"]  # digits stay text
    path.write_text("utt_id,path,attack\na,/a/a.flac,-\n")
    with pytest.raises(ManifestError, match=r"m.csv: not a manifest, missing column\(s\) \['label'"):
        read_manifest(path)


def test_folder_templates_expand_a_star_in_any_folder_component(tmp_path):
    from xlsr_helpers.data.manifest import _expand_folders
    for d in ("LA/flac_E_b", "LA/flac_E_a", "LA/other"):
        (tmp_path / d).mkdir(parents=True)
    assert _expand_folders(tmp_path, "LA/flac_E_*/{utt_id}.flac") == ["LA/flac_E_a/{utt_id}.flac",
                                                                       "LA/flac_E_b/{utt_id}.flac"]
    assert _expand_folders(tmp_path, "LA/flac/{utt_id}.flac") == ["LA/flac/{utt_id}.flac"]


def test_a_labels_csv_line_with_missing_fields_is_named(tmp_path):
    (tmp_path / "labels.csv").write_text("path,label\na.wav,bonafide\nb.wav\n")
    with pytest.raises(ManifestError, match=r"(?s)^1 bad line\(s\) in labels.csv:.*labels.csv:3: wrong number of fields"):
        build_manifest("folder", tmp_path)


def test_audio_paths_take_the_first_location_holding_each_file_else_the_first_location(tmp_path):
    from xlsr_helpers.data.manifest import audio_paths
    for d, f in (("a", "x.flac"), ("b", "y.flac"), ("b", "x.flac")):
        (tmp_path / d).mkdir(exist_ok=True)
        (tmp_path / d / f).write_bytes(b"")
    rows = [{"utt_id": u} for u in ("x", "y", "z")]
    two = ["a/{utt_id}.flac", "b/{utt_id}.flac"]
    assert audio_paths(rows, tmp_path, two) == [str(tmp_path / "a/x.flac"), str(tmp_path / "b/y.flac"),
                                                str(tmp_path / "a/z.flac")]  # z is nowhere: the first location
    assert audio_paths(rows, tmp_path, two[::-1]) == [str(tmp_path / "b/x.flac"), str(tmp_path / "b/y.flac"),
                                                      str(tmp_path / "b/z.flac")]
    assert audio_paths(rows[1:], tmp_path, "a/{utt_id}.flac") == [str(tmp_path / "a/y.flac"), str(tmp_path / "a/z.flac")]
    # a folder pattern that matches nothing: the files are missing under the pattern itself
    assert audio_paths(rows[:1], tmp_path, "c_*/{utt_id}.flac") == [str(tmp_path / "c_*/x.flac")]


def _touch(root, *rels):
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


@pytest.mark.parametrize("extra,words", [
    (("spoofed/x.wav", "spoofed/y.flac"), "folder(s) spoofed/ (2 audio) hold audio but are not label folders"),
    (("other/deep/x.mp3",), "folder(s) other/ (1 audio) hold audio but are not label folders"),
    (("loose.wav", "LOOSE2.FLAC"), "2 audio file(s) lie outside the label folders: LOOSE2.FLAC, loose.wav"),
])
def test_audio_without_a_label_folder_is_an_error_naming_it(tmp_path, extra, words):
    _touch(tmp_path, "real/a.wav", "fake/b.wav", *extra)
    with pytest.raises(ManifestError) as err:
        build_manifest("folder", tmp_path)
    assert str(err.value).startswith(f"{tmp_path}: {words}; label folders are ['bona-fide', 'bonafide', 'fake'")
    assert str(err.value).endswith("rename or move the rest, or give every file its label in labels.csv (path,label)")


def test_what_is_not_audio_is_listed_as_ignored_and_the_counts_add_up(tmp_path):
    _touch(tmp_path, "real/a.wav", "Fake/b.wav", "fake/notes.txt", "real/.DS_Store", "README.md", ".cache/x.wav",
           "docs/paper.pdf")
    res = build_manifest("folder", tmp_path)
    assert res.splits["all"][["utt_id", "label"]].values.tolist() == [["Fake/b", "spoof"], ["real/a", "bonafide"]]
    audio = "['.flac', '.mp3', '.ogg', '.wav']"
    assert res.reports["all"].ignored == [
        (".cache/", "hidden"), ("README.md", "not audio, outside the label folders (.md)"),
        ("docs/", "not a label folder, holds no audio"), ("fake/notes.txt", f"not audio (.txt; audio is {audio})"),
        ("real/.DS_Store", f"not audio (no extension; audio is {audio})")]
    assert res.summary().loc[0, ["lines", "kept", "ignored_files"]].tolist() == [2, 2, 5]
    res.write(tmp_path / "m")
    listed = pd.read_csv(tmp_path / "m" / "ignored_files_all.csv")
    assert listed.path.tolist() == [".cache/", "README.md", "docs/", "fake/notes.txt", "real/.DS_Store"]
    assert yaml.safe_load((tmp_path / "m" / "validation.yaml").read_text())["splits"]["all"]["ignored_files"] == 5


def test_audio_that_labels_csv_does_not_list_is_listed_as_ignored(tmp_path):
    _touch(tmp_path, "real/a.wav", "fake/b.wav", "extra/c.flac", "real/notes.txt")
    (tmp_path / "labels.csv").write_text("path,label\nreal/a.wav,bonafide\nfake/b.wav,spoof\n")
    res = build_manifest("folder", tmp_path)
    assert res.splits["all"].utt_id.tolist() == ["real/a", "fake/b"]
    assert res.reports["all"].ignored == [("extra/c.flac", "audio not listed in labels.csv")]
    (tmp_path / "labels.csv").write_text("path,label\nreal/a.wav,bonafide\nfake/b.wav,spoof\nextra/c.flac,spoof\n")
    assert build_manifest("folder", tmp_path).reports["all"].ignored == []


def test_01_replaces_an_earlier_runs_manifests(tmp_path):
    """A split the new corpus lacks (train.csv after switching to a folder corpus), an old subsample
    note or audio check must not stay next to the new manifests."""
    from xlsr_helpers.data.prep import write_manifests
    out = tmp_path / "manifests"
    out.mkdir()
    for name in ("train.csv", "dev.csv", "skipped_missing_train.csv", "audio_check_dev.csv", "subsample.json",
                 "validation.yaml"):
        (out / name).write_text("old")
    (out / "notes.md").write_text("mine")  # not an output of 01: kept
    _touch(tmp_path / "own", "real/a.wav", "fake/b.wav")
    write_manifests(build_manifest("folder", tmp_path / "own"), out)
    assert sorted(p.name for p in out.iterdir()) == ["all.csv", "counts.csv", "notes.md", "validation.yaml"]
    assert yaml.safe_load((out / "validation.yaml").read_text())["dataset"] == "folder"
