import numpy as np
import pytest
import torch
from transformers import Wav2Vec2ForSequenceClassification

from xlsr_helpers.data.datasets import AudioCollator, SegmentConfig, SegmentDataset
from xlsr_helpers.data.manifest import read_manifest
from xlsr_helpers.model.cache import (
    CachedFeatures,
    CacheRun,
    CacheSpec,
    build_cache,
    collate_features,
    feature_kind,
    model_fingerprint,
)
from xlsr_helpers.model.forward import detector_label_order, encode_prefix, forward_top, head_of, scores_from_logits
from xlsr_helpers.model.freezing import freeze_for_stage
from xlsr_helpers.model.loading import load_detector, load_feature_extractor
from xlsr_helpers.runtime.device import UnsupportedGPUError, check_capability, choose_precision
from xlsr_helpers.train.trainer import StageModule, class_weight_tensor

KAGGLE_CU128_ARCHS = ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


def test_tiny_backbone_loads_as_detector(tiny_backbone):
    model = load_detector(tiny_backbone)
    assert isinstance(model, Wav2Vec2ForSequenceClassification)
    assert model.config.id2label == {0: "bonafide", 1: "spoof"}
    assert model.config.do_stable_layer_norm  # XLS-R family: pre-LN encoder
    assert load_feature_extractor(tiny_backbone).do_normalize


def test_trainable_parameters_match_stage(tiny_backbone):
    model = load_detector(tiny_backbone)
    head = sum(p.numel() for m in (model.projector, model.classifier) for p in m.parameters())
    assert freeze_for_stage(model, 1)["trainable"] == head
    top2 = sum(p.numel() for layer in model.wav2vec2.encoder.layers[-2:] for p in layer.parameters())
    final_ln = sum(p.numel() for p in model.wav2vec2.encoder.layer_norm.parameters())
    counts = freeze_for_stage(model, 2, top_layers=2)
    assert counts["trainable"] == head + top2 + final_ln
    assert not any(p.requires_grad for p in model.wav2vec2.feature_extractor.parameters())
    assert not any(p.requires_grad for p in model.wav2vec2.encoder.layers[0].parameters())
    with pytest.raises(ValueError, match="top_layers"):
        freeze_for_stage(model, 2, top_layers=99)


@pytest.mark.parametrize("n_prefix", [0, 2, 4])
def test_split_forward_equals_full_forward(tiny_backbone, n_prefix):
    model = load_detector(tiny_backbone).eval()
    x = torch.randn(3, 12000)
    mask = torch.ones(3, 12000, dtype=torch.long)
    mask[1, 7000:] = 0
    with torch.no_grad():
        ref = model(x, attention_mask=mask).logits
        hidden, fmask = encode_prefix(model, x, mask, n_prefix)
        torch.testing.assert_close(forward_top(model, hidden, fmask, n_prefix), ref, rtol=1e-4, atol=1e-5)
    # a fresh head is in this package's order: bonafide 0, spoof 1
    torch.testing.assert_close(scores_from_logits(ref, detector_label_order(model)), ref[:, 0] - ref[:, 1])


def _spec(kind, n_prefix, seg, fp, dtype="float16"):
    return CacheSpec(kind, n_prefix, seg, fp, dtype)


# (head, stage, what the frozen part hands over): a pooled vector only for the linear head on a fully
# frozen encoder; frame heads get the last layer's frames; 'sls' gets every frozen layer's output.
CACHE_CASES = [("linear", 1, "pooled"), ("linear", 2, "prefix"), ("aasist", 1, "prefix"), ("aasist", 2, "prefix"),
               ("sls", 1, "layers"), ("sls", 2, "layers")]


