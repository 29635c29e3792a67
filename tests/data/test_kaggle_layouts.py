"""Dataset auto-detection on the layouts Kaggle users attach, under a stand-in for /kaggle/input.

Each layout is laid out with empty stub audio files exactly where the Kaggle copies put them
(checked against public notebooks that read them); ``data_root='auto'`` must find the corpus and
the manifest must count every trial, none missing.
"""

import pytest

from xlsr_helpers.data.manifest import ManifestError, build_manifest, find_root
from xlsr_helpers.pipeline.runfolder import resolve_run_dir
from xlsr_helpers.runtime.kaggle_env import KAGGLE_ROOT_ENV, glob_input, mount_patterns

LA19 = {"train": ["LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1004644 - A01 spoof",
                  "LA_0079 LA_T_1025525 - A02 spoof"],
        "dev": ["LA_0069 LA_D_1047731 - - bonafide", "LA_0069 LA_D_1002910 - A05 spoof"],
        "eval": ["LA_0039 LA_E_2834763 - A11 spoof", "LA_0030 LA_E_5849185 - - bonafide"]}
LA21 = ["LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
        "LA_0012 LA_E_1234567 none - - bonafide notrim progress",
        "LA_0013 LA_E_7654321 ulaw loc_tx A13 spoof notrim eval"]
DF21 = [f"LA_00{40 + i} DF_E_20000{i:02d} mp3m4a asvspoof {'-' if i % 4 == 0 else 'A09'} "
        f"{'bonafide' if i % 4 == 0 else 'spoof'} notrim eval traditional_vocoder - - - -" for i in range(8)]


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.fixture
def kaggle(tmp_path, monkeypatch):
    """An empty /kaggle stand-in (input + working) selected by the environment variable."""
    (tmp_path / "input").mkdir()
    (tmp_path / "working").mkdir()
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(tmp_path))
    return tmp_path


def lay_2019(root):
    names = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}
    for split, lines in LA19.items():
        proto = root / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{names[split]}.txt"
        proto.parent.mkdir(parents=True, exist_ok=True)
        proto.write_text("\n".join(lines) + "\n")
        for line in lines:
            touch(root / f"ASVspoof2019_LA_{split}" / "flac" / f"{line.split()[1]}.flac")
    return root


@pytest.mark.parametrize("mount", [
    "asvpoof-2019-dataset/LA/LA",  # awsaf49's dataset, classic mount
    "datasets/awsaf49/asvpoof-2019-dataset/LA/LA",  # the newer datasets/<owner>/<slug> mount
    "asvspoof2019-la/LA",  # the seed notebook's copy
])
def test_asvspoof2019_mounts(kaggle, mount):
    root = lay_2019(kaggle / "input" / mount)
    (kaggle / "input" / "unrelated-dataset" / "LA").mkdir(parents=True)  # a decoy without protocols
    assert find_root("asvspoof2019-la") == root
    res = build_manifest("asvspoof2019-la", None)
    assert {s: len(df) for s, df in res.splits.items()} == {"train": 3, "dev": 2, "eval": 2}
    assert all(r.missing_skipped == 0 for r in res.reports.values())


def test_classic_mount_wins_over_the_newer_one(kaggle):
    classic = lay_2019(kaggle / "input" / "asvpoof-2019-dataset" / "LA" / "LA")
    lay_2019(kaggle / "input" / "datasets" / "awsaf49" / "asvpoof-2019-dataset" / "LA" / "LA")
    assert find_root("asvspoof2019-la") == classic


def test_in_the_wild_real_and_fake_folders(kaggle):
    """meta.csv at the dataset root, audio in release_in_the_wild/real and /fake."""
    ds = kaggle / "input" / "in-the-wild-audio-deepfake"
    rows = [("0.wav", "Alec Guinness", "spoof"), ("1.wav", "Barack Obama", "spoof"),
            ("4.wav", "Christopher Hitchens", "bona-fide"), ("7.wav", "Barack Obama", "bona-fide"),
            ("9.wav", "Alec Guinness", "spoof")]
    (ds / "meta.csv").parent.mkdir(parents=True)
    (ds / "meta.csv").write_text("file,speaker,label\n" + "".join(f"{f},{s},{lab}\n" for f, s, lab in rows))
    for f, _, lab in rows:
        touch(ds / "release_in_the_wild" / ("real" if lab == "bona-fide" else "fake") / f)
    assert find_root("in-the-wild") == ds
    df = build_manifest("in-the-wild", None).splits["eval"]
    assert len(df) == 5 and (df.label == "bonafide").sum() == 2
    real = df[df.label == "bonafide"].path
    assert all("/release_in_the_wild/real/" in p for p in real)
    assert all("/release_in_the_wild/fake/" in p for p in df[df.label == "spoof"].path)


