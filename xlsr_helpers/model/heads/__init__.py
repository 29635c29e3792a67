"""Back-ends ("heads") on the XLS-R encoder: one file per head, found and registered on import.

A head turns encoder states into the two logits, ordered as its detector's ``config.id2label`` says
(``data.labels.LABEL2ID`` for a fresh head; ``model.forward.detector_label_order`` reads it). What
it reads is declared by its ``needs`` (the cache and the split forward follow it):

- ``"pooled"``: ``(batch, hidden)``, the masked mean of the final-normed last layer;
- ``"frames"``: ``(batch, frames, hidden)``, the final-normed last layer (``mask``: valid frames);
- ``"layers"``: ``(batch, layers, frames, hidden)``, the raw output of every transformer layer.

Adding a back-end: a new module here with a ``Head`` subclass decorated ``@register_head``; its
constructor takes the encoder config and the head's own settings (``head_config``, saved in the
detector's config.json). Nothing else changes.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from typing import ClassVar

import torch
from torch import nn
from transformers import initialization as init

from xlsr_helpers.core.errors import ConfigError

NEEDS = ("pooled", "frames", "layers")
HEADS: dict[str, type[Head]] = {}


class Head(nn.Module):
    """Encoder states in, ``(batch, 2)`` logits out (run in fp32 by the caller)."""

    name: ClassVar[str]
    needs: ClassVar[str]

    def __init__(self, config, **head_config):
        super().__init__()
        self.hidden_size = config.hidden_size

    @classmethod
    def settings(cls, config, segment_frames: int) -> dict:
        """The head's own settings for a new detector (saved as ``head_config``); default: none."""
        return {}

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def init_own_parameters(self) -> None:
        """Initialise parameters that are not inside Linear/Conv/BatchNorm layers (default: none)."""


def register_head(cls: type[Head]) -> type[Head]:
    if cls.needs not in NEEDS:
        raise ValueError(f"head {cls.name!r}: needs must be one of {NEEDS}, got {cls.needs!r}")
    HEADS[cls.name] = cls
    return cls


def head_class(name: str) -> type[Head]:
    if name not in HEADS:
        raise ConfigError(f"head={name!r} is not a known head; known: {sorted(HEADS)}")
    return HEADS[name]


def torch_default_init(module: nn.Module) -> None:
    """PyTorch's own initialisation of a layer (as the reference back-ends get it), through
    transformers' guarded init functions, which leave weights loaded from a checkpoint alone."""
    if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
        init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        if module.bias is not None:
            bound = 1 / math.sqrt(module.weight[0].numel())
            init.uniform_(module.bias, -bound, bound)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        init.zeros_(module.running_mean)
        init.ones_(module.running_var)
        init.zeros_(module.num_batches_tracked)
    if hasattr(module, "init_own_parameters"):  # a head's or a head layer's own nn.Parameters
        module.init_own_parameters()


for _m in pkgutil.iter_modules(__path__):  # every head module registers itself
    importlib.import_module(f"{__name__}.{_m.name}")
