"""The cache's pieces on their own (no model run): what kind of features a head gets, their shapes and
bytes worked out from the layer sizes, what the model part of the key reacts to, the disk margin."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import Wav2Vec2Config

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.datasets import SegmentConfig
from xlsr_helpers.model.cache import (
    CachedFeatures,
    CacheSpec,
    cache_key,
    collate_features,
    feature_kind,
    fits_on_disk,
    model_fingerprint,
)


@pytest.mark.parametrize("needs,n_prefix,kind", [
    ("pooled", 4, "pooled"),  # stage 1 of a pooled head: the whole encoder is frozen
    ("pooled", 3, "prefix"), ("pooled", 0, "prefix"),  # stage 2: the hidden states entering the top layers
    ("frames", 4, "prefix"), ("frames", 2, "prefix"),
    ("layers", 4, "layers"), ("layers", 1, "layers"),
    ("layers", 0, "prefix"),  # nothing frozen: nothing to stack
])
def test_each_head_and_frozen_depth_gets_its_kind(needs, n_prefix, kind):
    assert feature_kind(needs, n_prefix, 4) == kind


def test_a_spec_refuses_what_cannot_be_cached():
    with pytest.raises(ConfigError) as err:
        CacheSpec("waveform", 0, SegmentConfig(), {})
    assert str(err.value) == "kind must be one of ['pooled', 'prefix', 'layers'], got 'waveform'"
    with pytest.raises(ConfigError) as err:
        CacheSpec("pooled", 4, SegmentConfig(crop="random"), {})
    assert str(err.value) == "caching needs deterministic segments: use crop='start' or 'center', not 'random'"


def test_row_shapes_and_bytes_follow_the_layer_sizes():
    config = Wav2Vec2Config(hidden_size=48, num_attention_heads=4)  # the wav2vec2 CNN: 49 frames per second
    seg = SegmentConfig(samples=16000)
    expected = {"pooled": (48,), "prefix": (49, 48), "layers": (3, 49, 48)}
    for kind, shape in expected.items():
        spec = CacheSpec(kind, 3, seg, {})
        assert spec.row_shape(config) == shape
        assert spec.nbytes(config, 5) == 5 * int(np.prod(shape)) * 2  # float16
        assert CacheSpec(kind, 3, seg, {}, dtype="float32").nbytes(config, 5) == 5 * int(np.prod(shape)) * 4


def test_the_model_key_follows_the_weights_and_the_whole_config(tmp_path):
    config = Wav2Vec2Config(hidden_size=48, num_attention_heads=4)
    (tmp_path / "model.safetensors").write_bytes(b"12345")
    (tmp_path / "README.md").write_text("notes")
    fp = model_fingerprint(tmp_path, config)
    stamp = int(os.stat(tmp_path / "model.safetensors").st_mtime)
    assert fp["model"] == str(tmp_path) and fp["weights"] == [("model.safetensors", 5, stamp)]
    assert set(Wav2Vec2Config().to_dict()) <= set(json.loads(fp["config"]))  # defaults included: a new default is a new key
    (tmp_path / "README.md").write_text("other notes")
    assert model_fingerprint(tmp_path, config) == fp  # not a weight file
    (tmp_path / "model.safetensors").write_bytes(b"123456")
    assert model_fingerprint(tmp_path, config) != fp
    assert model_fingerprint(tmp_path, Wav2Vec2Config(hidden_size=64, num_attention_heads=4))["config"] != fp["config"]
    hub = model_fingerprint("facebook/wav2vec2-xls-r-300m", config)
    assert set(hub) == {"model", "config"} and hub["model"] == "facebook/wav2vec2-xls-r-300m"


def test_cached_rows_are_read_memory_mapped_with_their_labels(tmp_path):
    path = tmp_path / "c.npy"
    np.save(path, np.arange(12, dtype=np.float16).reshape(3, 4))
    ds = CachedFeatures(path, np.array([0, 1, 1]))
    assert isinstance(ds.array, np.memmap) and len(ds) == 3
    batch = collate_features([ds[2], ds[0]])
    assert batch["features"].dtype == torch.float32 and batch["features"][0].tolist() == [8, 9, 10, 11]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    with pytest.raises(ValueError) as err:
        CachedFeatures(path, np.array([0, 1]))
    assert str(err.value) == f"{path}: 3 cached rows for 2 manifest rows"


def test_a_cache_fits_within_95_percent_of_the_free_space(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    seen = []
    monkeypatch.setattr(shutil, "disk_usage", lambda p: seen.append(p) or usage(0, 0, 2000))
    assert fits_on_disk(tmp_path / "not" / "yet", 1900) == (True, 2000 / 2**30)  # exactly 95 %
    assert fits_on_disk(tmp_path, 1901) == (False, 2000 / 2**30)
    assert seen[0] == tmp_path  # the nearest folder that exists


def test_disk_space_is_refused_before_any_work_with_what_to_do(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from xlsr_helpers.model.cache import check_disk_space
    monkeypatch.setattr(shutil, "disk_usage", lambda p: namedtuple("usage", "total used free")(0, 0, 2**30))
    check_disk_space(tmp_path, int(0.95 * 2**30), "dev pooled cache")
    with pytest.raises(ConfigError) as err:
        check_disk_space(tmp_path, 3 * 2**30, "dev pooled cache")
    assert str(err.value) == (f"the dev pooled cache needs 3.0 GiB but only 1.0 GiB are free in {tmp_path}; set "
                              "cache_dir to a larger disk (on Kaggle /tmp), shorten segments, or set cache='off'")


@pytest.mark.parametrize("kind,n_prefix", [("pooled", 4), ("prefix", 2), ("layers", 3)])
def test_a_cache_holds_the_encoders_own_hidden_states_and_is_reused_by_key(kind, n_prefix, tiny_backbone,
                                                                             demo_manifests, tmp_path):
    """Rows against Hugging Face's own forward (``output_hidden_states``): the mean of the last layer
    for ``pooled``, the output of layer n for ``prefix``, layers 1..n stacked for ``layers``."""
    from transformers import Wav2Vec2Model

    from xlsr_helpers.data.datasets import AudioCollator, SegmentDataset
    from xlsr_helpers.data.manifest import read_manifest
    from xlsr_helpers.model.cache import CacheRun, build_cache, cache_key
    from xlsr_helpers.model.loading import load_detector, load_feature_extractor
    df = read_manifest(demo_manifests / "dev.csv").head(5)
    seg = SegmentConfig(samples=16000)
    model, fe = load_detector(tiny_backbone), load_feature_extractor(tiny_backbone)
    spec = CacheSpec(kind, n_prefix, seg, model_fingerprint(tiny_backbone, model.config))
    key = cache_key(df, spec.fingerprint, seg, kind, n_prefix, "float16")
    (tmp_path / f"dev-{kind}-{key}.npy.tmp123").write_bytes(b"")  # a killed run's half-written cache
    (tmp_path / "dev-pooled-0123.npy.tmp9").write_bytes(b"")  # another cache's: not this build's business
    path = build_cache(model, fe, df, "dev", spec, CacheRun(tmp_path / "caches" / "new", batch_size=2))
    assert path.parent == tmp_path / "caches" / "new"
    path = build_cache(model, fe, df, "dev", spec, CacheRun(tmp_path, batch_size=2))
    assert path.name.startswith(f"dev-{kind}-") and path.suffix == ".npy"
    rows = np.load(path)
    assert rows.dtype == np.float16
    batch = AudioCollator(fe)([SegmentDataset(df, seg)[i] for i in range(len(df))])
    encoder = Wav2Vec2Model.from_pretrained(tiny_backbone).eval()
    with torch.no_grad():
        out = encoder(batch["input_values"], output_hidden_states=True)
    expected = {"pooled": out.last_hidden_state.mean(1),
                "prefix": out.hidden_states[n_prefix],
                "layers": torch.stack(out.hidden_states[1:n_prefix + 1], 1)}[kind].numpy()
    assert rows.shape == expected.shape
    np.testing.assert_allclose(rows.astype(np.float32), expected, rtol=0, atol=4e-3)
    assert json.loads(path.with_suffix(".json").read_text()) == {"split": "dev", "kind": kind, "shape": list(rows.shape),
                                                                 "n_prefix": n_prefix, "rows": 5}
    stamp = path.stat().st_mtime_ns
    assert build_cache(model, fe, df, "dev", spec, CacheRun(tmp_path)) == path and path.stat().st_mtime_ns == stamp
    other = build_cache(model, fe, df.head(4), "dev", spec, CacheRun(tmp_path))  # other trials: another key
    assert other != path and len(np.load(other)) == 4
    assert [p.name for p in tmp_path.glob("*.tmp*")] == ["dev-pooled-0123.npy.tmp9"]


def test_the_cache_key_follows_the_trials_not_the_tables_index():
    from xlsr_helpers.model.cache import cache_key
    df = pd.DataFrame({"utt_id": ["a", "b"], "path": ["/x/a", "/x/b"], "label": ["bonafide", "spoof"]})
    key = cache_key(df, {"model": "m"}, SegmentConfig(), "pooled", 4, "float16")
    assert cache_key(df.set_axis([7, 9]), {"model": "m"}, SegmentConfig(), "pooled", 4, "float16") == key
    assert cache_key(df.iloc[::-1], {"model": "m"}, SegmentConfig(), "pooled", 4, "float16") != key


# ----------------------------------------------------------------------------- cache identity

BASE = dict(fingerprint={"model": "m", "weights": [["model.safetensors", 10, 1]]}, segment=SegmentConfig(16000),
            kind="prefix", n_prefix=2, dtype="float16")
MANIFEST = pd.DataFrame({"utt_id": ["a", "b"], "path": ["/x/a.flac", "/x/b.flac"], "label": ["bonafide", "spoof"]})


@pytest.mark.parametrize("change", [
    {"segment": SegmentConfig(8000)}, {"segment": SegmentConfig(16000, pad="zero")},
    {"segment": SegmentConfig(16000, crop="center")}, {"kind": "pooled"}, {"n_prefix": 3}, {"dtype": "float32"},
    {"fingerprint": {"model": "m", "weights": [["model.safetensors", 10, 2]]}},
    {"manifest": MANIFEST.assign(label=["spoof", "spoof"])}, {"manifest": MANIFEST.assign(path=["/y/a.flac", "/x/b.flac"])},
    {"manifest": MANIFEST.iloc[::-1]},
], ids=["segment", "pad", "crop", "stage-kind", "prefix-depth", "dtype", "weights", "labels", "paths", "order"])
def test_every_field_that_changes_cached_features_changes_the_key(change):
    args = {**BASE, "manifest": MANIFEST, **change}
    key = cache_key(args["manifest"], args["fingerprint"], args["segment"], args["kind"], args["n_prefix"], args["dtype"])
    assert key != cache_key(MANIFEST, **BASE)
    assert cache_key(MANIFEST.copy(), **BASE) == cache_key(MANIFEST, **BASE)  # and nothing else does
