"""Corpus descriptors are checked on load: each problem names its field, before any protocol is read."""

import copy

import pytest
import yaml

from xlsr_helpers.core.errors import ManifestError
from xlsr_helpers.data.descriptor import available_datasets, descriptor_problems, load_descriptor

GOOD = {  # a whitespace corpus, as data_manifest/asvspoof2019-la.yaml
    "name": "mine", "format": "whitespace", "columns": ["speaker", "utt_id", "_x", "attack", "key"],
    "label_column": "key", "label_map": {"bonafide": "bonafide", "spoof": "spoof"},
    "splits": {"train": {"protocol": ["p/train.txt"], "audio": "flac/{utt_id}.flac"}}, "roots": ["*"],
}


def edited(**changes):
    d = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is None:
            del d[key]
        else:
            d[key] = value
    return d


def test_every_shipped_descriptor_is_sound():
    for name in available_datasets():
        assert descriptor_problems(load_descriptor(name)) == [], name


def test_a_sound_descriptor_has_no_problems_and_one_candidate_becomes_a_list():
    d = edited()
    assert descriptor_problems(d) == []
    assert d["splits"]["train"]["audio"] == ["flac/{utt_id}.flac"]  # a single template is a list of one
    csv_corpus = edited(format="csv", columns={"file": "utt_file", "label": "key"},
                        splits={"eval": {"protocol": "meta.csv", "audio": ["{utt_file}", "x/{utt_file}"]}})
    assert descriptor_problems(csv_corpus) == [] and csv_corpus["splits"]["eval"]["protocol"] == ["meta.csv"]
    assert descriptor_problems({"name": "own", "format": "folder", "label_map": {"real": "bonafide"},
                                "splits": {"all": {}}, "csv_name": "labels.csv", "extensions": [".wav"]}) == []


CASES = [  # (what is wrong, the descriptor, the one problem reported)
    ("not a mapping", ["name"], "expected a mapping of fields at the top level"),
    ("a typo in a field", {**edited(label_map=None), "lable_map": {"a": "spoof"}},
     ["unknown field 'lable_map'", "label_map: missing"]),
    ("no name", edited(name=None), "name: missing"),
    ("no splits", edited(splits=None), "splits: missing"),
    ("unknown format", edited(format="tsv"), "format: 'tsv' is not one of ['whitespace', 'csv', 'folder']"),
    ("whitespace without columns", edited(columns=None), "columns: missing (needed by format whitespace)"),
    ("folder without its label file", {**edited(format="folder", columns=None, roots=None), "extensions": [".wav"]},
     "csv_name: missing (needed by format folder)"),
    ("folder without extensions", {**edited(format="folder", columns=None, roots=None), "csv_name": "l.csv"},
     "extensions: missing (needed by format folder)"),
    ("a label outside the vocabulary", edited(label_map={"bonafide": "bonafide", "spoof": "fake"}),
     "label_map: expected a mapping of key values to ['bonafide', 'spoof'], got {'bonafide': 'bonafide', 'spoof': 'fake'}"),
    ("an empty label map", edited(label_map={}), "label_map: expected a mapping of key values to ['bonafide', 'spoof'], got {}"),
    ("empty splits", edited(splits={}), "splits: expected a mapping of split names to their files, got {}"),
    ("roots not a list", edited(roots="*"), "roots: expected a list of folder patterns, got '*'"),
    ("roots for a folder corpus", {**edited(format="folder", columns=None), "csv_name": "l.csv", "extensions": [".wav"]},
     "roots: a folder corpus is not searched for (it has no protocol file): leave roots empty"),
    ("columns not a list", edited(columns="speaker utt_id"),
     "columns: expected a list of column names, got 'speaker utt_id'"),
    ("csv columns not a mapping", edited(format="csv", columns=["file", "label"]),
     "columns: expected a mapping of CSV header to field, got ['file', 'label']"),
    ("label column not a column", edited(label_column="label"),
     "label_column: 'label' is not one of the columns ['speaker', 'utt_id', '_x', 'attack', 'key']"),
    ("no id column", edited(columns=["speaker", "name", "key"]),
     "columns: none is utt_id or utt_file, so trials have no id (['speaker', 'name', 'key'])"),
    ("a split that is a path", edited(splits={"train": "p/train.txt"}),
     "splits.train: expected protocol and audio, got 'p/train.txt'"),
    ("no protocol", edited(splits={"dev": {"audio": "{utt_id}.flac"}}),
     "splits.dev.protocol: expected a path or a list of them, got None"),
    ("empty audio list", edited(splits={"dev": {"protocol": ["p"], "audio": []}}),
     "splits.dev.audio: expected a path template or a list of them, got []"),
    ("a typo in a template field", edited(splits={"dev": {"protocol": ["p"], "audio": ["a/{utt_id}", "b/{uttid}.flac"]}}),
     "splits.dev.audio: 'b/{uttid}.flac' uses ['uttid'], which are not columns "
     "(['_x', 'attack', 'key', 'speaker', 'utt_id'])"),
    ("an unclosed template field", edited(splits={"dev": {"protocol": ["p"], "audio": "a/{utt_id.flac"}}),
     "splits.dev.audio: 'a/{utt_id.flac' is not a path template: expected '}' before end of string"),
    ("every bad template is named", edited(splits={"dev": {"protocol": ["p"], "audio": ["a/{utt_id", "b/{x}"]}}),
     ["splits.dev.audio: 'a/{utt_id' is not a path template: expected '}' before end of string",
      "splits.dev.audio: 'b/{x}' uses ['x'], which are not columns (['_x', 'attack', 'key', 'speaker', 'utt_id'])"]),
    ("no audio", edited(splits={"dev": {"protocol": ["p"]}}),
     "splits.dev.audio: expected a path template or a list of them, got None"),
    ("a protocol that is not text", edited(splits={"dev": {"protocol": [5], "audio": "{utt_id}"}}),
     "splits.dev.protocol: expected a path or a list of them, got [5]"),
    ("every bad split is named", edited(splits={"dev": "p", "eval": {"protocol": ["p"], "audio": []}}),
     ["splits.dev: expected protocol and audio, got 'p'",
      "splits.eval.audio: expected a path template or a list of them, got []"]),
    ("a format that is a list", edited(format=["csv"], columns=None), "format: ['csv'] is not one of "
     "['whitespace', 'csv', 'folder']"),
    ("extensions as one string", {**edited(format="folder", columns=None, roots=None), "csv_name": "l.csv",
                                  "extensions": ".wav"},
     "extensions: expected a list such as ['.wav', '.flac'], got '.wav'"),
    ("no label file name", {**edited(format="folder", columns=None, roots=None), "csv_name": "", "extensions": [".wav"]},
     "csv_name: expected a file name, got ''"),
    ("ASV scores as a list", edited(asv_scores=["a.txt"]),
     "asv_scores: expected a mapping of split to ASV score file, got ['a.txt']"),
    ("2021 ASV files without scores", edited(asv_2021={"keys": ["k.txt"]}),
     "asv_2021: expected keys and scores, each a list of candidate files, got {'keys': ['k.txt']}"),
    ("the label column defaults to 'label'", edited(label_column=None),
     "label_column: 'label' is not one of the columns ['speaker', 'utt_id', '_x', 'attack', 'key']"),
]


