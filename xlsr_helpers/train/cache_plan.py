"""Whether a stage trains on cached features, and the datasets it then trains on."""


from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from torch import nn
from torch.utils.data import Dataset

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.datasets import AudioCollator, SegmentConfig, SegmentDataset
from xlsr_helpers.data.labels import LabelOrder
from xlsr_helpers.model.cache import (
    CachedFeatures,
    CacheRun,
    CacheSpec,
    build_cache,
    collate_features,
    feature_kind,
    fits_on_disk,
    model_fingerprint,
)
from xlsr_helpers.model.forward import head_of
from xlsr_helpers.runtime.kaggle_env import in_kaggle_output, kaggle_scratch
from xlsr_helpers.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class StageData:
    """The stage's datasets as the Trainer sees them, and what they hold (``cache.FEATURE_KINDS``)."""

    train: Dataset
    dev: Dataset
    collator: object
    kind: str
    cached: bool


def cache_plan(cfg: TrainConfig, kind: str, spec_bytes: int, cache_dir: Path) -> bool:
    """Whether this stage trains on a cache: only with the same input every epoch, and (for the large
    every-layer cache of heads such as 'sls') only when it fits on the disk; otherwise a clear line says why."""
    deterministic = SegmentConfig(cfg.segment_samples, cfg.pad, cfg.crop).deterministic and cfg.augment == "none"
    if cfg.cache == "on" and not deterministic:
        raise ConfigError("cache='on' needs the same input every epoch: set crop='start' or 'center' and augment='none'")
    if cfg.cache == "off" or not deterministic:
        return False
    fits, free_gib = fits_on_disk(cache_dir, spec_bytes)
    if kind == "layers" and cfg.cache == "auto" and not fits:
        log.warning("head %r reads every layer: its cache would take %.1f GiB and %s has %.1f GiB free, so this "
                    "stage trains uncached (each step runs the frozen encoder too). To cache it, set cache_dir to a "
                    "disk with more room.", cfg.head, spec_bytes / 2**30, cache_dir, free_gib)
        return False
    return True


def stage_cache_dir(cfg: TrainConfig, out: Path) -> Path:
    """Where a stage's caches go. ``cache_dir='auto'``: the stage folder, except in Kaggle's kept
    output (20 GB; a stage-2 prefix cache alone can fill it), where they go to the session's scratch
    folder; a cache is found by its key, so a new session rebuilds it only when the stage still trains."""
    if cfg.cache_dir != "auto":
        return Path(cfg.cache_dir) / f"stage{cfg.stage}"
    return kaggle_scratch() / "xlsr-cache" / f"stage{cfg.stage}" if in_kaggle_output(out) else out / "cache"


@dataclass
class CachePlan:
    """What the frozen part hands over (``kind``), the cache of each split, where, and whether to use it."""

    kind: str
    specs: dict
    cache_dir: Path
    cached: bool


def plan_cache(cfg: TrainConfig, detector: nn.Module, train_df: pd.DataFrame, dev_df: pd.DataFrame, n_prefix: int,
               out: Path, audio: tuple[str, str] = ("", "")) -> CachePlan:
    """Decided before the Trainer's arguments exist (they depend on it); nothing is encoded yet.
    ``audio``: the train and dev audio fingerprints, part of each cache's key (a cache of other audio
    under the same paths is never reused)."""
    kind = feature_kind(head_of(detector).needs, n_prefix, len(detector.wav2vec2.encoder.layers))
    cache_dir = stage_cache_dir(cfg, out)
    fp = model_fingerprint(cfg.model, detector.config)
    specs = {split: CacheSpec(kind, n_prefix, seg, {**fp, "audio": sound}, cfg.cache_dtype) if seg.deterministic else None
             for split, seg, sound in zip(("train", "dev"), _segments(cfg), audio, strict=True)}
    needed = sum(sp.nbytes(detector.config, len(df)) for sp, df in zip(specs.values(), (train_df, dev_df), strict=True)
                 if sp is not None)
    return CachePlan(kind, specs, cache_dir, cache_plan(cfg, kind, needed, cache_dir))


def _segments(cfg: TrainConfig) -> tuple[SegmentConfig, SegmentConfig]:
    """Training segments, and dev's (never random: model selection must see the same audio each epoch)."""
    return (SegmentConfig(cfg.segment_samples, cfg.pad, cfg.crop),
            SegmentConfig(cfg.segment_samples, cfg.pad, "start" if cfg.crop == "random" else cfg.crop))


def stage_data(cfg: TrainConfig, plan: CachePlan, detector: nn.Module, feature_extractor, train_df: pd.DataFrame,
               dev_df: pd.DataFrame, device, autocast, order: LabelOrder) -> StageData:
    """Cached features when the plan says so (built or reused now), else waveforms; targets are class
    ids in the detector's own label ``order``."""
    segment, dev_segment = _segments(cfg)
    train_labels, dev_labels = (df["label"].map(order.label2id).to_numpy() for df in (train_df, dev_df))
    if plan.cached:
        run = CacheRun(plan.cache_dir, cfg.eval_batch_size, device, cfg.num_workers, autocast)
        train_ds, dev_ds = (
            CachedFeatures(build_cache(detector, feature_extractor, df, split, plan.specs[split], run), labels)
            for split, df, labels in (("train", train_df, train_labels), ("dev", dev_df, dev_labels)))
        return StageData(train_ds, dev_ds, collate_features, plan.kind, cached=True)
    train_ds = SegmentDataset(train_df, segment, seed=cfg.seed, augment=cfg.augment, noise_dir=cfg.noise_dir,
                              rir_dir=cfg.rir_dir, label2id=order.label2id)
    dev_ds = SegmentDataset(dev_df, dev_segment, seed=cfg.seed, label2id=order.label2id)
    return StageData(train_ds, dev_ds, AudioCollator(feature_extractor),
                     "waveform", cached=False)
