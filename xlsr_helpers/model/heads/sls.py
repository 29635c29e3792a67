"""``sls``: Sensitive Layer Selection (Zhang et al., ACM MM 2024; SLSforASVspoof-2021-DF: DF 1.92 %,
In-the-Wild 7.46 % EER): a learned, input-dependent weighted sum of every transformer layer's
output, then the SLS classifier.

Published configuration: per layer, the time-averaged output -> Linear(hidden, 1) -> sigmoid is that
layer's weight; the weighted sum over layers (frames x hidden) -> BatchNorm -> SELU -> 3x3 max-pool
-> flatten -> Linear(., 1024) -> SELU -> Linear(1024, 2). The flatten size follows the
segment: 4.04 s (64,600 samples, 201 frames) gives the reference's Linear(22847, 1024); it is saved
with the detector (``head_config.n_frames``). Inputs of another length are repeat-padded or cropped
to that many frames, as the reference pads waveforms. Written from the paper and the reference's
layer sizes, with two departures in the output: its log-softmax is left out (cross-entropy and the
score are unchanged by it), and so is the SELU it applies to the two logits: at stage-1 learning
rates (1e-3) both logits fall into SELU's floor (-1.758) within an epoch, the loss sticks at ln 2 and
every score ties (measured on the demo corpus); the reference only trains at 1e-6.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xlsr_helpers.model.heads import Head, register_head

FC1_DIM = 1024


def fit_frames(x: torch.Tensor, n: int, axis: int) -> torch.Tensor:
    """Repeat-pad or crop ``axis`` to ``n`` entries: entry ``i`` is input entry ``i mod length``.

    One gather for both cases, without a branch on the length: an ONNX export (``serve.onnx_export``)
    then serves every input length, where a branch would be fixed at the length it was traced with."""
    # the length as a tensor: the exporter cannot take a symbolic length as a plain number in `%`
    idx = torch.arange(n, device=x.device) % torch.full((), x.shape[axis], dtype=torch.long, device=x.device)
    return x.index_select(axis, idx)


@register_head
class SlsHead(Head):
    name = "sls"
    needs = "layers"

    def __init__(self, config, n_frames: int = 201, **head_config):
        super().__init__(config)
        self.n_frames = n_frames
        self.fc0 = nn.Linear(config.hidden_size, 1)
        self.first_bn = nn.BatchNorm2d(1)
        self.fc1 = nn.Linear((n_frames // 3) * (config.hidden_size // 3), FC1_DIM)
        self.fc3 = nn.Linear(FC1_DIM, 2)

    @classmethod
    def settings(cls, config, segment_frames: int) -> dict:
        return {"n_frames": int(segment_frames)}

    def layer_weights(self, layers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, layers) weights from each layer's time-averaged output."""
        m = mask[:, None, :, None].to(layers.dtype)
        pooled = (layers * m).sum(2) / m.sum(2)
        return torch.sigmoid(self.fc0(pooled)).squeeze(-1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.layer_weights(states, mask)
        fused = (states * w[:, :, None, None]).sum(1)  # (batch, frames, hidden)
        x = F.selu(self.first_bn(fit_frames(fused, self.n_frames, 1).unsqueeze(1)))
        x = F.max_pool2d(x, (3, 3)).flatten(1)
        return self.fc3(F.selu(self.fc1(x)))
