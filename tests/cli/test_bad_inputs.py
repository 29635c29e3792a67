"""Bad inputs, one row each: what is given, the exit code, the words the message must contain.

Every row runs the real command line in-process and fails before any long work. Add a row for
each new input type.
"""

import errno
import importlib.util
import shutil

import bad_model_inputs as bm
import pytest

from xlsr_helpers.cli.main import main
from xlsr_helpers.core.errors import DiskFullError, disk_full_named

PROTO_2019 = "LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1004644 - A01 spoof\n"


def lay_2019(root, train=PROTO_2019, audio=True):
    proto = root / "ASVspoof2019_LA_cm_protocols"
    proto.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train.trn"), ("dev", "dev.trl"), ("eval", "eval.trl")):
        (proto / f"ASVspoof2019.LA.cm.{name}.txt").write_text(train)
        if audio:
            for line in train.split("\n"):
                if line.split() and ".." not in line:
                    flac = root / f"ASVspoof2019_LA_{split}" / "flac" / f"{line.split()[1]}.flac"
                    flac.parent.mkdir(parents=True, exist_ok=True)
                    flac.write_bytes(b"")
    return root


def manifest_args(root, tmp, *extra):
    return ["manifest", "--dataset", "asvspoof2019-la", "--root", str(root), "--out", str(tmp / "m"), *extra]


def non_utf8_protocol(tmp, fx):
    root = lay_2019(tmp / "LA")
    (root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt").write_bytes(
        b"LA_0069 LA_D_1 - - bonafide\nLA_0069 LA_D_\xe9 - A05 spoof\n")
    return manifest_args(root, tmp)


def escaping_id(tmp, fx):
    return manifest_args(lay_2019(tmp / "LA", PROTO_2019 + "LA_0079 ../../../etc/x - A01 spoof\n"), tmp,
                         "--allow-missing")


def all_missing(tmp, fx):
    return manifest_args(lay_2019(tmp / "LA", audio=False), tmp, "--allow-missing")


LINE_BREAKS_OF_SPLITLINES = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"  # str.splitlines breaks on these, editors do not


def protocol_with(sep):
    def setup(tmp, fx):
        proto = f"LA_0079 LA_T_1138215 - - bonafide{sep}\nLA_0079 LA_T_1004644 - A01 spoof\nLA_0079 LA_T_9 - spoof\n"
        return manifest_args(lay_2019(tmp / "LA", proto), tmp)
    return setup


def good_manifest(tmp, fx):
    return manifest_args(lay_2019(tmp / "LA"), tmp)


