"""``linear``: mean pooling, projector and classifier, exactly ``Wav2Vec2ForSequenceClassification``'s head.

A linear detector is saved as the stock transformers class (loadable without this package); this
class is the same computation seen through the head interface.
"""

from __future__ import annotations

import torch
from torch import nn

from xlsr_helpers.model.heads import Head, register_head


@register_head
class LinearHead(Head):
    name = "linear"
    needs = "pooled"  # the projector is linear, so projector(mean(h)) == mean(projector(h)): one vector per utterance

    def __init__(self, config, **head_config):
        super().__init__(config)
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, config.num_labels)

    @classmethod
    def of(cls, model: nn.Module) -> LinearHead:
        """The head of a stock ``Wav2Vec2ForSequenceClassification``, sharing its layers (not registered as a
        submodule, so the model's state dict is unchanged)."""
        view = model.__dict__.get("_xlsr_linear_head")
        if view is None:
            view = cls.__new__(cls)
            nn.Module.__init__(view)
            view.hidden_size, view.projector, view.classifier = model.config.hidden_size, model.projector, model.classifier
            model.__dict__["_xlsr_linear_head"] = view
        return view

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.projector(states))
