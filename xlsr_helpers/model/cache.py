"""Embedding caches: run the frozen part of the detector once per utterance, train on the result.

What the frozen part hands to the trained part is one of ``FEATURE_KINDS`` (``feature_kind``
decides it from the head and the stage; ``train.StageModule`` reads the same kinds):
``pooled``: the mean-pooled final encoder output, one vector per utterance (stage 1, pooled heads);
``prefix``: the hidden states entering the first trained layer (stage 2; stage 1 of frame heads,
where that is the last layer's output); ``layers``: the output of every frozen layer (heads that
read every layer); ``waveform``: nothing cached, the whole forward runs every step.

Caches are fp16 ``.npy`` files opened memory-mapped, stored under a key that hashes the manifest,
the model (config + weights file stamp), the segment settings, kind, depth and dtype: change any of
them and a new cache is built. Writes go to a temporary name and are renamed
when complete, so a killed run never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.datasets import AudioCollator, SegmentConfig, SegmentDataset
from xlsr_helpers.model.forward import encode_prefix, final_norm, masked_mean
from xlsr_helpers.model.loading import frames_for

CACHE_VERSION = 1
FEATURE_KINDS = ("waveform", "pooled", "prefix", "layers")
CACHED_KINDS = FEATURE_KINDS[1:]


def feature_kind(needs: str, n_prefix: int, n_layers: int) -> str:
    """What a head that reads ``needs`` (see ``heads``) gets from a frozen prefix of ``n_prefix`` of
    ``n_layers`` layers: pooled vectors only when a pooled head sits on the whole frozen encoder."""
    if needs == "layers" and n_prefix > 0:
        return "layers"
    return "pooled" if needs == "pooled" and n_prefix == n_layers else "prefix"


@dataclass(frozen=True)
class CacheSpec:
    """What one cache holds: the features of ``kind`` after ``n_prefix`` frozen layers of the model
    identified by ``fingerprint``, for ``segment``, stored as ``dtype``."""

    kind: str
    n_prefix: int
    segment: SegmentConfig
    fingerprint: dict
    dtype: str = "float16"

    def __post_init__(self) -> None:
        if self.kind not in CACHED_KINDS:
            raise ConfigError(f"kind must be one of {list(CACHED_KINDS)}, got {self.kind!r}")
        if not self.segment.deterministic:
            raise ConfigError("caching needs deterministic segments: use crop='start' or 'center', not 'random'")

    def row_shape(self, config) -> tuple[int, ...]:
        frames = frames_for(config, self.segment.samples)
        return {"pooled": (config.hidden_size,), "prefix": (frames, config.hidden_size),
                "layers": (self.n_prefix, frames, config.hidden_size)}[self.kind]

    def nbytes(self, config, rows: int) -> int:
        return rows * int(np.prod(self.row_shape(config))) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class CacheRun:
    """How a cache is computed (none of it changes what is stored)."""

    cache_dir: Path
    batch_size: int = 16
    device: torch.device | str = "cpu"
    num_workers: int = 0
    autocast_dtype: torch.dtype | None = None


def model_fingerprint(name_or_path: str | Path, config) -> dict:
    """Model identity for the cache key: name, config and (for folders) the weight files' stamps."""
    fp = {"model": str(name_or_path), "config": config.to_json_string(use_diff=False)}
    p = Path(name_or_path)
    if p.is_dir():
        fp["weights"] = sorted((f.name, f.stat().st_size, int(f.stat().st_mtime))
                               for f in p.glob("*.safetensors"))
    return fp


