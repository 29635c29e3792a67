"""The split forward: the frozen prefix once (cacheable), the trainable top layers and the head after; scores from
logits, read through the detector's own label order."""


from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2EncoderStableLayerNorm

from xlsr_helpers.data.labels import LabelOrder, label_order
from xlsr_helpers.model.heads import Head
from xlsr_helpers.model.heads.linear import LinearHead

# transformers 5.x changed these internals between minor versions (tested on 5.0 and 5.24):
# the mask helper's keyword (`input_embeds` -> `inputs_embeds`) and an encoder layer's return
# value (a tuple in 5.0, a tensor later). The two helpers below absorb both.
_MASK_EMBEDS_KW = "inputs_embeds" if "inputs_embeds" in inspect.signature(create_bidirectional_mask).parameters \
    else "input_embeds"


def layer_attention_mask(config, hidden: torch.Tensor, mask: torch.Tensor):
    """The attention mask the encoder layers expect, built as the installed transformers builds it."""
    return create_bidirectional_mask(config=config, attention_mask=mask, **{_MASK_EMBEDS_KW: hidden})


def run_layers(layers, hidden: torch.Tensor, attention_mask, outputs: list | None = None) -> torch.Tensor:
    """Apply encoder layers in order, whether a layer returns a tensor or a tuple; each layer's output
    is appended to ``outputs`` when one is given (heads that read every layer)."""
    for layer in layers:
        out = layer(hidden, attention_mask=attention_mask)
        hidden = out[0] if isinstance(out, tuple) else out
        if outputs is not None:
            outputs.append(hidden)
    return hidden


def _frame_mask(model: nn.Module, n_frames: int, attention_mask: torch.Tensor | None, batch: int,
                device: torch.device) -> torch.Tensor:
    if attention_mask is None:
        return torch.ones(batch, n_frames, dtype=torch.bool, device=device)
    return model._get_feature_vector_attention_mask(n_frames, attention_mask).bool()


def head_of(model: nn.Module) -> Head:
    """The detector's head (a stock linear detector's projector + classifier seen as a ``LinearHead``)."""
    head = getattr(model, "head", None)
    return head if isinstance(head, Head) else LinearHead.of(model)


def reads_every_layer(model: nn.Module) -> bool:
    return head_of(model).needs == "layers"


def encode_prefix(model: nn.Module, input_values: torch.Tensor, attention_mask: torch.Tensor | None,
                  n_prefix_layers: int, outputs: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states entering layer ``n_prefix_layers`` and the frame mask (no SpecAugment); the
    outputs of the layers run are appended to ``outputs`` when given."""
    w = model.wav2vec2
    enc = w.encoder
    feats = w.feature_extractor(input_values).transpose(1, 2)
    mask = _frame_mask(model, feats.shape[1], attention_mask, feats.shape[0], feats.device)
    hidden, _ = w.feature_projection(feats)
    hidden = hidden.masked_fill(~mask.unsqueeze(-1), 0.0)
    bias = layer_attention_mask(enc.config, hidden, mask)
    hidden = hidden + enc.pos_conv_embed(hidden)
    if not isinstance(enc, Wav2Vec2EncoderStableLayerNorm):
        hidden = enc.layer_norm(hidden)  # post-LN encoders normalise before the layers
    hidden = enc.dropout(hidden)
    return run_layers(enc.layers[:n_prefix_layers], hidden, bias, outputs), mask


def forward_top(model: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, n_prefix_layers: int,
                lower_outputs: list | None = None) -> torch.Tensor:
    """Logits from hidden states entering layer ``n_prefix_layers`` (the rest of the forward); a head
    that reads every layer also gets ``lower_outputs``, the outputs of the layers below."""
    enc = model.wav2vec2.encoder
    outputs = list(lower_outputs or []) if reads_every_layer(model) else None
    if n_prefix_layers < len(enc.layers):
        hidden = run_layers(enc.layers[n_prefix_layers:], hidden, layer_attention_mask(enc.config, hidden, mask),
                            outputs)
    return head_logits(model, hidden, mask, outputs)


def head_logits(model: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, outputs: list | None = None,
                normed: bool = False) -> torch.Tensor:
    """The head on what it reads (see ``heads``): the pooled or framewise final-normed last layer
    (``normed``: the final norm is already applied), or every layer's output stacked. Final norm,
    pooling and head run in fp32 with autocast off: under bf16/fp16 the logits would keep 8-11 bits
    and tie many scores."""
    head = head_of(model)
    with torch.autocast(hidden.device.type, enabled=False):
        if head.needs == "layers":
            return head(torch.stack([o.float() for o in outputs], 1), mask)
        h = hidden.float() if normed else final_norm(model, hidden.float())
        return head(masked_mean(h, mask.bool()) if head.needs == "pooled" else h, mask)


def pooled_head_logits(model: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """A pooled head (``needs == 'pooled'``) on cached pooled vectors, in fp32."""
    with torch.autocast(pooled.device.type, enabled=False):
        return head_of(model)(pooled.float(), None)


def detector_logits(model: nn.Module, input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``model(input_values, attention_mask).logits`` with the encoder under the caller's autocast and
    the head in fp32 (``head_logits``)."""
    if isinstance(getattr(model, "head", None), Head):  # an XlsrDetector: any registered head
        outputs = [] if reads_every_layer(model) else None
        hidden, mask = encode_prefix(model, input_values, attention_mask, len(model.wav2vec2.encoder.layers), outputs)
        return head_logits(model, hidden, mask, outputs)
    hidden = model.wav2vec2(input_values, attention_mask=attention_mask).last_hidden_state
    mask = _frame_mask(model, hidden.shape[1], attention_mask, hidden.shape[0], hidden.device)
    return head_logits(model, hidden, mask, normed=True)


def final_norm(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The encoder's final layer norm (pre-LN encoders such as XLS-R only)."""
    enc = model.wav2vec2.encoder
    return enc.layer_norm(hidden) if isinstance(enc, Wav2Vec2EncoderStableLayerNorm) else hidden


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def detector_label_order(model_or_config) -> LabelOrder:
    """Which of a detector's outputs is bonafide and which spoof, from its own ``config.id2label``
    (a ``ConfigError`` naming the model when they are not exactly those two classes)."""
    config = getattr(model_or_config, "config", model_or_config)
    where = getattr(config, "_name_or_path", "") or "the detector"
    return label_order(config.id2label, config.label2id, str(where))


def scores_from_logits(logits: torch.Tensor, order: LabelOrder) -> torch.Tensor:
    """ASVspoof score: logit[bonafide] - logit[spoof] (higher = more bonafide), the two read in the
    detector's own order (``detector_label_order``): a detector may declare {0: spoof, 1: bonafide}."""
    return logits[..., order.bonafide] - logits[..., order.spoof]
