"""The run folder's demo corpus is the one the parameters ask for, never an earlier one of another size."""

import pytest
import yaml

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.demo import SIZES, SPLIT_ATTACKS
from xlsr_helpers.pipeline import runfolder
from xlsr_helpers.pipeline.runfolder import resolve_data_root

TRAIN_PROTOCOL = "LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt"


@pytest.fixture
def generated(monkeypatch):
    """Stands in for the generator: a protocol with one line per trial of the size, and a call list."""
    calls = []

    def fake(out_dir, seed=0, size="small"):
        calls.append((size, seed))
        n = SIZES[size].bonafide["train"] + SIZES[size].per_attack["train"] * len(SPLIT_ATTACKS["train"])
        (out_dir / TRAIN_PROTOCOL).parent.mkdir(parents=True)
        (out_dir / TRAIN_PROTOCOL).write_text("line\n" * n)
        return out_dir / "LA"
    monkeypatch.setattr(runfolder, "make_demo_corpus", fake)
    return calls


def train_lines(run_dir):
    return len((run_dir / "demo_data" / TRAIN_PROTOCOL).read_text().splitlines())


def test_another_demo_size_generates_that_size_in_place(tmp_path, generated):
    root = resolve_data_root("demo:tiny", "asvspoof2019-la", tmp_path)
    assert root == tmp_path / "demo_data" / "LA" and train_lines(tmp_path) == 18 + 3 * 6
    assert yaml.safe_load((tmp_path / "demo_data" / "demo.yaml").read_text()) == {"size": "tiny", "seed": 0}
    assert resolve_data_root("demo:tiny", "asvspoof2019-la", tmp_path) == root and generated == [("tiny", 0)]
    assert resolve_data_root("demo:small", "asvspoof2019-la", tmp_path) == root
    assert train_lines(tmp_path) == 60 + 3 * 20 and generated == [("tiny", 0), ("small", 0)]
    resolve_data_root("demo:small", "asvspoof2019-la", tmp_path, seed=3)  # another seed is another corpus too
    assert generated[-1] == ("small", 3) and not (tmp_path / "demo_data.tmp").exists()


def test_a_torn_or_unrecorded_corpus_is_generated_again(tmp_path, generated):
    (tmp_path / "demo_data.tmp" / "LA").mkdir(parents=True)  # killed while generating
    (tmp_path / "demo_data" / "LA" / "ASVspoof2019_LA_cm_protocols").mkdir(parents=True)  # no record: size unknown
    resolve_data_root("demo:tiny", "asvspoof2019-la", tmp_path)
    assert generated == [("tiny", 0)] and train_lines(tmp_path) == 36


def test_scoring_never_replaces_the_corpus_that_01_read(tmp_path, generated):
    with pytest.raises(ConfigError) as err:
        resolve_data_root("demo:small", "asvspoof2019-la", tmp_path, make=False)
    assert str(err.value) == (f"data_root='demo:small': {tmp_path / 'demo_data'} holds no demo corpus; give the "
                              "data_root that notebook 01 used, or run 01 again with this one")
    resolve_data_root("demo:tiny", "asvspoof2019-la", tmp_path)
    with pytest.raises(ConfigError, match=r"holds the demo:tiny corpus \(seed 0\); give the data_root"):
        resolve_data_root("demo:small", "asvspoof2019-la", tmp_path, make=False)
    assert train_lines(tmp_path) == 36 and generated == [("tiny", 0)]
    assert resolve_data_root("demo:tiny", "asvspoof2019-la", tmp_path, make=False) == tmp_path / "demo_data" / "LA"
    (tmp_path / "demo_data" / "demo.yaml").unlink()  # a run folder from before sizes were recorded
    assert resolve_data_root("demo:small", "asvspoof2019-la", tmp_path, make=False) == tmp_path / "demo_data" / "LA"


def test_an_unknown_demo_size_is_named(tmp_path, generated):
    with pytest.raises(ConfigError, match=r"^data_root='demo:huge': expected one of \['demo:tiny', 'demo:small'\]"):
        resolve_data_root("demo:huge", "asvspoof2019-la", tmp_path)
    assert generated == [] and not (tmp_path / "demo_data").exists()


def test_the_real_generator_and_its_record(tmp_path):
    root = resolve_data_root("demo:tiny", "asvspoof2019-la", tmp_path)
    tiny = SIZES["tiny"]
    expected = tiny.bonafide["train"] + tiny.per_attack["train"] * len(SPLIT_ATTACKS["train"])
    assert len((root.parent / TRAIN_PROTOCOL).read_text().splitlines()) == expected
    assert len(list((root / "ASVspoof2019_LA_train" / "flac").glob("*.flac"))) == expected
    assert sorted(p.name for p in (tmp_path / "demo_data").iterdir()) == ["LA", "demo.yaml"]
