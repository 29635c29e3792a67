"""The manifest's checks and defaults, each against the exact text or value a user gets: root
auto-detection, the problem list, whitespace and CSV parsing, confinement, the columns a corpus
without speaker/attack columns gets, and where CSV-relative audio is looked for."""

import pytest
import yaml

from xlsr_helpers.data.manifest import BASE_COLUMNS, ManifestError, build_manifest, check_confined, find_root
from xlsr_helpers.data.protocol import MAX_LISTED, parse_whitespace, raise_problems
from xlsr_helpers.runtime.kaggle_env import KAGGLE_ROOT_ENV


def touch(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def lay_2019(root):
    for split, name in (("train", "train.trn"), ("dev", "dev.trl"), ("eval", "eval.trl")):
        touch(root / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{name}.txt", f"S1 LA_{split} - - bonafide\n")
        touch(root / f"ASVspoof2019_LA_{split}" / "flac" / f"LA_{split}.flac")
    return root


def own(tmp_path, **fields):
    """An own descriptor written to a file (by default a whitespace corpus with one split)."""
    desc = {"name": "mine", "format": "whitespace", "columns": ["speaker", "utt_id", "_x", "key"],
            "label_column": "key", "label_map": {"bonafide": "bonafide", "spoof": "spoof"},
            "splits": {"train": {"protocol": ["p/train.txt"], "audio": "wav/{utt_id}.wav"}}, **fields}
    return str(touch(tmp_path / "mine.yaml", yaml.safe_dump(desc)))


def test_auto_root_says_which_copy_it_took_when_there_are_several(logged, tmp_path, monkeypatch):
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(tmp_path))
    classic = lay_2019(tmp_path / "input" / "asvpoof-2019-dataset" / "LA" / "LA")
    with logged("xlsr_helpers.data.manifest") as records:
        assert find_root("asvspoof2019-la") == classic
    assert records == []  # one copy: nothing to say
    newer = lay_2019(tmp_path / "input" / "datasets" / "awsaf49" / "asvpoof-2019-dataset" / "LA" / "LA")
    with logged("xlsr_helpers.data.manifest") as records:
        assert find_root("asvspoof2019-la") == classic
    assert [r.getMessage() for r in records] == [f"asvspoof2019-la: using {classic} (also found: ['{newer}'])"]


def test_no_root_found_names_the_protocols_and_the_search(tmp_path, monkeypatch):
    monkeypatch.setenv(KAGGLE_ROOT_ENV, str(tmp_path))
    (tmp_path / "input").mkdir()
    desc = own(tmp_path, roots=["corpus*"], splits={
        "train": {"protocol": ["p/train.txt", "b/all.txt"], "audio": "{utt_id}"},
        "dev": {"protocol": ["b/all.txt", "a/dev.txt"], "audio": "{utt_id}"}})
    with pytest.raises(ManifestError) as err:
        find_root(desc)
    assert str(err.value) == (
        f"no data root given for mine and no folder under {tmp_path / 'input'} holds its protocol files "
        "['a/dev.txt', 'b/all.txt', 'p/train.txt'] (searched ['corpus*', 'datasets/*/corpus*']); "
        "attach the dataset or set data_root / --root")
    with pytest.raises(ManifestError) as err:
        find_root(own(tmp_path))  # no roots: one's own data is not searched for
    assert str(err.value) == "no data root given for mine: set data_root / --root to the folder that holds it"
    with pytest.raises(ManifestError, match="^no data root given for folder: set data_root"):
        find_root("folder")


def test_the_problem_list_quotes_the_first_ones_and_counts_the_rest():
    problems = [f"p.txt:{i}: bad" for i in range(1, MAX_LISTED + 4)]
    with pytest.raises(ManifestError) as err:
        raise_problems(problems, "bad line(s) in p.txt")
    assert str(err.value) == (f"{MAX_LISTED + 3} bad line(s) in p.txt:\n  " + "\n  ".join(problems[:MAX_LISTED])
                              + "\n  ... and 3 more")
    with pytest.raises(ManifestError) as err:
        raise_problems(problems[:MAX_LISTED], "bad line(s) in p.txt")
    assert str(err.value) == f"{MAX_LISTED} bad line(s) in p.txt:\n  " + "\n  ".join(problems[:MAX_LISTED])
    assert raise_problems([], "anything") is None
    with pytest.raises(KeyError):
        raise_problems(["x"], "y", KeyError)


def test_whitespace_parsing_skips_blank_lines_and_reports_every_bad_line(tmp_path):
    long_line = "x " * 50
    path = touch(tmp_path / "p.txt", f"a b c\n\n   \nd e\nf g h\ni j k l\n{long_line}\nm n o\n")
    rows, problems, lines = parse_whitespace(path, ["s", "u", "k"])
    assert rows == [{"s": "a", "u": "b", "k": "c"}, {"s": "f", "u": "g", "k": "h"}, {"s": "m", "u": "n", "k": "o"}]
    assert lines == [1, 5, 8]
    assert problems == [f"{path}:4: expected 3 columns, found 2: 'd e'",
                        f"{path}:6: expected 3 columns, found 4: 'i j k l'",
                        f"{path}:7: expected 3 columns, found 50: {long_line.strip()[:80]!r}"]
    assert len(long_line.strip()) > 80


def test_confinement_lists_each_path_outside_the_root(tmp_path):
    root = tmp_path / "corpus"
    paths = [str(root / "a.wav"), str(root / ".." / "x.wav"), "/etc/passwd", str(root / "sub" / ".." / "b.wav")]
    check_confined([paths[0], paths[3]], [2, 5], tmp_path / "p.csv", root)  # inside, even through '..'
    with pytest.raises(ManifestError) as err:
        check_confined(paths, [2, 3, 4, 5], tmp_path / "p.csv", root)
    assert str(err.value) == (
        "2 path(s) outside the corpus (pass allow_outside_root / --allow-outside-root to allow):\n"
        f"  {tmp_path / 'p.csv'}:3: audio path {paths[1]} lies outside the data root {root}\n"
        f"  {tmp_path / 'p.csv'}:4: audio path /etc/passwd lies outside the data root {root}")


def csv_corpus(tmp_path, **fields):
    """A CSV corpus whose meta.csv lies in sub/ with the audio beside it (paths relative to the CSV)."""
    touch(tmp_path / "data" / "sub" / "meta.csv", "file,label,note,codec\n"
          "a.wav,bona-fide,x,mp3\nb.wav,spoof,y,aac\n")
    for f in ("a.wav", "b.wav"):
        touch(tmp_path / "data" / "sub" / f)
    return own(tmp_path, format="csv", columns={"file": "utt_file", "label": "key", "note": "_note", "codec": "codec"},
               label_map={"bona-fide": "bonafide", "spoof": "spoof"},
               splits={"eval": {"protocol": ["sub/meta.csv"], "audio": "{utt_file}"}}, **fields)


def test_a_corpus_without_speaker_or_attack_columns_gets_the_documented_defaults(tmp_path):
    df = build_manifest(csv_corpus(tmp_path), tmp_path / "data").splits["eval"]
    assert df.columns.tolist() == BASE_COLUMNS + ["codec"]  # key, utt_file and _-columns dropped
    assert df.utt_id.tolist() == ["a", "b"] and df.label.tolist() == ["bonafide", "spoof"]
    assert df.attack.tolist() == ["-", "spoof"] and df.speaker.tolist() == ["-", "-"]
    sub = (tmp_path / "data" / "sub").resolve()
    assert df.path.tolist() == [str(sub / "a.wav"), str(sub / "b.wav")]  # beside the CSV, not under the root
    assert df.codec.tolist() == ["mp3", "aac"] and set(df.split) == {"eval"} and set(df.dataset) == {"mine"}
    named = build_manifest(csv_corpus(tmp_path, attack_bonafide="genuine"), tmp_path / "data").splits["eval"]
    assert named.attack.tolist() == ["genuine", "spoof"]


def test_a_csv_label_outside_the_map_is_named_with_its_line(tmp_path):
    desc = csv_corpus(tmp_path)
    meta = tmp_path / "data" / "sub" / "meta.csv"
    meta.write_text(meta.read_text() + "c.wav,maybe,z,none\n")
    with pytest.raises(ManifestError) as err:
        build_manifest(desc, tmp_path / "data")
    assert str(err.value) == (f"1 bad line(s) in meta.csv:\n  {meta.resolve()}:4: unknown label 'maybe' "
                              "(expected one of ['bona-fide', 'spoof'])")


def test_build_manifest_refuses_paths_outside_the_root_unless_asked(tmp_path):
    desc = own(tmp_path, splits={"train": {"protocol": ["p/train.txt"], "audio": "../{utt_id}.wav"}})
    touch(tmp_path / "root" / "p" / "train.txt", "S1 u1 - bonafide\nS1 u2 - spoof\n")
    for u in ("u1", "u2"):
        touch(tmp_path / f"{u}.wav")
    with pytest.raises(ManifestError, match=r"^2 path\(s\) outside the corpus"):
        build_manifest(desc, tmp_path / "root")
    res = build_manifest(desc, tmp_path / "root", allow_outside_root=True)
    assert res.splits["train"].path.tolist() == [str((tmp_path / "root").resolve() / "../u1.wav"),
                                                 str((tmp_path / "root").resolve() / "../u2.wav")]
    assert res.reports["train"].split == "train" and res.reports["train"].kept == 2


def test_an_unknown_split_and_an_empty_protocol_are_named(tmp_path):
    desc = own(tmp_path)
    proto = touch(tmp_path / "root" / "p" / "train.txt", "\n\n")
    with pytest.raises(ManifestError) as err:
        build_manifest(desc, tmp_path / "root", splits=["dev"])
    assert str(err.value) == "mine has no split 'dev'; it has ['train']"
    with pytest.raises(ManifestError) as err:
        build_manifest(desc, tmp_path / "root")
    assert str(err.value) == f"{proto.resolve()}: no trials found"


def test_missing_audio_is_named_with_five_examples_and_a_wrong_root_with_the_first(tmp_path):
    desc = own(tmp_path)
    proto = touch(tmp_path / "root" / "p" / "train.txt", "".join(f"S1 u{i} - spoof\n" for i in range(8)))
    wav = (tmp_path / "root").resolve() / "wav"
    touch(wav / "u0.wav")
    with pytest.raises(ManifestError) as err:
        build_manifest(desc, tmp_path / "root")
    assert str(err.value) == (f"7 of 8 audio files listed in {proto.resolve()} are missing "
                              f"(e.g. {[str(wav / f'u{i}.wav') for i in range(1, 6)]}); fix the root or pass "
                              "allow_missing=True / --allow-missing to skip them")
    res = build_manifest(desc, tmp_path / "root", allow_missing=True)
    rep = res.reports["train"]
    assert (rep.split, rep.protocol, rep.lines, rep.kept, rep.missing_skipped) == ("train", str(proto.resolve()), 8, 1, 7)
    (wav / "u0.wav").unlink()
    with pytest.raises(ManifestError) as err:
        build_manifest(desc, tmp_path / "root", allow_missing=True)
    assert str(err.value) == (f"none of the 8 audio files listed in {proto.resolve()} exist under {wav.parent} "
                              f"(e.g. {wav / 'u0.wav'}): that is a wrong root, not missing files")


def test_ids_made_from_file_names_hold_no_whitespace_and_given_ones_are_checked(tmp_path):
    """A score file is 'utt_id score': an id with a space would break it, found only after scoring."""
    own_data = tmp_path / "own"
    for rel in ("bonafide/my clip.wav", "spoof/fake\tone.wav"):
        touch(own_data / rel)
    assert build_manifest("folder", own_data).splits["all"].utt_id.tolist() == ["bonafide/my_clip", "spoof/fake_one"]
    touch(own_data / "labels.csv", "path,label\nbonafide/my clip.wav,bonafide\n")
    assert build_manifest("folder", own_data).splits["all"].utt_id.tolist() == ["bonafide/my_clip"]
    desc = csv_corpus(tmp_path)
    meta = tmp_path / "data" / "sub" / "meta.csv"
    meta.write_text("file,label,note,codec\nmy a.wav,bona-fide,x,mp3\n")
    touch(meta.parent / "my a.wav")
    assert build_manifest(desc, tmp_path / "data").splits["eval"].utt_id.tolist() == ["my_a"]
    given = own(tmp_path, format="csv", columns={"id": "utt_id", "file": "utt_file", "label": "key"},
                splits={"eval": {"protocol": ["m.csv"], "audio": "{utt_file}"}})
    touch(tmp_path / "g" / "m.csv", "id,file,label\nok,a.wav,bonafide\nnot ok,b.wav,spoof\n")
    with pytest.raises(ManifestError) as err:
        build_manifest(given, tmp_path / "g")
    assert str(err.value) == (f"1 bad line(s) in m.csv:\n  {(tmp_path / 'g' / 'm.csv').resolve()}:3: id 'not ok' holds "
                              "whitespace, which a score file (utt_id score) cannot")
