"""The label vocabulary of every manifest, score file and detector this package makes, defined once.

A detector folder may order its classes otherwise (its ``config.id2label``); scores are always read
through that mapping (``model.forward.scores_from_logits``), never through these ids alone.
"""

LABELS = ("bonafide", "spoof")  # the label vocabulary of every manifest and score file
LABEL2ID = {label: i for i, label in enumerate(LABELS)}  # bonafide 0, spoof 1: the detectors made here
ID2LABEL = {v: k for k, v in LABEL2ID.items()}
PHASES = ("eval", "progress", "hidden_track", "all")  # the ASVspoof 2021 keys' phases, and every trial
