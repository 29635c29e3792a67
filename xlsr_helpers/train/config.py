"""The training configuration: one dataclass, its field rules and their checks."""


from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from transformers import SchedulerType
from transformers.integrations import get_available_reporting_integrations

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.core.rules import Rule, choice, integer, number, problems
from xlsr_helpers.data.audio import (
    CROP_MODES,
    MAX_SEGMENT_SECONDS,
    MIN_SAMPLES,
    PAD_MODES,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
)
from xlsr_helpers.data.augment import make_augmenter
from xlsr_helpers.data.datasets import parse_corpus_weights
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
    cache_dir: str = "auto"  # 'auto': <out_dir>/cache, or /kaggle/temp/xlsr-cache for a stage in Kaggle's kept output
    precision: str = "auto"  # 'auto', 'fp32', 'fp16', 'bf16'
    device: str = "auto"  # 'auto', 'cuda', 'cpu'
    num_workers: int = 2
    save_total_limit: int = 2
    average_top_k: int = 1  # the detector averages the weights of the k best epochs on dev EER; 1: the best epoch
    encoder_learning_rate: float | None = None  # stage 2: learning rate of the unfrozen layers; None: learning_rate
    layer_decay: float = 1.0  # stage 2: each lower unfrozen layer trains at this factor of the one above it
    report_to: str = "none"  # training curves: none, tensorboard, wandb, trackio, mlflow (comma-separated)
    corpus_weights: str = "none"  # several corpora: none (each trial once an epoch), balanced, or shares 'a:1,b:2'
    select_on: str = "pooled"  # model selection on dev EER: pooled, mean (of the corpora's EERs) or one corpus's name
    on_change: str = "refuse"  # a stage folder started with other parameters or inputs: 'refuse' or 'restart' it
    extra: dict = field(default_factory=dict)  # more TrainingArguments, passed through

    def __post_init__(self) -> None:
        # YAML (and `--set cache=off`) reads on/off as booleans
        if isinstance(self.cache, bool):
            self.cache = "on" if self.cache else "off"
        if self.stage not in (1, 2):
            raise ConfigError(f"stage must be 1 or 2, got {self.stage!r}")
        check_fields(self)
        make_augmenter(self.augment, self.noise_dir, self.rir_dir)  # validated now, not an epoch into training

    @classmethod
    def from_mapping(cls, params: dict) -> TrainConfig:
        """Build from a flat mapping (a notebook's parameters); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(f"unknown training parameter(s) {unknown}; known: {sorted(names)}")
        return cls(**params)


# What each TrainConfig field accepts (``core.rules``); notebook parameters reuse these (``pipeline.params``).
FIELD_RULES: dict[str, Rule] = {
    "epochs": integer(1, 1000), "batch_size": integer(1, 4096), "eval_batch_size": integer(1, 4096),
    "grad_accum": integer(1, 1024), "top_layers": integer(1, 48), "num_workers": integer(0, 64),
    "early_stopping_patience": integer(0, 1000), "save_total_limit": integer(1, 100), "seed": integer(0, 2**32 - 1),
    "average_top_k": integer(1, 100), "segment_samples": integer(MIN_SAMPLES, MAX_SEGMENT_SECONDS * SAMPLE_RATE),
    "learning_rate": number(0, 1), "encoder_learning_rate": number(0, 1, none=True), "layer_decay": number(0, 1),
    "weight_decay": number(0, 1, low_open=False), "warmup_ratio": number(0, 1, low_open=False, high_open=True),
    "precision": choice(*PRECISIONS), "device": choice(*DEVICES), "cache": choice("auto", "on", "off"),
    "cache_dtype": choice("float16", "float32"), "on_change": choice("refuse", "restart"),
    "class_weights": choice("balanced", "none"), "pad": choice(*PAD_MODES), "crop": choice(*CROP_MODES),
    "lr_scheduler": choice(*(s.value for s in SchedulerType)), "head": choice("auto", *sorted(HEADS)),
}


def check_fields(cfg: TrainConfig) -> None:
    """Refuse wrong types and out-of-range values, naming the parameter and what is allowed."""
    _, found = problems(FIELD_RULES, {name: getattr(cfg, name) for name in FIELD_RULES})
    found += reporting_problems(cfg.report_to)
    try:
        parse_corpus_weights(cfg.corpus_weights)
    except ConfigError as exc:
        found.append(str(exc))
    if not (isinstance(cfg.select_on, str) and cfg.select_on.strip() == cfg.select_on and cfg.select_on):
        found.append(f"select_on={cfg.select_on!r} (expected 'pooled', 'mean' or a corpus name)")
    if found:
        raise ConfigError("invalid training parameter(s): " + "; ".join(found))


REPORTERS = ("none", "tensorboard", "wandb", "trackio", "mlflow", "all")


def reporting_problems(report_to: str) -> list[str]:
    """Unknown reporters, or ones whose package is missing (found now, not after the caches are built)."""
    wanted = [r.strip() for r in str(report_to).split(",") if r.strip()]
    if not wanted or any(r not in REPORTERS for r in wanted):
        return [f"report_to={report_to!r} (expected 'none' or a comma-separated subset of {list(REPORTERS[1:-1])}, or 'all')"]
    available = set(get_available_reporting_integrations())
    missing = [r for r in wanted if r not in ("none", "all") and r not in available]
    return [f"report_to={report_to!r}: {', '.join(missing)} is not installed (pip install {' '.join(missing)})"] \
        if missing else []


