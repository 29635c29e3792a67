"""Shared fixtures: a tiny demo corpus in the ASVspoof 2019 LA layout, built once per session."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# transformers binds its log handler (stream and flush) to the sys.stderr of the moment it first logs;
# in a process that runs pytest more than once (mutmut) that stream is closed later: "Logging error".
# Point it at whatever sys.stderr is when a record is written.
import sys  # noqa: E402

import transformers.utils.logging as _hf_logging  # noqa: E402


class _CurrentStderr:
    def write(self, text):
        return sys.stderr.write(text)

    def flush(self):
        return sys.stderr.flush()


_hf_logging.get_logger("transformers")  # configures the library's handler
_hf_logging._default_handler.setStream(_CurrentStderr())
_hf_logging._default_handler.flush = _CurrentStderr().flush


def pytest_collection_modifyitems(items):
    """Tests that need a trained detector are marked, so quick subsets (make mutate) can leave them out."""
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.trains)


def pytest_configure(config):
    config.addinivalue_line("markers", "trains: trains a stage, runs the chain or needs the session's trained detector "
                                       "(make mutate leaves these out)")


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    from xlsr_helpers.data.demo import make_demo_corpus
    return make_demo_corpus(tmp_path_factory.mktemp("demo"), seed=0, size="tiny")


@pytest.fixture(scope="session")
def demo_manifests(demo_root, tmp_path_factory):
    from xlsr_helpers.data.manifest import build_manifest
    res = build_manifest("asvspoof2019-la", demo_root)
    out = tmp_path_factory.mktemp("manifests")
    res.write(out)
    return out


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory):
    """A random-initialised wav2vec2 encoder saved like a hub checkpoint (from_pretrained path)."""
    from xlsr_helpers.model.loading import save_random_backbone
    return save_random_backbone(tmp_path_factory.mktemp("backbone") / "tiny-wav2vec2")


UNTRAINED_SETTINGS = {"segment_samples": 16000, "scoring": {"window": 16000, "hop": 8000, "aggregation": "mean"},
                      "dev": {"threshold": 0.25}}


def tone_wavs(folder, lengths, seed=0):
    """16 kHz files whose windows differ: quiet noise, then a loud tone from the middle on."""
    import numpy as np
    import soundfile as sf
    rng, files = np.random.default_rng(seed), []
    for i, n in enumerate(lengths):
        wave = rng.normal(0, 0.01, n)
        wave[n // 2:] += 0.5 * np.sin(2 * np.pi * (200 + 100 * i) * np.arange(n - n // 2) / 16000)
        files.append(folder / f"f{i}.wav")
        sf.write(files[-1], wave.astype(np.float32), 16000)
    return files


@pytest.fixture(scope="session")
def untrained_detector(tiny_backbone, tmp_path_factory):
    """A detector folder with a random head and settings (``UNTRAINED_SETTINGS``), made in a second:
    for what scoring does with any detector (windows, aggregation, thresholds, error rows)."""
    import torch

    from xlsr_helpers.model.card import write_settings
    from xlsr_helpers.model.loading import load_detector, load_feature_extractor
    out = tmp_path_factory.mktemp("untrained") / "detector"
    torch.manual_seed(0)
    load_detector(tiny_backbone).save_pretrained(out)
    load_feature_extractor(tiny_backbone).save_pretrained(out)
    write_settings(out, UNTRAINED_SETTINGS)
    return out


CALIBRATION = {"scale": 2.0, "offset": -0.5, "prior_spoof": 0.5, "fitted_on": "dev", "n_bonafide": 10, "n_spoof": 90,
               "method": "prior-weighted logistic regression (scikit-learn)"}


@pytest.fixture(scope="session")
def calibrated_detector(untrained_detector, tmp_path_factory):
    """``untrained_detector`` with a calibration (``CALIBRATION``: llr = 2 score - 0.5), training data, base
    model and a dev EER of 4.25 % in its settings: what the demo page shows of a published detector."""
    import json
    import shutil
    folder = shutil.copytree(untrained_detector, tmp_path_factory.mktemp("calibrated") / "detector")
    path = folder / "xlsr_detector.json"
    settings = json.loads(path.read_text())
    settings.update(calibration=CALIBRATION, base_model="facebook/wav2vec2-xls-r-300m", head="linear", stage=2,
                    trained_on={"datasets": ["asvspoof2019-la"]}, dev={"threshold": 0.25, "eer": 0.0425})
    path.write_text(json.dumps(settings))
    return folder


@pytest.fixture(scope="session")
def served_demo(calibrated_detector, tmp_path_factory):
    """``xlsr app``'s page for ``calibrated_detector`` on a free localhost port, served from an empty working
    folder (``served_demo.cwd``: it must stay empty); skipped without gradio."""
    pytest.importorskip("gradio", reason="the demo page needs gradio (pip install 'xlsr-helpers[app]')")
    from xlsr_helpers.serve.app import serve
    cwd, before = tmp_path_factory.mktemp("app-cwd"), os.getcwd()
    os.chdir(cwd)
    try:
        demo = serve(calibrated_detector, port=None, inline=True)  # inline: returns at once, as in a notebook
    finally:
        os.chdir(before)
    demo.cwd = cwd
    yield demo
    demo.close()


@pytest.fixture(scope="session")
def small_manifests(tmp_path_factory):
    """The 'small' demo corpus (what `make demo` uses) as manifests."""
    from xlsr_helpers.data.demo import make_demo_corpus
    from xlsr_helpers.data.manifest import build_manifest
    root = make_demo_corpus(tmp_path_factory.mktemp("demo_small"), seed=0, size="small")
    out = tmp_path_factory.mktemp("manifests_small")
    build_manifest("asvspoof2019-la", root).write(out)
    return out


@pytest.fixture(scope="session")
def trained(small_manifests, tiny_backbone, tmp_path_factory):
    """Stage 1 then stage 2 on the small demo corpus (tiny model, CPU, cached)."""
    from xlsr_helpers.train.stage import train_stage
    out = tmp_path_factory.mktemp("train")
    common = dict(segment_samples=32000, batch_size=16, eval_batch_size=32, num_workers=0,
                  early_stopping_patience=10, device="cpu")
    s1 = train_stage(dict(stage=1, model=str(tiny_backbone), epochs=30, learning_rate=0.01,
                          **common), small_manifests / "train.csv", small_manifests / "dev.csv", out / "stage1")
    s2 = train_stage(dict(stage=2, model=str(s1.detector_dir), top_layers=2, epochs=8, learning_rate=3e-3, **common),
                     small_manifests / "train.csv", small_manifests / "dev.csv", out / "stage2")
    return s1, s2


@pytest.fixture
def logged():
    """``with logged("xlsr_helpers.x") as records``: the records of one logger at INFO, whatever logging
    other tests configured."""
    return _logged


@contextmanager
def _logged(name):
    logger, records = logging.getLogger(name), []
    handler = logging.Handler()
    handler.emit = records.append
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.INFO)
    logger.disabled = False
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled


@pytest.fixture
def lock_holder():
    """``hold(folder)``: another process that takes the folder's run lock and keeps it until the test ends
    (killed then); returns the process once it holds the lock."""
    import subprocess
    import textwrap
    held = []

    def hold(folder):
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import time
            from pathlib import Path
            from xlsr_helpers.pipeline.runlock import run_folder_lock
            with run_folder_lock(Path({str(folder)!r})):
                print("held", flush=True)
                time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        held.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in held:
        proc.kill()
        proc.wait()


OWN_CSV_DESCRIPTOR = """name: mine
format: csv
columns: {id: utt_id, file: utt_file, label: key}
label_column: key
label_map: {real: bonafide, fake: spoof}
splits:
  train: {protocol: train.csv, audio: "{utt_file}"}
  dev: {protocol: dev.csv, audio: "{utt_file}"}
