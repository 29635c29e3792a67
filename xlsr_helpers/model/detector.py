"""``XlsrDetector``: the XLS-R encoder with any registered head, a transformers model like any other.

Registered with ``AutoConfig`` and ``AutoModelForAudioClassification`` when ``xlsr_helpers`` is
imported, so ``from_pretrained``, ``pipeline("audio-classification")``, ``xlsr score`` and ``Scorer``
load a saved detector of any head (safetensors, no remote code). The head's name and settings live
in config.json (``head``, ``head_config``). The ``linear`` head is saved as the stock
``Wav2Vec2ForSequenceClassification`` instead, so that plain transformers can load it.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForAudioClassification, Wav2Vec2Config, Wav2Vec2Model
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2PreTrainedModel

from xlsr_helpers.model.heads import head_class, torch_default_init

MODEL_TYPE = "xlsr-detector"


class XlsrDetectorConfig(Wav2Vec2Config):
    model_type = MODEL_TYPE

    def __init__(self, head: str = "aasist", head_config: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.head, self.head_config = head, dict(head_config or {})


class XlsrDetector(Wav2Vec2PreTrainedModel):
    config_class = XlsrDetectorConfig

    def __init__(self, config: XlsrDetectorConfig):
        super().__init__(config)
        self.wav2vec2 = Wav2Vec2Model(config)
        self.head = head_class(config.head)(config, **config.head_config)
        for m in self.head.modules():
            m._xlsr_head_part = True
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if getattr(module, "_xlsr_head_part", False):
            torch_default_init(module)
        else:
            super()._init_weights(module)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs) -> SequenceClassifierOutput:
        # imported here: the Auto registration imports this module while forward.py may still be importing transformers
        from xlsr_helpers.model.forward import detector_logits
        logits = detector_logits(self, input_values, attention_mask)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, XlsrDetectorConfig, exist_ok=True)
AutoModelForAudioClassification.register(XlsrDetectorConfig, XlsrDetector, exist_ok=True)
