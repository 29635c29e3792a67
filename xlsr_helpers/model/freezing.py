"""Which parameters a stage trains: stage 1 the head, stage 2 also the top transformer layers."""


from __future__ import annotations

import logging

from torch import nn
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2EncoderStableLayerNorm

from xlsr_helpers.core.errors import ConfigError

log = logging.getLogger(__name__)


def count_parameters(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "frozen": total - trainable, "total": total}


def freeze_for_stage(model: nn.Module, stage: int, top_layers: int = 4) -> dict[str, int]:
    """Stage 1: only projector + classifier train. Stage 2: also the top ``top_layers`` transformer
    layers and the encoder's final layer norm. The CNN feature encoder is always frozen."""
    if stage not in (1, 2):
        raise ConfigError(f"stage must be 1 or 2, got {stage}")
    backbone = model.wav2vec2
    n_layers = len(backbone.encoder.layers)
    if stage == 2 and not 1 <= top_layers <= n_layers:
        raise ConfigError(f"top_layers must be in 1..{n_layers} for this model, got {top_layers}")
    for p in model.parameters():
        p.requires_grad = True
    for p in backbone.parameters():
        p.requires_grad = False
    if stage == 2:
        for layer in backbone.encoder.layers[n_layers - top_layers:]:
            layer.requires_grad_(True)
        if isinstance(backbone.encoder, Wav2Vec2EncoderStableLayerNorm):
            backbone.encoder.layer_norm.requires_grad_(True)
    counts = count_parameters(model)
    log.info("stage %d: %s trainable of %s parameters", stage, f"{counts['trainable']:,}", f"{counts['total']:,}")
    return counts


def frozen_prefix_layers(model: nn.Module, stage: int, top_layers: int) -> int:
    """How many transformer layers sit below the first trainable one."""
    n = len(model.wav2vec2.encoder.layers)
    return n if stage == 1 else n - top_layers