"""


@pytest.fixture
def two_corpora(demo_root, tmp_path):
    """Two generated corpora in two layouts: the tiny demo corpus (ASVspoof 2019 LA: whitespace
    protocols, flac; train, dev, eval) and an own corpus given by descriptor path (CSV lists, wav in
    folders; train and dev only), whose trials reuse the demo corpus's ids row for row (their audio
    is another demo corpus's, seed 1). Returns (demo root, own root, own descriptor path)."""
    import soundfile as sf

    from xlsr_helpers.data.demo import make_demo_corpus
    from xlsr_helpers.data.manifest import build_manifest
    a = build_manifest("asvspoof2019-la", demo_root)
    b = build_manifest("asvspoof2019-la", make_demo_corpus(tmp_path / "other", seed=1, size="tiny"))
    root = tmp_path / "mine"
    for split in ("train", "dev"):
        lines = ["id,file,label"]
        for uid, (_, row) in zip(a.splits[split].utt_id, b.splits[split].iterrows(), strict=False):
            rel = f"wav/{split}/{row.label}/{uid}.wav"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            wave, sr = sf.read(row.path)
            sf.write(root / rel, wave, sr)
            lines.append(f"{uid},{rel},{'real' if row.label == 'bonafide' else 'fake'}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    descriptor = tmp_path / "mine.yaml"
    descriptor.write_text(OWN_CSV_DESCRIPTOR)
    return demo_root, root, descriptor
