"""The training configuration: one dataclass, its field rules and their checks."""


from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from transformers import SchedulerType

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.audio import CROP_MODES, MIN_SAMPLES, PAD_MODES, SEGMENT_SAMPLES
from xlsr_helpers.data.augment import make_augmenter
from xlsr_helpers.model.heads import HEADS
from xlsr_helpers.model.loading import XLSR_300M
from xlsr_helpers.runtime.device import DEVICES, PRECISIONS


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
