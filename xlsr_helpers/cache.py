"""Embedding caches: run the frozen part of the detector once per utterance, train on the result.

Stage 1 caches the mean-pooled final encoder output (one vector per utterance: the whole backbone
is frozen). Stage 2 caches the hidden states entering the first unfrozen layer, so each epoch
runs only the top N layers. Caches are fp16 ``.npy`` files opened memory-mapped, stored under a
key that hashes the manifest, the model (config + weights file stamp) and the segment settings:
change any of them and a new cache is built. Writes go to a temporary name and are renamed
when complete, so a killed run never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .errors import ConfigError
from .features import AudioCollator, SegmentConfig, SegmentDataset
from .model import encode_prefix, final_norm, masked_mean

CACHE_VERSION = 1


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
def _compute(model, loader: DataLoader, kind: str, n_prefix: int, out: np.ndarray, device: torch.device,
             autocast_dtype: torch.dtype | None, desc: str) -> None:
    model.eval().to(device)
    row = 0
    for batch in tqdm(loader, desc=desc, leave=False):
        x = batch["input_values"].to(device)
        mask = batch["attention_mask"].to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            hidden, fmask = encode_prefix(model, x, mask, n_prefix)
            if kind == "pooled":  # whole encoder frozen: keep only the mean-pooled output
                hidden = masked_mean(final_norm(model, hidden), fmask)
            elif not bool(fmask.all()):
                raise ValueError("prefix cache needs fixed-length segments (no padding inside a batch)")
        out[row:row + len(x)] = hidden.float().cpu().numpy()
        row += len(x)


def check_disk_space(folder: Path, needed: int, what: str) -> None:
    """Refuse early (not after an hour of encoding) when the cache cannot fit on the disk."""
    free = shutil.disk_usage(folder).free
    if needed > 0.95 * free:
        raise ConfigError(f"the {what} needs {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB are free in "
                          f"{folder}; set cache_dir to a larger disk (on Kaggle /tmp), shorten segments, "
                          "or set cache='off'")


def build_cache(model, feature_extractor, manifest: pd.DataFrame, segment: SegmentConfig, kind: str,
                n_prefix: int, cache_dir: Path, fingerprint: dict, split: str, batch_size: int = 16,
                dtype: str = "float16", device: torch.device | str = "cpu", num_workers: int = 0,
                autocast_dtype: torch.dtype | None = None) -> Path:
    """Build (or reuse) the cache of one split; returns the ``.npy`` path."""
    if kind not in ("pooled", "prefix"):
        raise ConfigError(f"kind must be 'pooled' or 'prefix', got {kind!r}")
    if not segment.deterministic:
        raise ConfigError("caching needs deterministic segments: use crop='start' or 'center', not 'random'")
    key = cache_key(manifest, fingerprint, segment, kind, n_prefix, dtype)
    path = Path(cache_dir) / f"{split}-{kind}-{key}.npy"
    with PartialState().main_process_first():  # under DDP rank 0 builds, the others then read
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        ds = SegmentDataset(manifest, segment)
        loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=AudioCollator(feature_extractor),
                            num_workers=num_workers)
        device = torch.device(device)
        cfg = model.config
        n_frames = int(model._get_feat_extract_output_lengths(torch.tensor(segment.samples)))
        shape = (len(ds), cfg.hidden_size) if kind == "pooled" else (len(ds), n_frames, cfg.hidden_size)
        check_disk_space(path.parent, int(np.prod(shape)) * np.dtype(dtype).itemsize, f"{split} {kind} cache")
        for stale in path.parent.glob(f"{path.name}.tmp*"):  # left by a killed run
            stale.unlink()
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=shape)
        _compute(model, loader, kind, n_prefix, arr, device, autocast_dtype, f"cache {split} ({kind})")
        arr.flush()
        del arr
        os.replace(tmp, path)
        (path.with_suffix(".json")).write_text(json.dumps({"split": split, "kind": kind, "shape": shape,
                                                           "n_prefix": n_prefix, "rows": len(ds)}))
    return path
