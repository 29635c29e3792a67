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


POOLED, MEAN = "pooled", "mean"
CORPUS_KEY = "eer/"  # eer/<corpus>: one corpus's dev EER (the Trainer logs eval_eer/<corpus>)


def corpus_eers(scores: np.ndarray, targets: np.ndarray, corpora, order: LabelOrder) -> dict[str, float]:
    """Each corpus's dev EER (corpora in order of appearance); NaN for a corpus whose dev trials lack a class."""
    corpora = np.asarray(corpora, dtype=str)
    out = {}
    for c in dict.fromkeys(corpora.tolist()):
        s, t = scores[corpora == c], targets[corpora == c]
        has_both = (t == order.bonafide).any() and (t == order.spoof).any()
        out[c] = eer_of(s, t, order)[0] if has_both else float("nan")
    return out


def selection_key(select_on: str) -> str:
    """The metric model selection reads: ``eer`` (pooled) or ``selected_eer``."""
    return "eer" if select_on == POOLED else "selected_eer"


def dev_metrics(scores: np.ndarray, targets: np.ndarray, order: LabelOrder, corpora=None,
                select_on: str = POOLED) -> dict:
    """Pooled dev EER and its threshold; with several corpora each one's EER (``eer/<corpus>``);
    unless ``select_on`` is ``pooled``, the selection metric: the ``mean`` of the corpora's EERs or
    one corpus's."""
    eer, thr = eer_of(scores, targets, order)
    out = {"eer": eer, "eer_threshold": thr}
    if corpora is not None and len(set(corpora)) > 1:
        out |= {CORPUS_KEY + c: v for c, v in corpus_eers(scores, targets, corpora, order).items()}
    if select_on == MEAN:
        out["selected_eer"] = float(np.nanmean([v for k, v in out.items() if k.startswith(CORPUS_KEY)] or [eer]))
    elif select_on != POOLED:
        out["selected_eer"] = out.get(CORPUS_KEY + select_on, eer)  # one corpus: its EER is the pooled one
    return out


def eer_metrics(eval_pred, order: LabelOrder, corpora=None, select_on: str = POOLED) -> dict:
    """The Trainer's ``compute_metrics`` (bound to the detector's ``order`` and the dev manifest's
    ``corpora``, row by row): ``dev_metrics`` of the predictions."""
    scores = scores_from_logits(torch.as_tensor(prediction_logits(eval_pred.predictions)), order).numpy()
    if corpora is not None and len(corpora) != len(scores):
        raise ValueError(f"{len(scores)} dev predictions for {len(corpora)} dev trials")
    return dev_metrics(scores, eval_pred.label_ids, order, corpora, select_on)
