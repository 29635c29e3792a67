"""Before anything trains: how big each stage's cache is, where it goes, and how long each stage takes.

``xlsr run --preset kaggle-t4 --estimate`` reads the corpus's trial counts (the run folder's
manifests, or the protocols when 01 has not run), sizes the caches from the model's config, and
times a few forward and backward passes of the model on this machine's device, so a user knows
before a 12-hour session starts whether the run fits it. Nothing is written to the run folder.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from xlsr_helpers.data.corpora import parse_corpora
from xlsr_helpers.data.demo import SIZES, SPLIT_ATTACKS
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.data.manifest import build_manifest, read_manifest
from xlsr_helpers.model.cache import CacheSpec, feature_kind
from xlsr_helpers.model.forward import detector_logits, head_of
from xlsr_helpers.model.freezing import freeze_for_stage, frozen_prefix_layers
from xlsr_helpers.model.loading import load_detector, save_random_backbone, xlsr_300m_config
from xlsr_helpers.pipeline.params import TINY_RANDOM, stage_config
from xlsr_helpers.pipeline.runfolder import resolve_base_model, resolve_data_root
from xlsr_helpers.runtime.device import preflight
from xlsr_helpers.train.cache_plan import _segments, stage_cache_dir
from xlsr_helpers.train.callbacks import hours_text

SPLITS = ("train", "dev")


def trial_counts(values: dict, run_dir: Path) -> dict[str, int]:
    """Trials per split: the run folder's manifests when 01 has written them, else the corpora's
    protocols (several corpora: their sum, as 01 joins them)."""
    folder = run_dir / "manifests"
    if all((folder / f"{s}.csv").is_file() for s in SPLITS):
        return {s: len(read_manifest(folder / f"{s}.csv")) for s in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    for spec in parse_corpora(values["dataset"], values["data_root"]):
        for split, n in _corpus_counts(spec.descriptor, spec.root, values, run_dir).items():
            counts[split] += n
    cap = values.get("max_trials_per_split")
    return {s: min(n, cap) if cap else n for s, n in counts.items()}


def _corpus_counts(descriptor: str, root_spec: str, values: dict, run_dir: Path) -> dict[str, int]:
    """One corpus's train and dev trials (a split it lacks: none)."""
    if root_spec.startswith("demo:"):  # a demo corpus that may not exist yet: its sizes are known without generating it
        size = SIZES[root_spec.split(":", 1)[1]]
        return {s: size.bonafide[s] + size.per_attack[s] * len(SPLIT_ATTACKS[s]) for s in SPLITS}
    root = resolve_data_root(root_spec, descriptor, run_dir, make=False)
    wanted = [s for s in SPLITS if s in load_descriptor(descriptor)["splits"]]
    if not wanted:
        return {}
    splits = build_manifest(descriptor, root, splits=wanted, allow_missing=bool(values.get("allow_missing"))).splits
    return {s: len(df) for s, df in splits.items()}


def _model_for_timing(name: str, scratch: Path) -> str:
    """The base model, or the same architecture with random weights when only the hub has it (same compute)."""
    if name == TINY_RANDOM:
        return str(save_random_backbone(scratch / "tiny"))
    found = resolve_base_model(name, scratch)
    return found if Path(found).is_dir() else str(save_random_backbone(scratch / "xlsr", xlsr_300m_config()))


def _seconds_per_utterance(detector, samples: int, batch: int, device: str, backward: bool, reps: int = 2) -> float:
    """Measured seconds per utterance of the stage's forward (and backward) pass on random audio."""
    detector.to(device)
    x = torch.randn(batch, samples, device=device)
    times = []
    for _ in range(reps + 1):  # the first pass warms up kernels and allocations
        t0 = time.perf_counter()
        with torch.set_grad_enabled(backward):
            logits = detector_logits(detector, x, None)
            if backward:
                logits.float().sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    detector.zero_grad(set_to_none=True)
    return min(times[1:]) / batch


def _free_bytes(folder: Path) -> int:
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def estimate_stages(values: dict, run_dir: Path, timing_batch: int = 2) -> pd.DataFrame:
    """One row per stage: its cache (kind, size, folder, free space there) and its time (cache build
    and every epoch), from the trial counts and a micro-benchmark of this machine's device."""
    counts = trial_counts(values, run_dir)
    device = preflight(None if values.get("device", "auto") == "auto" else values["device"], "fp32").device
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        model = _model_for_timing(values["base_model"], Path(scratch))
        for stage in (1, 2):
            cfg = stage_config(stage, values, model)
            # stage 2 starts from stage 1's detector: the same architecture and head
            detector = load_detector(model, head=values.get("head", "auto"), segment_samples=cfg.segment_samples)
            freeze_for_stage(detector, stage, cfg.top_layers)
            n_prefix = frozen_prefix_layers(detector, stage, cfg.top_layers)
            kind = feature_kind(head_of(detector).needs, n_prefix, len(detector.wav2vec2.encoder.layers))
            segments = dict(zip(SPLITS, _segments(cfg), strict=True))
            cached = cfg.cache != "off" and all(seg.deterministic for seg in segments.values())
            size = sum(CacheSpec(kind, n_prefix, segments[s], {}, cfg.cache_dtype).nbytes(detector.config, counts[s])
                       for s in SPLITS) if cached else 0
            folder = stage_cache_dir(cfg, run_dir / f"stage{stage}")
            full = _seconds_per_utterance(detector, cfg.segment_samples, timing_batch, device, backward=False)
            step = _seconds_per_utterance(detector, cfg.segment_samples, timing_batch, device, backward=True)
            # cached: the frozen part runs once (the cache build); each epoch runs what trains, a share of the pass
            share = 0.05 if stage == 1 else cfg.top_layers / len(detector.wav2vec2.encoder.layers)
            build = full * (counts["train"] + counts["dev"]) if cached else 0.0
            epoch = (step * counts["train"] + full * counts["dev"]) * (share if cached else 1.0)
            rows.append({"stage": stage, "train": counts["train"], "dev": counts["dev"], "device": device,
                         "cache": kind if cached else "off", "cache_GiB": round(size / 2**30, 3),
                         "cache_folder": str(folder), "free_GiB": round(_free_bytes(folder) / 2**30, 1),
                         "fits": size < 0.95 * _free_bytes(folder), "cache_build": hours_text(build),
                         "per_epoch": hours_text(epoch), "epochs": cfg.epochs,
                         "stage_total": hours_text(build + epoch * cfg.epochs),
                         "seconds": build + epoch * cfg.epochs})
    return pd.DataFrame(rows)


def estimate_text(table: pd.DataFrame, session_hours: float = 12.0) -> str:
    """The table and one line on whether the whole run fits one session."""
    total = float(table.seconds.sum())
    verdict = ("fits" if total < session_hours * 3600 else "does NOT fit") + f" one {session_hours:g}-hour session"
    shown = table.drop(columns="seconds").to_string(index=False)
    return (f"{shown}\n\ntraining in all: about {hours_text(total)} on {table.device.iloc[0]} (measured on this "
            f"machine's device with random audio; data loading not included): {verdict}")
