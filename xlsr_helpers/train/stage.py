"""Two-stage training with the Hugging Face ``Trainer``: fast (embedding caches), resumable, standard.

``train_stage(config, train_manifest, dev_manifest, out_dir)`` trains one stage and saves the best
detector (chosen on dev EER, never on eval) with ``save_pretrained`` to ``out_dir/detector``.
Running the same call again after a kill resumes from the last *complete* checkpoint.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import EarlyStoppingCallback, TrainingArguments, set_seed

from xlsr_helpers.core.errors import ConfigError, check_free_space, disk_full_named
from xlsr_helpers.core.fingerprint import manifest_fingerprint
from xlsr_helpers.core.outputs import check_output_folder
from xlsr_helpers.data.labels import LABEL2ID, LabelOrder
from xlsr_helpers.data.manifest import read_manifest
from xlsr_helpers.evaluate.calibration import fit_calibration
from xlsr_helpers.evaluate.metrics import cllr, compute_eer, min_dcf
from xlsr_helpers.model.card import base_model_of, read_settings, write_model_card, write_settings
from xlsr_helpers.model.forward import detector_label_order, head_of
from xlsr_helpers.model.freezing import freeze_for_stage, frozen_prefix_layers
from xlsr_helpers.model.loading import check_model_labels, check_model_ref, load_detector, load_feature_extractor
from xlsr_helpers.runtime.device import preflight
from xlsr_helpers.train.cache_plan import StageData, plan_cache, stage_data
from xlsr_helpers.train.callbacks import CompleteMarker, EpochSeed, TimeEstimate, TopK, average_top_k
from xlsr_helpers.train.config import TrainConfig
from xlsr_helpers.train.dev_eer import dev_scores, eer_metrics
from xlsr_helpers.train.state import (
    UNFINISHED_ONLY,
    check_same_run,
    finish_stage_folder,
    finished_stage,
    last_complete_checkpoint,
    stage_identity,
)
from xlsr_helpers.train.trainer import (
    DetectorTrainer,
    StageModule,
    class_weight_tensor,
    limit_to_one_gpu,
    training_arguments,
)

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    detector_dir: Path
    history: pd.DataFrame
    best_dev_eer: float
    parameter_counts: dict
    cached: bool
    seconds: float


def detector_settings(cfg: TrainConfig, head: str, dev_scores: np.ndarray, dev_targets: np.ndarray, order: LabelOrder,
                      train_df: pd.DataFrame, dev_df: pd.DataFrame, inputs: dict | None = None) -> dict:
    """What the saved detector carries: its segment and scoring settings, the dev EER threshold and
    metrics of the saved (best) weights, a calibration fitted on those dev scores, its training data
    (``inputs``: the stage identity's fingerprints of manifests and audio, else the manifests').
    ``dev_targets`` are class ids in the detector's ``order``."""
    bona, spoof = dev_scores[dev_targets == order.bonafide], dev_scores[dev_targets == order.spoof]
    eer, thr = compute_eer(bona, spoof)
    cal = fit_calibration(bona, spoof, fitted_on="dev")
    return {"stage": cfg.stage, "head": head, "base_model": base_model_of(cfg.model),
            "segment_samples": cfg.segment_samples,
            "pad": cfg.pad, "crop": cfg.crop,
            "scoring": {"window": cfg.segment_samples, "hop": cfg.segment_samples // 2, "aggregation": "mean"},
            "dev": {"eer": eer, "threshold": thr, "min_dcf": min_dcf(bona, spoof)[0], "cllr_raw": cllr(bona, spoof),
                    "cllr_calibrated": cllr(cal.llr(bona), cal.llr(spoof)), "n_bonafide": int(bona.size),
                    "n_spoof": int(spoof.size)},
            "calibration": cal.as_dict(),
            "trained_on": {**{k: v for k, v in (inputs or {}).items() if k != "model"},
                           "train_manifest": manifest_fingerprint(train_df), "dev_manifest": manifest_fingerprint(dev_df),
                           "datasets": sorted(set(train_df.get("dataset", pd.Series(dtype=str)).astype(str)))},
            "training": {k: getattr(cfg, k) for k in ("top_layers", "epochs", "batch_size", "grad_accum", "learning_rate",
                                                       "lr_scheduler", "class_weights", "augment", "seed",
                                                       "average_top_k")}}


def history_table(log_history: list[dict]) -> pd.DataFrame:
    """One row per epoch: epoch, train loss, dev loss, dev EER, lr, seconds."""
    train = {round(h["epoch"]): h for h in log_history if "loss" in h and "epoch" in h}
    rows = []
    for h in log_history:
        if "eval_eer" in h:
            e = round(h["epoch"])
            t = train.get(e, {})
            rows.append({"epoch": e, "train_loss": t.get("loss", np.nan), "dev_loss": h.get("eval_loss", np.nan),
                         "dev_eer": h["eval_eer"], "lr": t.get("learning_rate", np.nan), "seconds": h.get("seconds")})
    return pd.DataFrame(rows, columns=["epoch", "train_loss", "dev_loss", "dev_eer", "lr", "seconds"])


def check_manifests(train_df: pd.DataFrame, dev_df: pd.DataFrame, train_name: str, dev_name: str) -> None:
    """Both splits must hold trials of both classes: found here, not after the model and caches load."""
    for df, name, role in ((train_df, train_name, "training"), (dev_df, dev_name, "model selection (dev EER)")):
        counts = df["label"].value_counts().reindex(list(LABEL2ID), fill_value=0)
        if len(df) == 0 or (counts == 0).any():
            raise ConfigError(f"{name}: {len(df)} trial(s) ({ {k: int(v) for k, v in counts.items()} }); "
                              f"{role} needs bonafide and spoof trials")


def _as_frame(m) -> pd.DataFrame:
    return m if isinstance(m, pd.DataFrame) else read_manifest(m)


def _name(m, default: str) -> str:
    return default if isinstance(m, pd.DataFrame) else str(m)


def _save_detector_atomically(detector, feature_extractor, out: Path, settings: dict) -> None:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    detector.save_pretrained(tmp)
    feature_extractor.save_pretrained(tmp)
    write_settings(tmp, settings)
    write_model_card(tmp, read_settings(tmp))
    old = out.with_name(out.name + ".old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def space_needed(detector: torch.nn.Module, save_total_limit: int) -> int:
    """Bytes a stage writes at most: ``save_total_limit`` checkpoints and the one being written (trained
    weights and Adam's two moments, fp32), and detector/ next to the one it replaces."""
    params = list(detector.parameters())
    trained = sum(p.numel() for p in params if p.requires_grad)
    return (save_total_limit + 1) * 12 * trained + 2 * sum(p.numel() * p.element_size() for p in params)


def _prepare_detector(cfg: TrainConfig):
    """The starting detector with this stage's parameters trainable, its feature extractor, parameter
    counts and the number of frozen layers below the first trained one."""
    detector = load_detector(cfg.model, head=cfg.head, segment_samples=cfg.segment_samples)
    feature_extractor = load_feature_extractor(cfg.model)
    counts = freeze_for_stage(detector, cfg.stage, cfg.top_layers)
    if cfg.grad_checkpointing:  # renamed in transformers 5.x; both names exist in the range we support
        getattr(detector, "activation_checkpointing_enable", detector.gradient_checkpointing_enable)()
    return detector, feature_extractor, counts, frozen_prefix_layers(detector, cfg.stage, cfg.top_layers)


def _start_stage(cfg: TrainConfig, train_manifest, dev_manifest, out: Path):
    """Everything checked before any model loads; the stage folder started, resumed or refused.
    Returns the manifests, the device report and the inputs' fingerprints."""
    train_df, dev_df = _as_frame(train_manifest), _as_frame(dev_manifest)
    check_manifests(train_df, dev_df, _name(train_manifest, "train manifest"), _name(dev_manifest, "dev manifest"))
    check_model_ref(cfg.model)
    check_model_labels(cfg.model)  # classes other than bonafide/spoof: refused before the stage folder is written
    report = preflight(None if cfg.device == "auto" else cfg.device, cfg.precision)
    identity = stage_identity(cfg, train_df, dev_df)
    check_output_folder(out, "stage folder")
    out.mkdir(parents=True, exist_ok=True)
    check_same_run(out, identity, cfg.on_change)  # written only once everything above is valid
    return train_df, dev_df, report, identity["inputs"]


def _make_trainer(cfg: TrainConfig, module: StageModule, args: TrainingArguments, data: StageData, out: Path,
                  order: LabelOrder):
    """The Trainer with its callbacks: completion markers, per-epoch seeds, the top-k keeper (when
    averaging), early stopping; dev EER read in the detector's label ``order``. Returns it and the
    keeper (or None)."""
    callbacks = [CompleteMarker(), EpochSeed(data.train), TimeEstimate(cfg.stage)]
    keeper = None
    if cfg.average_top_k > 1:
        trained_keys = [k for k in module.state_dict() if k not in set(module._keys_to_ignore_on_save)]
        keeper = TopK(out / "top_k", cfg.average_top_k, trained_keys)
        callbacks.append(keeper)
    if cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = DetectorTrainer(model=module, args=args, train_dataset=data.train, eval_dataset=data.dev,
                              data_collator=data.collator, compute_metrics=functools.partial(eer_metrics, order=order),
                              callbacks=callbacks,
                              encoder_learning_rate=cfg.encoder_learning_rate, layer_decay=cfg.layer_decay)
    return trainer, keeper


def train_stage(config: TrainConfig | dict, train_manifest, dev_manifest, out_dir: str | Path) -> StageResult:
    """Train one stage; returns the saved detector folder, the history table and the best dev EER."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_mapping(config)
    t0, out = time.time(), Path(out_dir)
    train_df, dev_df, report, inputs = _start_stage(cfg, train_manifest, dev_manifest, out)
    if (done := finished_stage(out)) is not None:  # same identity, checkpoints gone: nothing left to train
        log.warning("%s finished earlier with these parameters and inputs: its detector is reused", out)
        if int(os.environ.get("LOCAL_RANK", "0")) == 0 and any((out / n).exists() for n in UNFINISHED_ONLY):
            finish_stage_folder(out, done)  # killed while removing them: the rest goes now
        return StageResult(out / "detector", pd.read_csv(out / "history.csv"), float(done["best_dev_eer"]),
                           done["parameters"], bool(done["cached"]), time.time() - t0)
    set_seed(cfg.seed)
    detector, feature_extractor, counts, n_prefix = _prepare_detector(cfg)
    needed = space_needed(detector, cfg.save_total_limit)
    check_free_space(out, needed, f"stage {cfg.stage} (its checkpoints and detector/)")  # before caches and epochs
    order = detector_label_order(detector)  # targets and scores in the detector's own order, whichever it is
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(report.precision)
    plan = plan_cache(cfg, detector, train_df, dev_df, n_prefix, out, (inputs["train_audio"], inputs["dev_audio"]))
    args = training_arguments(cfg, out, report.precision, report.device, plan.cached)
    # args.device sets up torch.distributed now, so rank 0 alone builds the caches
    data = stage_data(cfg, plan, detector, feature_extractor, train_df, dev_df, args.device, autocast, order)
    if note := limit_to_one_gpu(args, torch.cuda.device_count() if report.device == "cuda" else 0):
        log.warning(note)

    train_targets = train_df["label"].map(order.label2id).to_numpy()
    module = StageModule(detector, data.kind, n_prefix, class_weight_tensor(train_targets, cfg.class_weights, order))
    trainer, keeper = _make_trainer(cfg, module, args, data, out, order)
    resume = last_complete_checkpoint(Path(args.output_dir))
    if resume:
        log.warning("resuming from %s (the last complete checkpoint)", resume)
    with disk_full_named(out, needed):
        trainer.train(resume_from_checkpoint=resume)
        history = history_table(trainer.state.log_history)
        best = float(trainer.state.best_metric) if trainer.state.best_metric is not None else float("nan")
        dev_targets = dev_df["label"].map(order.label2id).to_numpy()
        averaging = average_top_k(trainer, keeper, data.dev, dev_targets, order, best) if keeper else None
        if averaging and averaging["used"] == "averaged":
            best = averaging["dev_eer_averaged"]
        scores = dev_scores(trainer, data.dev, order)
        if trainer.is_world_process_zero():
            settings = detector_settings(cfg, head_of(detector).name, scores, dev_targets, order, train_df, dev_df, inputs)
            _save_detector_atomically(detector, feature_extractor, out / "detector", settings)
            history.to_csv(out / "history.csv", index=False)
            summary = {"stage": cfg.stage, "head": head_of(detector).name, "best_dev_eer": best, "cached": data.cached,
                       "features": data.kind, "average_top_k": averaging, "parameters": counts, "world_size": args.world_size,
                       "device": report.as_dict(), "config": dataclasses.asdict(cfg), "seconds": time.time() - t0}
            _, note, near_quota = finish_stage_folder(out, summary)
            log.log(logging.WARNING if near_quota else logging.INFO, note)
    return StageResult(out / "detector", history, best, counts, data.cached, time.time() - t0)