@pytest.mark.parametrize("desc,expected", [pytest.param(c[1], c[2], id=c[0]) for c in CASES])
def test_each_problem_is_named_by_its_field(desc, expected):
    assert descriptor_problems(desc) == ([expected] if isinstance(expected, str) else expected)


def test_a_label_column_named_label_needs_no_label_column_field():
    assert descriptor_problems(edited(label_column=None, columns=["speaker", "utt_id", "label"])) == []


def test_csv_templates_may_use_utt_id_though_it_comes_from_the_file_name():
    d = edited(format="csv", columns={"file": "utt_file", "label": "key"},
               splits={"eval": {"protocol": ["meta.csv"], "audio": "wav/{utt_id}.wav"}})
    assert descriptor_problems(d) == []


def test_load_names_the_file_and_every_problem(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(edited(format="tsv", name=None)))
    with pytest.raises(ManifestError) as err:
        load_descriptor(path)
    assert str(err.value) == (f"{path}: bad descriptor: name: missing; format: 'tsv' is not one of "
                              "['whitespace', 'csv', 'folder'] (fields: data_manifest/README.md)")
    path.write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match=rf"^{path}: not valid YAML \(UTF-8\): "):
        load_descriptor(path)
    path.write_bytes(b"name: caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(ManifestError, match=rf"^{path}: not valid YAML \(UTF-8\): 'utf-8' codec"):
        load_descriptor(path)
    with pytest.raises(ManifestError, match=rf"^descriptor {tmp_path / 'folder.yaml'} is not a file; or name one of"):
        load_descriptor(tmp_path / "folder.yaml")
    (tmp_path / "folder.yaml").mkdir()  # a folder, not a file
    with pytest.raises(ManifestError, match=rf"^descriptor {tmp_path / 'folder.yaml'} is not a file; or name one of"):
        load_descriptor(tmp_path / "folder.yaml")
    with pytest.raises(ManifestError, match=r"unknown dataset 'nope': choose one of \['asvspoof2019-la'"):
        load_descriptor("nope")


def test_the_manifest_command_refuses_a_bad_descriptor_with_exit_code_2(tmp_path, capsys):
    from xlsr_helpers.cli.main import main
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(edited(splits={"train": {"protocol": ["p"], "audio": "{file}"}})))
    assert main(["manifest", "--dataset", str(path), "--root", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml: bad descriptor: splits.train.audio: '{file}' uses ['file']" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()