def cache_key(manifest: pd.DataFrame, fingerprint: dict, segment: SegmentConfig, kind: str, n_prefix: int,
              dtype: str) -> str:
    """Everything the cached features depend on: the trials, the model, the segments, kind, depth, dtype."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(manifest[["utt_id", "path", "label"]], index=False).values.tobytes())
    h.update(json.dumps({"fp": fingerprint, "segment": [segment.samples, segment.pad, segment.crop], "kind": kind,
                         "n_prefix": n_prefix, "dtype": dtype, "v": CACHE_VERSION}, sort_keys=True).encode())
    return h.hexdigest()[:16]


class CachedFeatures(Dataset):
    """Items ``{"features": float32 tensor, "labels": int}`` read from a memory-mapped cache."""

    def __init__(self, path: Path, labels: np.ndarray):
        self.array = np.load(path, mmap_mode="r")
        self.labels = labels
        if len(self.array) != len(labels):
            raise ValueError(f"{path}: {len(self.array)} cached rows for {len(labels)} manifest rows")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"features": torch.from_numpy(np.asarray(self.array[i], dtype=np.float32)),
                "labels": int(self.labels[i])}


def collate_features(items: list[dict]) -> dict[str, torch.Tensor]:
    return {"features": torch.stack([it["features"] for it in items]),
            "labels": torch.tensor([it["labels"] for it in items], dtype=torch.long)}


@torch.no_grad()
def _compute(model, loader: DataLoader, spec: CacheSpec, out: np.ndarray, run: CacheRun, desc: str) -> None:
    device = torch.device(run.device)
    model.eval().to(device)
    row = 0
    for batch in tqdm(loader, desc=desc, leave=False):
        x = batch["input_values"].to(device)
        mask = batch["attention_mask"].to(device)
        outputs = [] if spec.kind == "layers" else None
        with torch.autocast(device.type, dtype=run.autocast_dtype, enabled=run.autocast_dtype is not None):
            hidden, fmask = encode_prefix(model, x, mask, spec.n_prefix, outputs)
            if spec.kind == "pooled":  # whole encoder frozen: keep only the mean-pooled output
                hidden = masked_mean(final_norm(model, hidden), fmask)
            elif not bool(fmask.all()):
                raise ValueError("frame caches need fixed-length segments (no padding inside a batch)")
            elif spec.kind == "layers":
                hidden = torch.stack(outputs, 1)
        out[row:row + len(x)] = hidden.float().cpu().numpy()
        row += len(x)


def fits_on_disk(folder: Path, needed: int) -> tuple[bool, float]:
    """Whether ``needed`` bytes fit in ``folder`` (within 95 % of the free space), and the free GiB."""
    folder = Path(folder)
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    return needed <= 0.95 * free, free / 2**30


def check_disk_space(folder: Path, needed: int, what: str) -> None:
    """Refuse early (not after an hour of encoding) when the cache cannot fit on the disk."""
    ok, free_gib = fits_on_disk(folder, needed)
    if not ok:
        raise ConfigError(f"the {what} needs {needed / 2**30:.1f} GiB but only {free_gib:.1f} GiB are free in "
                          f"{folder}; set cache_dir to a larger disk (on Kaggle /tmp), shorten segments, "
                          "or set cache='off'")


def build_cache(model, feature_extractor, manifest: pd.DataFrame, split: str, spec: CacheSpec, run: CacheRun) -> Path:
    """Build (or reuse) the cache of one split; returns the ``.npy`` path."""
    key = cache_key(manifest, spec.fingerprint, spec.segment, spec.kind, spec.n_prefix, spec.dtype)
    path = Path(run.cache_dir) / f"{split}-{spec.kind}-{key}.npy"
    with PartialState().main_process_first():  # under DDP rank 0 builds, the others then read
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        ds = SegmentDataset(manifest, spec.segment)
        loader = DataLoader(ds, batch_size=run.batch_size, shuffle=False, collate_fn=AudioCollator(feature_extractor),
                            num_workers=run.num_workers)
        shape = (len(ds), *spec.row_shape(model.config))
        check_disk_space(path.parent, spec.nbytes(model.config, len(ds)), f"{split} {spec.kind} cache")
        for stale in path.parent.glob(f"{path.name}.tmp*"):  # left by a killed run
            stale.unlink()
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(spec.dtype), shape=shape)
        _compute(model, loader, spec, arr, run, f"cache {split} ({spec.kind})")
        arr.flush()
        del arr
        os.replace(tmp, path)
        (path.with_suffix(".json")).write_text(json.dumps({"split": split, "kind": spec.kind, "shape": shape,
                                                           "n_prefix": spec.n_prefix, "rows": len(ds)}))
    return path