def itw_absolute_path(tmp, fx):
    (tmp / "itw").mkdir()
    (tmp / "itw" / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n/etc/passwd,B,bona-fide\n")
    (tmp / "itw" / "0.wav").write_bytes(b"")
    return ["manifest", "--dataset", "in-the-wild", "--root", str(tmp / "itw"), "--out", str(tmp / "m"),
            "--allow-missing"]


def labels_csv_parent(tmp, fx):
    (tmp / "own").mkdir()
    (tmp / "own" / "labels.csv").write_text("path,label\na.wav,bonafide\n../b.wav,spoof\n")
    return ["manifest", "--dataset", "folder", "--root", str(tmp / "own"), "--out", str(tmp / "m"), "--allow-missing"]


def own_folders(*rels):
    def setup(tmp, fx):
        for rel in ("real/a.wav", "fake/b.wav", *rels):
            (tmp / "own" / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "own" / rel).write_bytes(b"")
        return ["manifest", "--dataset", "folder", "--root", str(tmp / "own"), "--out", str(tmp / "m")]
    return setup


def chain_on(dataset):
    def setup(tmp, fx):
        (tmp / "own" / "real").mkdir(parents=True)
        return ["run", "--preset", "cpu-smoke", "--run-dir", str(tmp / "run"), "--set", f"dataset={dataset}",
                "--set", f"data_root={tmp / 'own'}"]
    return setup


def bad_score_file(content, *extra, protocol=PROTO_2019):
    def setup(tmp, fx):
        proto = tmp / "proto.txt"
        proto.write_text(protocol)
        scores = tmp / "scores.txt"
        if content is None:
            scores.mkdir()
        else:
            scores.write_bytes(content)
        return ["eer", str(scores), "--protocol", str(proto), *extra]
    return setup


GOOD_SCORES = b"LA_T_1138215 1.0\nLA_T_1004644 -1.0\n"
PROTO_2021 = "LA_0079 LA_T_1138215 - - - bonafide notrim eval\nLA_0079 LA_T_1004644 - - A07 spoof notrim eval\n"


def eer_missing_score_file(*extra):
    """An option refused before any file is read: the score file does not even exist."""
    def setup(tmp, fx):
        return ["eer", str(tmp / "none.txt"), "--protocol", str(tmp / "none-proto.txt"), *extra]
    return setup


SASV_HEAD = "spk\tfilename\tcm-score\tasv-score\tsasv-score\n"
SASV_KEY = ("spk\tfilename\tcm-label\tasv-label\nE_1\tE_01\tbonafide\ttarget\nE_1\tE_02\tbonafide\tnontarget\n"
            "E_1\tE_03\tspoof\tspoof\n")
SASV_SCORES = "E_1\tE_01\t1.5\t2.0\t3.5\nE_1\tE_02\t1.0\t-1.0\t0.0\nE_1\tE_03\t-2.0\t1.0\t-1.0\n"


def bad_track2(scores, key=SASV_KEY, *extra):
    """`xlsr eer` on an ASVspoof 5 track-2 score file (header line first) and key."""
    def setup(tmp, fx):
        (tmp / "sasv.tsv").write_text(scores)
        (tmp / "key.tsv").write_text(key)
        return ["eer", str(tmp / "sasv.tsv"), "--protocol", str(tmp / "key.tsv"), *extra]
    return setup


def score_args(model, *extra, out="scores.csv"):
    def setup(tmp, fx):
        wav = next(fx["demo"].rglob("*.flac"))
        m = {"bare": fx["bare"], "stage": fx["detector"].parent, "missing": tmp / "no-model",
             "detector": fx["detector"]}[model]
        target = tmp / out
        if out == "folder":
            target.mkdir()
        return ["score", str(m), str(wav), "--out", str(target), *extra]
    return setup


def custom_code_model(tmp, fx):
    """A detector folder whose config names code of its own (the code itself is never reached)."""
    import json
    folder = shutil.copytree(fx["detector"], tmp / "downloaded")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoConfig": "evil.Config"}}))
    return ["score", str(folder), str(next(fx["demo"].rglob("*.flac"))), "--out", str(tmp / "s.csv")]


def kaggle_args(*args):
    def setup(tmp, fx):
        return ["kaggle-kernel", "--id", "me/xlsr-run", "--out", str(tmp / "push"), *args]
    return setup


def run_args(*sets):
    def setup(tmp, fx):
        return ["run", "--preset", "cpu-smoke", "--run-dir", str(tmp / "run"), *[x for s in sets for x in ("--set", s)]]
    return setup


def run_dir_is_a_file(tmp, fx):
    (tmp / "afile").write_text("x")
    return ["run", "--preset", "cpu-smoke", "--run-dir", str(tmp / "afile")]


def run_into_a_users_folder(tmp, fx):
    (tmp / "mine" / "scores").mkdir(parents=True)
    (tmp / "mine" / "scores" / "keep.csv").write_text("mine")
    return ["run", "--preset", "cpu-smoke", "--run-dir", str(tmp / "mine")]


def run_dir_locked(host):
    def setup(tmp, fx):
        import json
        import os
        import socket
        (tmp / "run").mkdir()  # this very process is alive: a run of this host that has not finished
        (tmp / "run" / ".xlsr-run.lock").write_text(json.dumps(
            {"pid": os.getpid(), "host": host or socket.gethostname(), "started": "2026-01-01 00:00:00"}))
        return ["run", "--preset", "cpu-smoke", "--run-dir", str(tmp / "run")]
    return setup


def score_into(where):
    """--out / --asvspoof-out that would overwrite what the command reads or writes."""
    def setup(tmp, fx):
        det = shutil.copytree(fx["detector"], tmp / "det")
        wav = shutil.copy(next(fx["demo"].rglob("*.flac")), tmp / "clip.flac")
        manifest = shutil.copy(fx["manifests"] / "dev.csv", tmp / "dev.csv")
        out, txt = {"same file": (tmp / "s.csv", tmp / "s.csv"),
                    "same file spelt twice": (tmp / "s.csv", tmp / "x" / ".." / "s.csv"),
                    "inside the detector": (det / "scores.csv", None),
                    "asvspoof inside the detector": (tmp / "s.csv", det / "sub" / "s.txt"),
                    "the manifest": (manifest, None),
                    "the audio": (tmp / "s.csv", wav)}[where]
        return ["score", str(det), str(wav), str(manifest), "--out", str(out),
                *(["--asvspoof-out", str(txt)] if txt else [])]
    return setup


def demo_into(kind):
    def setup(tmp, fx):
        target = tmp / "target"
        if kind == "file":
            target.write_text("x")
        else:
            target.mkdir()
            (target / "keep.txt").write_text("mine")
        return ["demo-data", str(target), "--size", "tiny"]
    return setup


def train_args(train_filter=None, dev_filter=None, *sets):
    def setup(tmp, fx):
        import pandas as pd
        paths = {}
        for split, keep in (("train", train_filter), ("dev", dev_filter)):
            df = pd.read_csv(fx["manifests"] / f"{split}.csv", dtype=str, keep_default_na=False)
            df = df[keep(df)] if keep else df
            paths[split] = tmp / f"{split}.csv"
            df.to_csv(paths[split], index=False)
        return ["train", "--stage", "1", "--model", str(fx["bare"]), "--train", str(paths["train"]),
                "--dev", str(paths["dev"]), "--out", str(tmp / "s1"), *[x for s in sets for x in ("--set", s)]]
    return setup


def relabelled(id2label, label2id=None, command="score"):
    """The detector with other classes in its config.json: scored, or continued by a stage-2 run."""
    def setup(tmp, fx):
        import json
        folder = shutil.copytree(fx["detector"], tmp / "relabelled")
        config = json.loads((folder / "config.json").read_text())
        config["id2label"] = id2label
        if label2id is None:
            config.pop("label2id", None)
        else:
            config["label2id"] = label2id
        (folder / "config.json").write_text(json.dumps(config))
        if command == "train":
            return ["train", "--stage", "2", "--model", str(folder), "--train", str(fx["manifests"] / "train.csv"),
                    "--dev", str(fx["manifests"] / "dev.csv"), "--out", str(tmp / "s2")]
        return ["score", str(folder), str(next(fx["demo"].rglob("*.flac"))), "--out", str(tmp / "s.csv")]
    return setup


def export_args(model, *extra, out="new"):
    """``xlsr export``: refused before the detector loads (or, for a bare encoder, as it loads)."""
    def setup(tmp, fx):
        target = {"new": tmp / "onnx", "inside": fx["detector"] / "onnx", "full": tmp / "mine"}[out]
        if out == "full":
            target.mkdir()
            (target / "notes.txt").write_text("mine")
        return ["export", str({"bare": fx["bare"], "detector": fx["detector"]}[model]), "--out", str(target), *extra]
    return setup


def without_onnx_extra(fx):
    """As in an environment without the `onnx` extra (the Kaggle-like venvs): none of its three modules."""
    import importlib.util
    real = importlib.util.find_spec
    extra = ("onnx", "onnxscript", "onnxruntime")
    fx["monkeypatch"].setattr(importlib.util, "find_spec", lambda name, *a: None if name in extra else real(name, *a))


def export_to_torch(tmp, fx):
    """A folder `xlsr export` wrote (its record is enough) given to the torch back-end."""
    folder = tmp / "exported"
    folder.mkdir()
    (folder / "onnx_export.json").write_text('{"precision": "fp32", "id2label": {"0": "bonafide", "1": "spoof"}}')
    return ["score", str(folder), str(next(fx["demo"].rglob("*.flac"))), "--out", str(tmp / "s.csv")]


def damaged_export(tmp, fx):
    """An export folder whose model.onnx is not an ONNX graph (a cut-off copy, another file)."""
    args = export_to_torch(tmp, fx)
    (tmp / "exported" / "model.onnx").write_bytes(b"not a protobuf")
    return [*args, "--backend", "onnx"]


CASES = [
    # xlsr export and the onnx back-end: refused before any model loads (no onnxruntime needed)
    ("export: --format tflite", export_args("detector", "--format", "tflite"), 2, "--format 'tflite': the formats are onnx"),
    ("export: --quantize int4", export_args("detector", "--quantize", "int4"), 2,
     "--quantize 'int4': the choices are int8"),
    ("export: --out inside the detector", export_args("detector", out="inside"), 2, "overlaps the detector folder"),
    ("export: --out holds other files", export_args("detector", out="full"), 2,
     "is not empty and holds no earlier export (onnx_export.json)"),
    ("export: a bare encoder", export_args("bare"), 2, "not a trained detector"),
    ("export: without the onnx extra", bm.patched(without_onnx_extra, export_args("detector")), 2,
     "xlsr export needs onnx, onnxscript: pip install 'xlsr-helpers[onnx]'"),
    ("score --backend onnx: a detector folder", score_args("detector", "--backend", "onnx"), 2,
     "holds no onnx_export.json, so it is not an ONNX export; it is a detector folder", "xlsr export"),
    ("score --backend onnx: a damaged model.onnx", damaged_export, 2, "model.onnx: onnxruntime cannot load it",
     "export the detector again"),
    ("score --backend torch: an ONNX export", export_to_torch, 2, "is an ONNX export (xlsr export)",
     "score it with --backend onnx"),
    # (id, setup, exit code, words in the message)
    ("protocol not UTF-8", non_utf8_protocol, 2, "ASVspoof2019.LA.cm.dev.trl.txt:2: not UTF-8 text (byte 0xe9)"),
    ("protocol id escapes the root", escaping_id, 2, "lies outside the data root"),
    ("allow-missing, every file missing", all_missing, 2, "that is a wrong root"),
    ("meta.csv absolute path", itw_absolute_path, 2, "meta.csv:3: audio path /etc/passwd lies outside"),
    ("labels.csv ../ path", labels_csv_parent, 2, "labels.csv:3: audio path"),
    ("score file not UTF-8", bad_score_file(b"LA_T_1138215 1.0\nLA_T_1004644 \xff\n"), 2, "scores.txt:2: not UTF-8"),
    ("score path is a folder", bad_score_file(None), 2, "scores.txt is a folder; expected a text file"),
    ("score file with NaN", bad_score_file(b"LA_T_1138215 nan\nLA_T_1004644 1\n"), 2, "scores.txt:1: score is nan"),
    ("score file, two numeric columns", bad_score_file(b"LA_T_1138215 0.9 1\nLA_T_1004644 0.1 0\n"), 2,
     "scores.txt:1: 2 numeric columns ['0.9', '1']: which one is the score is ambiguous"),
    ("score file, number then label", bad_score_file(b"LA_T_1138215 0.9 bonafide\nLA_T_1004644 0.1 spoof\n"), 2,
     "scores.txt:1: the score must be the last column"),
    ("score 1_000", bad_score_file(b"LA_T_1138215 1_000\nLA_T_1004644 1\n"), 2,
     "scores.txt:1: score '1_000' is not a plain decimal number"),
    ("score in Arabic-Indic digits", bad_score_file("LA_T_1138215 1\nLA_T_1004644 \u0661\n".encode()), 2,
     "scores.txt:2: score '\u0661' is not a plain decimal number"),
    ("eer: --phase bogus", bad_score_file(GOOD_SCORES, "--phase", "bogus", protocol=PROTO_2021), 2,
     "--phase 'bogus': expected one of ['eval', 'progress', 'hidden_track', 'all']"),
    ("eer: --phase on 2019 keys", bad_score_file(GOOD_SCORES, "--phase", "progress"), 2,
     "--phase progress: these keys have no phase column"),
    ("eer: --phase checked first", eer_missing_score_file("--phase", "evl"), 2, "--phase 'evl': expected one of"),
    ("eer: --asv-keys checked first", eer_missing_score_file("--asv-keys", "k.txt"), 2, "--asv-keys (2021 ASV"),
    ("eer track 2: misspelt header", bad_track2(SASV_HEAD.replace("sasv-score", "sasv_score") + SASV_SCORES), 2,
     "sasv.tsv:1: header", "missing ['sasv-score'] unknown ['sasv_score']"),
    ("eer track 2: '-' on some lines", bad_track2(SASV_HEAD + SASV_SCORES.replace("1.5", "-")), 2,
     "sasv.tsv:2: cm-score is '-' on 1 of 3 lines"),
    ("eer track 2: score not a number", bad_track2(SASV_HEAD + SASV_SCORES.replace("3.5", "nan")), 2,
     "sasv.tsv:2: sasv-score: score is nan"),
    ("eer track 2: missing column", bad_track2(SASV_HEAD + SASV_SCORES.replace("\t3.5", "")), 2,
     "sasv.tsv:2: 4 columns; the header names 5"),
    ("eer track 2: duplicate trial", bad_track2(SASV_HEAD + SASV_SCORES + "E_1\tE_01\t0\t0\t0\n"), 2,
     "sasv.tsv:5: duplicate trial E_1 E_01 (first on line 2)"),
    ("eer track 2: trial without score", bad_track2(SASV_HEAD + SASV_SCORES.split("\n", 1)[1]), 2,
     "1 trial(s) of the", "have no score", "E_1 E_01"),
    ("eer track 2: unknown label", bad_track2(SASV_HEAD + SASV_SCORES, SASV_KEY.replace("nontarget", "impostor")), 2,
     "key.tsv:3: unknown asv-label 'impostor' (expected target or nontarget or spoof)"),
    ("eer track 2: spoof in one label only", bad_track2(SASV_HEAD + SASV_SCORES, SASV_KEY.replace("spoof\tspoof",
                                                                                                  "bonafide\tspoof")),
     2, "key.tsv:4: cm-label bonafide with asv-label spoof"),
    ("eer track 2: key without header", bad_track2(SASV_HEAD + SASV_SCORES, SASV_KEY.split("\n", 1)[1]), 2,
     "key.tsv:1: header", "missing ['spk', 'filename', 'cm-label', 'asv-label']"),
    ("eer track 2: no nontarget trial", bad_track2(SASV_HEAD + SASV_SCORES.replace("E_02", "E_01x"),
                                                   SASV_KEY.replace("E_02\tbonafide\tnontarget", "E_01x\tbonafide\ttarget")),
     2, "SASV nontarget scores is empty"),
    ("eer track 2: CM decisions, not scores", bad_track2(SASV_HEAD + SASV_SCORES.replace("1.5", "1.0").replace("-2.0", "0")),
     2, "min t-DCF needs soft CM scores"),
    ("eer track 2: --asv-scores", bad_track2(SASV_HEAD + SASV_SCORES, SASV_KEY, "--asv-scores", "asv.txt"), 2,
     "is an ASVspoof 5 track-2 score file: --asv-scores does not apply"),
    ("score: model folder missing", score_args("missing"), 2, "no-model does not exist"),
    ("score: a stage folder", score_args("stage"), 2, "it is a stage folder: use"),
    ("score: no trained head", score_args("bare"), 2, "is not a trained detector: these weights are missing"),
    ("score: --out is a folder", score_args("bare", out="folder"), 2, "--out"),
    ("score: window below 400", score_args("detector", "--window", "100"), 2,
     "window=100 (expected an integer in [400, 960000] or None)"),
    ("score: negative hop", score_args("detector", "--hop", "-5"), 2, "hop=-5"),
    ("score: NaN threshold", score_args("detector", "--threshold", "nan"), 2, "threshold=nan"),
    ("score: model asks for its own code", custom_code_model, 2, "asks to run code shipped with the model"),
    ("kaggle-kernel: quote in --repo-url", kaggle_args("--repo-url", 'https://x.org/a";import os#'), 2,
     "--repo-url 'https://x.org/a\";import os#': expected a URL"),
    ("kaggle-kernel: unknown preset", kaggle_args("--code-dataset", "me/code", "--preset", "t4"), 2, "--preset 't4'"),
    ("kaggle-kernel: model source form", kaggle_args("--code-dataset", "me/code", "--model-source", "a/b"), 2,
     "'owner/model/framework/variation/version'"),
    ("score: classes LABEL_0/LABEL_1", relabelled({"0": "LABEL_0", "1": "LABEL_1"}), 2,
     "relabelled: the detector's classes are {0: 'LABEL_0', 1: 'LABEL_1'}"),
    ("score: classes real/fake", relabelled({"0": "fake", "1": "real"}, {"fake": 0, "real": 1}), 2,
     "relabelled: the detector's classes are {0: 'fake', 1: 'real'}"),
    ("score: three classes", relabelled({"0": "bonafide", "1": "spoof", "2": "partial"}), 2,
     "relabelled: the detector's classes are {0: 'bonafide', 1: 'spoof', 2: 'partial'}"),
    ("score: id2label and label2id disagree", relabelled({"0": "spoof", "1": "bonafide"}, {"bonafide": 0, "spoof": 1}),
     2, "relabelled: config.json's id2label {0: 'spoof', 1: 'bonafide'} and label2id"),
    ("train: stage 2 from classes LABEL_0/LABEL_1", relabelled({"0": "LABEL_0", "1": "LABEL_1"}, None, "train"), 2,
     "relabelled: the detector's classes are {0: 'LABEL_0', 1: 'LABEL_1'}"),
    ("run: s1_epochs=abc", run_args("s1_epochs=abc"), 2, "s1_epochs='abc': expected an integer"),
    ("run: device=gpu", run_args("device=gpu"), 2, "device='gpu'"),
    ("run: precision=fp8", run_args("precision=fp8"), 2, "precision='fp8'"),
    ("run: --set without =", run_args("oops"), 2, "--set expects key=value"),
    ("run: unknown demo size", run_args("data_root=demo:large"), 2, "data_root='demo:large': expected one of"),
    # several corpora: roots, shares and the selection corpus checked before 01
    ("run: one root for two corpora", run_args("dataset=asvspoof2019-la+asvspoof5", "data_root=demo:tiny"), 2,
     "data_root='demo:tiny' gives 1 root(s) for the 2 corpora"),
    ("run: corpus_weights without shares", run_args("corpus_weights=heavy"), 2,
     "corpus_weights='heavy': expected 'none', 'balanced' or corpus:share pairs"),
    ("run: corpus_weights of another corpus", run_args("corpus_weights=asvspoof5:1"), 2,
     "parameter corpus_weights='asvspoof5:1': ['asvspoof5', 'no share for asvspoof2019-la']"),
    ("run: select_on another corpus", run_args("select_on=asvspoof5"), 2,
     "parameter select_on='asvspoof5': expected 'pooled', 'mean' or one of ['asvspoof2019-la']"),
    ("run: one ASV score file for two corpora", run_args("dataset=asvspoof2019-la+asvspoof5",
     "data_root=demo:tiny+/nowhere", "asv_scores=/asv.txt"), 2,
     "asv_scores='/asv.txt': dataset names 2 corpora, and each one's ASV scores come from its own descriptor"),
    ("manifest: one root for two corpora", lambda tmp, fx: ["manifest", "--dataset", "asvspoof2019-la+asvspoof5",
     "--root", str(fx["demo"]), "--out", str(tmp / "m")], 2, "gives 1 root(s) for the 2 corpora"),
    ("run: unknown eval dataset", run_args("eval_datasets=in-the-wild, asvspoof2077"), 2,
     "parameter eval_datasets='in-the-wild, asvspoof2077': unknown dataset 'asvspoof2077'"),
    ("run: eval dataset twice", run_args("eval_datasets=in-the-wild,in-the-wild=/x"), 2, "in-the-wild is listed twice"),
    ("run: empty eval dataset entry", run_args("eval_datasets=in-the-wild,,asvspoof5"), 2, "entry '' is empty"),
    ("own folders: spoofed/", own_folders("spoofed/c.wav"), 2, "spoofed/ (1 audio) hold audio but are not label"),
    ("own folders: audio at the root", own_folders("c.flac"), 2, "1 audio file(s) lie outside the label folders: c.flac"),
    ("run: folder corpus to training", chain_on("folder"), 2, "dataset='folder' gives the split(s) ['all'] only, and "
     "02_stage1_head, 03_stage2_finetune, 04_eval_eer need train and dev"),
    ("run: eval-only corpus to training", chain_on("in-the-wild"), 2, "gives the split(s) ['eval'] only"),
    ("run: run dir is a file", run_dir_is_a_file, 2, "is a file; give a folder"),
    ("run: a user's non-empty folder", run_into_a_users_folder, 2, "is not empty and holds no xlsr run"),
    ("run: folder in use on this host", run_dir_locked(None), 2, "is in use by another xlsr run (pid"),
    ("run: folder locked on another host", run_dir_locked("elsewhere"), 2, "another host (pid"),
    ("score: --out is --asvspoof-out", score_into("same file"), 2, "--out and --asvspoof-out are the same file"),
    ("score: one file spelt twice", score_into("same file spelt twice"), 2, "are the same file"),
    ("score: --out in the detector", score_into("inside the detector"), 2, "lies inside the detector folder"),
    ("score: --asvspoof-out in the detector", score_into("asvspoof inside the detector"), 2,
     "--asvspoof-out"),
    ("score: --out is the input manifest", score_into("the manifest"), 2, "is also an input"),
    ("score: --asvspoof-out is the input audio", score_into("the audio"), 2, "--asvspoof-out"),
    ("demo-data into a non-empty folder", demo_into("dir"), 2, "is not empty"),
    ("demo-data onto a file", demo_into("file"), 2, "is a file"),
    ("train: epochs=0", train_args(None, None, "epochs=0"), 2, "epochs=0 (expected an integer in [1, 1000])"),
    ("train: corpus_weights of another corpus", train_args(None, None, "corpus_weights=mine:1"), 2,
     "corpus_weights='mine:1': ['mine'] not in the train manifest; no share for ['asvspoof2019-la']"),
    ("train: select_on another corpus", train_args(None, None, "select_on=mine"), 2,
     "select_on='mine': expected 'pooled', 'mean' or a corpus of the dev manifest ['asvspoof2019-la']"),
    ("train: lr_scheduler=bogus", train_args(None, None, "lr_scheduler=bogus"), 2, "lr_scheduler='bogus'"),
    ("train: empty train split", train_args(lambda d: d.label == "none"), 2, "train.csv: 0 trial(s)"),
    ("train: one-class train split", train_args(lambda d: d.label == "spoof"), 2, "training needs bonafide and spoof"),
    ("train: one-class dev split", train_args(None, lambda d: d.label == "bonafide"), 2, "dev.csv"),
    # model folders: what a copy cut short, an edited config or a foreign tool leaves behind
    ("score: zero-byte safetensors", bm.scored(bm.write(bm.SAFETENSORS, b"")), 2, "model.safetensors is empty (0 bytes)"),
    ("score: safetensors cut in its header", bm.scored(bm.cut_weights(lambda n: 100)), 2,
     "model.safetensors is truncated (100 bytes, shorter than its own header)"),
    ("score: safetensors cut in its tensors", bm.scored(bm.cut_weights(lambda n: n - 1000)), 2,
     "model.safetensors is truncated: it holds"),
    ("score: not a safetensors file", bm.scored(bm.write(bm.SAFETENSORS, (10).to_bytes(8, "little") + b"not json!!")), 2,
     "model.safetensors is not a safetensors file"),
    ("score: config with other sizes", bm.scored(bm.edit_json("config.json", lambda c: c.update(hidden_size=32))), 2,
     "config.json does not match the weights: projector.weight is [16, 64] in the weights but [16, 32] by config.json"),
    ("score: config with more layers", bm.scored(bm.edit_json("config.json", lambda c: c.update(num_hidden_layers=6))),
     2, "config.json does not match the weights: wav2vec2.encoder.layers.4."),
    ("score: config with fewer layers", bm.scored(bm.edit_json("config.json", lambda c: c.update(num_hidden_layers=2))),
     2, "the weights hold it, config.json has no place for it"),
    ("score: config field of the wrong type", bm.scored(bm.edit_json("config.json", lambda c: c.update(hidden_size="64"))),
     2, "cannot load the detector"),
    ("score: config.json not JSON", bm.scored(bm.write("config.json", '{\n"model_type": "wav2vec2",\noops\n')), 2,
     "config.json:3: not valid JSON"),
    ("score: config.json a list", bm.scored(bm.write("config.json", "[1, 2]")), 2,
     "config.json: expected a JSON object of settings, found list"),
    ("score: xlsr_detector.json not JSON", bm.scored(bm.write("xlsr_detector.json", '{\n "dev": {},\n "x": tru\n}')), 2,
     "xlsr_detector.json:3: not valid JSON"),
    ("score: xlsr_detector.json a list", bm.scored(bm.write("xlsr_detector.json", "[]")), 2,
     "xlsr_detector.json: expected a JSON object {...}, found list"),
    ("score: xlsr_detector.json a text", bm.scored(bm.write("xlsr_detector.json", '"mean"')), 2, "found str"),
    ("score: settings section not an object", bm.scored(bm.edit_json("xlsr_detector.json", lambda s: s.update(dev=[0.1]))),
     2, "xlsr_detector.json: dev is [0.1]; expected an object {...}"),
    ("score: settings threshold not a number",
     bm.scored(bm.edit_json("xlsr_detector.json", lambda s: s.update(dev={"threshold": "high"}))), 2,
     "xlsr_detector.json: dev.threshold is 'high'; expected a number"),
    ("score: settings calibration incomplete",
     bm.scored(bm.edit_json("xlsr_detector.json", lambda s: s.update(calibration={"scale": 1.0}))), 2,
     "calibration.offset is missing"),
    ("score: settings aggregation unknown",
     bm.scored(bm.edit_json("xlsr_detector.json", lambda s: s["scoring"].update(aggregation="mode"))), 2,
     "xlsr_detector.json: invalid scoring parameter(s): aggregation='mode'"),
    ("score: settings at 8 kHz", bm.scored(bm.edit_json("xlsr_detector.json", lambda s: s.update(sample_rate=8000))), 2,
     "sample_rate is 8000; XLS-R detectors take 16000 Hz audio"),
    ("score: feature extractor at 8 kHz",
     bm.scored(bm.edit_json("preprocessor_config.json", lambda f: f.update(sampling_rate=8000))), 2,
     "preprocessor_config.json: sampling_rate 8000; XLS-R models take 16000 Hz audio"),
    ("score: feature extractor not JSON", bm.scored(bm.write("preprocessor_config.json", "{x")), 2,
     "preprocessor_config.json:1: not valid JSON"),
    ("score: only pickle weights", bm.scored(bm.pickle_only), 2, "holds only pickle weights (pytorch_model.bin)"),
    ("score: no weights", bm.scored(bm.no_weights), 2, "holds config.json but no weights (model.safetensors)"),
    ("train: base model cut short", bm.trained_from(bm.cut_weights(lambda n: n // 2)), 2,
     "model.safetensors is truncated: it holds"),
    ("train: base model at 8 kHz",
     bm.trained_from(bm.edit_json("preprocessor_config.json", lambda f: f.update(sampling_rate=8000))), 2,
     "sampling_rate 8000"),
    ("train: base config with other sizes", bm.trained_from(bm.edit_json("config.json", lambda c: c.update(hidden_size=32))),
     2, "config.json does not match the weights"),
    # YAML presets and training configs: plain values in a mapping, errors on the right line
    ("run: preset with a python tag", bm.yaml_file('s1_epochs: 1\nx: !!python/object/apply:os.system ["id"]\n', "run"), 2,
     "given.yaml:2: the tag !!python/object/apply:os.system is not allowed"),
    ("run: preset holding a list", bm.yaml_file("- s1_epochs: 1\n", "run"), 2,
     "given.yaml: a preset is a flat mapping of notebook parameters; it holds a list"),
    ("run: preset with a key twice", bm.yaml_file("s1_epochs: 1\ns1_epochs: 2\n", "run"), 2,
     "given.yaml:2: key 's1_epochs' is given twice"),
    ("run: preset not YAML, after U+2028s", bm.yaml_file('a: "x\u2028y\u2028z"\nb: 1\nc: d: e\n', "run"), 2,
     "given.yaml:3: not valid YAML: mapping values are not allowed here"),
    ("train: config with a python tag", bm.yaml_file("epochs: !!python/name:os.system\n", "train"), 2,
     "given.yaml:1: the tag !!python/name:os.system is not allowed"),
    ("train: config holding a list", bm.yaml_file("- 1\n- 2\n", "train"), 2,
     "--config is a mapping of training parameters; it holds a list"),
    ("train: config holding a text", bm.yaml_file("epochs\n", "train"), 2, "it holds a single text value"),
    ("train: config with a number key", bm.yaml_file("1: 2\n", "train"), 2, "key 1 is not a name"),
    # output folders: a file, below a file, read-only, a full disk
    ("train: --out is a file", bm.out_at("train", "file"), 2, "--out ", "is a file; give a folder"),
    ("train: --out below a file", bm.out_at("train", "below a file"), 2, "is a file, not a folder"),
    ("manifest: --out is a file", bm.out_at("manifest", "file"), 2, "is a file; give a folder"),
    ("kaggle-kernel: --out is a file", bm.out_at("kaggle-kernel", "file"), 2, "is a file; give a folder"),
    ("train: --out read-only", bm.out_at("train", "read-only"), 2, "is not writable (a read-only folder or file system)"),
    ("run: run folder read-only", bm.out_at("run", "read-only"), 2, "is not writable"),
    ("manifest: --out read-only", bm.out_at("manifest", "read-only"), 2, "is not writable"),
    ("score: --out a read-only file", bm.out_at("score", "read-only file"), 2, "s.csv is a read-only file"),
    ("train: disk too full for the stage", bm.patched(bm.full_disk(), train_args()), 2,
     "stage 1 (its checkpoints and detector/) needs about"),
    ("score: disk full writing the scores", bm.patched(bm.failing_write("scores.csv", bm.ENOSPC), score_args("detector")), 2,
     "disk full while writing"),
    ("manifest: disk full while writing", bm.patched(bm.manifest_write_fails(bm.ENOSPC), good_manifest), 2,
     "disk full while writing"),
    ("manifest: read-only at write time", bm.patched(bm.manifest_write_fails(bm.EROFS), good_manifest), 2,
     "train.csv: read-only file system"),
    # lines are counted on '\n' only: a U+2028, NEL or form feed inside a line does not shift them
    *[(f"score file: U+{ord(sep):04X} inside line 1", bad_score_file(f"LA_T_1138215 1.0{sep}\nLA_T_1004644 nan\n".encode()),
       2, "scores.txt:2: score is nan") for sep in LINE_BREAKS_OF_SPLITLINES],
    *[(f"protocol: U+{ord(sep):04X} inside line 1", protocol_with(sep), 2, "train.trn.txt:3: expected 5 columns, found 4")
      for sep in LINE_BREAKS_OF_SPLITLINES],
    # xlsr push: everything checked before the network
    ("push: bad repo id", bm.pushed(None, "bad id!!"), 2, "repo id 'bad id!!' is not a Hub repo id"),
    ("push: a 20 MB repo id", bm.pushed(None, "a" * 20_000_000), 2, "... (20000002 characters) is not a Hub repo id"),
    ("push: weights cut short", bm.pushed(bm.cut_weights(lambda n: n - 10)), 2, "model.safetensors is truncated"),
    ("push: config not matching", bm.pushed(bm.edit_json("config.json", lambda c: c.update(hidden_size=32))), 2,
     "config.json does not match the weights"),
    ("push: settings not JSON", bm.pushed(bm.write("xlsr_detector.json", "{")), 2, "xlsr_detector.json:1: not valid JSON"),
    ("push: no credentials", bm.patched(bm.no_credentials, bm.pushed()), 2, "no Hugging Face token"),
    ("push: offline", bm.pushed(None, "you/xlsr-detector", "--token", "hf_x"), 2, "HF_HUB_OFFLINE is set"),
    # xlsr app / space / push --space: refused before anything is served, written or uploaded
    ("app: prior out of range", bm.app_args("--prior-spoof", "1.5"), 2, "prior_spoof=1.5 (expected a number in (0, 1))"),
    ("app: limit out of range", bm.app_args("--max-seconds", "0"), 2, "max_seconds=0.0 (expected a number in (0, 3600])"),
    ("app: port out of range", bm.app_args("--port", "70000"), 2, "port=70000 (expected an integer in [1, 65535]"),
    ("app: port taken", bm.app_on_taken_port, 2, "is not free", "give another --port"),
    ("app: no gradio", bm.patched(bm.no_gradio, bm.app_args()), 2, "the demo needs gradio: pip install 'xlsr-helpers[app]'"),
    ("app: detector missing", bm.app_args(detector="missing"), 2, "no-model does not exist"),
    ("space: --out not empty", bm.space_args(out="not empty"), 2, "is not empty; give a new or empty folder"),
    ("space: --out is a file", bm.space_args(out="file"), 2, "is a file; give a folder"),
    ("space: bad --model-id", bm.space_args("--model-id", "not an id"), 2, "repo id 'not an id' is not a Hub repo id"),
    ("push --space: a detector folder", bm.space_pushed("detector", "--space", "you/demo", "--token", "hf_x"), 2,
     "is not a Space folder (missing ['README.md', 'app.py', 'requirements.txt'])"),
    ("push --space: bad space id", bm.space_pushed("detector", "--space", "bad id!!"), 2, "repo id 'bad id!!' is not"),
    ("push: a repo id and --space", bm.space_pushed("detector", "you/det", "--space", "you/demo"), 2, "not both"),
    ("push: no repo id, no --space", bm.space_pushed("detector"), 2, "not neither"),
]


@pytest.fixture
def fx(demo_root, demo_manifests, tiny_backbone, untrained_detector, monkeypatch):
    """What the rows need; a detector with a random head will do: the input is refused before scoring."""
    return {"demo": demo_root, "manifests": demo_manifests, "bare": tiny_backbone, "detector": untrained_detector,
            "monkeypatch": monkeypatch}


# The export rows past the argument checks reach the onnx extra's own check first where it is not installed
# (the Kaggle-like venvs): there they are skipped, said so.
ONNX_MISSING = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
NEEDS_ONNX = {"export: --out inside the detector", "export: --out holds other files", "export: a bare encoder",
              "score --backend onnx: a damaged model.onnx"}
needs_onnx = pytest.mark.skipif(bool(ONNX_MISSING), reason=f"the onnx extra is not installed ({ONNX_MISSING})")


@pytest.mark.parametrize("setup,code,words", [pytest.param(c[1], c[2], c[3:], id=c[0],
                                                           marks=[needs_onnx] if c[0] in NEEDS_ONNX else [])
                                              for c in CASES])
def test_bad_input(setup, code, words, fx, tmp_path, capsys):
    argv = setup(tmp_path, fx)
    assert main(argv) == code
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert "Traceback" not in err
    # one line, of a sane length, whatever the input quoted (tqdm bars may precede it on the same line)
    lines = [line.rsplit("\r", 1)[-1] for line in err.split("\n") if ": error: " in line]
    assert len(lines) == 1 and len(lines[0]) < 700, lines


def test_refused_outputs_and_folders_are_left_as_they_were(fx, tmp_path, capsys):
    """Refused before any work: the user's files and the detector are as they were, nothing was written."""
    for where in ("inside the detector", "the manifest", "the audio"):
        case = tmp_path / where.replace(" ", "-")
        case.mkdir()
        argv = score_into(where)(case, fx)
        before = {p: p.read_bytes() for p in case.rglob("*") if p.is_file()}
        assert main(argv) == 2
        assert {p: p.read_bytes() for p in case.rglob("*") if p.is_file()} == before, where
    argv = run_into_a_users_folder(tmp_path, fx)
    assert main(argv) == 2
    assert [p.name for p in (tmp_path / "mine").rglob("*")] == ["scores", "keep.csv"]
    argv = run_dir_locked(None)(tmp_path, fx)
    assert main(argv) == 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".xlsr-run.lock"]  # no params.yaml, no notebook
    capsys.readouterr()


def test_score_out_folder_is_refused_before_the_model_loads(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["score", str(tmp_path / "no-model"), "x.wav", "--out", str(tmp_path / "out")]) == 2
    assert "--out" in capsys.readouterr().err  # not the missing model: the output was checked first


def test_bom_is_not_data(tmp_path):
    """Excel's "CSV UTF-8" and BOM-prefixed protocols read as if the BOM were not there."""
    from xlsr_helpers.data.manifest import build_manifest
    root = lay_2019(tmp_path / "LA")
    proto = root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.train.trn.txt"
    proto.write_bytes(b"\xef\xbb\xbf" + proto.read_bytes())
    assert build_manifest("asvspoof2019-la", root).splits["train"].speaker.tolist() == ["LA_0079", "LA_0079"]
    itw = tmp_path / "itw"
    itw.mkdir()
    (itw / "meta.csv").write_bytes(b"\xef\xbb\xbffile,speaker,label\n0.wav,A,spoof\n")
    (itw / "0.wav").write_bytes(b"")
    assert build_manifest("in-the-wild", itw).splits["eval"].utt_id.tolist() == ["0"]


def test_disk_full_names_where(tmp_path):
    with pytest.raises(DiskFullError, match=r"disk full while writing .*ckpt.*larger disk"):
        with disk_full_named(tmp_path):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt"))
    with pytest.raises(PermissionError):  # other OS errors pass through unchanged
        with disk_full_named(tmp_path):
            raise PermissionError(errno.EACCES, "denied")


def test_unreadable_file_in_a_dataloader_worker_is_named(tmp_path):
    """A worker re-raises AudioError from its message: the file and reason survive, not the worker traceback."""
    import pandas as pd
    from torch.utils.data import DataLoader

    from xlsr_helpers.data.audio import AudioError
    from xlsr_helpers.data.datasets import SegmentDataset
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"junk")
    ds = SegmentDataset(pd.DataFrame({"path": [str(bad)], "label": ["spoof"]}))
    with pytest.raises(AudioError) as info:
        next(iter(DataLoader(ds, batch_size=1, num_workers=1)))
    assert info.value.path == str(bad) and info.value.reason.startswith("cannot decode")
    assert "\n" not in str(info.value)


def test_score_inputs_one_row_per_path_unique_ids(fx, tmp_path):
    import pandas as pd
    wav = next(fx["demo"].rglob("*.flac"))
    for d in ("bonafide", "spoof"):
        (tmp_path / "in" / d).mkdir(parents=True)
        shutil.copy(wav, tmp_path / "in" / d / "0001.flac")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    (tmp_path / "empty").mkdir()
    spaced = tmp_path / "my clip.flac"
    shutil.copy(wav, spaced)
    short = tmp_path / "short.wav"
    import numpy as np
    import soundfile as sf
    sf.write(short, np.zeros(300, dtype=np.float32), 16000)
    out, asv = tmp_path / "s.csv", tmp_path / "s.txt"
    assert main(["score", str(fx["detector"]), str(tmp_path / "in"), str(tmp_path / "empty"), str(spaced), str(short),
                 "--out", str(out), "--asvspoof-out", str(asv)]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert df.utt_id.tolist() == ["bonafide/0001", "spoof/0001", "empty", "my_clip", "short"]
    assert df.error.tolist()[:2] == ["", ""] and df.error[2].startswith("folder holds no audio")
    assert df.error[4].startswith("too short: 300 samples")
    assert df.label_pred.tolist()[2] == "" and df.label_pred.tolist()[4] == ""
    assert [line.split()[0] for line in asv.read_text().splitlines()] == ["bonafide/0001", "spoof/0001", "my_clip"]


def test_absurd_sample_rates_are_error_rows_and_the_other_files_still_score(fx, tmp_path, capsys):
    """A header declaring 1 Hz or 1 MHz is that file's error row (it never reaches the resampler);
    an ordinary and an odd rate around it are scored."""
    import numpy as np
    import pandas as pd
    import soundfile as sf
    rng = np.random.default_rng(0)
    files = {"good": 16000, "odd": 22050, "one_hz": 1, "mhz": 1_000_000}
    for name, sr in files.items():
        sf.write(tmp_path / f"{name}.wav", rng.normal(0, 0.1, max(sr // 2, 64)).astype(np.float32), sr)
    out, asv = tmp_path / "s.csv", tmp_path / "s.txt"
    assert main(["score", str(fx["detector"]), *[str(tmp_path / f"{n}.wav") for n in files], "--out", str(out),
                 "--asvspoof-out", str(asv)]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert df.error.tolist() == ["", "",
                                 "sample rate 1 Hz is outside the accepted 4,000-384,000 Hz (a damaged or mislabelled header?)",
                                 "sample rate 1,000,000 Hz is outside the accepted 4,000-384,000 Hz "
                                 "(a damaged or mislabelled header?)"]
    assert [ln.split()[0] for ln in asv.read_text().splitlines()] == ["good", "odd"]
    assert "scored 2 of 4 inputs" in capsys.readouterr().out


def test_an_absurd_sample_rate_is_one_unreadable_row_of_the_audio_check(tmp_path, capsys):
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from xlsr_helpers.data.demo import make_demo_corpus
    root = make_demo_corpus(tmp_path / "d", seed=1, size="tiny")
    proto = root / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"
    utt = proto.read_text().split()[1]
    sf.write(root / "ASVspoof2019_LA_dev" / "flac" / f"{utt}.flac", np.zeros(64, np.float32), 1, format="WAV")
    out = tmp_path / "m"
    assert main(["manifest", "--dataset", "asvspoof2019-la", "--root", str(root), "--out", str(out),
                 "--check-audio"]) == 2
    assert "1 unreadable file" in capsys.readouterr().err
    flagged = pd.read_csv(out / "audio_check_dev.csv")
    assert flagged.utt_id.tolist() == [utt]
    assert flagged.problem[0] == ("unreadable: sample rate 1 Hz is outside the accepted 4,000-384,000 Hz "
                                  "(a damaged or mislabelled header?)")
