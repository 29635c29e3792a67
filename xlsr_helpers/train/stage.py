"""Two-stage training with the Hugging Face ``Trainer``: fast (embedding caches), resumable, standard.

``train_stage(config, train_manifest, dev_manifest, out_dir)`` trains one stage and saves the best
detector (chosen on dev EER, never on eval) with ``save_pretrained`` to ``out_dir/detector``.
Running the same call again after a kill resumes from the last *complete* checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from accelerate import PartialState
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset
from transformers import EarlyStoppingCallback, SchedulerType, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.modeling_outputs import SequenceClassifierOutput

from .audio import CROP_MODES, MIN_SAMPLES, PAD_MODES, SEGMENT_SAMPLES
from .augment import make_augmenter
from .cache import (
    FEATURE_KINDS,
    CachedFeatures,
    CacheRun,
    CacheSpec,
    build_cache,
    collate_features,
    feature_kind,
    fits_on_disk,
    model_fingerprint,
)
from .calibration import fit_calibration
from .detector_info import base_model_of, read_settings, write_model_card, write_settings
from .device import DEVICES, PRECISIONS, preflight
from .errors import ConfigError, disk_full_named
from .features import LABEL2ID, AudioCollator, SegmentConfig, SegmentDataset
from .fingerprint import manifest_fingerprint
from .heads import HEADS
from .manifest import read_manifest
from .metrics import cllr, compute_eer, min_dcf
from .model import (
    XLSR_300M,
    check_model_ref,
    detector_logits,
    forward_top,
    freeze_for_stage,
    frozen_prefix_layers,
    head_of,
    load_detector,
    load_feature_extractor,
    pooled_head_logits,
    scores_from_logits,
)
from .stage_state import (
    COMPLETE_MARKER,
    check_same_run,
    last_complete_checkpoint,
    stage_identity,
)

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything one stage needs; notebooks pass their parameters cell straight into it."""

    stage: int = 1  # 1: head only on a frozen encoder; 2: also the top `top_layers` transformer layers
    model: str = XLSR_300M  # hub id or folder; for stage 2 usually the stage-1 detector folder
    head: str = "auto"  # back-end: 'linear', 'aasist', 'sls'; 'auto': the model's own head (linear for a bare encoder)
    top_layers: int = 4  # stage 2: transformer layers unfrozen (plus the final layer norm)
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_ratio: float = 0.1
    lr_scheduler: str = "cosine"
    grad_accum: int = 1
    grad_checkpointing: bool = False
    class_weights: str = "balanced"  # 'balanced' (inverse class frequency) or 'none'
    early_stopping_patience: int = 3  # epochs without dev-EER improvement; 0 disables
    seed: int = 42
    segment_samples: int = SEGMENT_SAMPLES
    pad: str = "repeat"
    crop: str = "start"  # 'random' disables caching (segments differ every epoch)
    augment: str = "none"  # '+'-joined: RawBoost lnl/isd/ssi, mp3, ogg, telephone, g711, loss, gain, noise, rir; no cache
    noise_dir: str = ""  # folder of noise files for augment 'noise' (e.g. MUSAN)
    rir_dir: str = ""  # folder of room impulse responses for augment 'rir'
    cache: str = "auto"  # 'auto' (cache when segments are deterministic), 'on', 'off'
    cache_dtype: str = "float16"
    cache_dir: str = "auto"  # 'auto': <out_dir>/cache; elsewhere for big stage-2 caches (Kaggle: /tmp)
    precision: str = "auto"  # 'auto', 'fp32', 'fp16', 'bf16'
    device: str = "auto"  # 'auto', 'cuda', 'cpu'
    num_workers: int = 2
    save_total_limit: int = 2
    average_top_k: int = 1  # the detector averages the weights of the k best epochs on dev EER; 1: the best epoch
    encoder_learning_rate: float | None = None  # stage 2: learning rate of the unfrozen layers; None: learning_rate
    layer_decay: float = 1.0  # stage 2: each lower unfrozen layer trains at this factor of the one above it
    report_to: str = "none"  # training curves: none, tensorboard, wandb, trackio, mlflow (comma-separated)
    on_change: str = "refuse"  # a stage folder started with other parameters or inputs: 'refuse' or 'restart' it
    extra: dict = field(default_factory=dict)  # more TrainingArguments, passed through

    def __post_init__(self) -> None:
        # YAML (and `--set cache=off`) reads on/off as booleans
        if isinstance(self.cache, bool):
            self.cache = "on" if self.cache else "off"
        if self.cache not in ("auto", "on", "off"):
            raise ConfigError(f"cache must be 'auto', 'on' or 'off', got {self.cache!r}")
        if self.stage not in (1, 2):
            raise ConfigError(f"stage must be 1 or 2, got {self.stage!r}")
        make_augmenter(self.augment, self.noise_dir, self.rir_dir)  # validated now, not an epoch into training
        if self.pad not in PAD_MODES or self.crop not in CROP_MODES:
            raise ConfigError(f"pad must be one of {PAD_MODES} and crop one of {CROP_MODES}, got {self.pad!r}/{self.crop!r}")
        if self.class_weights not in ("balanced", "none"):
            raise ConfigError(f"class_weights must be 'balanced' or 'none', got {self.class_weights!r}")
        check_fields(self)

    @classmethod
    def from_mapping(cls, params: dict) -> TrainConfig:
        """Build from a flat mapping (a notebook's parameters); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(f"unknown training parameter(s) {unknown}; known: {sorted(names)}")
        return cls(**params)


# Allowed values of the TrainConfig fields that are not checked above, as (kind, rule).
FIELD_RULES = {
    "epochs": ("int", 1), "batch_size": ("int", 1), "eval_batch_size": ("int", 1), "grad_accum": ("int", 1),
    "top_layers": ("int", 1), "num_workers": ("int", 0), "early_stopping_patience": ("int", 0),
    "save_total_limit": ("int", 1), "seed": ("int", 0), "average_top_k": ("int", 1), "layer_decay": ("ratio_incl", None),
    "encoder_learning_rate": ("float_or_none", 0.0),
    "segment_samples": ("int", MIN_SAMPLES), "learning_rate": ("float", 0.0), "weight_decay": ("float", None),
    "warmup_ratio": ("ratio", None), "precision": ("choice", PRECISIONS), "device": ("choice", DEVICES),
    "cache_dtype": ("choice", ("float16", "float32")), "on_change": ("choice", ("refuse", "restart")),
    "lr_scheduler": ("choice", tuple(s.value for s in SchedulerType)), "head": ("choice", ("auto", *sorted(HEADS))),
}


def check_fields(cfg: TrainConfig) -> None:
    """Refuse wrong types and out-of-range values, naming the parameter and what is allowed."""
    problems = []
    for name, (kind, rule) in FIELD_RULES.items():
        v = getattr(cfg, name)
        if kind == "choice":
            ok, allowed = v in rule, f"one of {list(rule)}"
        elif kind == "int":
            ok = isinstance(v, int) and not isinstance(v, bool) and v >= rule
            allowed = f"an integer >= {rule}"
        elif kind == "ratio":
            ok, allowed = _is_number(v) and 0 <= v < 1, "a number in [0, 1)"
        elif kind == "ratio_incl":
            ok, allowed = _is_number(v) and 0 < v <= 1, "a number in (0, 1]"
        elif kind == "float_or_none":
            ok, allowed = v is None or (_is_number(v) and v > rule), f"None or a number > {rule:g}"
        else:
            ok = _is_number(v) and (rule is None or v > rule)
            allowed = "a number" + ("" if rule is None else f" > {rule:g}")
        if not ok:
            problems.append(f"{name}={v!r} (expected {allowed})")
    problems += _reporting_problems(cfg.report_to)
    if problems:
        raise ConfigError("invalid training parameter(s): " + "; ".join(problems))


REPORTERS = ("none", "tensorboard", "wandb", "trackio", "mlflow", "all")


def _reporting_problems(report_to: str) -> list[str]:
    """Unknown reporters, or ones whose package is missing (found now, not after the caches are built)."""
    from transformers.integrations import get_available_reporting_integrations
    wanted = [r.strip() for r in str(report_to).split(",") if r.strip()]
    if not wanted or any(r not in REPORTERS for r in wanted):
        return [f"report_to={report_to!r} (expected 'none' or a comma-separated subset of {list(REPORTERS[1:-1])}, or 'all')"]
    available = set(get_available_reporting_integrations())
    missing = [r for r in wanted if r not in ("none", "all") and r not in available]
    return [f"report_to={report_to!r}: {', '.join(missing)} is not installed (pip install {' '.join(missing)})"] \
        if missing else []


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


@dataclass
class StageResult:
    detector_dir: Path
    history: pd.DataFrame
    best_dev_eer: float
    parameter_counts: dict
    cached: bool
    seconds: float


class StageModule(nn.Module):
    """What the Trainer trains: the detector seen from its input (``cache.FEATURE_KINDS``: the
    waveform or cached pooled / prefix / every-layer features), with class-weighted cross-entropy.
    Frozen parts stay in eval mode (no dropout)."""

    def __init__(self, detector: nn.Module, kind: str, n_prefix: int, class_weights: torch.Tensor | None):
        super().__init__()
        if kind not in FEATURE_KINDS:
            raise ConfigError(f"kind must be one of {list(FEATURE_KINDS)}, got {kind!r}")
        self.detector, self.kind, self.n_prefix = detector, kind, n_prefix
        self.register_buffer("class_weights", class_weights, persistent=False)
        # Checkpoints hold only what trains; the frozen backbone comes from the model folder.
        self._keys_to_ignore_on_save = [k for k, p in self.named_parameters() if not p.requires_grad]

    def tie_weights(self) -> None:  # the Trainer calls this after loading a checkpoint
        pass

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            w = self.detector.wav2vec2
            for m in (w.feature_extractor, w.feature_projection, w.encoder.pos_conv_embed, w.encoder.dropout,
                      *w.encoder.layers[:self.n_prefix]):
                m.eval()
        return self

    def forward(self, input_values=None, attention_mask=None, features=None, labels=None):
        if self.kind == "pooled":
            logits = pooled_head_logits(self.detector, features)
        elif self.kind == "waveform":
            logits = detector_logits(self.detector, input_values, attention_mask)
        else:  # prefix: hidden states entering the first trained layer; layers: every frozen layer's output
            lower = list(features.unbind(1)) if self.kind == "layers" else None
            hidden = lower[-1] if lower else features
            mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
            logits = forward_top(self.detector, hidden, mask, self.n_prefix, lower)
        loss = None
        if labels is not None:
            # fp32 loss under AMP: the weighted mean over a 1:9 class ratio is where fp16 loses precision
            loss = F.cross_entropy(logits.float(), labels, weight=self.class_weights)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class DetectorTrainer(Trainer):
    """Trainer that saves only trainable weights, logs cumulative wall seconds, and (stage 2) trains
    the head and the unfrozen encoder layers at their own learning rates."""

    def __init__(self, *args, encoder_learning_rate: float | None = None, layer_decay: float = 1.0, **kw):
        super().__init__(*args, **kw)
        self.encoder_learning_rate, self.layer_decay = encoder_learning_rate, layer_decay

    def create_optimizer(self, *args, **kwargs):
        if self.optimizer is None and (self.encoder_learning_rate is not None or self.layer_decay != 1.0):
            groups = parameter_groups(self.model, self.args.learning_rate, self.encoder_learning_rate,
                                      self.layer_decay, self.args.weight_decay)
            self.optimizer = torch.optim.AdamW(groups, betas=(self.args.adam_beta1, self.args.adam_beta2),
                                               eps=self.args.adam_epsilon)
        return super().create_optimizer(*args, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if state_dict is None:
            ignore = set(getattr(self.model, "_keys_to_ignore_on_save", []))
            state_dict = {k: v for k, v in self.model.state_dict().items() if k not in ignore}
        super()._save(output_dir, state_dict=state_dict)

    def log(self, logs: dict, *args, **kwargs) -> None:
        if not hasattr(self, "_t_start"):
            prior = [h.get("seconds", 0.0) for h in self.state.log_history]
            self._t_offset, self._t_start = max(prior, default=0.0), time.time()
        logs["seconds"] = round(self._t_offset + time.time() - self._t_start, 2)
        super().log(logs, *args, **kwargs)


def parameter_groups(module: nn.Module, head_lr: float, encoder_lr: float | None, decay: float,
                     weight_decay: float) -> list[dict]:
    """Optimizer groups: everything outside the encoder layers at ``head_lr``; encoder layer i (of n)
    at ``encoder_lr * decay ** (n - 1 - i)`` (the top layer at ``encoder_lr``). Biases and norms get
    no weight decay, as in the Trainer's own optimizer."""
    encoder_lr = head_lr if encoder_lr is None else encoder_lr
    layers = module.detector.wav2vec2.encoder.layers
    layer_of = {id(p): i for i, layer in enumerate(layers) for p in layer.parameters()}
    groups: dict[tuple[float, bool], list] = {}
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        lr = encoder_lr * decay ** (len(layers) - 1 - layer_of[id(p)]) if id(p) in layer_of else head_lr
        no_decay = p.ndim < 2 or "norm" in name.lower()
        groups.setdefault((lr, no_decay), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": 0.0 if nd else weight_decay} for (lr, nd), ps in groups.items()]


class CompleteMarker(TrainerCallback):
    """Mark a checkpoint folder complete once the Trainer has written all of it (atomic rename)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                tmp = ckpt / (COMPLETE_MARKER + ".tmp")
                tmp.write_text(str(state.global_step))
                os.replace(tmp, ckpt / COMPLETE_MARKER)


class TopK(TrainerCallback):
    """Keep the trained weights of the ``k`` best epochs on dev EER in ``folder`` (index.json: file ->
    EER), for checkpoint averaging; survives a kill and a resume like the checkpoints do."""

    def __init__(self, folder: Path, k: int, keys: list[str]):
        self.folder, self.k, self.keys = folder, k, keys

    def index(self) -> dict[str, float]:
        path = self.folder / "index.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if not state.is_world_process_zero or metrics is None or "eval_eer" not in metrics:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        index = self.index()
        name = f"epoch-{round(state.epoch or 0):03d}.safetensors"
        sd = model.state_dict()
        save_file({k: sd[k].detach().cpu().contiguous() for k in self.keys}, self.folder / name)
        index[name] = float(metrics["eval_eer"])
        keep = sorted(index, key=lambda n: (index[n], n))[:self.k]
        for n in set(index) - set(keep):
            (self.folder / n).unlink(missing_ok=True)
        tmp = self.folder / "index.json.tmp"
        tmp.write_text(json.dumps({n: index[n] for n in keep}, indent=1))
        os.replace(tmp, self.folder / "index.json")


def average_state_dicts(dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the tensors (integer buffers such as BatchNorm's step count rounded back)."""
    out = {}
    for key in dicts[0]:
        mean = torch.stack([d[key].double() for d in dicts]).mean(0)
        out[key] = mean.round().to(dicts[0][key].dtype) if not dicts[0][key].is_floating_point() \
            else mean.to(dicts[0][key].dtype)
    return out


def average_top_k(trainer: Trainer, keeper: TopK, dev_ds, dev_labels: np.ndarray, best_eer: float) -> dict:
    """Load the mean of the kept epochs' weights when its dev EER is no worse than the best epoch's;
    otherwise keep the best epoch (said in a warning). Returns what was chosen and both EERs."""
    PartialState().wait_for_everyone()
    index = keeper.index()
    names = sorted(index, key=lambda n: (index[n], n))
    dicts = [load_file(keeper.folder / n) for n in names]
    module = trainer.model
    module.load_state_dict(average_state_dicts(dicts), strict=False)
    scores = scores_from_logits(torch.as_tensor(_logits(trainer.predict(dev_ds).predictions))).numpy()
    avg_eer = compute_eer(scores[dev_labels == LABEL2ID["bonafide"]], scores[dev_labels == LABEL2ID["spoof"]])[0]
    used = "averaged" if avg_eer <= best_eer else "best epoch"
    if used == "best epoch":
        log.warning("the average of the %d best epochs has dev EER %.4f, worse than the best epoch's %.4f: "
                    "the detector keeps the best epoch", len(dicts), avg_eer, best_eer)
        module.load_state_dict(dicts[0], strict=False)
    return {"k": len(dicts), "epochs": names, "dev_eers": [index[n] for n in names], "dev_eer_averaged": avg_eer,
            "dev_eer_best_epoch": best_eer, "used": used}


class EpochSeed(TrainerCallback):
    """Tell the dataset the epoch so that random crops differ per epoch yet replay on resume."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(int(state.epoch or 0))


def class_weight_tensor(labels: np.ndarray, how: str) -> torch.Tensor | None:
    if how == "none":
        return None
    if how != "balanced":
        raise ConfigError(f"class_weights must be 'balanced' or 'none', got {how!r}")
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"training data lacks a class: {dict(zip(LABEL2ID, counts.astype(int), strict=True))}")
    return torch.tensor(counts.sum() / (2 * counts), dtype=torch.float32)


def _logits(predictions):
    return predictions[0] if isinstance(predictions, tuple) else predictions


def detector_settings(cfg: TrainConfig, head: str, dev_scores: np.ndarray, dev_labels: np.ndarray,
                      train_df: pd.DataFrame, dev_df: pd.DataFrame) -> dict:
    """What the saved detector carries: its segment and scoring settings, the dev EER threshold and
    metrics of the saved (best) weights, a calibration fitted on those dev scores, its training data."""
    bona, spoof = dev_scores[dev_labels == LABEL2ID["bonafide"]], dev_scores[dev_labels == LABEL2ID["spoof"]]
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
            "trained_on": {"train_manifest": manifest_fingerprint(train_df), "dev_manifest": manifest_fingerprint(dev_df),
                           "datasets": sorted(set(train_df.get("dataset", pd.Series(dtype=str)).astype(str)))},
            "training": {k: getattr(cfg, k) for k in ("top_layers", "epochs", "batch_size", "grad_accum", "learning_rate",
                                                       "lr_scheduler", "class_weights", "augment", "seed",
                                                       "average_top_k")}}


def eer_metrics(eval_pred) -> dict:
    logits, labels = _logits(eval_pred.predictions), eval_pred.label_ids
    scores = logits[:, LABEL2ID["bonafide"]] - logits[:, LABEL2ID["spoof"]]
    eer, thr = compute_eer(scores[labels == LABEL2ID["bonafide"]], scores[labels == LABEL2ID["spoof"]])
    return {"eer": eer, "eer_threshold": thr}


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


def limit_to_one_gpu(args: TrainingArguments, visible: int) -> str | None:
    """With several GPUs and no torchrun, the Trainer would wrap the model in DataParallel (slow,
    and uneven on the T4 x2). Train on one GPU instead and say how to use all of them."""
    if args.world_size > 1 or visible < 2:
        return None
    args._n_gpu = 1  # what the Trainer reads to decide on DataParallel and the total batch size
    return (f"{visible} GPUs visible: this process trains on one (cuda:0). To train on all {visible}, run the stage "
            f"with torchrun: torchrun --nproc_per_node {visible} -m xlsr_helpers train --stage N ... (see README)")


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


@dataclass
class CachePlan:
    """What the frozen part hands over (``kind``), the cache of each split, where, and whether to use it."""

    kind: str
    specs: dict
    cache_dir: Path
    cached: bool


def plan_cache(cfg: TrainConfig, detector: nn.Module, train_df: pd.DataFrame, dev_df: pd.DataFrame, n_prefix: int,
               out: Path) -> CachePlan:
    """Decided before the Trainer's arguments exist (they depend on it); nothing is encoded yet."""
    kind = feature_kind(head_of(detector).needs, n_prefix, len(detector.wav2vec2.encoder.layers))
    cache_dir = out / "cache" if cfg.cache_dir == "auto" else Path(cfg.cache_dir) / f"stage{cfg.stage}"
    fp = model_fingerprint(cfg.model, detector.config)
    specs = {split: CacheSpec(kind, n_prefix, seg, fp, cfg.cache_dtype) if seg.deterministic else None
             for split, seg in zip(("train", "dev"), _segments(cfg), strict=True)}
    needed = sum(sp.nbytes(detector.config, len(df)) for sp, df in zip(specs.values(), (train_df, dev_df), strict=True)
                 if sp is not None)
    return CachePlan(kind, specs, cache_dir, cache_plan(cfg, kind, needed, cache_dir))


def _segments(cfg: TrainConfig) -> tuple[SegmentConfig, SegmentConfig]:
    """Training segments, and dev's (never random: model selection must see the same audio each epoch)."""
    return (SegmentConfig(cfg.segment_samples, cfg.pad, cfg.crop),
            SegmentConfig(cfg.segment_samples, cfg.pad, "start" if cfg.crop == "random" else cfg.crop))


def stage_data(cfg: TrainConfig, plan: CachePlan, detector: nn.Module, feature_extractor, train_df: pd.DataFrame,
               dev_df: pd.DataFrame, device, autocast) -> StageData:
    """Cached features when the plan says so (built or reused now), else waveforms."""
    segment, dev_segment = _segments(cfg)
    train_labels, dev_labels = (df["label"].map(LABEL2ID).to_numpy() for df in (train_df, dev_df))
    if plan.cached:
        run = CacheRun(plan.cache_dir, cfg.eval_batch_size, device, cfg.num_workers, autocast)
        train_ds, dev_ds = (
            CachedFeatures(build_cache(detector, feature_extractor, df, split, plan.specs[split], run), labels)
            for split, df, labels in (("train", train_df, train_labels), ("dev", dev_df, dev_labels)))
        return StageData(train_ds, dev_ds, collate_features, plan.kind, cached=True)
    train_ds = SegmentDataset(train_df, segment, seed=cfg.seed, augment=cfg.augment, noise_dir=cfg.noise_dir,
                              rir_dir=cfg.rir_dir)
    return StageData(train_ds, SegmentDataset(dev_df, dev_segment, seed=cfg.seed), AudioCollator(feature_extractor),
                     "waveform", cached=False)


def training_arguments(cfg: TrainConfig, out: Path, precision: str, device: str, cached: bool) -> TrainingArguments:
    """The Trainer's settings: one evaluation and checkpoint per epoch, best dev EER kept."""
    return TrainingArguments(**{**dict(
        output_dir=str(out / "checkpoints"), num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio, lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model="eer", greater_is_better=False,
        save_total_limit=cfg.save_total_limit, seed=cfg.seed, data_seed=cfg.seed,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=device == "cpu",
        dataloader_num_workers=0 if cached else cfg.num_workers, remove_unused_columns=False,
        report_to=[r.strip() for r in cfg.report_to.split(",")], disable_tqdm=False, label_names=["labels"],
        ddp_find_unused_parameters=False), **cfg.extra})  # `extra` may override any of these


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
    """Everything checked before any model loads; the stage folder started, resumed or refused."""
    train_df, dev_df = _as_frame(train_manifest), _as_frame(dev_manifest)
    check_manifests(train_df, dev_df, _name(train_manifest, "train manifest"), _name(dev_manifest, "dev manifest"))
    check_model_ref(cfg.model)
    report = preflight(None if cfg.device == "auto" else cfg.device, cfg.precision)
    identity = stage_identity(cfg, train_df, dev_df)
    out.mkdir(parents=True, exist_ok=True)
    check_same_run(out, identity, cfg.on_change)  # written only once everything above is valid
    return train_df, dev_df, report


def _make_trainer(cfg: TrainConfig, module: StageModule, args: TrainingArguments, data: StageData, out: Path):
    """The Trainer with its callbacks: completion markers, per-epoch seeds, the top-k keeper (when
    averaging), early stopping. Returns it and the keeper (or None)."""
    callbacks = [CompleteMarker(), EpochSeed(data.train)]
    keeper = None
    if cfg.average_top_k > 1:
        trained_keys = [k for k in module.state_dict() if k not in set(module._keys_to_ignore_on_save)]
        keeper = TopK(out / "top_k", cfg.average_top_k, trained_keys)
        callbacks.append(keeper)
    if cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = DetectorTrainer(model=module, args=args, train_dataset=data.train, eval_dataset=data.dev,
                              data_collator=data.collator, compute_metrics=eer_metrics, callbacks=callbacks,
                              encoder_learning_rate=cfg.encoder_learning_rate, layer_decay=cfg.layer_decay)
    return trainer, keeper


def train_stage(config: TrainConfig | dict, train_manifest, dev_manifest, out_dir: str | Path) -> StageResult:
    """Train one stage; returns the saved detector folder, the history table and the best dev EER."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_mapping(config)
    t0, out = time.time(), Path(out_dir)
    train_df, dev_df, report = _start_stage(cfg, train_manifest, dev_manifest, out)
    set_seed(cfg.seed)
    detector, feature_extractor, counts, n_prefix = _prepare_detector(cfg)
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(report.precision)
    plan = plan_cache(cfg, detector, train_df, dev_df, n_prefix, out)
    args = training_arguments(cfg, out, report.precision, report.device, plan.cached)
    # args.device sets up torch.distributed now, so rank 0 alone builds the caches
    data = stage_data(cfg, plan, detector, feature_extractor, train_df, dev_df, args.device, autocast)
    if note := limit_to_one_gpu(args, torch.cuda.device_count() if report.device == "cuda" else 0):
        log.warning(note)

    train_labels = train_df["label"].map(LABEL2ID).to_numpy()
    module = StageModule(detector, data.kind, n_prefix, class_weight_tensor(train_labels, cfg.class_weights))
    trainer, keeper = _make_trainer(cfg, module, args, data, out)
    resume = last_complete_checkpoint(Path(args.output_dir))
    if resume:
        log.warning("resuming from %s (the last complete checkpoint)", resume)
    with disk_full_named(out):
        trainer.train(resume_from_checkpoint=resume)
        history = history_table(trainer.state.log_history)
        best = float(trainer.state.best_metric) if trainer.state.best_metric is not None else float("nan")
        dev_labels = dev_df["label"].map(LABEL2ID).to_numpy()
        averaging = average_top_k(trainer, keeper, data.dev, dev_labels, best) if keeper else None
        if averaging and averaging["used"] == "averaged":
            best = averaging["dev_eer_averaged"]
        dev_scores = scores_from_logits(torch.as_tensor(_logits(trainer.predict(data.dev).predictions))).numpy()
        if trainer.is_world_process_zero():
            settings = detector_settings(cfg, head_of(detector).name, dev_scores, dev_labels, train_df, dev_df)
            _save_detector_atomically(detector, feature_extractor, out / "detector", settings)
            history.to_csv(out / "history.csv", index=False)
            summary = {"stage": cfg.stage, "head": head_of(detector).name, "best_dev_eer": best, "cached": data.cached,
                       "features": data.kind, "average_top_k": averaging, "parameters": counts, "world_size": args.world_size,
                       "device": report.as_dict(), "config": dataclasses.asdict(cfg), "seconds": time.time() - t0}
            (out / "summary.yaml").write_text(yaml.safe_dump(summary, sort_keys=False))
    return StageResult(out / "detector", history, best, counts, data.cached, time.time() - t0)