@pytest.mark.parametrize("head,stage,kind", CACHE_CASES)
def test_cached_and_uncached_losses_agree(tiny_backbone, demo_manifests, tmp_path, head, stage, kind):
    df = read_manifest(demo_manifests / "dev.csv")
    seg = SegmentConfig(samples=16000)
    model = load_detector(tiny_backbone, head=head, segment_samples=seg.samples)
    freeze_for_stage(model, stage, top_layers=2)
    n_prefix = 4 if stage == 1 else 2
    assert feature_kind(head_of(model).needs, n_prefix, 4) == kind
    fe = load_feature_extractor(tiny_backbone)
    labels = df.label.map({"bonafide": 0, "spoof": 1}).to_numpy()
    weights = class_weight_tensor(labels, "balanced")
    fp = model_fingerprint(tiny_backbone, model.config)
    run = CacheRun(tmp_path, batch_size=8)
    path = build_cache(model, fe, df, "dev", _spec(kind, n_prefix, seg, fp), run)
    expected_row = {"pooled": (64,), "prefix": (49, 64), "layers": (n_prefix, 49, 64)}[kind]  # 16000 samples: 49 frames
    assert np.load(path, mmap_mode="r").shape == (len(df), *expected_row)
    cached = StageModule(model, kind, n_prefix, weights).eval()
    full = StageModule(model, "waveform", n_prefix, weights).eval()
    ds_c = CachedFeatures(path, labels)
    ds_f = SegmentDataset(df, seg)
    idx = list(range(len(df)))
    with torch.no_grad():
        loss_c = cached(**collate_features([ds_c[i] for i in idx])).loss
        loss_f = full(**AudioCollator(fe)([ds_f[i] for i in idx])).loss
    assert loss_c.item() == pytest.approx(loss_f.item(), rel=2e-3)
    # the cache is reused when nothing changed, and rebuilt when the segment changes
    assert build_cache(model, fe, df, "dev", _spec(kind, n_prefix, seg, fp), run) == path
    other = build_cache(model, fe, df, "dev", _spec(kind, n_prefix, SegmentConfig(samples=8000), fp), run)
    assert other != path and not list(tmp_path.glob("*.tmp*"))


def test_cache_refuses_random_crops(tiny_backbone, demo_manifests, tmp_path):
    df = read_manifest(demo_manifests / "dev.csv")
    model = load_detector(tiny_backbone)
    with pytest.raises(ValueError, match="deterministic"):
        build_cache(model, load_feature_extractor(tiny_backbone), df, "dev",
                    _spec("pooled", 4, SegmentConfig(crop="random"), {}), CacheRun(tmp_path))


def test_class_weights_balance_the_classes():
    w = class_weight_tensor(np.array([0] * 10 + [1] * 90), "balanced")
    assert w[0] * 10 == pytest.approx(w[1] * 90)
    assert class_weight_tensor(np.array([0, 1]), "none") is None
    with pytest.raises(ValueError, match="lacks a class"):
        class_weight_tensor(np.array([1, 1]), "balanced")


def test_preflight_refuses_pascal_on_a_cu128_torch():
    with pytest.raises(UnsupportedGPUError, match="sm_60") as info:
        check_capability((6, 0), KAGGLE_CU128_ARCHS, "Tesla P100-PCIE-16GB")
    assert "T4" in str(info.value) and "L4" in str(info.value)
    check_capability((7, 5), KAGGLE_CU128_ARCHS)  # T4 is fine
    check_capability((8, 9), KAGGLE_CU128_ARCHS + ["compute_80"])  # L4 via PTX JIT
    check_capability((6, 0), ["sm_60", "sm_70"])  # an older torch build with Pascal kernels


@pytest.mark.parametrize("torch_version,words", [
    ("2.10.0+cu128", "pip install torch==2.10.0+cu126 torchaudio==2.10.0+cu126 --index-url "
                     "https://download.pytorch.org/whl/cu126"),
    ("2.6.0", "pip install torch==2.6.0+cu126 torchaudio==2.6.0+cu126 --index-url"),
    ("2.14.1+cu130", "torch==2.14.1+cu126 torchaudio==2.14.1+cu126"),
    ("2.15.0+cu128", "no torch wheel with P100 (sm_60) kernels exists for torch 2.15.0+cu128"),
    ("2.5.1+cu121", "transformers 5 needs torch >= 2.6"),
])
def test_p100_advice_names_the_reinstall_for_the_installed_torch(torch_version, words):
    from xlsr_helpers.runtime.kaggle_env import pascal_advice
    assert words in pascal_advice(torch_version, torchvision=False)


def test_preflight_message_carries_the_advice_for_this_torch(monkeypatch):
    from xlsr_helpers.runtime import device
    monkeypatch.setattr(device.torch, "__version__", "2.10.0+cu128")
    with pytest.raises(UnsupportedGPUError, match=r"torch==2\.10\.0\+cu126"):
        check_capability((6, 0), KAGGLE_CU128_ARCHS, "Tesla P100-PCIE-16GB")


def test_precision_choice():
    assert choose_precision("cpu", False) == "fp32"
    assert choose_precision("cuda", False) == "fp16"  # T4, P100
    assert choose_precision("cuda", True) == "bf16"  # A100, L4, H100


