"""What the Trainer trains (the stage module, class-weighted loss) and the Trainer: optimiser groups, arguments."""


from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.modeling_outputs import SequenceClassifierOutput

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.data.labels import PACKAGE_ORDER, LabelOrder
from xlsr_helpers.model.cache import (
    FEATURE_KINDS,
)
from xlsr_helpers.model.forward import detector_logits, forward_top, pooled_head_logits
from xlsr_helpers.train.config import TrainConfig
from xlsr_helpers.train.dev_eer import selection_key


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

    def __init__(self, *args, encoder_learning_rate: float | None = None, layer_decay: float = 1.0,
                 train_sampler: torch.utils.data.Sampler | None = None, **kw):
        self.train_sampler = train_sampler  # corpus_weights: what an epoch draws (data.datasets.CorpusSampler)
        super().__init__(*args, **kw)
        self.encoder_learning_rate, self.layer_decay = encoder_learning_rate, layer_decay

    def _get_train_sampler(self, *args, **kwargs):
        if self.train_sampler is not None:
            return self.train_sampler
        return super()._get_train_sampler(*args, **kwargs)

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


def class_weight_tensor(labels: np.ndarray, how: str, order: LabelOrder = PACKAGE_ORDER) -> torch.Tensor | None:
    """Cross-entropy class weights indexed by class id, as ``labels`` (targets in the detector's ``order``) are."""
    if how == "none":
        return None
    if how != "balanced":
        raise ConfigError(f"class_weights must be 'balanced' or 'none', got {how!r}")
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"training data lacks a class: { {order.id2label[i]: int(c) for i, c in enumerate(counts)} }")
    return torch.tensor(counts.sum() / (2 * counts), dtype=torch.float32)


def limit_to_one_gpu(args: TrainingArguments, visible: int) -> str | None:
    """With several GPUs and no torchrun, the Trainer would wrap the model in DataParallel (slow,
    and uneven on the T4 x2). Train on one GPU instead and say how to use all of them."""
    if args.world_size > 1 or visible < 2:
        return None
    args._n_gpu = 1  # what the Trainer reads to decide on DataParallel and the total batch size
    return (f"{visible} GPUs visible: this process trains on one (cuda:0). To train on all {visible}, run the stage "
            f"with torchrun: torchrun --nproc_per_node {visible} -m xlsr_helpers train --stage N ... (see README)")


def training_arguments(cfg: TrainConfig, out: Path, precision: str, device: str, cached: bool) -> TrainingArguments:
    """The Trainer's settings: one evaluation and checkpoint per epoch, best dev EER (``select_on``) kept."""
    return TrainingArguments(**{**dict(
        output_dir=str(out / "checkpoints"), num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio, lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model=selection_key(cfg.select_on), greater_is_better=False,
        save_total_limit=cfg.save_total_limit, seed=cfg.seed, data_seed=cfg.seed,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=device == "cpu",
        dataloader_num_workers=0 if cached else cfg.num_workers, remove_unused_columns=False,
        report_to=[r.strip() for r in cfg.report_to.split(",")], disable_tqdm=False, label_names=["labels"],
        ddp_find_unused_parameters=False), **cfg.extra})  # `extra` may override any of these
