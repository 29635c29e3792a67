"""Dev scores and EER from the Trainer's predictions: one computation for model selection, top-k
averaging and the saved threshold. Logits and targets are in the detector's own label order
(``data.labels.LabelOrder``); scores as ``model.forward.scores_from_logits`` defines them."""

from __future__ import annotations

import numpy as np
import torch

from xlsr_helpers.data.labels import LabelOrder
from xlsr_helpers.evaluate.metrics import compute_eer
from xlsr_helpers.model.forward import scores_from_logits


def prediction_logits(predictions) -> np.ndarray:
    """The logits of ``Trainer.predict``/``evaluate`` output (a tuple when the model returns more)."""
    return predictions[0] if isinstance(predictions, tuple) else predictions


def dev_scores(trainer, dataset, order: LabelOrder) -> np.ndarray:
    """Scores of ``dataset`` under the trainer's current weights, higher = more bonafide."""
    return scores_from_logits(torch.as_tensor(prediction_logits(trainer.predict(dataset).predictions)), order).numpy()


def eer_of(scores: np.ndarray, targets: np.ndarray, order: LabelOrder) -> tuple[float, float]:
    """EER and its threshold of scores against training targets (class ids in the detector's ``order``)."""
    return compute_eer(scores[targets == order.bonafide], scores[targets == order.spoof])


def eer_metrics(eval_pred, order: LabelOrder) -> dict:
    """The Trainer's ``compute_metrics`` (bound to the detector's ``order``): dev EER (the
    model-selection metric) and its threshold."""
    scores = scores_from_logits(torch.as_tensor(prediction_logits(eval_pred.predictions)), order).numpy()
    eer, thr = eer_of(scores, eval_pred.label_ids, order)
    return {"eer": eer, "eer_threshold": thr}