@pytest.mark.parametrize("mode", ["waveform", "prefix"])
def test_gradient_checkpointing_still_trains_the_top_layers(tiny_backbone, mode):
    """Checkpointed layers behind a frozen prefix must still get gradients (no reentrant pitfall)."""
    model = load_detector(tiny_backbone)
    freeze_for_stage(model, 2, top_layers=2)
    getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    module = StageModule(model, mode, 2, None).train()
    x = torch.randn(2, 8000)
    if mode == "waveform":
        out = module(input_values=x, attention_mask=torch.ones_like(x, dtype=torch.long), labels=torch.tensor([0, 1]))
    else:
        with torch.no_grad():
            prefix, _ = encode_prefix(model, x, None, 2)
        out = module(features=prefix, labels=torch.tensor([0, 1]))
    out.loss.backward()
    grad = model.wav2vec2.encoder.layers[-1].feed_forward.output_dense.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert model.wav2vec2.encoder.layers[0].feed_forward.output_dense.weight.grad is None


def test_unloadable_model_says_what_to_do(tmp_path, tiny_backbone):
    import shutil

    from xlsr_helpers.model.loading import XLSR_300M, ModelLoadError
    with pytest.raises(ModelLoadError, match="model folder .*no-such-model does not exist"):
        load_detector(tmp_path / "no-such-model")
    stage = tmp_path / "stage1"
    shutil.copytree(tiny_backbone, stage / "detector")
    with pytest.raises(ModelLoadError, match=r"holds no config.json; it is a stage folder: use .*stage1/detector"):
        load_detector(stage)
    with pytest.raises(ModelLoadError, match="is a file"):
        load_detector(stage / "detector" / "config.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="holds no config.json$"):
        load_detector(tmp_path / "empty")
    # the real hub id goes through the same from_pretrained call (offline in tests: refused, explained)
    with pytest.raises(ModelLoadError, match="facebook/wav2vec2-xls-r-300m"):
        load_detector(XLSR_300M)


def test_cache_that_cannot_fit_is_refused_before_encoding(tiny_backbone, demo_manifests, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from xlsr_helpers.core.errors import ConfigError
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 1000, 1000))
    df = read_manifest(demo_manifests / "dev.csv")
    model = load_detector(tiny_backbone)
    with pytest.raises(ConfigError, match="GiB are free"):
        build_cache(model, load_feature_extractor(tiny_backbone), df, "dev",
                    _spec("prefix", 2, SegmentConfig(samples=16000), {}), CacheRun(tmp_path))
    assert not list(tmp_path.glob("*.npy*"))


def test_subsampled_manifests_say_what_they_hold(demo_root, tmp_path):
    import json

    from xlsr_helpers.data.manifest import build_manifest
    from xlsr_helpers.data.prep import write_manifests
    splits = write_manifests(build_manifest("asvspoof2019-la", demo_root), tmp_path, max_trials_per_split=10)
    record = json.loads((tmp_path / "subsample.json").read_text())
    assert all(v["written"] == len(splits[s]) <= 11 for s, v in record["rows"].items())
    assert set(read_manifest(tmp_path / "eval.csv").attack) == {"-", "A07", "A08", "A09"}  # every group kept


def test_split_head_in_fp32_equals_the_model_forward(tiny_backbone):
    from xlsr_helpers.model.forward import detector_logits
    model = load_detector(tiny_backbone).eval()
    x = torch.randn(3, 12000)
    mask = torch.ones(3, 12000, dtype=torch.long)
    mask[2, 5000:] = 0
    with torch.no_grad():
        torch.testing.assert_close(detector_logits(model, x, mask), model(x, attention_mask=mask).logits,
                                   rtol=1e-5, atol=1e-6)


def test_scores_stay_distinct_under_bf16_autocast(trained):
    """300 different inputs: the fp32 head keeps 300 distinct scores under bf16 (a bf16 head gave ~130)."""
    from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
    rng = np.random.default_rng(0)
    windows = [rng.normal(0, 0.1, 16000).astype(np.float32) for _ in range(300)]
    bf16 = Scorer(trained[1].detector_dir, ScoringConfig(window=16000, device="cpu", precision="bf16"))
    fp32 = Scorer(trained[1].detector_dir, ScoringConfig(window=16000, device="cpu", precision="fp32"))
    s16, s32 = bf16.score_windows(windows), fp32.score_windows(windows)
    assert len(np.unique(s16)) == 300 and len(np.unique(s32)) == 300
    assert np.abs(s16 - s32).max() < 0.5  # the encoder still runs in bf16