def test_in_the_wild_original_flat_release(kaggle):
    ds = kaggle / "input" / "datasets" / "someone" / "itw" / "release_in_the_wild"
    ds.mkdir(parents=True)
    (ds / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,B,bona-fide\n")
    touch(ds / "0.wav")
    touch(ds / "1.wav")
    assert find_root("in-the-wild") == ds.parent  # meta.csv found at release_in_the_wild/meta.csv
    assert len(build_manifest("in-the-wild", None).splits["eval"]) == 2


def test_asvspoof2021_df_in_four_parts(kaggle):
    ds = kaggle / "input" / "asvspoof-2021-df"
    keys = ds / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("\n".join(DF21) + "\n")
    for i, line in enumerate(DF21):  # two files in each part
        touch(ds / f"ASVspoof2021_DF_eval_part0{i // 2}" / "ASVspoof2021_DF_eval" / "flac" / f"{line.split()[1]}.flac")
    assert find_root("asvspoof2021-df") == ds
    res = build_manifest("asvspoof2021-df", None)
    df = res.splits["eval"]
    assert len(df) == 8 and res.reports["eval"].missing_skipped == 0
    assert {p.split("/")[-4] for p in df.path} == {f"ASVspoof2021_DF_eval_part0{k}" for k in range(4)}
    assert (df.label == "bonafide").sum() == 2 and set(df.vocoder) == {"traditional_vocoder"}


def test_asvspoof2021_df_missing_part_is_reported(kaggle):
    ds = kaggle / "input" / "asvspoof-2021-df"
    keys = ds / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("\n".join(DF21) + "\n")
    for i, line in enumerate(DF21[:6]):  # part03 not attached
        touch(ds / f"ASVspoof2021_DF_eval_part0{i // 2}" / "ASVspoof2021_DF_eval" / "flac" / f"{line.split()[1]}.flac")
    with pytest.raises(ManifestError, match="2 of 8 audio files"):
        build_manifest("asvspoof2021-df", None)
    res = build_manifest("asvspoof2021-df", None, allow_missing=True)
    assert res.reports["eval"].kept == 6 and res.reports["eval"].missing_skipped == 2


def test_asvspoof2021_la_avsspoof_copy(kaggle):
    """The common 2021 LA copy: keys under LA-keys-full/keys/LA/CM/, audio in ASVspoof2021_LA_eval/flac."""
    ds = kaggle / "input" / "avsspoof-2021"
    keys = ds / "LA-keys-full" / "keys" / "LA" / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("\n".join(LA21) + "\n")
    for line in LA21:
        touch(ds / "ASVspoof2021_LA_eval" / "flac" / f"{line.split()[1]}.flac")
    assert find_root("asvspoof2021-la") == ds
    df = build_manifest("asvspoof2021-la", None).splits["eval"]
    assert df.utt_id.tolist() == [line.split()[1] for line in LA21]
    assert df.phase.tolist() == ["eval", "progress", "eval"]


def test_nothing_attached_names_the_search(kaggle):
    with pytest.raises(ManifestError, match=r"no folder under .*input holds its protocol files.*data_root"):
        find_root("asvspoof2019-la")


def test_mount_patterns_cover_both_mount_styles():
    assert mount_patterns(["*/LA"]) == ["*/LA", "datasets/*/*/LA"]


def test_glob_without_a_kaggle_input_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(tmp_path / "absent"))
    assert glob_input(["*"]) == []


def test_run_dir_auto_lands_in_kaggle_working(kaggle):
    assert resolve_run_dir("auto") == kaggle / "working" / "xlsr-run"


def test_offline_kernel_uses_the_attached_model_instead_of_the_hub(kaggle, tiny_backbone, monkeypatch):
    """A Kaggle Model (<slug>/<framework>/<variation>/<version>) holding XLS-R's saved files replaces
    the hub id; nothing is fetched (HF_HUB_OFFLINE=1, as in an offline kernel)."""
    import shutil

    from xlsr_helpers.model.loading import load_detector
    from xlsr_helpers.pipeline.runfolder import find_attached_model, resolve_base_model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert find_attached_model("facebook/wav2vec2-xls-r-300m") is None
    (kaggle / "input" / "some-other-model" / "transformers" / "default" / "1").mkdir(parents=True)
    attached = shutil.copytree(tiny_backbone, kaggle / "input" / "datasets" / "me" / "xls-r-300m-weights" / "model")
    run = kaggle / "working" / "xlsr-run"
    assert resolve_base_model("facebook/wav2vec2-xls-r-300m", run) == str(attached)
    assert resolve_base_model(str(tiny_backbone), run) == str(tiny_backbone)  # a folder given stays
    assert resolve_base_model("someone/another-model", run) == "someone/another-model"  # no copy attached
    assert load_detector(resolve_base_model("facebook/wav2vec2-xls-r-300m", run)).config.num_labels == 2


def test_several_corpora_are_each_found_on_kaggle(kaggle, tmp_path):
    """dataset='asvspoof2019-la+in-the-wild', data_root='auto': each corpus found at its own mount;
    In-the-Wild has no train or dev split, so adds to eval only."""
    from xlsr_helpers.data.corpora import build_corpora
    from xlsr_helpers.pipeline.runfolder import resolve_corpora
    la = lay_2019(kaggle / "input" / "asvpoof-2019-dataset" / "LA" / "LA")
    itw = kaggle / "input" / "in-the-wild-audio-deepfake"
    itw.mkdir(parents=True)
    (itw / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,B,bona-fide\n")
    touch(itw / "0.wav")
    touch(itw / "1.wav")
    specs, roots = resolve_corpora("asvspoof2019-la+in-the-wild", "auto", tmp_path / "run")
    assert roots == [la, itw]
    res = build_corpora(specs, roots)
    assert {s: df.corpus.value_counts().to_dict() for s, df in res.splits.items()} == {
        "train": {"asvspoof2019-la": 3}, "dev": {"asvspoof2019-la": 2},
        "eval": {"asvspoof2019-la": 2, "in-the-wild": 2}}
    assert res.lacking_text() == "in-the-wild has no train or dev split, so adds nothing to it"
    assert sorted(res.splits["eval"].utt_id) == ["asvspoof2019-la/LA_E_2834763", "asvspoof2019-la/LA_E_5849185",
                                                 "in-the-wild/0", "in-the-wild/1"]
