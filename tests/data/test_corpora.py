"""Several corpora in one run: the dataset/data_root specs, manifests joined per split with a corpus
column and ids unique across corpora, per-corpus tables, and subsampling per corpus."""

import pandas as pd
import pytest
import yaml

from xlsr_helpers.cli.main import main
from xlsr_helpers.core.errors import ManifestError
from xlsr_helpers.data.corpora import CorpusSpec, build_corpora, parse_corpora
from xlsr_helpers.data.manifest import build_manifest, read_manifest
from xlsr_helpers.data.prep import subsample, write_manifests


def test_specs_name_each_corpus_and_pair_roots_in_order(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text("name: mine\nformat: folder\nlabel_map: {real: bonafide, fake: spoof}\nextensions: [.wav]\n"
                   "csv_name: labels.csv\nsplits:\n  all: {}\n")
    assert parse_corpora("asvspoof2019-la+asvspoof5") == [CorpusSpec("asvspoof2019-la", "asvspoof2019-la", "auto"),
                                                          CorpusSpec("asvspoof5", "asvspoof5", "auto")]
    specs = parse_corpora(f"asvspoof5+{own}+folder+folder", "/a+auto+/c+/d")
    assert [(s.corpus, s.root) for s in specs] == [("asvspoof5", "/a"), ("mine", "auto"), ("folder", "/c"),
                                                   ("folder-2", "/d")]  # a descriptor given twice: -2
    assert parse_corpora("asvspoof2019-la", "demo:tiny") == [CorpusSpec("asvspoof2019-la", "asvspoof2019-la", "demo:tiny")]
    with pytest.raises(ManifestError, match=r"gives 1 root\(s\) for the 2 corpora .*join one root per corpus with '\+'"):
        parse_corpora("asvspoof2019-la+asvspoof5", "/only/one")
    with pytest.raises(ManifestError, match="an empty part between"):
        parse_corpora("asvspoof2019-la++asvspoof5")
    with pytest.raises(ManifestError, match="unknown dataset 'nope'"):
        parse_corpora("asvspoof2019-la+nope")
    plus = tmp_path / "a+b.yaml"  # a descriptor file whose name holds '+' is one descriptor
    plus.write_text(own.read_text())
    assert [s.corpus for s in parse_corpora(str(plus))] == ["mine"]


def test_two_layouts_join_per_split_with_unique_ids(two_corpora):
    la, mine, descriptor = two_corpora
    specs = parse_corpora(f"asvspoof2019-la+{descriptor}", f"{la}+{mine}")
    res = build_corpora(specs, [la, mine])
    alone = {name: build_manifest(d, r) for name, d, r in (("asvspoof2019-la", "asvspoof2019-la", la),
                                                          ("mine", str(descriptor), mine))}
    assert res.split_names == ["train", "dev", "eval"]
    for split, df in res.splits.items():
        parts = {c: a.splits[split] for c, a in alone.items() if split in a.splits}
        assert len(df) == sum(len(p) for p in parts.values())
        assert df.utt_id.is_unique
        assert df.corpus.tolist() == [c for c, p in parts.items() for _ in range(len(p))]
        for c, p in parts.items():  # every id <corpus>/<the protocol's id>, the protocol's id kept
            rows = df[df.corpus == c]
            assert rows.source_id.tolist() == p.utt_id.tolist()
            assert rows.utt_id.tolist() == [f"{c}/{i}" for i in p.utt_id]
            assert rows.path.tolist() == p.path.tolist() and rows.label.tolist() == p.label.tolist()
    # the own corpus reuses every id of the demo corpus: without the prefix they would collide
    assert set(alone["mine"].splits["train"].utt_id) == set(alone["asvspoof2019-la"].splits["train"].utt_id)
    assert res.lacking() == {"mine": ["eval"]}
    assert res.lacking_text() == "mine has no eval split, so adds nothing to it"
    table = res.by_label()
    n = {(c, s): a.splits[s].label.value_counts() for c, a in alone.items() for s in a.splits}
    assert table[["corpus", "split"]].apply(tuple, axis=1).tolist() == list(n)
    assert table.bonafide.tolist() == [v["bonafide"] for v in n.values()]
    assert table.spoof.tolist() == [v["spoof"] for v in n.values()]
    assert res.pivot().loc["mine", "eval"].eq(0).all()


def test_written_manifests_hold_the_corpus_column(two_corpora, tmp_path):
    la, mine, descriptor = two_corpora
    specs = parse_corpora(f"asvspoof2019-la+{descriptor}", f"{la}+{mine}")
    res = build_corpora(specs, [la, mine])
    out = tmp_path / "manifests"
    out.mkdir()
    write_manifests(res, out)
    for split in ("train", "dev", "eval"):
        df = read_manifest(out / f"{split}.csv")
        assert df.utt_id.tolist() == res.splits[split].utt_id.tolist() and (df.corpus != "").all()
    assert sorted(p.name for p in out.iterdir()) == ["counts.csv", "dev.csv", "eval.csv", "train.csv", "validation.yaml"]
    counts = pd.read_csv(out / "counts.csv", keep_default_na=False)
    assert set(counts.corpus) == {"asvspoof2019-la", "mine"}
    report = yaml.safe_load((out / "validation.yaml").read_text())
    assert list(report["corpora"]) == ["asvspoof2019-la", "mine"] and report["lacking"] == {"mine": ["eval"]}
    assert report["corpora"]["mine"]["splits"]["train"]["kept"] == len(read_manifest(out / "train.csv").query(
        "corpus == 'mine'"))


def test_one_corpus_keeps_the_organisers_ids(demo_root, tmp_path):
    res = build_corpora(parse_corpora("asvspoof2019-la"), [demo_root])
    alone = build_manifest("asvspoof2019-la", demo_root)
    for split, df in res.splits.items():
        pd.testing.assert_frame_equal(df, alone.splits[split])
        assert "source_id" not in df and set(df.corpus) == {"asvspoof2019-la"}


def test_the_same_corpus_twice_is_refused(demo_root):
    specs = parse_corpora("asvspoof2019-la+asvspoof2019-la", f"{demo_root}+{demo_root}")
    with pytest.raises(ManifestError, match="lists asvspoof2019-la at .* twice"):
        build_corpora(specs, [demo_root, demo_root])


def test_subsampling_keeps_each_corpus_share():
    """120 trials: corpus a 20 bonafide + 80 spoof, corpus b 10 + 10; 60 kept is half of every
    corpus x label x attack group: a 10 + 40, b 5 + 5."""
    rows = [("a", "bonafide")] * 20 + [("a", "spoof")] * 80 + [("b", "bonafide")] * 10 + [("b", "spoof")] * 10
    df = pd.DataFrame(rows, columns=["corpus", "label"]).assign(attack=lambda d: d.label.map({"bonafide": "-",
                                                                                             "spoof": "A01"}))
    kept = subsample(df, 60, seed=3)
    assert kept.groupby(["corpus", "label"]).size().to_dict() == {("a", "bonafide"): 10, ("a", "spoof"): 40,
                                                                  ("b", "bonafide"): 5, ("b", "spoof"): 5}


def test_xlsr_manifest_reads_several_corpora(two_corpora, tmp_path, capsys):
    la, mine, descriptor = two_corpora
    out = tmp_path / "m"
    assert main(["manifest", "--dataset", f"asvspoof2019-la+{descriptor}", "--root", f"{la}+{mine}",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mine has no eval split, so adds nothing to it" in printed
    train = read_manifest(out / "train.csv")
    assert set(train.corpus) == {"asvspoof2019-la", "mine"} and train.utt_id.is_unique
    assert main(["manifest", "--dataset", f"asvspoof2019-la+{descriptor}", "--root", str(la),
                 "--out", str(tmp_path / "n")]) == 2
    assert "gives 1 root(s) for the 2 corpora" in capsys.readouterr().err
